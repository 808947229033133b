package kafka

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/mirror"
)

// txnPeers are the targets with transactions: kfake always, and
// Tributary's broker once it serves them (the e2e tests cover it too).
func txnPeers(t *testing.T) []peer { return []peer{startKfake(t)} }

func txnBatch(flow string, from, n int) *mirror.Batch {
	b := &mirror.Batch{Checkpoint: &mirror.Checkpoint{Flow: flow, Time: time.Now(),
		Positions: map[mirror.SourcePartition]int64{{Cluster: "east", Topic: "orders"}: int64(from + n)}}}
	for i := from; i < from+n; i++ {
		b.Records = append(b.Records, mirror.OutRecord{Topic: "orders", Partition: 0,
			Record: mirror.Record{Key: []byte("k"), Value: []byte(fmt.Sprint(i)), Timestamp: time.UnixMilli(1_700_000_000_000)}})
	}
	return b
}

// TestTransactionalSink commits records and checkpoint together, and a
// second instance with the same transactional ID fences the first: its
// next write fails with mirror.ErrFenced and nothing of it becomes
// visible to read_committed consumers.
func TestTransactionalSink(t *testing.T) {
	for _, p := range txnPeers(t) {
		t.Run(p.name, func(t *testing.T) {
			checkGoroutines(t)
			ctx := testContext(t)
			opts := SinkOptions{TransactionalID: "tributary-job/central"}
			first := newTestSink(t, p, opts)
			createTopic(t, ctx, first, "orders", 1, nil)
			if err := first.Write(ctx, txnBatch("job/central", 0, 100)); err != nil {
				t.Fatalf("first write: %v", err)
			}
			second := newTestSink(t, p, opts) // fences first
			zombie := txnBatch("job/central", 100, 50)
			for i := range zombie.Records {
				zombie.Records[i].Value = []byte("zombie")
			}
			err := first.Write(ctx, zombie)
			if !errors.Is(err, mirror.ErrFenced) {
				t.Fatalf("write of the fenced instance: %v, want mirror.ErrFenced", err)
			}
			cp, err := second.LoadCheckpoint(ctx, "job/central")
			if err != nil || cp == nil {
				t.Fatalf("checkpoint after fencing: %v %v", cp, err)
			}
			if got := cp.Positions[mirror.SourcePartition{Cluster: "east", Topic: "orders"}]; got != 100 {
				t.Fatalf("checkpoint position %d, want 100 (the fenced write must not count)", got)
			}
			if err := second.Write(ctx, txnBatch("job/central", 100, 50)); err != nil {
				t.Fatalf("write of the new instance: %v", err)
			}
			recs := consumeAll(t, ctx, p, "orders", 150, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			for i, r := range recs {
				if string(r.Value) != fmt.Sprint(i) {
					t.Fatalf("record %d is %q: a fenced or aborted write leaked", i, r.Value)
				}
			}
		})
	}
}
