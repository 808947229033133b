package kafka

import (
	"context"
	"errors"
	"time"

	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/mirror"
)

// TestReadCommitted reads a transactional topic on kfake: records of aborted
// transactions and transaction markers are skipped, committed and
// non-transactional records arrive with their (gapped) offsets, records of
// an open transaction wait for its commit, and EndOffsets is the last
// stable offset.
func TestReadCommitted(t *testing.T) {
	checkGoroutines(t)
	p := startKfake(t, kfake.SeedTopics(1, "txn"))
	ctx := testContext(t)
	txn := newFranz(t, p, kgo.TransactionalID("legacy-app"), kgo.DefaultProduceTopic("txn"))
	plain := newFranz(t, p, kgo.DefaultProduceTopic("txn"))
	inTxn := func(commit bool, values ...string) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := txn.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	inTxn(true, "c0", "c1")                                                           // offsets 0, 1; marker 2
	inTxn(false, "a0", "a1", "a2")                                                    // 3, 4, 5 aborted; marker 6
	if err := plain.ProduceSync(ctx, kgo.StringRecord("p0")).FirstErr(); err != nil { // 7
		t.Fatal(err)
	}
	inTxn(true, "c2") // 8; marker 9
	// An open transaction: 10.
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, kgo.StringRecord("o0")).FirstErr(); err != nil {
		t.Fatal(err)
	}

	src := newTestSource(t, p)
	tp := mirror.TopicPartition{Topic: "txn"}
	ends, err := src.EndOffsets(ctx, []mirror.TopicPartition{tp})
	if err != nil || ends[tp] != 10 {
		t.Fatalf("EndOffsets with an open transaction = %v, %v; want the last stable offset 10", ends, err)
	}
	cons, err := src.Consume(ctx, map[mirror.TopicPartition]int64{tp: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := pollN(t, ctx, cons, 4)
	want := []struct {
		v   string
		off int64
	}{{"c0", 0}, {"c1", 1}, {"p0", 7}, {"c2", 8}}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if string(got[i].Value) != w.v || got[i].Source.Offset != w.off {
			t.Errorf("record %d = %q at %d, want %q at %d", i, got[i].Value, got[i].Source.Offset, w.v, w.off)
		}
	}

	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got = pollN(t, ctx, cons, 1)
	if len(got) != 1 || string(got[0].Value) != "o0" || got[0].Source.Offset != 10 {
		t.Fatalf("after commit read %+v, want o0 at 10", got)
	}
	ends, err = src.EndOffsets(ctx, []mirror.TopicPartition{tp})
	if err != nil || ends[tp] != 12 {
		t.Fatalf("EndOffsets after commit = %v, %v; want 12", ends, err)
	}
	if err := cons.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestConsumeOutOfRange checks that a consumer asked to start past the end
// is refused with the partition named.
func TestConsumeOutOfRange(t *testing.T) {
	checkGoroutines(t)
	p := startKfake(t, kfake.SeedTopics(2, "short"))
	ctx := testContext(t)
	src := newTestSource(t, p)
	_, err := src.Consume(ctx, map[mirror.TopicPartition]int64{{Topic: "short", Partition: 0}: 0, {Topic: "short", Partition: 1}: 50})
	if err == nil {
		t.Fatal("Consume from offset 50 of an empty partition succeeded")
	}
	t.Logf("refusal: %v", err)
}

// TestPollEnds checks that Poll returns when its context ends and when the
// consumer is closed, and that a partition's records come in large slices.
func TestPollEnds(t *testing.T) {
	checkGoroutines(t)
	p := startKfake(t, kfake.SeedTopics(3, "idle"))
	ctx := testContext(t)
	src := newTestSource(t, p)
	from := map[mirror.TopicPartition]int64{}
	for i := int32(0); i < 3; i++ {
		from[mirror.TopicPartition{Topic: "idle", Partition: i}] = 0
	}
	cons, err := src.Consume(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if recs, err := cons.Poll(short); !errors.Is(err, context.DeadlineExceeded) || len(recs) != 0 {
		t.Fatalf("Poll of an idle topic = %d records, %v; want context.DeadlineExceeded", len(recs), err)
	}

	// Produce while nobody polls; the next Poll drains in bulk.
	prod := newFranz(t, p, kgo.DefaultProduceTopic("idle"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := 0; i < 3000; i++ {
		recs = append(recs, &kgo.Record{Partition: int32(i % 3), Value: []byte{byte(i)}})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := pollN(t, ctx, cons, 3000)
	next := map[int32]int64{}
	for _, r := range got {
		if r.Source.Offset != next[r.Source.Partition] {
			t.Fatalf("partition %d: offset %d after %d", r.Source.Partition, r.Source.Offset, next[r.Source.Partition]-1)
		}
		next[r.Source.Partition]++
	}

	done := make(chan error, 1)
	go func() {
		_, err := cons.Poll(ctx)
		done <- err
	}()
	if err := cons.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Poll during Close = %v; want ErrClosed", err)
	}
}
