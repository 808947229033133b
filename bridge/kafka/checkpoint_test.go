package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/mirror"
)

func TestCheckpointPartitionIsStable(t *testing.T) {
	// FNV-1a 32 of "a" is 0xe40c292c.
	if got := checkpointPartition("a", 7); got != int32(0xe40c292c%7) {
		t.Fatalf("partition of %q = %d, want %d", "a", got, 0xe40c292c%7)
	}
	for _, f := range []string{"", "job/east", "a-much-longer-job-name/target"} {
		if p := checkpointPartition(f, 1); p != 0 {
			t.Fatalf("partition of %q among 1 = %d", f, p)
		}
		if p := checkpointPartition(f, 5); p < 0 || p >= 5 {
			t.Fatalf("partition of %q among 5 = %d", f, p)
		}
	}
}

// TestCheckpointTopic checks that the checkpoint topic is created
// compacted on both peers. (A cluster refusing compaction gets delete with
// infinite retention instead; neither peer does.)
func TestCheckpointTopic(t *testing.T) {
	checkGoroutines(t)
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			ctx := testContext(t)
			sink := newTestSink(t, p, SinkOptions{CheckpointPartitions: 3})
			if cp, err := sink.LoadCheckpoint(ctx, "nobody/here"); err != nil || cp != nil {
				t.Fatalf("LoadCheckpoint of an unknown flow = %v, %v; want nil, nil", cp, err)
			}
			adm := kadm.NewClient(newFranz(t, p))
			rcs, err := adm.DescribeTopicConfigs(ctx, DefaultCheckpointTopic)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := rcs.On(DefaultCheckpointTopic, nil)
			if err != nil || rc.Err != nil {
				t.Fatalf("describe %s: %v %v", DefaultCheckpointTopic, err, rc.Err)
			}
			got := map[string]string{}
			for _, c := range rc.Configs {
				got[c.Key] = c.MaybeValue()
			}
			if got["cleanup.policy"] != "compact" {
				t.Errorf("checkpoint topic configs %v, want cleanup.policy=compact", got)
			}
			tds, err := adm.ListTopics(ctx, DefaultCheckpointTopic)
			if err != nil || len(tds[DefaultCheckpointTopic].Partitions) != 3 {
				t.Fatalf("checkpoint topic partitions: %v %v", tds, err)
			}
		})
	}
}

// TestCheckpointAfterRecords checks the order of a Write: the checkpoint is
// produced only after every record was acknowledged (shown on one partition,
// where offsets order them), and not at all when a record fails.
func TestCheckpointAfterRecords(t *testing.T) {
	checkGoroutines(t)
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			ctx := testContext(t)
			// The records go to the checkpoint topic itself, so that records
			// and checkpoint share one partition and its offsets.
			sink := newTestSink(t, p, SinkOptions{CheckpointTopic: "ckpt", MaxBatchBytes: 1 << 20})
			if _, err := sink.LoadCheckpoint(ctx, "warmup/x"); err != nil { // creates the topic
				t.Fatal(err)
			}
			const flow = "order/test"
			cp := &mirror.Checkpoint{Flow: flow, Time: time.Now(), Positions: map[mirror.SourcePartition]int64{{Cluster: "c", Topic: "t"}: 100}}
			b := &mirror.Batch{Checkpoint: cp}
			for i := 0; i < 100; i++ {
				b.Records = append(b.Records, mirror.OutRecord{Topic: "ckpt", Partition: 0,
					Record: mirror.Record{Key: []byte(fmt.Sprintf("rec-%d", i)), Value: []byte("x"), Timestamp: time.Now()}})
			}
			if err := sink.Write(ctx, b); err != nil {
				t.Fatalf("write: %v", err)
			}
			recs := consumeAll(t, ctx, p, "ckpt", 101)
			last := recs[len(recs)-1]
			if string(last.Key) != flow || last.Offset != 100 {
				t.Fatalf("last record %q at %d, want the checkpoint at 100", last.Key, last.Offset)
			}
			for _, r := range recs[:100] {
				if string(r.Key) == flow {
					t.Fatalf("checkpoint at offset %d, before the batch's last record", r.Offset)
				}
			}
			got, err := sink.LoadCheckpoint(ctx, flow)
			if err != nil || got == nil || got.Positions[mirror.SourcePartition{Cluster: "c", Topic: "t"}] != 100 {
				t.Fatalf("LoadCheckpoint = %+v, %v", got, err)
			}

			// A failing record: no checkpoint follows it.
			bad := &mirror.Batch{
				Records: []mirror.OutRecord{
					{Topic: "ckpt", Partition: 0, Record: mirror.Record{Value: []byte("fine")}},
					{Topic: "ckpt", Partition: 0, Record: mirror.Record{Value: make([]byte, 2<<20)}},
				},
				Checkpoint: &mirror.Checkpoint{Flow: flow, Time: time.Now(), Positions: map[mirror.SourcePartition]int64{{Cluster: "c", Topic: "t"}: 102}},
			}
			if err := sink.Write(ctx, bad); err == nil {
				t.Fatal("write of an oversized record succeeded")
			}
			got, err = sink.LoadCheckpoint(ctx, flow)
			if err != nil || got == nil || got.Positions[mirror.SourcePartition{Cluster: "c", Topic: "t"}] != 100 {
				t.Fatalf("after a failed write, LoadCheckpoint = %+v, %v; want the earlier checkpoint", got, err)
			}
		})
	}
}

// TestLoadCheckpointLatest writes many checkpoints of several flows, with a
// small read-back window, and checks each flow gets its latest.
func TestLoadCheckpointLatest(t *testing.T) {
	checkGoroutines(t)
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			ctx := testContext(t)
			sink := newTestSink(t, p, SinkOptions{CheckpointWindow: 7, CheckpointPartitions: 2})
			sp := mirror.SourcePartition{Cluster: "east", Topic: "orders"}
			write := func(flow string, off int64) {
				t.Helper()
				cp := &mirror.Checkpoint{Flow: flow, Time: time.Now(), Positions: map[mirror.SourcePartition]int64{sp: off}}
				if err := sink.Write(ctx, &mirror.Batch{Checkpoint: cp}); err != nil {
					t.Fatalf("write checkpoint %s@%d: %v", flow, off, err)
				}
			}
			write("early/one", 1) // then buried under 100s of others
			flows := []string{"a/x", "b/x", "c/y", "d/z"}
			latest := map[string]int64{"early/one": 1}
			for i := int64(0); i < 150; i++ {
				for j, f := range flows {
					if j == 3 && i > 10 {
						continue // d stops early: its latest is far back
					}
					write(f, i*10+int64(j))
					latest[f] = i*10 + int64(j)
				}
			}
			// A foreign record with a flow's key but no value is not a checkpoint.
			prod := newFranz(t, p, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			n, _ := sink.checkpointPartitions(ctx)
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: DefaultCheckpointTopic, Partition: checkpointPartition("a/x", n), Key: []byte("a/x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			for f, want := range latest {
				cp, err := sink.LoadCheckpoint(ctx, f)
				if err != nil || cp == nil {
					t.Fatalf("LoadCheckpoint(%s) = %v, %v", f, cp, err)
				}
				if cp.Flow != f || cp.Positions[sp] != want {
					t.Errorf("LoadCheckpoint(%s) = %s at %d, want %d", f, cp.Flow, cp.Positions[sp], want)
				}
			}
			if cp, err := sink.LoadCheckpoint(ctx, "never/written"); err != nil || cp != nil {
				t.Errorf("LoadCheckpoint of an unknown flow = %v, %v", cp, err)
			}
		})
	}
}

var _ = sarama.ErrNoError
