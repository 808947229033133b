package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/tributary/tributary/broker/group"
	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/broker/txn"
)

// Defaults for Config.
const (
	// DefaultListen is where a broker listens unless told otherwise.
	DefaultListen = "127.0.0.1:9092"
	// DefaultClusterName is the human name of a cluster (--cluster).
	DefaultClusterName = "default"
	// DefaultMaxRequestBytes is the largest request frame accepted
	// (Kafka's socket.request.max.bytes).
	DefaultMaxRequestBytes = 100 << 20
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that leave it to the broker (-1).
	DefaultPartitions = 1
	// DefaultRetentionCheckInterval is how often retention runs.
	DefaultRetentionCheckInterval = 5 * time.Minute
	// DefaultCleanerInterval is how often the log cleaner looks for
	// compacted partitions to clean (Kafka's log.cleaner.backoff.ms).
	DefaultCleanerInterval = 15 * time.Second
)

// OffsetsTopic is the internal topic holding committed offsets and group
// metadata, named and laid out like Kafka's so Kafka tooling can read it.
const OffsetsTopic = "__consumer_offsets"

// Config configures a Broker. The zero value of a field means its default.
type Config struct {
	// DataDir holds the broker's logs and metadata. Required.
	DataDir string
	// Listen is the TCP address to listen on; default DefaultListen.
	// A port of 0 picks a free port (see Broker.Addr).
	Listen string
	// Advertise is the address given to clients in Metadata; default the
	// address actually listened on.
	Advertise string
	// NodeID is this broker's node ID; default 0.
	NodeID int32
	// Cluster is the human name of the cluster; default DefaultClusterName.
	// It is not the cluster ID, which is a UUID generated once per data dir.
	Cluster string
	// Log is the default configuration of every topic's partition logs;
	// topics override it with their own configs. Default
	// storage.DefaultConfig().
	Log storage.Config
	// AutoCreateTopics creates a topic named in a Metadata request that
	// asks for it (Kafka's auto.create.topics.enable); default false.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics;
	// default DefaultPartitions.
	DefaultPartitions int32
	// MaxRequestBytes bounds a request frame; default DefaultMaxRequestBytes.
	MaxRequestBytes int32
	// RetentionCheckInterval is how often retention runs; default
	// DefaultRetentionCheckInterval.
	RetentionCheckInterval time.Duration
	// CleanerInterval is how often the log cleaner runs over the partitions
	// with cleanup.policy compact; default DefaultCleanerInterval.
	CleanerInterval time.Duration
	// Group configures the group coordinator; zero fields take
	// broker/group's defaults.
	Group group.Config
	// TransactionAbortInterval is how often transactions open longer than
	// their timeout are aborted; default txn.DefaultAbortInterval (10s,
	// Kafka's transaction.abort.timed.out.transaction.cleanup.interval.ms).
	TransactionAbortInterval time.Duration
	// MaxTransactionTimeout bounds the timeout a transactional producer may
	// ask for; default txn.DefaultMaxTimeout (15m,
	// transaction.max.timeout.ms).
	MaxTransactionTimeout time.Duration
	// FS is the filesystem under DataDir; default storage.OSFS.
	FS storage.FS
	// Logger receives the broker's log lines; default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in except DataDir.
func DefaultConfig() Config {
	return Config{
		Listen:                 DefaultListen,
		Cluster:                DefaultClusterName,
		Log:                    storage.DefaultConfig(),
		DefaultPartitions:      DefaultPartitions,
		MaxRequestBytes:        DefaultMaxRequestBytes,
		RetentionCheckInterval: DefaultRetentionCheckInterval,
		CleanerInterval:        DefaultCleanerInterval,
	}
}

func (c *Config) fill() error {
	if c.DataDir == "" {
		return errors.New("broker: DataDir is required")
	}
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.Cluster == "" {
		c.Cluster = d.Cluster
	}
	if c.Log == (storage.Config{}) {
		c.Log = d.Log
	}
	if c.DefaultPartitions <= 0 {
		c.DefaultPartitions = d.DefaultPartitions
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = d.MaxRequestBytes
	}
	if c.RetentionCheckInterval <= 0 {
		c.RetentionCheckInterval = d.RetentionCheckInterval
	}
	if c.CleanerInterval <= 0 {
		c.CleanerInterval = d.CleanerInterval
	}
	if c.FS == nil {
		c.FS = storage.OSFS
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Broker is a single-node Kafka-protocol broker.
type Broker struct {
	cfg       Config
	log       *slog.Logger
	clusterID string
	pids      *storage.ProducerIDAllocator
	groups    *group.Coordinator
	txns      *txn.Coordinator
	topics    *topicRegistry
	apis      map[int16]api // the dispatch table; read-only after New

	mu        sync.Mutex // guards ln, conns, advertise, closing
	ln        net.Listener
	conns     map[*conn]struct{}
	advertise string
	closing   bool

	ctx    context.Context // cancelled at Shutdown: wakes long polls and group waits
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop, connections, background jobs
}

// brokerMeta is meta.json.
type brokerMeta struct {
	ClusterID string `json:"cluster_id"`
	NodeID    int32  `json:"node_id"`
}

// New opens (or initialises) the data directory, recovers every partition
// log and the group coordinator's state, and returns a broker ready to Start.
func New(cfg Config) (*Broker, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, log: cfg.Logger, conns: make(map[*conn]struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.apis = b.servedAPIs()
	fsys := cfg.FS
	if err := fsys.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	meta, err := loadOrCreateMeta(fsys, cfg.DataDir, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	if meta.NodeID != cfg.NodeID {
		return nil, fmt.Errorf("data dir %s belongs to node %d, not node %d", cfg.DataDir, meta.NodeID, cfg.NodeID)
	}
	b.clusterID = meta.ClusterID
	if b.pids, err = storage.OpenProducerIDAllocator(fsys, filepath.Join(cfg.DataDir, "producer-ids")); err != nil {
		return nil, fmt.Errorf("open producer ID allocator: %w", err)
	}
	if b.topics, err = openTopicRegistry(fsys, cfg.DataDir, cfg.Log, b.log); err != nil {
		return nil, err
	}
	gcfg := cfg.Group
	if gcfg.Logger == nil {
		gcfg.Logger = b.log.With("component", "group")
	}
	if gcfg.OffsetsTopicPartitions <= 0 {
		gcfg.OffsetsTopicPartitions = group.DefaultOffsetsTopicPartitions
	}
	if gcfg.OffsetsTopicPartitions, err = b.openOffsetsTopic(gcfg.OffsetsTopicPartitions); err != nil {
		b.topics.close()
		return nil, err
	}
	gcfg.TopicPartitionExists = b.topics.partitionExists
	b.groups = group.NewCoordinator(gcfg, offsetsJournal{b})
	if err := b.loadGroups(); err != nil {
		b.topics.close()
		return nil, err
	}
	if err := b.openTxnStateTopic(); err != nil {
		b.topics.close()
		return nil, err
	}
	b.txns = txn.NewCoordinator(txn.Config{
		MaxTimeout:    cfg.MaxTransactionTimeout,
		AbortInterval: cfg.TransactionAbortInterval,
		Logger:        b.log.With("component", "txn"),
	}, txnBackend{b})
	if err := b.loadTransactions(); err != nil {
		b.topics.close()
		return nil, err
	}
	return b, nil
}

func loadOrCreateMeta(fsys storage.FS, dir string, nodeID int32) (brokerMeta, error) {
	path := filepath.Join(dir, "meta.json")
	var m brokerMeta
	data, err := storage.ReadFile(fsys, path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &m); err != nil || m.ClusterID == "" {
			return m, fmt.Errorf("read %s: not a broker meta file (%v)", path, err)
		}
		return m, nil
	case errors.Is(err, fs.ErrNotExist):
		m = brokerMeta{ClusterID: uuid.NewString(), NodeID: nodeID}
		data, _ := json.MarshalIndent(m, "", "  ")
		if err := storage.WriteFileAtomic(fsys, path, data); err != nil {
			return m, fmt.Errorf("write %s: %w", path, err)
		}
		return m, nil
	default:
		return m, fmt.Errorf("read %s: %w", path, err)
	}
}

// ClusterID is the cluster's ID: a UUID generated once per data directory.
func (b *Broker) ClusterID() string { return b.clusterID }

// Start listens on Config.Listen and serves clients in the background.
func (b *Broker) Start() error {
	ln, err := net.Listen("tcp", b.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", b.cfg.Listen, err)
	}
	return b.Serve(ln)
}

// Serve serves clients on ln in the background; the broker owns ln.
func (b *Broker) Serve(ln net.Listener) error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		ln.Close()
		return errors.New("broker is shut down")
	}
	b.ln = ln
	b.advertise = b.cfg.Advertise
	if b.advertise == "" {
		b.advertise = ln.Addr().String()
	}
	b.mu.Unlock()
	b.log.Info("broker listening", "addr", ln.Addr().String(), "advertise", b.advertise,
		"cluster", b.cfg.Cluster, "cluster_id", b.clusterID, "node_id", b.cfg.NodeID)
	b.wg.Add(3)
	go b.acceptLoop(ln)
	go b.background()
	go func() {
		defer b.wg.Done()
		b.txns.RunScans(b.ctx)
	}()
	return nil
}

// Addr is the address the broker listens on, once started.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln == nil {
		return ""
	}
	return b.ln.Addr().String()
}

func (b *Broker) advertised() (host string, port int32) {
	b.mu.Lock()
	addr := b.advertise
	b.mu.Unlock()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	var n int32
	fmt.Sscanf(p, "%d", &n)
	return h, n
}

func (b *Broker) acceptLoop(ln net.Listener) {
	defer b.wg.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if b.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (EMFILE and the like): back off, keep serving.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			b.log.Warn("accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-b.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		c := newConn(b, nc)
		b.mu.Lock()
		if b.closing {
			b.mu.Unlock()
			nc.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			c.serve()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

// background runs retention, the log cleaner and the interval fsync policy.
func (b *Broker) background() {
	defer b.wg.Done()
	retention := time.NewTicker(b.cfg.RetentionCheckInterval)
	defer retention.Stop()
	cleaner := time.NewTicker(b.cfg.CleanerInterval)
	defer cleaner.Stop()
	var syncC <-chan time.Time
	if p := b.cfg.Log.Fsync; p.Mode == storage.FsyncInterval && p.Interval > 0 {
		t := time.NewTicker(p.Interval)
		defer t.Stop()
		syncC = t.C
	}
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-retention.C:
			b.topics.enforceRetention()
		case <-cleaner.C:
			b.topics.cleanLogs(b.ctx)
		case <-syncC:
			b.topics.syncAll()
		}
	}
}

// Shutdown stops accepting connections, lets every request in progress
// finish (long-polling fetches return what they have), closes the
// connections, then flushes and closes every partition log. If ctx ends
// first, connections are closed under their requests and Shutdown still
// closes the logs before returning ctx's error.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return nil
	}
	b.closing = true
	ln := b.ln
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	b.log.Info("broker shutting down", "connections", len(conns))
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.stopReading()
	}
	b.cancel()
	b.txns.Close()
	b.groups.Close()

	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		b.mu.Lock()
		for c := range b.conns {
			c.nc.Close()
		}
		b.mu.Unlock()
		<-done
	}
	if cerr := b.topics.close(); cerr != nil && err == nil {
		err = cerr
	}
	b.log.Info("broker stopped")
	return err
}
