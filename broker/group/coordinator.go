package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Defaults for Config fields left zero.
const (
	// DefaultOffsetsTopicPartitions is the partition count of the offsets
	// topic. Kafka defaults to 50 for a cluster; a single node gains nothing
	// from that many logs, but a few partitions keep the groups' journal
	// writes from all queueing on one log. The count must not change once
	// the topic holds data, because it decides where each group lives.
	DefaultOffsetsTopicPartitions int32 = 4
	// DefaultMinSessionTimeout is Kafka's group.min.session.timeout.ms.
	DefaultMinSessionTimeout = 6 * time.Second
	// DefaultMaxSessionTimeout is Kafka's group.max.session.timeout.ms.
	DefaultMaxSessionTimeout = 30 * time.Minute
	// DefaultInitialRebalanceDelay is 0: unlike Kafka's 3s
	// group.initial.rebalance.delay.ms, the first member of an empty group
	// gets its assignment at once. Tests and small deployments start
	// consumers one at a time, and the delay only saves rebalances when many
	// consumers start together.
	DefaultInitialRebalanceDelay = time.Duration(0)
	// DefaultMaxMetadataBytes is Kafka's offset.metadata.max.bytes.
	DefaultMaxMetadataBytes = 4096
)

// Sentinel errors.
var (
	// ErrClosed is returned (wrapped) by Load once the Coordinator is closed.
	ErrClosed = errors.New("group coordinator closed")
	// ErrCorruptRecord is returned (wrapped) by Load for an offsets-topic
	// record whose key or value does not decode.
	ErrCorruptRecord = errors.New("corrupt offsets topic record")
)

// Record is one record of the offsets topic. A nil Value is a tombstone.
type Record struct{ Key, Value []byte }

// Journal is how the coordinator persists to the offsets topic. Append
// returns only once the records are as durable as the broker makes any
// acknowledged write. If the returned error wraps a *kerr.Error, its code
// is reported to the client; any other error is reported as
// COORDINATOR_NOT_AVAILABLE.
type Journal interface {
	Append(ctx context.Context, partition int32, recs []Record) error
}

// Config configures a Coordinator. The zero value of every field means its
// default.
type Config struct {
	// OffsetsTopicPartitions is the partition count of the offsets topic.
	// Default DefaultOffsetsTopicPartitions.
	OffsetsTopicPartitions int32
	// MinSessionTimeout is the smallest session timeout a member may ask
	// for. Default DefaultMinSessionTimeout (6s).
	MinSessionTimeout time.Duration
	// MaxSessionTimeout is the largest session timeout a member may ask
	// for. Default DefaultMaxSessionTimeout (30m).
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members, extended by the same amount whenever a
	// member joins meanwhile, up to the rebalance timeout. Default
	// DefaultInitialRebalanceDelay (0, no delay).
	InitialRebalanceDelay time.Duration
	// MaxMetadataBytes bounds an offset commit's metadata string. Default
	// DefaultMaxMetadataBytes (4096).
	MaxMetadataBytes int
	// TopicPartitionExists, when set, is asked about every committed
	// partition; commits to partitions it denies get
	// UNKNOWN_TOPIC_OR_PARTITION. Optional.
	TopicPartitionExists func(topic string, partition int32) bool
	// Logger receives the coordinator's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock for commit timestamps and group state timestamps.
	// Timers use the real clock. Default time.Now.
	Now func() time.Time
}

func (cfg *Config) setDefaults() {
	if cfg.OffsetsTopicPartitions <= 0 {
		cfg.OffsetsTopicPartitions = DefaultOffsetsTopicPartitions
	}
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = DefaultMinSessionTimeout
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = DefaultMaxSessionTimeout
	}
	if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = DefaultInitialRebalanceDelay
	}
	if cfg.MaxMetadataBytes <= 0 {
		cfg.MaxMetadataBytes = DefaultMaxMetadataBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
}

// Coordinator is the group coordinator of one broker. Its methods are safe
// for concurrent use.
type Coordinator struct {
	cfg     Config
	journal Journal
	log     *slog.Logger

	// ctx is cancelled once Close has waited for background journal writes.
	ctx    context.Context
	cancel context.CancelFunc
	// done is closed by Close; blocked joins and syncs select on it.
	done chan struct{}
	wg   sync.WaitGroup // background journal writes

	mu     sync.Mutex        // guards groups and closed
	groups map[string]*group // by group id
	closed bool
}

// NewCoordinator returns a Coordinator persisting through j. The broker
// replays the offsets topic through Load before serving requests.
func NewCoordinator(cfg Config, j Journal) *Coordinator {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Coordinator{
		cfg:     cfg,
		journal: j,
		log:     cfg.Logger.With("component", "group-coordinator"),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		groups:  make(map[string]*group),
	}
}

// Partition returns the offsets-topic partition that holds group, exactly
// as Kafka computes it: Utils.abs(groupId.hashCode()) % partitions.
func (c *Coordinator) Partition(group string) int32 {
	return partitionFor(group, c.cfg.OffsetsTopicPartitions)
}

func partitionFor(group string, partitions int32) int32 {
	h := javaStringHashCode(group)
	// Kafka's Utils.abs maps Integer.MIN_VALUE to 0.
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// javaStringHashCode is Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1]
// over UTF-16 code units, in wrapping 32-bit arithmetic.
func javaStringHashCode(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r1, r2 := utf16Surrogates(r)
			h = 31*h + int32(r1)
			h = 31*h + int32(r2)
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

func utf16Surrogates(r rune) (hi, lo rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

// Close stops every timer, fails blocked JoinGroup and SyncGroup calls with
// COORDINATOR_NOT_AVAILABLE, waits for background journal writes already
// under way (so the broker closes the Coordinator before its log) and makes
// every later request answer COORDINATOR_NOT_AVAILABLE. It is idempotent.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	groups := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		groups = append(groups, g)
	}
	c.mu.Unlock()

	close(c.done)
	for _, g := range groups {
		g.mu.Lock()
		g.stopTimers()
		g.mu.Unlock()
	}
	// Background writes already started (an emptied group's state) are
	// let finish, so a clean shutdown leaves the journal up to date.
	c.wg.Wait()
	c.cancel()
}

func (c *Coordinator) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// errCode is a Kafka error code carried through internal helpers.
type errCode = int16

// Kafka error codes used throughout; TestErrorCodesMatchKerr checks them
// against kerr.
const (
	errNone                 errCode = 0
	errCoordinatorNotAvail  errCode = 15 // COORDINATOR_NOT_AVAILABLE
	errIllegalGeneration    errCode = 22 // ILLEGAL_GENERATION
	errInconsistentProtocol errCode = 23 // INCONSISTENT_GROUP_PROTOCOL
	errInvalidGroupID       errCode = 24 // INVALID_GROUP_ID
	errUnknownMember        errCode = 25 // UNKNOWN_MEMBER_ID
	errRebalanceInProgress  errCode = 27 // REBALANCE_IN_PROGRESS
	errFencedInstance       errCode = 82 // FENCED_INSTANCE_ID
)

// journalErrCode maps a Journal error to the code a client sees.
func journalErrCode(err error) errCode {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return errCoordinatorNotAvail
}

// lookup returns the live group named id, creating it if create is set. It
// returns nil if the group does not exist (and create is not set) or the
// coordinator is closed. The returned group is NOT locked; callers lock it
// and must retry the lookup if they find it dead.
func (c *Coordinator) lookup(id string, create bool) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	g := c.groups[id]
	if g != nil && !g.dead() {
		return g
	}
	if !create {
		return nil
	}
	g = newGroup(c, id)
	c.groups[id] = g
	return g
}

// lockGroup returns the live group named id with g.mu held, or nil.
func (c *Coordinator) lockGroup(id string, create bool) *group {
	for {
		g := c.lookup(id, create)
		if g == nil {
			return nil
		}
		g.mu.Lock()
		if g.state != stateDead {
			return g
		}
		g.mu.Unlock()
	}
}

// lockGroupForWrite is lockGroup that also holds g.writeMu, which is taken
// before g.mu.
func (c *Coordinator) lockGroupForWrite(id string, create bool) *group {
	for {
		g := c.lookup(id, create)
		if g == nil {
			return nil
		}
		g.writeMu.Lock()
		g.mu.Lock()
		if g.state != stateDead {
			return g
		}
		g.mu.Unlock()
		g.writeMu.Unlock()
	}
}

// forget removes g from the group map if it is still the entry for its id.
// g.mu may be held: a group's mu is never taken while c.mu is held.
func (c *Coordinator) forget(g *group) {
	c.mu.Lock()
	if c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
	c.mu.Unlock()
}

// goBackground runs fn on a tracked goroutine unless the coordinator is
// closed.
func (c *Coordinator) goBackground(fn func(ctx context.Context)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn(c.ctx)
	}()
}

func (c *Coordinator) append(ctx context.Context, group string, recs []Record) error {
	p := c.Partition(group)
	if err := c.journal.Append(ctx, p, recs); err != nil {
		return fmt.Errorf("append %d records for group %q to offsets partition %d: %w", len(recs), group, p, err)
	}
	return nil
}
