package txn

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// txnProducer is a franz-go transactional producer writing to topic.
func txnProducer(t *testing.T, addr, id, topic string, timeout time.Duration) *kgo.Client {
	t.Helper()
	return cluster.Client(t, addr, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic),
		kgo.TransactionTimeout(timeout), kgo.RecordPartitioner(kgo.ManualPartitioner()))
}

// produceInTxn begins a transaction and produces vals synchronously.
func produceInTxn(t *testing.T, cl *kgo.Client, vals []string) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("begin transaction: %v", err)
	}
	recs := make([]*kgo.Record, len(vals))
	for i, v := range vals {
		recs[i] = &kgo.Record{Value: []byte(v), Partition: 0}
	}
	if err := cl.ProduceSync(opCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("transactional produce: %v", err)
	}
}

func endTxn(t *testing.T, cl *kgo.Client, commit bool) error {
	t.Helper()
	how := kgo.TryAbort
	if commit {
		how = kgo.TryCommit
	}
	return cl.EndTransaction(opCtx(t), how)
}

// TestFranzGoCommitAbortAndFencing: a committed and an aborted transaction
// of one producer; then a second instance with the same transactional ID
// fences the first mid-transaction: the first's commit gets the fencing
// error, its open transaction is aborted, and only the second's records
// are committed.
func TestFranzGoCommitAbortAndFencing(t *testing.T) {
	b := startBroker(t)
	const topic = "fence"
	createTopics(t, b.Addr, topic)

	p1 := txnProducer(t, b.Addr, "fence-id", topic, time.Minute)
	produceInTxn(t, p1, values("committed", 3))
	if err := endTxn(t, p1, true); err != nil {
		t.Fatalf("commit: %v", err)
	}
	produceInTxn(t, p1, values("aborted", 3))
	if err := endTxn(t, p1, false); err != nil {
		t.Fatalf("abort: %v", err)
	}
	first := describe(t, b.Addr, "fence-id")

	produceInTxn(t, p1, values("zombie", 2))
	p2 := txnProducer(t, b.Addr, "fence-id", topic, time.Minute)
	produceInTxn(t, p2, values("winner", 2))
	second := describe(t, b.Addr, "fence-id")
	if second.ProducerID != first.ProducerID || second.ProducerEpoch <= first.ProducerEpoch {
		t.Fatalf("second instance: producer %d epoch %d, want producer %d with an epoch above %d",
			second.ProducerID, second.ProducerEpoch, first.ProducerID, first.ProducerEpoch)
	}
	err := endTxn(t, p1, true)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("commit of the fenced instance: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	if err := endTxn(t, p2, true); err != nil {
		t.Fatalf("commit of the new instance: %v", err)
	}
	produceSentinel(t, b.Addr, topic)

	requireValues(t, "read_committed", readUntilSentinel(t, b.Addr, topic, true),
		concat(values("committed", 3), values("winner", 2)))
	requireValues(t, "read_uncommitted", readUntilSentinel(t, b.Addr, topic, false),
		concat(values("committed", 3), values("aborted", 3), values("zombie", 2), values("winner", 2)))
}

// TestTransactionTimeoutAborts: a transaction left open past its timeout
// is aborted by the broker's scan: the last stable offset moves past it,
// read_committed consumers skip it, and the producer's late commit fails.
func TestTransactionTimeoutAborts(t *testing.T) {
	b := startBroker(t)
	const topic = "timeout"
	createTopics(t, b.Addr, topic)
	p := txnProducer(t, b.Addr, "slow", topic, 1500*time.Millisecond)
	produceInTxn(t, p, values("late", 4))
	if d := describe(t, b.Addr, "slow"); d.State != "Ongoing" {
		t.Fatalf("state after produce: %s, want Ongoing", d.State)
	}

	adm := kadm.NewClient(cluster.Client(t, b.Addr))
	cluster.Eventually(t, 30*time.Second, "the timed-out transaction to be aborted", func() bool {
		return describe(t, b.Addr, "slow").State == "CompleteAbort"
	})
	// The marker is in: the last stable offset equals the end offset.
	ends, err := adm.ListEndOffsets(opCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	stable, err := adm.ListCommittedOffsets(opCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	lso, _ := stable.Lookup(topic, 0)
	if end.Offset != 5 || lso.Offset != end.Offset {
		t.Fatalf("end offset %d, last stable offset %d; want both 5 (4 records + abort marker)", end.Offset, lso.Offset)
	}
	if err := endTxn(t, p, true); err == nil {
		t.Fatal("commit after the timeout abort succeeded")
	}
	produceSentinel(t, b.Addr, topic)
	requireValues(t, "read_committed", readUntilSentinel(t, b.Addr, topic, true), nil)
	requireValues(t, "read_uncommitted", readUntilSentinel(t, b.Addr, topic, false), values("late", 4))
}

// TestGroupTransactSessionExactlyOnce: franz-go's GroupTransactSession
// copies an input topic to an output topic, committing the consumed
// offsets in the same transactions; some transactions are aborted on
// purpose (their output vanishes and their input is consumed again) and the
// first session is closed halfway, a second one resuming from the committed
// offsets. The output, read committed, holds every input record exactly
// once, in order, and the group's committed offset is the input's end.
func TestGroupTransactSessionExactlyOnce(t *testing.T) {
	b := startBroker(t)
	const in, out, group, n = "eos-in", "eos-out", "eos-group", 600
	createTopics(t, b.Addr, in, out)
	// Batches of 10, so that small fetches split the input into many
	// transactions.
	src := cluster.Client(t, b.Addr, kgo.DefaultProduceTopic(in))
	for i := 0; i < n; i += 10 {
		recs := make([]*kgo.Record, 10)
		for j := range recs {
			recs[j] = kgo.StringRecord(fmt.Sprintf("in-%d", i+j))
		}
		if err := src.ProduceSync(opCtx(t), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	aborts := 0
	run := func(stopAfter int) int {
		s, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(b.Addr),
			kgo.TransactionalID("eos-txn"),
			kgo.TransactionTimeout(30*time.Second),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(in),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
			kgo.FetchMaxBytes(600), // small polls: many transactions
			kgo.FetchMaxPartitionBytes(600),
			kgo.DefaultProduceTopic(out),
		)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx := opCtx(t)
		done := 0
		for txns := 0; done < stopAfter; txns++ {
			fs := s.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("session stalled after %d records", done)
			}
			fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", tp, p, err) })
			if fs.Empty() {
				continue
			}
			if err := s.Begin(); err != nil {
				t.Fatalf("begin: %v", err)
			}
			var batch []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) {
				batch = append(batch, kgo.StringRecord("out-"+strings.TrimPrefix(string(r.Value), "in-")))
			})
			if err := s.ProduceSync(ctx, batch...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			commit := txns%4 != 3
			how := kgo.TryAbort
			if commit {
				how = kgo.TryCommit
			}
			committed, err := s.End(ctx, how)
			if err != nil {
				t.Fatalf("end transaction: %v", err)
			}
			if committed {
				done += len(batch)
			} else {
				aborts++
			}
		}
		return done
	}
	first := run(n / 3)
	second := run(n - first)
	if first+second != n {
		t.Fatalf("sessions committed %d + %d records, want %d", first, second, n)
	}
	if aborts == 0 {
		t.Fatal("no transaction was aborted: the test cannot tell aborted output from committed")
	}

	produceSentinel(t, b.Addr, out)
	got := readUntilSentinel(t, b.Addr, out, true)
	requireValues(t, "output, read_committed", got, values("out", n))
	all := readUntilSentinel(t, b.Addr, out, false)
	if len(all) <= n {
		t.Fatalf("read_uncommitted sees %d records, want more than %d (the aborted output)", len(all), n)
	}
	adm := kadm.NewClient(cluster.Client(t, b.Addr))
	offs, err := adm.FetchOffsets(opCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(in, 0)
	if !ok || o.Err != nil || o.At != n {
		t.Fatalf("committed offset of %s-0: %+v, want %d", in, o, n)
	}
	t.Logf("%d transactions aborted on purpose", aborts)
}

// TestRestartKeepsTransactionState restarts the broker (SIGTERM, then
// SIGKILL) between a committed transaction and an open one: the committed
// one stays committed, the producer ID of the transactional ID survives,
// and the open one either commits after the restart (it is resumed, as in
// Kafka) or, if its producer cannot, is aborted by its timeout; either way
// read_committed and read_uncommitted consumers agree with the outcome.
func TestRestartKeepsTransactionState(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "SIGTERM"
		if kill {
			name = "SIGKILL"
		}
		t.Run(name, func(t *testing.T) {
			b := startBroker(t)
			topic := "restart-" + strings.ToLower(name)
			createTopics(t, b.Addr, topic)
			p := txnProducer(t, b.Addr, "restart-id", topic, 3*time.Second)
			produceInTxn(t, p, values("before", 3))
			if err := endTxn(t, p, true); err != nil {
				t.Fatalf("commit: %v", err)
			}
			before := describe(t, b.Addr, "restart-id")
			produceInTxn(t, p, values("open", 2))

			if kill {
				b.KillAndRestart()
			} else {
				b.Restart()
			}
			after := describe(t, b.Addr, "restart-id")
			if after.ProducerID != before.ProducerID || after.ProducerEpoch < before.ProducerEpoch {
				t.Fatalf("after restart: producer %d epoch %d, before %d epoch %d", after.ProducerID, after.ProducerEpoch, before.ProducerID, before.ProducerEpoch)
			}
			if after.State != "Ongoing" && after.State != "CompleteAbort" {
				t.Fatalf("open transaction after restart is %s, want Ongoing (resumed) or CompleteAbort", after.State)
			}
			err := endTxn(t, p, true)
			t.Logf("commit of the transaction open across the restart: %v (state was %s)", err, after.State)
			want := values("before", 3)
			if err == nil {
				want = concat(want, values("open", 2))
			} else {
				cluster.Eventually(t, 30*time.Second, "the open transaction to be aborted", func() bool {
					return describe(t, b.Addr, "restart-id").State == "CompleteAbort"
				})
			}
			produceSentinel(t, b.Addr, topic)
			requireValues(t, "read_committed", readUntilSentinel(t, b.Addr, topic, true), want)
			requireValues(t, "read_uncommitted", readUntilSentinel(t, b.Addr, topic, false), concat(values("before", 3), values("open", 2)))

			// A new instance after the restart keeps the producer ID.
			p2 := txnProducer(t, b.Addr, "restart-id", topic, time.Minute)
			produceInTxn(t, p2, []string{"next-" + strconv.Itoa(0)})
			if err := endTxn(t, p2, true); err != nil {
				t.Fatalf("commit of a new instance: %v", err)
			}
			if d := describe(t, b.Addr, "restart-id"); d.ProducerID != before.ProducerID || d.ProducerEpoch <= after.ProducerEpoch {
				t.Fatalf("new instance: producer %d epoch %d, want producer %d above epoch %d", d.ProducerID, d.ProducerEpoch, before.ProducerID, after.ProducerEpoch)
			}
		})
	}
}
