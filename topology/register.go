package topology

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// Defaults of registrations.
const (
	// DefaultCheckTTL is the TTL of a registration's check: a process that
	// stops renewing it is critical (and dropped by discovery) this long
	// after its last renewal.
	DefaultCheckTTL = 5 * time.Second
	// DefaultDeregisterCriticalAfter is how long Consul keeps a service
	// whose check is critical before removing it; Consul enforces at
	// least a minute.
	DefaultDeregisterCriticalAfter = time.Minute
)

// ErrDatacenter is returned when a process is told a datacenter other
// than the one of the agent it registers with.
var ErrDatacenter = errors.New("datacenter differs from the consul agent's")

// BrokerRegistration describes a broker for RegisterBroker.
type BrokerRegistration struct {
	// Cluster is the cluster's human name (--cluster). Required.
	Cluster string
	// Datacenter, if set, must be the agent's datacenter; it is only a
	// check: a service is always registered in its agent's datacenter.
	Datacenter string
	NodeID     int32
	ClusterID  string
	// Addr is the advertised Kafka address, host:port. Required.
	Addr string
	// CheckTTL is the TTL of the broker's check, renewed every third of it
	// (at most every 2 s). Default DefaultCheckTTL.
	CheckTTL time.Duration
}

// ServiceID is the Consul service ID of a broker: one per cluster node.
func ServiceID(cluster string, nodeID int32) string {
	return fmt.Sprintf("%s-%s-%d", ServiceBroker, cluster, nodeID)
}

// Registration is a service registered in the local agent with a TTL
// check that a goroutine keeps passing until Close. When the agent forgets
// the service (restarted without its data) or cannot be reached, the
// goroutine logs it and registers again once the agent answers.
type Registration struct {
	c        *Consul
	reg      *api.AgentServiceRegistration
	checkID  string
	ttl      time.Duration
	interval time.Duration

	mu          sync.Mutex // guards reregister, failing
	reregister  bool
	failing     bool
	cancel      context.CancelFunc
	done        chan struct{}
	closeOnce   sync.Once
	closeResult error
}

// RegisterBroker registers the broker as service ServiceBroker with ID
// ServiceID(cluster, node), cluster, datacenter, node ID, cluster ID and
// Kafka address in its meta and tags, and a passing TTL check that the
// returned Registration renews until Close deregisters it.
func (c *Consul) RegisterBroker(ctx context.Context, b BrokerRegistration) (*Registration, error) {
	if !validName(b.Cluster) {
		return nil, fmt.Errorf("register broker: cluster name %q has blanks, '=' or '/'", b.Cluster)
	}
	host, portStr, err := net.SplitHostPort(b.Addr)
	if err != nil {
		return nil, fmt.Errorf("register broker: address %q: %w", b.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("register broker: port of %q: %w", b.Addr, err)
	}
	dc, err := c.Datacenter(ctx)
	if err != nil {
		return nil, fmt.Errorf("register broker: %w", err)
	}
	if b.Datacenter != "" && b.Datacenter != dc {
		return nil, fmt.Errorf("register broker: datacenter %q, agent %s is in %q: %w", b.Datacenter, c.addr, dc, ErrDatacenter)
	}
	node := strconv.Itoa(int(b.NodeID))
	id := ServiceID(b.Cluster, b.NodeID)
	reg := &api.AgentServiceRegistration{
		ID:      id,
		Name:    ServiceBroker,
		Address: host,
		Port:    port,
		Tags:    []string{tag(MetaCluster, b.Cluster), tag(MetaDatacenter, dc), tag("node", node)},
		Meta: map[string]string{
			MetaCluster: b.Cluster, MetaDatacenter: dc, MetaNodeID: node,
			MetaClusterID: b.ClusterID, MetaKafkaAddr: b.Addr,
		},
	}
	return c.registerTTL(ctx, reg, b.CheckTTL)
}

// registerTTL registers reg with a passing TTL check and starts renewing
// it.
func (c *Consul) registerTTL(ctx context.Context, reg *api.AgentServiceRegistration, ttl time.Duration) (*Registration, error) {
	if ttl <= 0 {
		ttl = DefaultCheckTTL
	}
	checkID := "service:" + reg.ID
	reg.Check = &api.AgentServiceCheck{
		CheckID:                        checkID,
		Name:                           reg.Name + " TTL",
		TTL:                            ttl.String(),
		Status:                         api.HealthPassing,
		DeregisterCriticalServiceAfter: DefaultDeregisterCriticalAfter.String(),
	}
	r := &Registration{c: c, reg: reg, checkID: checkID, ttl: ttl,
		interval: min(max(ttl/3, 100*time.Millisecond), 2*time.Second), done: make(chan struct{})}
	if err := r.register(ctx); err != nil {
		return nil, err
	}
	c.log.Info("registered in consul", "service", reg.Name, "id", reg.ID, "check_ttl", ttl)
	lctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.keepAlive(lctx)
	return r, nil
}

// ID is the service ID.
func (r *Registration) ID() string { return r.reg.ID }

// CheckID is the ID of the service's TTL check.
func (r *Registration) CheckID() string { return r.checkID }

func (r *Registration) register(ctx context.Context) error {
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	if err := r.c.api.Agent().ServiceRegisterOpts(r.reg, opts); err != nil {
		return fmt.Errorf("register service %s in consul: %w", r.reg.ID, err)
	}
	return nil
}

// Pass marks the check passing now, registering the service again first
// if the agent lost it.
func (r *Registration) Pass(ctx context.Context) error {
	r.mu.Lock()
	again := r.reregister
	r.mu.Unlock()
	if again {
		if err := r.register(ctx); err != nil {
			return err
		}
		r.c.log.Info("registered in consul again", "service", r.reg.Name, "id", r.reg.ID)
		r.mu.Lock()
		r.reregister = false
		r.mu.Unlock()
	}
	err := r.c.api.Agent().UpdateTTLOpts(r.checkID, "alive", api.HealthPassing, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		// Whatever the cause (agent down, restarted, service removed),
		// registering again once the agent answers is harmless.
		r.mu.Lock()
		r.reregister = true
		r.mu.Unlock()
		if isNotFound(err) {
			return fmt.Errorf("consul forgot check %s: %w", r.checkID, err)
		}
		return fmt.Errorf("renew check %s: %w", r.checkID, err)
	}
	return nil
}

func (r *Registration) keepAlive(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, r.ttl)
		err := r.Pass(pctx)
		cancel()
		r.mu.Lock()
		was := r.failing
		r.failing = err != nil
		r.mu.Unlock()
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !was:
			r.c.log.Warn("cannot renew consul check; retrying", "id", r.reg.ID, "err", err)
		case err == nil && was:
			r.c.log.Info("consul check renewed again", "id", r.reg.ID)
		}
	}
}

// Close stops renewing the check and deregisters the service.
func (r *Registration) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.cancel()
		<-r.done
		if err := r.c.api.Agent().ServiceDeregisterOpts(r.reg.ID, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
			r.closeResult = fmt.Errorf("deregister %s from consul: %w", r.reg.ID, err)
			return
		}
		r.c.log.Info("deregistered from consul", "id", r.reg.ID)
	})
	return r.closeResult
}
