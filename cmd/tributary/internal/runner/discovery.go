package runner

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tributary/tributary/mirror/config"
	"github.com/tributary/tributary/topology"
)

// DefaultFirstResolveWait bounds how long Resolve waits for the first
// answer about a cluster before reporting that no broker is known yet (the
// flow then retries).
const DefaultFirstResolveWait = 10 * time.Second

// Discovery resolves the clusters of job files that name a cluster in
// Consul (`consul: {cluster: east, datacenter: dc1}`) instead of giving
// bootstrap addresses. It watches each such cluster from its first use for
// as long as its context lasts, and keeps the last non-empty set of
// passing brokers: while Consul is unreachable, or while every broker of a
// cluster is critical, jobs keep the addresses they know.
type Discovery struct {
	ctx      context.Context
	res      topology.Resolver
	log      *slog.Logger
	onChange func(ref topology.ClusterRef)

	mu       sync.Mutex // guards clusters
	clusters map[topology.ClusterRef]*watched
}

type watched struct {
	ready chan struct{} // closed at the first non-empty set
	addrs []string      // guarded by Discovery.mu
}

// NewDiscovery returns a Discovery whose watches end with ctx. onChange,
// if not nil, is called (from a watch goroutine) whenever the known
// brokers of a cluster change after the first set.
func NewDiscovery(ctx context.Context, res topology.Resolver, log *slog.Logger, onChange func(topology.ClusterRef)) *Discovery {
	return &Discovery{ctx: ctx, res: res, log: log, onChange: onChange, clusters: map[topology.ClusterRef]*watched{}}
}

// Ref is the topology reference of a job file's cluster found through
// Consul.
func Ref(c config.Cluster) topology.ClusterRef {
	return topology.ClusterRef{Name: c.Consul.Cluster, Datacenter: c.Consul.Datacenter}
}

// Resolve returns the bootstrap addresses of c: its own list, or the known
// brokers of its Consul cluster. It can be Runner.Resolve.
func (d *Discovery) Resolve(ctx context.Context, c config.Cluster) ([]string, error) {
	if c.Consul == nil {
		return c.Bootstrap, nil
	}
	ref := Ref(c)
	w := d.watch(ref)
	t := time.NewTimer(DefaultFirstResolveWait)
	defer t.Stop()
	select {
	case <-w.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("no passing broker of cluster %s known from consul yet", ref)
	}
	return d.Known(ref), nil
}

// Known returns the last non-empty set of broker addresses of ref (sorted),
// or nil before the first; it starts watching ref if nobody did.
func (d *Discovery) Known(ref topology.ClusterRef) []string {
	d.watch(ref)
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.clusters[ref].addrs)
}

// WaitKnown waits until ref's brokers are known, ctx ends or timeout
// passes, and returns what is known.
func (d *Discovery) WaitKnown(ctx context.Context, ref topology.ClusterRef, timeout time.Duration) []string {
	w := d.watch(ref)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w.ready:
	case <-ctx.Done():
	case <-t.C:
	}
	return d.Known(ref)
}

func (d *Discovery) watch(ref topology.ClusterRef) *watched {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w, ok := d.clusters[ref]; ok {
		return w
	}
	w := &watched{ready: make(chan struct{})}
	d.clusters[ref] = w
	ch := d.res.Watch(d.ctx, ref)
	go func() {
		for bs := range ch {
			addrs := topology.Addrs(bs)
			d.mu.Lock()
			prev := w.addrs
			if len(addrs) == 0 {
				d.mu.Unlock()
				if prev != nil {
					d.log.Warn("no passing broker of cluster in consul; keeping the last known", "cluster", ref.String(), "known", prev)
				}
				continue
			}
			changed := !slices.Equal(prev, addrs)
			w.addrs = addrs
			d.mu.Unlock()
			if prev == nil {
				close(w.ready)
				d.log.Info("brokers found in consul", "cluster", ref.String(), "brokers", addrs)
				continue
			}
			if changed {
				d.log.Info("brokers of cluster changed", "cluster", ref.String(), "brokers", addrs, "before", prev)
				if d.onChange != nil {
					d.onChange(ref)
				}
			}
		}
	}()
	return w
}
