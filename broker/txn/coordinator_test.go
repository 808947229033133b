package txn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// marker is one WriteMarker call of fakeBackend.
type marker struct {
	tp         TopicPartition
	producerID int64
	epoch      int16
	commit     bool
}

// fakeBackend records state records and markers in memory.
type fakeBackend struct {
	mu         sync.Mutex
	state      []Record
	markers    []marker
	nextPID    int64
	failMarker error // when set, WriteMarker fails with it
	failState  error // when set, AppendState fails with it
}

func (f *fakeBackend) AppendState(ctx context.Context, rec Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failState != nil {
		return f.failState
	}
	f.state = append(f.state, rec)
	return nil
}

func (f *fakeBackend) WriteMarker(ctx context.Context, tp TopicPartition, producerID int64, epoch int16, commit bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failMarker != nil {
		return f.failMarker
	}
	if tp.Topic == "gone" {
		return ErrUnknownPartition
	}
	f.markers = append(f.markers, marker{tp, producerID, epoch, commit})
	return nil
}

func (f *fakeBackend) NextProducerID() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextPID++
	return 1000 + f.nextPID, nil
}

func (f *fakeBackend) PartitionExists(topic string, partition int32) bool {
	return topic != "missing" && partition < 4
}

func (f *fakeBackend) OffsetsPartition(group string) TopicPartition {
	return TopicPartition{"__consumer_offsets", int32(len(group) % 4)}
}

func (f *fakeBackend) takeMarkers() []marker {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.markers
	f.markers = nil
	return m
}

func (f *fakeBackend) records() []Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Record(nil), f.state...)
}

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTest(t *testing.T, be *fakeBackend) (*Coordinator, *testClock) {
	t.Helper()
	clock := &testClock{now: time.UnixMilli(1_700_000_000_000)}
	c := NewCoordinator(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clock.Now}, be)
	t.Cleanup(c.Close)
	return c, clock
}

func initPID(t *testing.T, c *Coordinator, id string, version int16, timeout time.Duration) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = version
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = int32(timeout / time.Millisecond)
	resp := c.InitProducerID(context.Background(), req)
	if resp.ErrorCode != 0 {
		t.Fatalf("InitProducerId(%q): %v", id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func addPartitions(c *Coordinator, id string, pid int64, epoch int16, version int16, topic string, parts ...int32) *kmsg.AddPartitionsToTxnResponse {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = topic, parts
	req.Topics = append(req.Topics, rt)
	return c.AddPartitionsToTxn(context.Background(), req)
}

func partitionCodes(resp *kmsg.AddPartitionsToTxnResponse) []int16 {
	var out []int16
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, p.ErrorCode)
		}
	}
	return out
}

func endTxn(c *Coordinator, id string, pid int64, epoch int16, version int16, commit bool) int16 {
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
	return c.EndTxn(context.Background(), req).ErrorCode
}

func mustCodes(t *testing.T, what string, got []int16, want int16) {
	t.Helper()
	for _, g := range got {
		if g != want {
			t.Fatalf("%s: codes %v, want all %v", what, got, kerr.ErrorForCode(want))
		}
	}
}

func TestCommitWritesMarkersToEveryPartition(t *testing.T) {
	be := &fakeBackend{}
	c, _ := newTest(t, be)
	pid, epoch := initPID(t, c, "app", 4, time.Minute)
	if epoch != 0 {
		t.Fatalf("first epoch %d, want 0", epoch)
	}
	mustCodes(t, "add", partitionCodes(addPartitions(c, "app", pid, epoch, 3, "orders", 0, 1)), 0)
	off := kmsg.NewPtrAddOffsetsToTxnRequest()
	off.Version, off.TransactionalID, off.ProducerID, off.ProducerEpoch, off.Group = 3, "app", pid, epoch, "grp"
	if code := c.AddOffsetsToTxn(context.Background(), off).ErrorCode; code != 0 {
		t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(code))
	}
	if info, _ := c.Describe("app"); info.State != kmsg.TransactionStateOngoing || len(info.Partitions) != 3 {
		t.Fatalf("after adds: %+v", info)
	}
	if code := endTxn(c, "app", pid, epoch, 3, true); code != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(code))
	}
	got := be.takeMarkers()
	want := []marker{
		{TopicPartition{"__consumer_offsets", 3}, pid, epoch, true},
		{TopicPartition{"orders", 0}, pid, epoch, true},
		{TopicPartition{"orders", 1}, pid, epoch, true},
	}
	if len(got) != len(want) {
		t.Fatalf("markers %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("marker %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if info, _ := c.Describe("app"); info.State != kmsg.TransactionStateCompleteCommit || len(info.Partitions) != 0 {
		t.Fatalf("after commit: %+v", info)
	}
	// A retried commit succeeds; an abort of the committed one does not.
	if code := endTxn(c, "app", pid, epoch, 3, true); code != 0 {
		t.Fatalf("retried EndTxn: %v", kerr.ErrorForCode(code))
	}
	if code := endTxn(c, "app", pid, epoch, 3, false); code != kerr.InvalidTxnState.Code {
		t.Fatalf("abort after commit: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if len(be.takeMarkers()) != 0 {
		t.Fatal("retried EndTxn wrote markers again")
	}
}

func TestInitFencesOldEpochAndAbortsItsTransaction(t *testing.T) {
	be := &fakeBackend{}
	c, _ := newTest(t, be)
	pid, old := initPID(t, c, "app", 4, time.Minute)
	mustCodes(t, "add", partitionCodes(addPartitions(c, "app", pid, old, 3, "orders", 2)), 0)

	pid2, epoch := initPID(t, c, "app", 4, time.Minute)
	if pid2 != pid || epoch <= old {
		t.Fatalf("second init: producer %d epoch %d, want producer %d with an epoch above %d", pid2, epoch, pid, old)
	}
	got := be.takeMarkers()
	if len(got) != 1 || got[0].commit || got[0].tp != (TopicPartition{"orders", 2}) || got[0].epoch <= old {
		t.Fatalf("fencing markers %+v, want one abort of orders-2 with a bumped epoch", got)
	}

	// The fenced instance: PRODUCER_FENCED from the KIP-588 versions on,
	// INVALID_PRODUCER_EPOCH before.
	mustCodes(t, "add v2", partitionCodes(addPartitions(c, "app", pid, old, 2, "orders", 0)), kerr.ProducerFenced.Code)
	mustCodes(t, "add v1", partitionCodes(addPartitions(c, "app", pid, old, 1, "orders", 0)), kerr.InvalidProducerEpoch.Code)
	if code := endTxn(c, "app", pid, old, 3, true); code != kerr.ProducerFenced.Code {
		t.Fatalf("EndTxn of the fenced epoch: %v", kerr.ErrorForCode(code))
	}
	if code := endTxn(c, "app", pid, old, 1, true); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("EndTxn v1 of the fenced epoch: %v", kerr.ErrorForCode(code))
	}
	if _, code := c.BeginProduce("app", pid, old); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("produce of the fenced epoch: %v", kerr.ErrorForCode(code))
	}
	if _, code := c.BeginTxnOffsetCommit("app", pid, old, "grp", 3); code != kerr.ProducerFenced.Code {
		t.Fatalf("TxnOffsetCommit of the fenced epoch: %v", kerr.ErrorForCode(code))
	}
	if _, code := c.BeginProduce("app", pid+1, epoch); code != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("produce of another producer ID: %v", kerr.ErrorForCode(code))
	}
}

func TestProduceGuardNeedsAddedPartition(t *testing.T) {
	be := &fakeBackend{}
	c, _ := newTest(t, be)
	pid, epoch := initPID(t, c, "app", 4, time.Minute)
	g, code := c.BeginProduce("app", pid, epoch)
	if code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	if code := g.Partition(TopicPartition{"orders", 0}); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce before AddPartitionsToTxn: %v", kerr.ErrorForCode(code))
	}
	g.Release()
	mustCodes(t, "add", partitionCodes(addPartitions(c, "app", pid, epoch, 3, "orders", 0)), 0)
	g, _ = c.BeginProduce("app", pid, epoch)
	if code := g.Partition(TopicPartition{"orders", 0}); code != 0 {
		t.Fatalf("produce to an added partition: %v", kerr.ErrorForCode(code))
	}
	if code := g.Partition(TopicPartition{"orders", 1}); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce to a partition not added: %v", kerr.ErrorForCode(code))
	}
	g.Release()
	g.Release() // idempotent
	if _, code := c.BeginTxnOffsetCommit("app", pid, epoch, "grp", 3); code != kerr.InvalidTxnState.Code {
		t.Fatalf("TxnOffsetCommit without AddOffsetsToTxn: %v", kerr.ErrorForCode(code))
	}
}

func TestAddUnknownPartition(t *testing.T) {
	be := &fakeBackend{}
	c, _ := newTest(t, be)
	pid, epoch := initPID(t, c, "app", 4, time.Minute)
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = 3, "app", pid, epoch
	for _, topic := range []string{"orders", "missing"} {
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		req.Topics = append(req.Topics, rt)
	}
	got := partitionCodes(c.AddPartitionsToTxn(context.Background(), req))
	if got[0] != kerr.OperationNotAttempted.Code || got[1] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("codes %v, want OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION", got)
	}
	if info, _ := c.Describe("app"); info.State != kmsg.TransactionStateEmpty {
		t.Fatalf("state %s after a refused add, want Empty", info.State)
	}
	if code := endTxn(c, "app", pid, epoch, 3, true); code != kerr.InvalidTxnState.Code {
		t.Fatalf("EndTxn without a transaction: %v", kerr.ErrorForCode(code))
	}
}

func TestInvalidInit(t *testing.T) {
	c, _ := newTest(t, &fakeBackend{})
	for _, tc := range []struct {
		id      string
		timeout int32
		want    int16
	}{
		{"", 1000, kerr.InvalidRequest.Code},
		{"a", 0, kerr.InvalidTransactionTimeout.Code},
		{"a", int32(DefaultMaxTimeout/time.Millisecond) + 1, kerr.InvalidTransactionTimeout.Code},
	} {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 4
		req.TransactionalID, req.TransactionTimeoutMillis = &tc.id, tc.timeout
		if got := c.InitProducerID(context.Background(), req).ErrorCode; got != tc.want {
			t.Errorf("id %q timeout %d: %v, want %v", tc.id, tc.timeout, kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
		}
	}
}

func TestKIP360InitWithProducer(t *testing.T) {
	c, _ := newTest(t, &fakeBackend{})
	pid, epoch := initPID(t, c, "app", 4, time.Minute)
	id := "app"
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID, req.TransactionTimeoutMillis = 4, &id, 60000
	req.ProducerID, req.ProducerEpoch = pid, epoch
	resp := c.InitProducerID(context.Background(), req)
	if resp.ErrorCode != 0 || resp.ProducerID != pid || resp.ProducerEpoch != epoch+1 {
		t.Fatalf("KIP-360 init with the current pair: %+v", resp)
	}
	// The pair before that is stale now.
	resp = c.InitProducerID(context.Background(), req)
	if resp.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("KIP-360 init with a stale pair: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestTimeoutAbortsWithBumpedEpoch(t *testing.T) {
	be := &fakeBackend{}
	c, clock := newTest(t, be)
	pid, epoch := initPID(t, c, "slow", 4, 5*time.Second)
	mustCodes(t, "add", partitionCodes(addPartitions(c, "slow", pid, epoch, 3, "orders", 0)), 0)
	pid2, epoch2 := initPID(t, c, "fast", 4, time.Minute)
	mustCodes(t, "add", partitionCodes(addPartitions(c, "fast", pid2, epoch2, 3, "orders", 1)), 0)

	clock.advance(4 * time.Second)
	if n := c.ScanOnce(context.Background()); n != 0 {
		t.Fatalf("scan before the timeout aborted %d", n)
	}
	clock.advance(2 * time.Second)
	if n := c.ScanOnce(context.Background()); n != 1 {
		t.Fatalf("scan after the timeout aborted %d, want 1", n)
	}
	got := be.takeMarkers()
	if len(got) != 1 || got[0].commit || got[0].producerID != pid || got[0].epoch != epoch+1 {
		t.Fatalf("markers %+v, want one abort of producer %d epoch %d", got, pid, epoch+1)
	}
	if code := endTxn(c, "slow", pid, epoch, 3, true); code != kerr.ProducerFenced.Code {
		t.Fatalf("commit after the timeout: %v, want PRODUCER_FENCED", kerr.ErrorForCode(code))
	}
	if info, _ := c.Describe("fast"); info.State != kmsg.TransactionStateOngoing {
		t.Fatalf("the other transaction: %s, want Ongoing", info.State)
	}
}

func TestRestartReplaysAndCompletesPrepared(t *testing.T) {
	be := &fakeBackend{}
	c, _ := newTest(t, be)
	// committed: complete before the "crash".
	pidC, epC := initPID(t, c, "committed", 4, time.Minute)
	mustCodes(t, "add", partitionCodes(addPartitions(c, "committed", pidC, epC, 3, "orders", 0)), 0)
	if code := endTxn(c, "committed", pidC, epC, 3, true); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	// prepared: markers fail, so it stays PrepareCommit.
	pidP, epP := initPID(t, c, "prepared", 4, time.Minute)
	mustCodes(t, "add", partitionCodes(addPartitions(c, "prepared", pidP, epP, 3, "orders", 1, 2)), 0)
	be.mu.Lock()
	be.failMarker = errors.New("disk on fire")
	be.mu.Unlock()
	if code := endTxn(c, "prepared", pidP, epP, 3, true); code != 0 {
		t.Fatalf("EndTxn whose markers fail after prepare: %v, want success (the outcome is decided)", kerr.ErrorForCode(code))
	}
	// Meanwhile the ID is busy.
	if code := partitionCodes(addPartitions(c, "prepared", pidP, epP, 3, "orders", 3)); code[0] != kerr.ConcurrentTransactions.Code {
		t.Fatalf("add while prepared: %v", code)
	}
	// ongoing: left open.
	pidO, epO := initPID(t, c, "ongoing", 4, time.Minute)
	mustCodes(t, "add", partitionCodes(addPartitions(c, "ongoing", pidO, epO, 3, "orders", 3)), 0)
	c.Close()

	be2 := &fakeBackend{state: be.records(), nextPID: 100}
	c2, clock := newTest(t, be2)
	if err := c2.Load(be2.records()); err != nil {
		t.Fatal(err)
	}
	if err := c2.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := be2.takeMarkers()
	if len(got) != 2 || !got[0].commit || !got[1].commit || got[0].producerID != pidP {
		t.Fatalf("recovery markers %+v, want commits of producer %d to orders-1 and orders-2", got, pidP)
	}
	for id, want := range map[string]State{
		"committed": kmsg.TransactionStateCompleteCommit,
		"prepared":  kmsg.TransactionStateCompleteCommit,
		"ongoing":   kmsg.TransactionStateOngoing,
	} {
		if info, ok := c2.Describe(id); !ok || info.State != want {
			t.Errorf("%s after restart: %+v, want state %s", id, info, want)
		}
	}
	// The resumed transaction can still commit.
	if code := endTxn(c2, "ongoing", pidO, epO, 3, true); code != 0 {
		t.Fatalf("commit of the resumed transaction: %v", kerr.ErrorForCode(code))
	}
	// Producer IDs survive: the next init keeps the ID and bumps the epoch.
	if pid, ep := initPID(t, c2, "committed", 4, time.Minute); pid != pidC || ep != epC+1 {
		t.Fatalf("init after restart: %d/%d, want %d/%d", pid, ep, pidC, epC+1)
	}
	_ = clock
}

func TestListAndDescribe(t *testing.T) {
	c, _ := newTest(t, &fakeBackend{})
	pid, epoch := initPID(t, c, "a", 4, time.Minute)
	mustCodes(t, "add", partitionCodes(addPartitions(c, "a", pid, epoch, 3, "orders", 0)), 0)
	initPID(t, c, "b", 4, time.Minute)

	list := kmsg.NewPtrListTransactionsRequest()
	list.StateFilters = []string{"Ongoing", "Bogus"}
	resp := c.ListTransactions(list)
	if len(resp.TransactionStates) != 1 || resp.TransactionStates[0].TransactionalID != "a" || len(resp.UnknownStateFilters) != 1 {
		t.Fatalf("list Ongoing: %+v", resp)
	}
	if all := c.ListTransactions(kmsg.NewPtrListTransactionsRequest()); len(all.TransactionStates) != 2 {
		t.Fatalf("list all: %+v", all.TransactionStates)
	}
	desc := kmsg.NewPtrDescribeTransactionsRequest()
	desc.TransactionalIDs = []string{"a", "nope"}
	d := c.DescribeTransactions(desc)
	if a := d.TransactionStates[0]; a.ErrorCode != 0 || a.State != "Ongoing" || a.ProducerID != pid || len(a.Topics) != 1 || a.Topics[0].Topic != "orders" || a.TimeoutMillis != 60000 {
		t.Fatalf("describe a: %+v", a)
	}
	if d.TransactionStates[1].ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("describe unknown: %+v", d.TransactionStates[1])
	}
}

func TestJournalFailureIsRetriable(t *testing.T) {
	be := &fakeBackend{failState: errors.New("no space")}
	c, _ := newTest(t, be)
	id := "x"
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID, req.TransactionTimeoutMillis = 4, &id, 1000
	if code := c.InitProducerID(context.Background(), req).ErrorCode; code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("init with a failing journal: %v", kerr.ErrorForCode(code))
	}
	be.mu.Lock()
	be.failState = nil
	be.mu.Unlock()
	if pid, epoch := initPID(t, c, "x", 4, time.Second); pid < 0 || epoch != 0 {
		t.Fatalf("init after the journal recovered: %d/%d", pid, epoch)
	}
}
