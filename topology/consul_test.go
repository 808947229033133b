package topology_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary/tributary/e2e/cluster"
	"github.com/tributary/tributary/topology"
)

func newConsul(t *testing.T, c *cluster.Consul) *topology.Consul {
	t.Helper()
	cl, err := topology.NewConsul(topology.ConsulConfig{Address: c.HTTP,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestConsulRegisterWatch: a registered broker is discovered by Brokers
// and Watch with its facts; closing the registration removes it.
func TestConsulRegisterWatch(t *testing.T) {
	agent := cluster.StartConsul(t, cluster.ConsulOptions{Datacenter: "dc7"})
	cl := newConsul(t, agent)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref := topology.ClusterRef{Name: "east"}
	watch := cl.Watch(ctx, ref)
	if first := <-watch; len(first) != 0 {
		t.Fatalf("brokers before any registered: %+v", first)
	}

	if _, err := cl.RegisterBroker(ctx, topology.BrokerRegistration{Cluster: "east", Datacenter: "dc1", Addr: "127.0.0.1:9092"}); !errors.Is(err, topology.ErrDatacenter) {
		t.Fatalf("registering in the wrong datacenter: %v, want ErrDatacenter", err)
	}
	reg, err := cl.RegisterBroker(ctx, topology.BrokerRegistration{Cluster: "east", NodeID: 3, ClusterID: "cid", Addr: "127.0.0.1:9092", CheckTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := <-watch
	want := topology.Broker{Cluster: "east", Datacenter: "dc7", NodeID: 3, ClusterID: "cid", Addr: "127.0.0.1:9092",
		Health: topology.HealthPassing, ServiceID: topology.ServiceID("east", 3)}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("watch: %+v, want [%+v]", got, want)
	}
	// Renewed: it stays passing for three TTLs.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		if bs, err := cl.Brokers(ctx, ref); err != nil || len(bs) != 1 {
			t.Fatalf("brokers within 3 TTLs: %+v, %v", bs, err)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	if err := reg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-watch; len(got) != 0 {
		t.Fatalf("watch after Close: %+v", got)
	}
}

// TestMemberHold: of two members holding the same lock, one works at a
// time; when the holder leaves, the other takes over.
func TestMemberHold(t *testing.T) {
	agent := cluster.StartConsul(t, cluster.ConsulOptions{})
	cl := newConsul(t, agent)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var working atomic.Int32
	var overlap atomic.Bool
	holders := make([]chan string, 2)
	members := make([]*topology.Member, 2)
	stops := make([]context.CancelFunc, 2)
	dones := make([]chan struct{}, 2)
	for i := range members {
		m, err := cl.Join(ctx, topology.MemberOptions{ID: string(rune('a' + i)), TTL: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		members[i] = m
		holders[i] = make(chan string, 10)
		hctx, stop := context.WithCancel(ctx)
		stops[i], dones[i] = stop, make(chan struct{})
		go func(i int) {
			defer close(dones[i])
			m.Hold(hctx, topology.KVLocks+"job", []byte(m.ID()), func(lctx context.Context) {
				if working.Add(1) > 1 {
					overlap.Store(true)
				}
				holders[i] <- "acquired"
				<-lctx.Done()
				working.Add(-1)
			})
		}(i)
	}
	var first int
	select {
	case <-holders[0]:
		first = 0
	case <-holders[1]:
		first = 1
	case <-ctx.Done():
		t.Fatal("nobody acquired the lock")
	}
	owners, err := cl.Owners(ctx, topology.KVLocks)
	if err != nil || len(owners) != 1 || owners[0].Holder != members[first].ID() {
		t.Fatalf("owners: %+v, %v; want %s", owners, err, members[first].ID())
	}
	stops[first]()
	<-dones[first]
	if err := members[first].Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-holders[1-first]:
	case <-ctx.Done():
		t.Fatal("the other member did not take over")
	}
	if overlap.Load() {
		t.Fatal("both members worked at once")
	}
	stops[1-first]()
	<-dones[1-first]
	members[1-first].Close(ctx)
}
