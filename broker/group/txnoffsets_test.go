package group

import (
	"context"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnRecord is one record appended by txnMemJournal, with its producer
// (-1 for a plain Append).
type txnRecord struct {
	partition  int32
	producerID int64
	rec        Record
}

// txnMemJournal is a TxnJournal keeping every append in order.
type txnMemJournal struct {
	mu   sync.Mutex
	recs []txnRecord
}

func (j *txnMemJournal) Append(ctx context.Context, partition int32, recs []Record) error {
	return j.AppendTxn(ctx, partition, -1, -1, recs)
}

func (j *txnMemJournal) AppendTxn(ctx context.Context, partition int32, producerID int64, epoch int16, recs []Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range recs {
		j.recs = append(j.recs, txnRecord{partition, producerID, r})
	}
	return nil
}

func txnCommitReq(group string, producerID int64, offsets map[int32]int64) *kmsg.TxnOffsetCommitRequest {
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.Version = 3
	r.TransactionalID, r.Group, r.ProducerID, r.ProducerEpoch = "tx", group, producerID, 0
	r.Generation = -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "in"
	for p, o := range offsets {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	r.Topics = append(r.Topics, rt)
	return r
}

// fetchStable fetches partition 0 of "in" with RequireStable (v7) and
// returns its offset and error code.
func fetchStable(c *Coordinator, group string) (int64, int16) {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 7
	r.Group = group
	r.RequireStable = true
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "in", []int32{0}
	r.Topics = append(r.Topics, rt)
	p := c.OffsetFetch(r).Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

func TestTxnOffsetCommitPendingUntilMarker(t *testing.T) {
	j := &txnMemJournal{}
	c := newTestCoordinator(t, testConfig(), j)
	part := c.Partition("g")

	for _, round := range []struct {
		producer int64
		offset   int64
		commit   bool
		want     int64
	}{
		{producer: 7, offset: 10, commit: true, want: 10},
		{producer: 7, offset: 20, commit: false, want: 10},
		{producer: 8, offset: 30, commit: true, want: 30},
	} {
		resp := c.TxnOffsetCommit(testCtx(t), txnCommitReq("g", round.producer, map[int32]int64{0: round.offset}))
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("TxnOffsetCommit: %v", kerr.ErrorForCode(code))
		}
		if _, code := fetchStable(c, "g"); code != kerr.UnstableOffsetCommit.Code {
			t.Fatalf("RequireStable fetch with a pending offset: %v, want UNSTABLE_OFFSET_COMMIT", kerr.ErrorForCode(code))
		}
		// Another transaction's marker does not touch it.
		c.CompleteTxn(part, round.producer+100, true)
		if _, code := fetchStable(c, "g"); code != kerr.UnstableOffsetCommit.Code {
			t.Fatal("a foreign marker resolved the pending offset")
		}
		c.CompleteTxn(part, round.producer, round.commit)
		if off, code := fetchStable(c, "g"); code != 0 || off != round.want {
			t.Fatalf("after the marker (commit=%v): offset %d code %v, want %d", round.commit, off, kerr.ErrorForCode(code), round.want)
		}
	}

	// Replay: transactional records are pending until their marker; the
	// open one at the end stays pending for the transaction coordinator.
	c2 := newTestCoordinator(t, testConfig(), &txnMemJournal{})
	j.mu.Lock()
	recs := append([]txnRecord(nil), j.recs...)
	j.mu.Unlock()
	if len(recs) != 3 {
		t.Fatalf("journal holds %d records, want 3", len(recs))
	}
	outcomes := []bool{true, false}
	for i, r := range recs {
		if err := c2.LoadTxn(r.partition, r.producerID, []Record{r.rec}); err != nil {
			t.Fatal(err)
		}
		if i < len(outcomes) {
			c2.CompleteTxn(r.partition, r.producerID, outcomes[i])
		}
	}
	if _, code := fetchStable(c2, "g"); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("replayed open transaction: %v, want UNSTABLE_OFFSET_COMMIT", kerr.ErrorForCode(code))
	}
	c2.CompleteTxn(part, 8, true)
	if off, code := fetchStable(c2, "g"); code != 0 || off != 30 {
		t.Fatalf("after replay and commit: %d %v, want 30", off, kerr.ErrorForCode(code))
	}
}

func TestTxnOffsetCommitChecksGeneration(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &txnMemJournal{})
	resp := c.JoinGroup(testCtx(t), "client", "host", joinReq(4, "g", "", longSession, longSession))
	if resp.ErrorCode == kerr.MemberIDRequired.Code {
		resp = c.JoinGroup(testCtx(t), "client", "host", joinReq(4, "g", resp.MemberID, longSession, longSession))
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	req := txnCommitReq("g", 7, map[int32]int64{0: 5})
	req.MemberID, req.Generation = resp.MemberID, resp.Generation+1
	if code := c.TxnOffsetCommit(testCtx(t), req).Topics[0].Partitions[0].ErrorCode; code != kerr.IllegalGeneration.Code {
		t.Fatalf("stale generation: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(code))
	}
}

func TestTxnOffsetCommitNeedsTxnJournal(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	resp := c.TxnOffsetCommit(testCtx(t), txnCommitReq("g", 7, map[int32]int64{0: 5}))
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnsupportedVersion.Code {
		t.Fatalf("without a TxnJournal: %v", kerr.ErrorForCode(code))
	}
}

// TestPlainCommitAfterTxnOffsetWins: a plain commit made while a
// transaction holds a pending offset for the same partition comes later in
// the log, so it stays the committed offset when the transaction commits
// (an admin reset during a transaction is not undone).
func TestPlainCommitAfterTxnOffsetWins(t *testing.T) {
	j := &txnMemJournal{}
	c := newTestCoordinator(t, testConfig(), j)
	part := c.Partition("g")
	if code := c.TxnOffsetCommit(testCtx(t), txnCommitReq("g", 7, map[int32]int64{0: 10})).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	if code := c.OffsetCommit(testCtx(t), commitReq(2, "g", "", -1, "in", map[int32]int64{0: 3})).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	c.CompleteTxn(part, 7, true)
	if off, code := fetchStable(c, "g"); code != 0 || off != 3 {
		t.Fatalf("offset %d (%v) after the transaction committed, want the later plain commit 3", off, kerr.ErrorForCode(code))
	}
	// The same in replay order.
	c2 := newTestCoordinator(t, testConfig(), &txnMemJournal{})
	j.mu.Lock()
	recs := append([]txnRecord(nil), j.recs...)
	j.mu.Unlock()
	for _, r := range recs {
		var err error
		if r.producerID >= 0 {
			err = c2.LoadTxn(r.partition, r.producerID, []Record{r.rec})
		} else {
			err = c2.Load(r.partition, []Record{r.rec})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	c2.CompleteTxn(part, 7, true)
	if off, code := fetchStable(c2, "g"); code != 0 || off != 3 {
		t.Fatalf("replayed: offset %d (%v), want 3", off, kerr.ErrorForCode(code))
	}
}
