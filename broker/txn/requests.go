package txn

import (
	"context"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Versions from which a stale epoch gets PRODUCER_FENCED rather than
// INVALID_PRODUCER_EPOCH (KIP-588).
const (
	fencedSinceInitProducerID  int16 = 4
	fencedSinceAddPartitions   int16 = 2
	fencedSinceAddOffsets      int16 = 2
	fencedSinceEndTxn          int16 = 2
	fencedSinceTxnOffsetCommit int16 = 3
)

// InitProducerID handles InitProducerId v0–v4 with a transactional ID (the
// broker serves the requests without one). The first init of an ID gets a
// new producer ID with epoch 0; every later one the same producer ID with
// the next epoch, after aborting a transaction the older instance left open.
// With a producer ID and epoch (v3+, KIP-360) the pair must be the current
// one. Errors: INVALID_REQUEST (empty ID), INVALID_TRANSACTION_TIMEOUT,
// PRODUCER_FENCED / INVALID_PRODUCER_EPOCH (KIP-360 pair not current),
// CONCURRENT_TRANSACTIONS (a prepared transaction still completing),
// COORDINATOR_NOT_AVAILABLE (journal failure or shutdown).
func (c *Coordinator) InitProducerID(ctx context.Context, r *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	id := ""
	if r.TransactionalID != nil {
		id = *r.TransactionalID
	}
	timeout := time.Duration(r.TransactionTimeoutMillis) * time.Millisecond
	switch {
	case id == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	case timeout <= 0 || timeout > c.cfg.MaxTimeout:
		resp.ErrorCode = kerr.InvalidTransactionTimeout.Code
		return resp
	}
	e := c.lockEntry(id, true)
	if e == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	defer e.mu.Unlock()
	d := &e.data

	if r.Version >= 3 && r.ProducerID >= 0 && d.producerID >= 0 {
		// The current pair, or the one before a bump by a timeout abort
		// (the producer learns of the abort only now).
		timedOut := d.state == kmsg.TransactionStateCompleteAbort && r.ProducerEpoch == d.epoch-1
		if r.ProducerID != d.producerID || (r.ProducerEpoch != d.epoch && !timedOut) {
			resp.ErrorCode = fencedCode(r.Version, fencedSinceInitProducerID)
			return resp
		}
	}
	switch d.state {
	case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
		if err := c.complete(ctx, e); err != nil {
			c.log.Warn("completing prepared transaction failed", "transactional_id", id, "err", err)
			resp.ErrorCode = kerr.ConcurrentTransactions.Code
			return resp
		}
	case kmsg.TransactionStateOngoing:
		// The new instance fences the old one: the epoch goes up and the
		// old instance's transaction is aborted with it.
		c.log.Info("aborting the open transaction of a fenced producer", "transactional_id", id,
			"producer_id", d.producerID, "epoch", d.epoch)
		if err := c.end(ctx, e, false, true); err != nil {
			c.log.Warn("aborting fenced transaction failed", "transactional_id", id, "err", err)
			resp.ErrorCode = errCodeFor(err)
			return resp
		}
		if d.state != kmsg.TransactionStateCompleteAbort {
			resp.ErrorCode = kerr.ConcurrentTransactions.Code
			return resp
		}
		if d.epoch < math.MaxInt16-1 {
			// The abort already bumped the epoch: hand that one out.
			next := d.clone()
			next.timeout = timeout
			if err := c.persist(ctx, e, next); err != nil {
				resp.ErrorCode = errCodeFor(err)
				return resp
			}
			resp.ProducerID, resp.ProducerEpoch = d.producerID, d.epoch
			return resp
		}
	}
	next := d.clone()
	if err := c.bump(&next); err != nil {
		c.log.Error("allocating a producer ID failed", "transactional_id", id, "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp
	}
	next.timeout = timeout
	if next.state != kmsg.TransactionStateCompleteCommit && next.state != kmsg.TransactionStateCompleteAbort {
		next.state = kmsg.TransactionStateEmpty
	}
	next.partitions = map[TopicPartition]struct{}{}
	next.start = time.Time{}
	if err := c.persist(ctx, e, next); err != nil {
		c.log.Warn("InitProducerId failed", "transactional_id", id, "err", err)
		resp.ErrorCode = errCodeFor(err)
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = d.producerID, d.epoch
	return resp
}

// AddPartitionsToTxn handles AddPartitionsToTxn v0–v3: the partitions join
// the producer's transaction, opening it if none is open. If a partition
// does not exist it gets UNKNOWN_TOPIC_OR_PARTITION and the others
// OPERATION_NOT_ATTEMPTED, as in Kafka; a producer or state error goes to
// every partition.
func (c *Coordinator) AddPartitionsToTxn(ctx context.Context, r *kmsg.AddPartitionsToTxnRequest) *kmsg.AddPartitionsToTxnResponse {
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	var tps []TopicPartition
	for _, t := range r.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
			tps = append(tps, TopicPartition{t.Topic, p})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(code int16) *kmsg.AddPartitionsToTxnResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		return resp
	}
	unknown := false
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			rp := &resp.Topics[i].Partitions[j]
			if !c.backend.PartitionExists(resp.Topics[i].Topic, rp.Partition) {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				unknown = true
			}
		}
	}
	if unknown {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if rp := &resp.Topics[i].Partitions[j]; rp.ErrorCode == 0 {
					rp.ErrorCode = kerr.OperationNotAttempted.Code
				}
			}
		}
		return resp
	}
	return setAll(c.add(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Version, fencedSinceAddPartitions, tps))
}

// AddOffsetsToTxn handles AddOffsetsToTxn v0–v3: the offsets-topic
// partition of the group joins the transaction, so that the group's
// transactional offsets get the transaction's marker.
func (c *Coordinator) AddOffsetsToTxn(ctx context.Context, r *kmsg.AddOffsetsToTxnRequest) *kmsg.AddOffsetsToTxnResponse {
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if r.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	tp := c.backend.OffsetsPartition(r.Group)
	resp.ErrorCode = c.add(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Version, fencedSinceAddOffsets, []TopicPartition{tp})
	return resp
}

func (c *Coordinator) add(ctx context.Context, id string, producerID int64, epoch int16, version, fencedSince int16, tps []TopicPartition) int16 {
	e := c.lockEntry(id, false)
	if e == nil {
		if c.isClosed() {
			return kerr.CoordinatorNotAvailable.Code
		}
		return kerr.InvalidProducerIDMapping.Code
	}
	defer e.mu.Unlock()
	if code := checkProducer(e, producerID, epoch, version, fencedSince); code != 0 {
		return code
	}
	if code := checkAddable(e); code != 0 {
		return code
	}
	if err := c.addPartitions(ctx, e, tps); err != nil {
		c.log.Warn("adding partitions to transaction failed", "transactional_id", id, "err", err)
		return errCodeFor(err)
	}
	return 0
}

// EndTxn handles EndTxn v0–v3: commit or abort the open transaction. A
// retried EndTxn of a transaction already completed the same way succeeds;
// the other way, or without an open transaction, INVALID_TXN_STATE.
func (c *Coordinator) EndTxn(ctx context.Context, r *kmsg.EndTxnRequest) *kmsg.EndTxnResponse {
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	e := c.lockEntry(r.TransactionalID, false)
	if e == nil {
		resp.ErrorCode = kerr.InvalidProducerIDMapping.Code
		if c.isClosed() {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
		return resp
	}
	defer e.mu.Unlock()
	if code := checkProducer(e, r.ProducerID, r.ProducerEpoch, r.Version, fencedSinceEndTxn); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	switch st := e.data.state; {
	case st == kmsg.TransactionStateOngoing:
		if err := c.end(ctx, e, r.Commit, false); err != nil {
			c.log.Warn("ending transaction failed", "transactional_id", r.TransactionalID, "err", err)
			resp.ErrorCode = errCodeFor(err)
		}
	case st == kmsg.TransactionStateCompleteCommit && r.Commit, st == kmsg.TransactionStateCompleteAbort && !r.Commit:
	case st == kmsg.TransactionStatePrepareCommit && r.Commit, st == kmsg.TransactionStatePrepareAbort && !r.Commit:
		if err := c.complete(ctx, e); err != nil {
			resp.ErrorCode = kerr.ConcurrentTransactions.Code
		}
	default:
		resp.ErrorCode = kerr.InvalidTxnState.Code
	}
	return resp
}

// Guard holds a transactional ID locked while the broker appends that
// transaction's data (a produce request, or TxnOffsetCommit's records), so
// the transaction cannot end halfway. Release it when done.
type Guard struct {
	e       *txnEntry
	version int16
}

// BeginProduce checks a transactional produce request's producer against
// the transactional ID and, on success (code 0), returns the ID locked;
// Guard.Partition then checks each partition. Codes:
// INVALID_PRODUCER_ID_MAPPING (unknown ID or another producer ID),
// INVALID_PRODUCER_EPOCH (stale epoch), COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) BeginProduce(id string, producerID int64, epoch int16) (*Guard, int16) {
	e := c.lockEntry(id, false)
	if e == nil {
		if c.isClosed() {
			return nil, kerr.CoordinatorNotAvailable.Code
		}
		return nil, kerr.InvalidProducerIDMapping.Code
	}
	if code := checkProducer(e, producerID, epoch, 0, 1); code != 0 {
		e.mu.Unlock()
		return nil, code
	}
	return &Guard{e: e}, 0
}

// BeginTxnOffsetCommit checks a TxnOffsetCommit's producer against the
// transactional ID and that the group's offsets partition is in its open
// transaction (AddOffsetsToTxn came first), and on success (code 0) returns
// the ID locked. Codes: INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED /
// INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) BeginTxnOffsetCommit(id string, producerID int64, epoch int16, group string, version int16) (*Guard, int16) {
	g, code := c.BeginProduce(id, producerID, epoch)
	if code != 0 {
		if code == kerr.InvalidProducerEpoch.Code {
			code = fencedCode(version, fencedSinceTxnOffsetCommit)
		}
		return nil, code
	}
	if code := g.Partition(c.backend.OffsetsPartition(group)); code != 0 {
		g.Release()
		return nil, code
	}
	return g, 0
}

// Partition tells whether the guarded transaction may write to tp: it must
// be open and hold tp (INVALID_TXN_STATE otherwise).
func (g *Guard) Partition(tp TopicPartition) int16 {
	d := &g.e.data
	if d.state != kmsg.TransactionStateOngoing {
		return kerr.InvalidTxnState.Code
	}
	if _, ok := d.partitions[tp]; !ok {
		return kerr.InvalidTxnState.Code
	}
	return 0
}

// Release unlocks the transactional ID. It is idempotent.
func (g *Guard) Release() {
	if g != nil && g.e != nil {
		g.e.mu.Unlock()
		g.e = nil
	}
}

// Info describes one transactional ID for tooling.
type Info struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	State           State
	Timeout         time.Duration
	Start           time.Time // zero without an open transaction
	Partitions      []TopicPartition
}

// Describe returns the state of id, or false if it is unknown.
func (c *Coordinator) Describe(id string) (Info, bool) {
	e := c.lockEntry(id, false)
	if e == nil {
		return Info{}, false
	}
	defer e.mu.Unlock()
	return e.info(), true
}

func (e *txnEntry) info() Info {
	d := &e.data
	return Info{TransactionalID: e.id, ProducerID: d.producerID, ProducerEpoch: d.epoch, State: d.state,
		Timeout: d.timeout, Start: d.start, Partitions: d.sortedPartitions()}
}

// ListTransactions handles ListTransactions v0–v1: every known
// transactional ID, filtered by state names (unknown names are echoed in
// UnknownStateFilters), producer IDs and (v1) a minimum running time.
func (c *Coordinator) ListTransactions(r *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	if c.isClosed() {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	states := map[State]bool{}
	for _, s := range r.StateFilters {
		st, err := kmsg.ParseTransactionState(s)
		if err != nil {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
			continue
		}
		states[st] = true
	}
	if len(r.StateFilters) > 0 && len(states) == 0 {
		return resp
	}
	pids := map[int64]bool{}
	for _, p := range r.ProducerIDFilters {
		pids[p] = true
	}
	minRunning := time.Duration(-1)
	if r.Version >= 1 && r.DurationFilterMillis >= 0 {
		minRunning = time.Duration(r.DurationFilterMillis) * time.Millisecond
	}
	now := c.cfg.Now()
	for _, e := range c.entries() {
		e.mu.Lock()
		info := e.info()
		e.mu.Unlock()
		switch {
		case info.ProducerID < 0,
			len(states) > 0 && !states[info.State],
			len(pids) > 0 && !pids[info.ProducerID],
			minRunning >= 0 && (info.Start.IsZero() || now.Sub(info.Start) < minRunning):
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = info.TransactionalID, info.ProducerID, info.State.String()
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp
}

// DescribeTransactions handles DescribeTransactions v0; unknown IDs get
// TRANSACTIONAL_ID_NOT_FOUND.
func (c *Coordinator) DescribeTransactions(r *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse {
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	closed := c.isClosed()
	for _, id := range r.TransactionalIDs {
		ts := kmsg.NewDescribeTransactionsResponseTransactionState()
		ts.TransactionalID = id
		info, ok := c.Describe(id)
		switch {
		case closed:
			ts.ErrorCode = kerr.CoordinatorNotAvailable.Code
		case !ok || info.ProducerID < 0:
			ts.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			ts.State = info.State.String()
			ts.TimeoutMillis = int32(info.Timeout / time.Millisecond)
			ts.StartTimestamp = -1
			if !info.Start.IsZero() {
				ts.StartTimestamp = info.Start.UnixMilli()
			}
			ts.ProducerID, ts.ProducerEpoch = info.ProducerID, info.ProducerEpoch
			for _, tp := range info.Partitions {
				if n := len(ts.Topics); n == 0 || ts.Topics[n-1].Topic != tp.Topic {
					t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
					t.Topic = tp.Topic
					ts.Topics = append(ts.Topics, t)
				}
				last := &ts.Topics[len(ts.Topics)-1]
				last.Partitions = append(last.Partitions, tp.Partition)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp
}
