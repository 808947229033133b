package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Defaults for Config fields left zero.
const (
	// DefaultMaxTimeout is Kafka's transaction.max.timeout.ms: the largest
	// transaction timeout a producer may ask for.
	DefaultMaxTimeout = 15 * time.Minute
	// DefaultAbortInterval is Kafka's
	// transaction.abort.timed.out.transaction.cleanup.interval.ms: how often
	// RunScans looks for timed-out transactions.
	DefaultAbortInterval = 10 * time.Second
)

// Sentinel errors.
var (
	// ErrClosed is returned (wrapped) once the Coordinator is closed.
	ErrClosed = errors.New("transaction coordinator closed")
	// ErrCorruptRecord is returned (wrapped) by Load for a state record
	// whose key or value does not decode.
	ErrCorruptRecord = errors.New("corrupt transaction state record")
	// ErrUnknownPartition is what Backend.WriteMarker returns (wrapped) for
	// a partition that no longer exists; the marker is then skipped.
	ErrUnknownPartition = errors.New("unknown partition")
)

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Record is one record of the transaction state topic.
type Record struct{ Key, Value []byte }

// Backend is what the Coordinator needs from the broker.
type Backend interface {
	// AppendState appends one record to the transaction state topic and
	// returns once it is as durable as any acknowledged write.
	AppendState(ctx context.Context, rec Record) error
	// WriteMarker appends a commit (or abort) control batch of producerID
	// and epoch to tp. A partition that does not exist (any more) is
	// reported with an error wrapping ErrUnknownPartition.
	WriteMarker(ctx context.Context, tp TopicPartition, producerID int64, epoch int16, commit bool) error
	// NextProducerID hands out a producer ID never handed out before.
	NextProducerID() (int64, error)
	// PartitionExists tells whether a partition may join a transaction.
	PartitionExists(topic string, partition int32) bool
	// OffsetsPartition is the offsets-topic partition holding group's
	// offsets; AddOffsetsToTxn adds it to the transaction.
	OffsetsPartition(group string) TopicPartition
}

// Config configures a Coordinator. The zero value of every field means its
// default.
type Config struct {
	// MaxTimeout bounds the transaction timeout of InitProducerId; larger
	// ones get INVALID_TRANSACTION_TIMEOUT. Default DefaultMaxTimeout (15m).
	MaxTimeout time.Duration
	// AbortInterval is how often RunScans aborts timed-out transactions.
	// Default DefaultAbortInterval (10s).
	AbortInterval time.Duration
	// Logger receives the coordinator's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock of transaction start and update times. Default
	// time.Now.
	Now func() time.Time
}

func (cfg *Config) setDefaults() {
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = DefaultMaxTimeout
	}
	if cfg.AbortInterval <= 0 {
		cfg.AbortInterval = DefaultAbortInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
}

// State is a transaction state, numbered as in Kafka's state records.
type State = kmsg.TransactionState

// txnData is the persisted state of one transactional ID.
type txnData struct {
	producerID int64 // -1 until the first InitProducerId is durable
	epoch      int16
	timeout    time.Duration
	state      State
	partitions map[TopicPartition]struct{}
	start      time.Time // start of the open transaction; zero if none
	updated    time.Time
}

func (d *txnData) clone() txnData {
	n := *d
	n.partitions = make(map[TopicPartition]struct{}, len(d.partitions))
	for tp := range d.partitions {
		n.partitions[tp] = struct{}{}
	}
	return n
}

func (d *txnData) sortedPartitions() []TopicPartition {
	out := make([]TopicPartition, 0, len(d.partitions))
	for tp := range d.partitions {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// txnEntry is one transactional ID.
type txnEntry struct {
	id string
	// mu is held for a whole operation on the ID, I/O included.
	mu   sync.Mutex
	data txnData
}

// Coordinator is the transaction coordinator of one broker. Its methods are
// safe for concurrent use.
type Coordinator struct {
	cfg     Config
	backend Backend
	log     *slog.Logger

	mu     sync.Mutex           // guards the fields below, never held during I/O
	txns   map[string]*txnEntry // by transactional ID
	byPID  map[int64]string     // producer ID -> transactional ID
	closed bool
}

// NewCoordinator returns a Coordinator working through backend. The broker
// replays the state topic through Load and calls Recover before serving.
func NewCoordinator(cfg Config, backend Backend) *Coordinator {
	cfg.setDefaults()
	return &Coordinator{
		cfg:     cfg,
		backend: backend,
		log:     cfg.Logger.With("component", "txn-coordinator"),
		txns:    make(map[string]*txnEntry),
		byPID:   make(map[int64]string),
	}
}

// Close makes every later request answer COORDINATOR_NOT_AVAILABLE. It does
// not wait for operations under way: the broker closes the Coordinator
// before it waits for its connections. It is idempotent.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

func (c *Coordinator) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// entry returns the entry of id, creating an empty one if create is set;
// nil if there is none or the coordinator is closed.
func (c *Coordinator) entry(id string, create bool) *txnEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	e := c.txns[id]
	if e == nil && create {
		e = &txnEntry{id: id, data: txnData{producerID: -1, epoch: -1, partitions: map[TopicPartition]struct{}{}}}
		c.txns[id] = e
	}
	return e
}

// lockEntry returns the entry of id locked, or nil (see entry).
func (c *Coordinator) lockEntry(id string, create bool) *txnEntry {
	e := c.entry(id, create)
	if e != nil {
		e.mu.Lock()
	}
	return e
}

// persist makes next durable and then applies it to e. e.mu held.
func (c *Coordinator) persist(ctx context.Context, e *txnEntry, next txnData) error {
	if c.isClosed() {
		return fmt.Errorf("persist transaction %q: %w", e.id, ErrClosed)
	}
	next.updated = c.cfg.Now()
	if err := c.backend.AppendState(ctx, stateRecord(e.id, &next)); err != nil {
		return fmt.Errorf("persist transaction %q state %s: %w", e.id, next.state, err)
	}
	c.apply(e, next)
	return nil
}

// apply replaces e's state, keeping the producer ID index current. e.mu
// held.
func (c *Coordinator) apply(e *txnEntry, next txnData) {
	c.mu.Lock()
	if old := e.data.producerID; old >= 0 && old != next.producerID && c.byPID[old] == e.id {
		delete(c.byPID, old)
	}
	if next.producerID >= 0 {
		c.byPID[next.producerID] = e.id
	}
	c.mu.Unlock()
	e.data = next
}

// bump gives d the next epoch of its producer, or a new producer ID with
// epoch 0 once the epoch is exhausted.
func (c *Coordinator) bump(d *txnData) error {
	if d.producerID >= 0 && d.epoch < math.MaxInt16-1 {
		d.epoch++
		return nil
	}
	id, err := c.backend.NextProducerID()
	if err != nil {
		return fmt.Errorf("allocate producer ID: %w", err)
	}
	d.producerID, d.epoch = id, 0
	return nil
}

// complete finishes a prepared transaction of e: a marker to each of its
// partitions, then the Complete state. e.mu held.
func (c *Coordinator) complete(ctx context.Context, e *txnEntry) error {
	d := &e.data
	commit := d.state == kmsg.TransactionStatePrepareCommit
	for _, tp := range d.sortedPartitions() {
		err := c.backend.WriteMarker(ctx, tp, d.producerID, d.epoch, commit)
		if errors.Is(err, ErrUnknownPartition) {
			c.log.Warn("transaction marker skipped: partition is gone", "transactional_id", e.id, "topic", tp.Topic, "partition", tp.Partition)
			continue
		}
		if err != nil {
			return fmt.Errorf("write %s marker of transaction %q to %s-%d: %w", markerName(commit), e.id, tp.Topic, tp.Partition, err)
		}
	}
	next := d.clone()
	next.state = kmsg.TransactionStateCompleteAbort
	if commit {
		next.state = kmsg.TransactionStateCompleteCommit
	}
	next.partitions = map[TopicPartition]struct{}{}
	next.start = time.Time{}
	if err := c.persist(ctx, e, next); err != nil {
		return err
	}
	c.log.Debug("transaction completed", "transactional_id", e.id, "producer_id", d.producerID, "epoch", d.epoch, "outcome", markerName(commit))
	return nil
}

// end prepares and completes the open transaction of e. With fence, the
// epoch is bumped first, so the producer that opened it is fenced. A
// failure after the prepared state is durable is logged and left to the
// background scan: the outcome is decided. e.mu held.
func (c *Coordinator) end(ctx context.Context, e *txnEntry, commit, fence bool) error {
	next := e.data.clone()
	if fence {
		if e.data.epoch >= math.MaxInt16-1 {
			// No epoch left to fence with: the markers keep the old
			// epoch and the producer ID changes at the next init.
			fence = false
		} else if err := c.bump(&next); err != nil {
			return err
		}
	}
	next.state = kmsg.TransactionStatePrepareAbort
	if commit {
		next.state = kmsg.TransactionStatePrepareCommit
	}
	if err := c.persist(ctx, e, next); err != nil {
		return err
	}
	if err := c.complete(ctx, e); err != nil {
		c.log.Warn("transaction prepared but not completed; will retry", "transactional_id", e.id, "err", err)
	}
	return nil
}

func markerName(commit bool) string {
	if commit {
		return "commit"
	}
	return "abort"
}

// errCodeFor maps an internal failure to the code a client sees: retriable
// COORDINATOR_NOT_AVAILABLE unless the error carries a Kafka error.
func errCodeFor(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

// fencedCode is the error for a stale epoch: PRODUCER_FENCED from the
// version that introduced it (KIP-588) on, INVALID_PRODUCER_EPOCH before.
func fencedCode(version, since int16) int16 {
	if version >= since {
		return kerr.ProducerFenced.Code
	}
	return kerr.InvalidProducerEpoch.Code
}

// checkProducer validates a request's producer ID and epoch against e.
// e.mu held.
func checkProducer(e *txnEntry, producerID int64, epoch int16, version, fencedSince int16) int16 {
	switch d := &e.data; {
	case d.producerID < 0 || producerID != d.producerID:
		return kerr.InvalidProducerIDMapping.Code
	case epoch < d.epoch:
		return fencedCode(version, fencedSince)
	case epoch != d.epoch:
		return kerr.InvalidProducerEpoch.Code
	}
	return 0
}

// checkOngoingOrNew tells whether e may add partitions: a prepared
// transaction is still being completed (CONCURRENT_TRANSACTIONS). e.mu held.
func checkAddable(e *txnEntry) int16 {
	switch e.data.state {
	case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
		return kerr.ConcurrentTransactions.Code
	case kmsg.TransactionStateDead, kmsg.TransactionStatePrepareEpochFence:
		return kerr.InvalidTxnState.Code
	}
	return 0
}

// addPartitions makes tps part of e's transaction, opening it if needed.
// e.mu held.
func (c *Coordinator) addPartitions(ctx context.Context, e *txnEntry, tps []TopicPartition) error {
	if e.data.state == kmsg.TransactionStateOngoing {
		missing := false
		for _, tp := range tps {
			if _, ok := e.data.partitions[tp]; !ok {
				missing = true
				break
			}
		}
		if !missing {
			return nil
		}
	}
	next := e.data.clone()
	if next.state != kmsg.TransactionStateOngoing {
		next.state = kmsg.TransactionStateOngoing
		next.partitions = map[TopicPartition]struct{}{}
		next.start = c.cfg.Now()
	}
	for _, tp := range tps {
		next.partitions[tp] = struct{}{}
	}
	return c.persist(ctx, e, next)
}

// Recover completes the transactions Load found prepared. Ongoing
// transactions are resumed; their timeout aborts them if their producer
// does not come back. It returns the first failure; the background scan
// retries.
func (c *Coordinator) Recover(ctx context.Context) error {
	var first error
	for _, e := range c.entries() {
		e.mu.Lock()
		if st := e.data.state; st == kmsg.TransactionStatePrepareCommit || st == kmsg.TransactionStatePrepareAbort {
			c.log.Info("completing transaction prepared before restart", "transactional_id", e.id, "state", st.String(), "partitions", len(e.data.partitions))
			if err := c.complete(ctx, e); err != nil && first == nil {
				first = err
			}
		}
		e.mu.Unlock()
	}
	return first
}

func (c *Coordinator) entries() []*txnEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*txnEntry, 0, len(c.txns))
	for _, e := range c.txns {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// ScanOnce aborts, with a bumped epoch, every transaction open longer than
// its timeout as of now, and retries the completion of prepared ones. It
// returns how many transactions it aborted.
func (c *Coordinator) ScanOnce(ctx context.Context) int {
	now := c.cfg.Now()
	aborted := 0
	for _, e := range c.entries() {
		if ctx.Err() != nil || c.isClosed() {
			break
		}
		e.mu.Lock()
		switch d := &e.data; d.state {
		case kmsg.TransactionStateOngoing:
			if now.Sub(d.start) <= d.timeout {
				break
			}
			c.log.Info("aborting timed-out transaction", "transactional_id", e.id, "producer_id", d.producerID,
				"epoch", d.epoch, "timeout", d.timeout, "open_for", now.Sub(d.start).Round(time.Millisecond))
			if err := c.end(ctx, e, false, true); err != nil {
				c.log.Warn("aborting timed-out transaction failed", "transactional_id", e.id, "err", err)
				break
			}
			aborted++
		case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
			if err := c.complete(ctx, e); err != nil {
				c.log.Warn("completing prepared transaction failed", "transactional_id", e.id, "err", err)
			}
		}
		e.mu.Unlock()
	}
	return aborted
}

// RunScans calls ScanOnce every Config.AbortInterval until ctx is done.
func (c *Coordinator) RunScans(ctx context.Context) {
	t := time.NewTicker(c.cfg.AbortInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.ScanOnce(ctx)
		}
	}
}
