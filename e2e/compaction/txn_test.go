package compaction

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// readTopic reads every record of topic up to its end with the given
// isolation level.
func readTopic(t *testing.T, addr, name string, committed bool) []*kgo.Record {
	t.Helper()
	adm := kadm.NewClient(cluster.Client(t, addr))
	ends, err := adm.ListEndOffsets(ctxFor(t), name)
	if err != nil {
		t.Fatalf("end offsets: %v", err)
	}
	if committed {
		// The end for read_committed is the last stable offset.
		ends, err = adm.ListCommittedOffsets(ctxFor(t), name)
		if err != nil {
			t.Fatalf("committed end offsets: %v", err)
		}
	}
	end, _ := ends.Lookup(name, 0)
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := cluster.Client(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{name: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(iso))
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	next := int64(0)
	for next < end.Offset {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s up to %d: stuck at %d", name, end.Offset, next)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			next = r.Offset + 1
		})
		// Control records and cleaned gaps at the end: the client skips
		// them, so stop once it has fetched past every offset it can see.
		if len(fs.Records()) == 0 {
			if st, err := adm.ListEndOffsets(ctxFor(t), name); err == nil {
				if o, _ := st.Lookup(name, 0); o.Offset == end.Offset && next >= end.Offset-1 {
					break
				}
			}
		}
	}
	return out
}

// TestReadCommittedAcrossCleaning writes committed and aborted
// transactions to a compacted topic: read_committed consumers never see
// the aborted values, before or after the cleaner has run, and cleaning
// removes the aborted data while keeping each key's latest committed value.
func TestReadCommittedAcrossCleaning(t *testing.T) {
	b := cluster.StartBroker(t, "--log-cleaner-interval", "200ms")
	const name = "txn-compacted"
	adm := kadm.NewClient(cluster.Client(t, b.Addr))
	str := func(s string) *string { return &s }
	resp, err := adm.CreateTopic(ctxFor(t), 1, 1, map[string]*string{
		"cleanup.policy": str("compact"), "segment.bytes": str("1024"),
	}, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	txn := cluster.Client(t, b.Addr, kgo.TransactionalID("compaction-test"), kgo.ProducerLinger(0))
	write := func(value string, commit bool) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 10; k++ {
			txn.Produce(ctxFor(t), &kgo.Record{Topic: name, Key: []byte(fmt.Sprintf("k%d", k)), Value: []byte(value)}, nil)
		}
		if err := txn.Flush(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctxFor(t), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction (commit %v): %v", commit, err)
		}
	}
	write("committed-1", true)
	write("aborted", false)
	write("committed-2", true)
	write("aborted-again", false)
	// Roll the transactions out of the active segment with plain records.
	plain := cluster.Client(t, b.Addr, kgo.ProducerLinger(0))
	for i := 0; i < 60; i++ {
		if err := plain.ProduceSync(ctxFor(t), &kgo.Record{Topic: name, Key: []byte(fmt.Sprintf("filler-%d", i)), Value: []byte(strings.Repeat("x", 100))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) map[string]string {
		t.Helper()
		latest := map[string]string{}
		for _, r := range readTopic(t, b.Addr, name, true) {
			if strings.HasPrefix(string(r.Value), "aborted") {
				t.Fatalf("%s: read_committed consumer saw aborted record %s=%s at offset %d", when, r.Key, r.Value, r.Offset)
			}
			latest[string(r.Key)] = string(r.Value)
		}
		for k := 0; k < 10; k++ {
			if v := latest[fmt.Sprintf("k%d", k)]; v != "committed-2" {
				t.Fatalf("%s: key k%d has %q, want committed-2", when, k, v)
			}
		}
		return latest
	}
	check("before cleaning")
	uncommittedAborted := func() int {
		n := 0
		for _, r := range readTopic(t, b.Addr, name, false) {
			if strings.HasPrefix(string(r.Value), "aborted") {
				n++
			}
		}
		return n
	}
	if n := uncommittedAborted(); n != 20 {
		t.Fatalf("read_uncommitted sees %d aborted records before cleaning, want 20", n)
	}
	// The cleaner drops aborted data: a read_uncommitted consumer stops
	// seeing it once it has run.
	cluster.Eventually(t, 30*time.Second, "the cleaner to remove the aborted records", func() bool { return uncommittedAborted() == 0 })
	check("after cleaning")
	var committed1 int
	for _, r := range readTopic(t, b.Addr, name, true) {
		if string(r.Value) == "committed-1" {
			committed1++
		}
	}
	if committed1 != 0 {
		t.Fatalf("after cleaning %d superseded committed-1 records remain; the cleaner keeps only each key's latest", committed1)
	}
}
