package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/mirror"
)

// startTxnBroker starts an in-process Tributary broker that aborts
// timed-out transactions every abortInterval.
func startTxnBroker(t *testing.T, abortInterval time.Duration) peer {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.AutoCreateTopics = true
	cfg.Logger = quietLogger()
	cfg.TransactionAbortInterval = abortInterval
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
	})
	return peer{name: "tributary", addrs: []string{b.Addr()}, clusterID: b.ClusterID(), ours: true}
}

// waitAborted polls until partition 0 of topic has no open transaction
// (its last stable offset reached its high watermark) and its high
// watermark is past end.
func waitAborted(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, end int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		hw, herr := adm.ListEndOffsets(ctx, topic)
		lso, lerr := adm.ListCommittedOffsets(ctx, topic)
		if herr == nil && lerr == nil {
			h, _ := hw.Lookup(topic, 0)
			l, _ := lso.Lookup(topic, 0)
			if h.Err == nil && l.Err == nil && h.Offset > end && l.Offset == h.Offset {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("the broker did not abort the timed-out transaction within 30s (errors %v %v)", herr, lerr)
			return
		}
		time.Sleep(20 * time.Millisecond) // polling, not synchronisation
	}
}

// TestTransactionExpired holds a transactional Write open past the
// transaction timeout: the broker aborts the transaction and bumps the
// epoch, and the Write fails with a retriable ErrTransactionExpired rather
// than mirror.ErrFenced; the rewound Write then succeeds and
// read_committed consumers see every record once.
func TestTransactionExpired(t *testing.T) {
	checkGoroutines(t)
	p := startTxnBroker(t, 50*time.Millisecond)
	ctx := testContext(t)
	sink := newTestSink(t, p, SinkOptions{TransactionalID: "tributary-job/slow", TransactionTimeout: 3 * time.Second})
	createTopic(t, ctx, sink, "orders", 1, nil)
	if err := sink.Write(ctx, txnBatch("job/slow", 0, 10)); err != nil {
		t.Fatalf("first write: %v", err)
	}

	adm := kadm.NewClient(newFranz(t, p))
	held := 0
	sink.txn.beforeCommit = func(ctx context.Context) {
		if held++; held == 1 {
			// 10 records committed, 20 produced in this transaction.
			waitAborted(t, ctx, adm, "orders", 30)
		}
	}
	err := sink.Write(ctx, txnBatch("job/slow", 10, 20))
	t.Logf("held write: %v", err)
	if err == nil || errors.Is(err, mirror.ErrFenced) || !errors.Is(err, ErrTransactionExpired) {
		t.Fatalf("write held past the transaction timeout: %v, want ErrTransactionExpired and not mirror.ErrFenced", err)
	}
	if err := sink.Write(ctx, txnBatch("job/slow", 10, 20)); err != nil {
		t.Fatalf("write after the expired transaction: %v", err)
	}
	recs := consumeAll(t, ctx, p, "orders", 30, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	for i, r := range recs {
		if string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("record %d is %q: the aborted transaction leaked", i, r.Value)
		}
	}
	cp, err := sink.LoadCheckpoint(ctx, "job/slow")
	if err != nil || cp == nil || cp.Positions[mirror.SourcePartition{Cluster: "east", Topic: "orders"}] != 30 {
		t.Fatalf("checkpoint %+v, %v; want position 30", cp, err)
	}
}

// TestTransactionalBatchLimit writes many small records exactly-once to a
// topic whose max.message.bytes (4096) is far below MaxBatchBytes: the
// transactional producer fits its batches to the topic and the Write
// succeeds.
func TestTransactionalBatchLimit(t *testing.T) {
	for _, p := range []peer{startBroker(t), startKfake(t)} {
		t.Run(p.name, func(t *testing.T) {
			checkGoroutines(t)
			ctx := testContext(t)
			sink := newTestSink(t, p, SinkOptions{TransactionalID: "tributary-job/small"})
			createTopic(t, ctx, sink, "orders", 1, map[string]string{"max.message.bytes": "4096"})
			b := txnBatch("job/small", 0, 2000)
			for i := range b.Records {
				b.Records[i].Value = fmt.Appendf(nil, "%d-%040d", i, i)
			}
			if err := sink.Write(ctx, b); err != nil {
				t.Fatalf("write of 2000 small records: %v", err)
			}
			if got := sink.txn.limit; got != 4096 {
				t.Fatalf("transactional batch limit %d, want 4096", got)
			}
			recs := consumeAll(t, ctx, p, "orders", 2000, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			for i, r := range recs {
				if want := fmt.Sprintf("%d-%040d", i, i); string(r.Value) != want {
					t.Fatalf("record %d is %q, want %q", i, r.Value, want)
				}
			}
		})
	}
}
