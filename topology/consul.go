package topology

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Defaults of ConsulConfig.
const (
	// DefaultRetryBackoff is the first wait after a failed Consul request
	// of a watch; it doubles up to DefaultMaxRetryBackoff.
	DefaultRetryBackoff = 500 * time.Millisecond
	// DefaultMaxRetryBackoff caps the wait between retries of a watch.
	DefaultMaxRetryBackoff = 5 * time.Second
	// DefaultWatchWait is how long one blocking query waits for a change
	// before it is asked again.
	DefaultWatchWait = 60 * time.Second
)

// minQueryInterval spaces a watch's blocking queries, so a key that
// changes constantly cannot make a watch spin.
const minQueryInterval = 50 * time.Millisecond

// ConsulConfig configures a Consul client.
type ConsulConfig struct {
	// Address is the agent's HTTP API, "host:port" or a URL. Default:
	// CONSUL_HTTP_ADDR, else 127.0.0.1:8500. CONSUL_HTTP_TOKEN and the
	// other CONSUL_* variables of the Consul CLI apply too.
	Address string
	// Logger receives log lines. Default slog.Default().
	Logger *slog.Logger
	// RetryBackoff and MaxRetryBackoff pace watches while Consul is
	// unreachable. Defaults DefaultRetryBackoff, DefaultMaxRetryBackoff.
	RetryBackoff, MaxRetryBackoff time.Duration
	// WatchWait bounds one blocking query. Default DefaultWatchWait.
	WatchWait time.Duration
}

// Consul is the Consul backend: discovery of brokers, their registration,
// KV access and leases, all through one agent. It is safe for concurrent
// use.
type Consul struct {
	api  *api.Client
	addr string
	log  *slog.Logger
	cfg  ConsulConfig
}

var _ Resolver = (*Consul)(nil)

// NewConsul returns a client of the agent at cfg.Address. It does not
// connect: a first request that fails says so.
func NewConsul(cfg ConsulConfig) (*Consul, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.MaxRetryBackoff < cfg.RetryBackoff {
		cfg.MaxRetryBackoff = max(DefaultMaxRetryBackoff, cfg.RetryBackoff)
	}
	if cfg.WatchWait <= 0 {
		cfg.WatchWait = DefaultWatchWait
	}
	acfg := api.DefaultConfig()
	if cfg.Address != "" {
		acfg.Address = cfg.Address
	}
	cl, err := api.NewClient(acfg)
	if err != nil {
		return nil, fmt.Errorf("consul client of %s: %w", acfg.Address, err)
	}
	return &Consul{api: cl, addr: acfg.Address, log: cfg.Logger.With("consul", acfg.Address), cfg: cfg}, nil
}

// Address is the agent's address.
func (c *Consul) Address() string { return c.addr }

// Datacenter returns the datacenter of the agent.
func (c *Consul) Datacenter(ctx context.Context) (string, error) {
	self, err := c.api.Agent().Self()
	if err != nil {
		return "", fmt.Errorf("ask consul agent %s: %w", c.addr, err)
	}
	dc, _ := self["Config"]["Datacenter"].(string)
	if dc == "" {
		return "", fmt.Errorf("consul agent %s reports no datacenter", c.addr)
	}
	return dc, ctx.Err()
}

// Datacenters lists the datacenters the agent knows, its own and those
// joined over the WAN.
func (c *Consul) Datacenters(ctx context.Context) ([]string, error) {
	dcs, err := c.api.Catalog().Datacenters()
	if err != nil {
		return nil, fmt.Errorf("list consul datacenters: %w", err)
	}
	return dcs, ctx.Err()
}

// Brokers implements Resolver: the cluster's brokers whose checks pass.
func (c *Consul) Brokers(ctx context.Context, ref ClusterRef) ([]Broker, error) {
	bs, _, err := c.queryBrokers(ctx, ref, 0)
	return bs, err
}

func (c *Consul) queryBrokers(ctx context.Context, ref ClusterRef, index uint64) ([]Broker, *api.QueryMeta, error) {
	q := (&api.QueryOptions{Datacenter: ref.Datacenter, WaitIndex: index, WaitTime: c.cfg.WatchWait}).WithContext(ctx)
	entries, meta, err := c.api.Health().ServiceMultipleTags(ServiceBroker, []string{tag(MetaCluster, ref.Name)}, true, q)
	if err != nil {
		return nil, nil, fmt.Errorf("find brokers of cluster %s in consul: %w", ref, err)
	}
	return brokersOf(entries), meta, nil
}

// Watch implements Resolver with blocking queries of the passing
// instances of the cluster.
func (c *Consul) Watch(ctx context.Context, ref ClusterRef) <-chan []Broker {
	return watch(ctx, c, "brokers of cluster "+ref.String(),
		func(ctx context.Context, index uint64) ([]Broker, *api.QueryMeta, error) {
			return c.queryBrokers(ctx, ref, index)
		}, sameBrokers)
}

// Catalog returns every registered broker of datacenter dc ("" the
// agent's), passing or not, with its health.
func (c *Consul) Catalog(ctx context.Context, dc string) ([]Broker, error) {
	q := (&api.QueryOptions{Datacenter: dc}).WithContext(ctx)
	entries, _, err := c.api.Health().Service(ServiceBroker, "", false, q)
	if err != nil {
		return nil, fmt.Errorf("list brokers in consul datacenter %q: %w", dc, err)
	}
	return brokersOf(entries), nil
}

// Worker is a mirror worker as registered in Consul.
type Worker struct {
	ID, Datacenter, Node, Health string
}

// Workers returns the mirror workers registered in datacenter dc.
func (c *Consul) Workers(ctx context.Context, dc string) ([]Worker, error) {
	q := (&api.QueryOptions{Datacenter: dc}).WithContext(ctx)
	entries, _, err := c.api.Health().Service(ServiceWorker, "", false, q)
	if err != nil {
		return nil, fmt.Errorf("list workers in consul datacenter %q: %w", dc, err)
	}
	out := make([]Worker, 0, len(entries))
	for _, e := range entries {
		out = append(out, Worker{ID: e.Service.ID, Datacenter: e.Node.Datacenter, Node: e.Node.Node, Health: e.Checks.AggregatedStatus()})
	}
	return out, nil
}

func brokersOf(entries []*api.ServiceEntry) []Broker {
	out := make([]Broker, 0, len(entries))
	for _, e := range entries {
		s := e.Service
		b := Broker{
			Cluster:    s.Meta[MetaCluster],
			Datacenter: s.Meta[MetaDatacenter],
			ClusterID:  s.Meta[MetaClusterID],
			Addr:       s.Meta[MetaKafkaAddr],
			Health:     e.Checks.AggregatedStatus(),
			ServiceID:  s.ID,
			NodeID:     -1,
		}
		if b.Datacenter == "" && e.Node != nil {
			b.Datacenter = e.Node.Datacenter
		}
		if n, err := strconv.ParseInt(s.Meta[MetaNodeID], 10, 32); err == nil {
			b.NodeID = int32(n)
		}
		if b.Addr == "" && s.Address != "" && s.Port > 0 {
			b.Addr = fmt.Sprintf("%s:%d", s.Address, s.Port)
		}
		out = append(out, b)
	}
	sortBrokers(out)
	return out
}

func tag(key, value string) string { return key + "=" + value }

// KVEntry is a key and its value in Consul's KV store.
type KVEntry struct {
	Key   string
	Value []byte
	// ModifyIndex changes with every write of the key.
	ModifyIndex uint64
}

// WatchPrefix reports the keys under prefix (in the agent's datacenter)
// as Watch reports brokers: the current set, then each change, until ctx
// ends.
func (c *Consul) WatchPrefix(ctx context.Context, prefix string) <-chan []KVEntry {
	return watch(ctx, c, "keys under "+prefix,
		func(ctx context.Context, index uint64) ([]KVEntry, *api.QueryMeta, error) {
			q := (&api.QueryOptions{WaitIndex: index, WaitTime: c.cfg.WatchWait}).WithContext(ctx)
			pairs, meta, err := c.api.KV().List(prefix, q)
			if err != nil {
				return nil, nil, fmt.Errorf("list consul keys under %s: %w", prefix, err)
			}
			out := make([]KVEntry, 0, len(pairs))
			for _, p := range pairs {
				out = append(out, KVEntry{Key: p.Key, Value: p.Value, ModifyIndex: p.ModifyIndex})
			}
			return out, meta, nil
		}, sameEntries)
}

func sameEntries(a, b []KVEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || a[i].ModifyIndex != b[i].ModifyIndex {
			return false
		}
	}
	return true
}

// Get returns the key's entry, or nil if it does not exist.
func (c *Consul) Get(ctx context.Context, key string) (*KVEntry, error) {
	p, _, err := c.api.KV().Get(key, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read consul key %s: %w", key, err)
	}
	if p == nil {
		return nil, nil
	}
	return &KVEntry{Key: p.Key, Value: p.Value, ModifyIndex: p.ModifyIndex}, nil
}

// Put writes a key.
func (c *Consul) Put(ctx context.Context, key string, value []byte) error {
	if _, err := c.api.KV().Put(&api.KVPair{Key: key, Value: value}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("write consul key %s: %w", key, err)
	}
	return nil
}

// Delete removes a key; removing a missing key is not an error.
func (c *Consul) Delete(ctx context.Context, key string) error {
	if _, err := c.api.KV().Delete(key, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("delete consul key %s: %w", key, err)
	}
	return nil
}

// Owner is who holds a lock under a prefix.
type Owner struct {
	// Key is the lock's key without the prefix.
	Key string
	// Session is the holder's session ID, "" when the lock is free.
	Session string
	// Holder is the value the holder wrote (a worker ID).
	Holder string
}

// Owners lists the locks under prefix and their holders.
func (c *Consul) Owners(ctx context.Context, prefix string) ([]Owner, error) {
	pairs, _, err := c.api.KV().List(prefix, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list consul locks under %s: %w", prefix, err)
	}
	out := make([]Owner, 0, len(pairs))
	for _, p := range pairs {
		o := Owner{Key: strings.TrimPrefix(p.Key, prefix), Session: p.Session}
		if p.Session != "" {
			o.Holder = string(p.Value)
		}
		out = append(out, o)
	}
	return out, nil
}

// watch runs blocking queries until ctx ends, sending each new result;
// see Resolver.Watch.
func watch[T any](ctx context.Context, c *Consul, what string,
	query func(ctx context.Context, index uint64) (T, *api.QueryMeta, error), same func(a, b T) bool) <-chan T {
	ch := make(chan T, 1)
	go func() {
		defer close(ch)
		var (
			index   uint64
			last    T
			sent    bool
			failing bool
			backoff = c.cfg.RetryBackoff
		)
		for ctx.Err() == nil {
			start := time.Now()
			got, meta, err := query(ctx, index)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if !failing {
					c.log.Warn("consul unreachable; keeping what is known and retrying", "watch", what, "err", err)
					failing = true
				} else {
					c.log.Debug("consul still unreachable", "watch", what, "err", err, "retry_in", backoff)
				}
				index = 0
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(2*backoff, c.cfg.MaxRetryBackoff)
				continue
			}
			if failing {
				c.log.Info("consul reachable again", "watch", what)
				failing = false
			}
			backoff = c.cfg.RetryBackoff
			// An index that goes backwards (a restored or new server)
			// starts over; one that does not move would answer at once.
			if meta.LastIndex < index {
				index = 0
			} else {
				index = meta.LastIndex
			}
			if !sent || !same(got, last) {
				select { // keep only the latest value for a slow receiver
				case <-ch:
				default:
				}
				ch <- got
				last, sent = got, true
			}
			if d := minQueryInterval - time.Since(start); d > 0 && !sleep(ctx, d) {
				return
			}
		}
	}()
	return ch
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// isNotFound reports whether err is the agent's answer for a check or
// service it does not know (after an agent restart without its data dir).
func isNotFound(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code == 404
	}
	s := err.Error()
	return strings.Contains(s, "404") || strings.Contains(s, "does not have associated TTL") || strings.Contains(s, "Unknown check")
}
