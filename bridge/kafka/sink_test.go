package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/mirror"
)

// TestRecordTooLarge checks that a record refused for its size — by the
// topic's max.message.bytes on the target, or by the producer's own batch
// limit — is reported as mirror.ErrRecordTooLarge, and that the next Write
// succeeds on a fresh producer.
func TestRecordTooLarge(t *testing.T) {
	checkGoroutines(t)
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			ctx := testContext(t)
			sink := newTestSink(t, p, SinkOptions{MaxBatchBytes: 64 << 10})
			createTopic(t, ctx, sink, "small", 1, map[string]string{"max.message.bytes": "2000"})
			max, err := sink.MaxRecordBytes(ctx, "small")
			if err != nil || max != 2000-BatchOverhead {
				t.Fatalf("MaxRecordBytes(small) = %d, %v; want %d", max, err, 2000-BatchOverhead)
			}
			createTopic(t, ctx, sink, "big", 1, nil)
			if max, err := sink.MaxRecordBytes(ctx, "big"); err != nil || max != 64<<10-BatchOverhead {
				t.Fatalf("MaxRecordBytes(big) = %d, %v; want the producer's limit %d", max, err, 64<<10-BatchOverhead)
			}

			flow := "big/" + p.name
			pos := mirror.SourcePartition{Cluster: "src", Topic: "t"}
			write := func(topic string, size int, off int64) error {
				return sink.Write(ctx, &mirror.Batch{
					Records:    []mirror.OutRecord{{Topic: topic, Record: mirror.Record{Key: []byte("k"), Value: make([]byte, size), Timestamp: time.Now()}}},
					Checkpoint: &mirror.Checkpoint{Flow: flow, Time: time.Now(), Positions: map[mirror.SourcePartition]int64{pos: off}},
				})
			}
			if err := write("small", 100, 1); err != nil {
				t.Fatalf("small write: %v", err)
			}
			err = write("small", 5000, 2) // refused by the target
			if !errors.Is(err, mirror.ErrRecordTooLarge) {
				t.Fatalf("write of 5000 bytes into max.message.bytes=2000: %v; want ErrRecordTooLarge", err)
			}
			t.Logf("target refusal: %v", err)
			if err := write("small", 100, 3); err != nil {
				t.Fatalf("write after a refusal: %v", err)
			}
			err = write("big", 100<<10, 4) // refused by the producer
			if !errors.Is(err, mirror.ErrRecordTooLarge) {
				t.Fatalf("write of 100 KiB with a 64 KiB batch limit: %v; want ErrRecordTooLarge", err)
			}
			t.Logf("producer refusal: %v", err)
			if err := write("big", 100, 5); err != nil {
				t.Fatalf("write after a refusal: %v", err)
			}
			cp, err := sink.LoadCheckpoint(ctx, flow)
			if err != nil || cp == nil || cp.Positions[pos] != 5 {
				t.Fatalf("LoadCheckpoint = %+v, %v; want position 5", cp, err)
			}
			recs := consumeAll(t, ctx, p, "small", 2)
			if len(recs) != 2 || len(recs[0].Value) != 100 || len(recs[1].Value) != 100 {
				t.Fatalf("small holds %d records", len(recs))
			}
		})
	}
}

// TestTopicAdmin checks topic listing, creation, ErrTopicExists, growth and
// configs as a Source reports them.
func TestTopicAdmin(t *testing.T) {
	checkGoroutines(t)
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			ctx := testContext(t)
			sink := newTestSink(t, p, SinkOptions{})
			src := newTestSource(t, p)
			createTopic(t, ctx, sink, "admin", 2, map[string]string{"retention.ms": "3600000"})
			err := sink.CreateTopic(ctx, mirror.TopicInfo{Name: "admin", Partitions: 2})
			if !errors.Is(err, mirror.ErrTopicExists) {
				t.Fatalf("second CreateTopic: %v; want ErrTopicExists", err)
			}
			if err := sink.AddPartitions(ctx, "admin", 5); err != nil {
				t.Fatalf("AddPartitions: %v", err)
			}
			var info mirror.TopicInfo
			deadline := time.Now().Add(10 * time.Second)
			for info.Partitions != 5 && time.Now().Before(deadline) {
				ts, err := src.Topics(ctx)
				if err != nil {
					t.Fatalf("Topics: %v", err)
				}
				for _, ti := range ts {
					if ti.Name == "admin" {
						info = ti
					}
				}
			}
			if info.Partitions != 5 {
				t.Fatalf("source sees admin with %d partitions, want 5", info.Partitions)
			}
			if info.Configs["retention.ms"] != "3600000" {
				t.Errorf("source configs of admin = %v, want retention.ms=3600000", info.Configs)
			}
			if _, ok := info.Configs["segment.bytes"]; ok {
				t.Errorf("source reports default config segment.bytes: %v", info.Configs)
			}
			sts, err := sink.Topics(ctx)
			if err != nil {
				t.Fatalf("sink Topics: %v", err)
			}
			found := false
			for _, ti := range sts {
				found = found || (ti.Name == "admin" && ti.Partitions == 5)
			}
			if !found {
				t.Errorf("sink Topics = %v, missing admin with 5 partitions", sts)
			}
		})
	}
}

// TestOffsets checks start positions by earliest, latest and timestamp, and
// EndOffsets.
func TestOffsets(t *testing.T) {
	checkGoroutines(t)
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			ctx := testContext(t)
			sink := newTestSink(t, p, SinkOptions{})
			src := newTestSource(t, p)
			createTopic(t, ctx, sink, "times", 1, nil)
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var recs []*kgo.Record
			for i := 0; i < 10; i++ {
				recs = append(recs, &kgo.Record{Topic: "times", Value: []byte{byte(i)}, Timestamp: t0.Add(time.Duration(i) * time.Second)})
			}
			prod := newFranz(t, p, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			tp := mirror.TopicPartition{Topic: "times"}
			for _, c := range []struct {
				start mirror.StartPosition
				want  int64
			}{
				{mirror.StartPosition{Kind: mirror.StartEarliest}, 0},
				{mirror.StartPosition{Kind: mirror.StartLatest}, 10},
				{mirror.StartPosition{Kind: mirror.StartTimestamp, Time: t0.Add(-time.Hour)}, 0},
				{mirror.StartPosition{Kind: mirror.StartTimestamp, Time: t0.Add(4 * time.Second)}, 4},
				{mirror.StartPosition{Kind: mirror.StartTimestamp, Time: t0.Add(4500 * time.Millisecond)}, 5},
				{mirror.StartPosition{Kind: mirror.StartTimestamp, Time: t0.Add(time.Hour)}, 10},
			} {
				got, err := src.Offsets(ctx, []mirror.TopicPartition{tp}, c.start)
				if err != nil || got[tp] != c.want {
					t.Errorf("Offsets(%+v) = %v, %v; want %d", c.start, got, err, c.want)
				}
			}
			ends, err := src.EndOffsets(ctx, []mirror.TopicPartition{tp})
			if err != nil || ends[tp] != 10 {
				t.Errorf("EndOffsets = %v, %v; want 10", ends, err)
			}
			// Starting from a timestamp's offset reads from that record on.
			from, _ := src.Offsets(ctx, []mirror.TopicPartition{tp}, mirror.StartPosition{Kind: mirror.StartTimestamp, Time: t0.Add(7 * time.Second)})
			cons, err := src.Consume(ctx, from)
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			got := pollN(t, ctx, cons, 3)
			if len(got) != 3 || got[0].Value[0] != 7 || !got[0].Timestamp.Equal(t0.Add(7*time.Second)) {
				t.Errorf("from t0+7s read %+v", got)
			}
		})
	}
}

// TestWriteCancelled checks that a Write whose context ends returns, and
// that the Sink recovers with a fresh producer.
func TestWriteCancelled(t *testing.T) {
	checkGoroutines(t)
	p := startBroker(t)
	ctx := testContext(t)
	sink := newTestSink(t, p, SinkOptions{})
	createTopic(t, ctx, sink, "cancel", 1, nil)
	batch := func(n int) *mirror.Batch {
		b := &mirror.Batch{Checkpoint: &mirror.Checkpoint{Flow: "c/x", Time: time.Now(),
			Positions: map[mirror.SourcePartition]int64{{Cluster: "s", Topic: "t"}: int64(n)}}}
		for i := 0; i < n; i++ {
			b.Records = append(b.Records, mirror.OutRecord{Topic: "cancel", Record: mirror.Record{Value: make([]byte, 100)}})
		}
		return b
	}
	if err := sink.Write(ctx, batch(5)); err != nil { // starts the producer
		t.Fatalf("first Write: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := sink.Write(cancelled, batch(1000)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context = %v", err)
	}
	sink.wmu.Lock()
	discarded := sink.producer == nil
	sink.wmu.Unlock()
	if !discarded {
		t.Fatal("the producer of a cancelled Write was kept")
	}
	if err := sink.Write(ctx, batch(10)); err != nil {
		t.Fatalf("Write after a cancelled one: %v", err)
	}
	cp, err := sink.LoadCheckpoint(ctx, "c/x")
	if err != nil || cp == nil || cp.Positions[mirror.SourcePartition{Cluster: "s", Topic: "t"}] != 10 {
		t.Fatalf("LoadCheckpoint = %+v, %v", cp, err)
	}
}
