package kafka

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/mirror"
)

// fidelityRecords covers every distinction a record must keep: null and
// empty keys, values and header values, binary bytes, and timestamps.
func fidelityRecords(topic string, partition int32) []*kgo.Record {
	base := time.Date(2026, 11, 21, 12, 0, 0, 123e6, time.UTC)
	bin := []byte{0x00, 0xff, 0x7f, 0x80, '\n', 0x00}
	rec := func(key, value []byte, ts time.Time, hs ...kgo.RecordHeader) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: partition, Key: key, Value: value, Timestamp: ts, Headers: hs}
	}
	return []*kgo.Record{
		rec([]byte("k0"), []byte("v0"), base,
			kgo.RecordHeader{Key: "bin", Value: bin},
			kgo.RecordHeader{Key: "null", Value: nil},
			kgo.RecordHeader{Key: "empty", Value: []byte{}},
			kgo.RecordHeader{Key: "bin", Value: []byte("repeated key")}),
		rec(nil, []byte("null key"), base.Add(time.Millisecond)),
		rec([]byte("tombstone"), nil, base.Add(2*time.Millisecond)),
		rec([]byte{}, []byte("empty key"), base.Add(3*time.Millisecond)),
		rec([]byte("empty value"), []byte{}, base.Add(4*time.Millisecond)),
		rec(bin, bin, time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)), // older than the rest
		rec(nil, nil, base.Add(-time.Hour), kgo.RecordHeader{Key: "", Value: nil}),
	}
}

func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func describeBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	return fmt.Sprintf("%q", b)
}

// checkRecord compares a record as mirrored with the record as produced.
func checkRecord(t *testing.T, what string, want *kgo.Record, key, value []byte, headers []mirror.Header, ts time.Time) {
	t.Helper()
	if !sameBytes(key, want.Key) {
		t.Errorf("%s: key %s, want %s", what, describeBytes(key), describeBytes(want.Key))
	}
	if !sameBytes(value, want.Value) {
		t.Errorf("%s: value %s, want %s", what, describeBytes(value), describeBytes(want.Value))
	}
	if !ts.Equal(want.Timestamp) {
		t.Errorf("%s: timestamp %v, want %v", what, ts, want.Timestamp)
	}
	if len(headers) != len(want.Headers) {
		t.Errorf("%s: %d headers, want %d", what, len(headers), len(want.Headers))
		return
	}
	for i, h := range headers {
		w := want.Headers[i]
		if h.Key != w.Key || !sameBytes(h.Value, w.Value) {
			t.Errorf("%s: header %d = %q:%s, want %q:%s", what, i, h.Key, describeBytes(h.Value), w.Key, describeBytes(w.Value))
		}
	}
}

func mirrorHeaders(hs []kgo.RecordHeader) []mirror.Header {
	var out []mirror.Header
	for _, h := range hs {
		out = append(out, mirror.Header{Key: h.Key, Value: h.Value})
	}
	return out
}

// TestRoundTrip mirrors records through Source and Sink between Tributary's
// broker and kfake, both ways, and checks every record byte for byte on the
// target with an independent client (franz-go).
func TestRoundTrip(t *testing.T) {
	checkGoroutines(t)
	ps := peers(t)
	for _, dir := range [][2]peer{{ps[1], ps[0]}, {ps[0], ps[1]}} {
		from, to := dir[0], dir[1]
		t.Run(from.name+"_to_"+to.name, func(t *testing.T) {
			ctx := testContext(t)
			src := newTestSource(t, from)
			srcSink := newTestSink(t, from, SinkOptions{}) // only to create the source topic
			sink := newTestSink(t, to, SinkOptions{})
			srcTopic, dstTopic := "orders-from-"+from.name, "orders-to-"+to.name
			createTopic(t, ctx, srcSink, srcTopic, 2, nil)
			createTopic(t, ctx, sink, dstTopic, 2, nil)

			var produced []*kgo.Record
			for p := int32(0); p < 2; p++ {
				produced = append(produced, fidelityRecords(srcTopic, p)...)
			}
			prod := newFranz(t, from, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err := prod.ProduceSync(ctx, produced...).FirstErr(); err != nil {
				t.Fatalf("produce to %s: %v", from.name, err)
			}

			id, err := src.ClusterID(ctx)
			if err != nil || id != from.clusterID {
				t.Fatalf("source ClusterID = %q, %v; want %q", id, err, from.clusterID)
			}
			id, err = sink.ClusterID(ctx)
			if err != nil || id != to.clusterID {
				t.Fatalf("sink ClusterID = %q, %v; want %q", id, err, to.clusterID)
			}

			tps := []mirror.TopicPartition{{Topic: srcTopic, Partition: 0}, {Topic: srcTopic, Partition: 1}}
			starts, err := src.Offsets(ctx, tps, mirror.StartPosition{Kind: mirror.StartEarliest})
			if err != nil {
				t.Fatalf("offsets: %v", err)
			}
			cons, err := src.Consume(ctx, starts)
			if err != nil {
				t.Fatalf("consume: %v", err)
			}
			defer cons.Close()
			got := pollN(t, ctx, cons, len(produced))
			if len(got) != len(produced) {
				t.Fatalf("polled %d records, want %d", len(got), len(produced))
			}

			// Per partition, records come in offset order and as produced.
			next := map[int32]int{}
			batch := &mirror.Batch{Checkpoint: &mirror.Checkpoint{Flow: "rt/" + to.name, Time: time.Now(), Positions: map[mirror.SourcePartition]int64{}}}
			for _, r := range got {
				p := r.Source.Partition
				i := next[p]
				next[p]++
				want := produced[int(p)*len(produced)/2+i]
				if r.Source.Offset != int64(i) || r.Source.Cluster != from.name || r.Source.Topic != srcTopic {
					t.Fatalf("record %d of partition %d came from %+v", i, p, r.Source)
				}
				checkRecord(t, fmt.Sprintf("polled %s", r.Source), want, r.Key, r.Value, r.Headers, r.Timestamp)
				batch.Records = append(batch.Records, mirror.OutRecord{Record: r, Topic: dstTopic, Partition: p})
				batch.Checkpoint.Positions[r.Source.SourcePartition] = r.Source.Offset + 1
			}
			if err := sink.Write(ctx, batch); err != nil {
				t.Fatalf("write: %v", err)
			}

			out := consumeAll(t, ctx, to, dstTopic, len(produced))
			idx := map[int32]int{}
			for _, r := range out {
				i := idx[r.Partition]
				idx[r.Partition]++
				want := produced[int(r.Partition)*len(produced)/2+i]
				checkRecord(t, fmt.Sprintf("target %s-%d@%d", r.Topic, r.Partition, r.Offset), want, r.Key, r.Value, mirrorHeaders(r.Headers), r.Timestamp)
			}

			cp, err := sink.LoadCheckpoint(ctx, batch.Checkpoint.Flow)
			if err != nil || cp == nil {
				t.Fatalf("load checkpoint: %v, %v", cp, err)
			}
			for sp, off := range batch.Checkpoint.Positions {
				if cp.Positions[sp] != off {
					t.Errorf("checkpoint position of %s = %d, want %d", sp, cp.Positions[sp], off)
				}
			}
			if len(cp.Positions) != 2 || cp.Flow != batch.Checkpoint.Flow || !cp.Time.Equal(batch.Checkpoint.Time) {
				t.Errorf("checkpoint = %+v, want %+v", cp, batch.Checkpoint)
			}
			if err := cons.Close(); err != nil {
				t.Errorf("close consumer: %v", err)
			}
		})
	}
}
