package topology

import (
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/e2e/cluster"
	"github.com/tributary/tributary/topology"
)

// TestBrokerRegistration: a broker started with --consul registers service
// tributary-broker with its cluster, datacenter, node ID, cluster ID and
// Kafka address, passing; SIGTERM deregisters it; after SIGKILL its check
// goes critical and discovery drops it within the check's TTL plus 5 s.
func TestBrokerRegistration(t *testing.T) {
	c := cluster.StartConsul(t, cluster.ConsulOptions{Datacenter: "dc1"})
	cl := consulClient(t, c)
	east := topology.ClusterRef{Name: "east"}

	b1 := startBroker(t, c, "east", 1)
	b2 := startBroker(t, c, "east", 2)
	other := startBroker(t, c, "west", 1)
	cluster.Eventually(t, 30*time.Second, "both brokers of east to be discovered", func() bool {
		got := passing(t, cl, east)
		return len(got) == 2
	})
	if got := passing(t, cl, east); got[0] != min(b1.Addr, b2.Addr) || got[1] != max(b1.Addr, b2.Addr) {
		t.Fatalf("east discovered as %v, want %s and %s", got, b1.Addr, b2.Addr)
	}
	if got := passing(t, cl, topology.ClusterRef{Name: "west"}); len(got) != 1 || got[0] != other.Addr {
		t.Fatalf("west discovered as %v, want [%s]", got, other.Addr)
	}

	// The service as Consul holds it.
	var entries []struct {
		Service struct {
			ID   string
			Tags []string
			Meta map[string]string
			Port int
		}
		Checks []struct{ Status, ServiceID string }
	}
	if err := c.GetJSON("/v1/health/service/"+topology.ServiceBroker+"?tag=cluster=east", &entries); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range entries {
		if e.Service.ID != topology.ServiceID("east", 1) {
			continue
		}
		found = true
		m := e.Service.Meta
		if m["cluster"] != "east" || m["datacenter"] != "dc1" || m["node_id"] != "1" || m["kafka_addr"] != b1.Addr || m["cluster_id"] == "" {
			t.Fatalf("meta of broker 1: %v", m)
		}
		for _, want := range []string{"cluster=east", "datacenter=dc1", "node=1"} {
			if !contains(e.Service.Tags, want) {
				t.Fatalf("tags of broker 1 %v lack %s", e.Service.Tags, want)
			}
		}
		for _, ch := range e.Checks {
			if ch.ServiceID == e.Service.ID && ch.Status != "passing" {
				t.Fatalf("check of broker 1 is %s", ch.Status)
			}
		}
	}
	if !found {
		t.Fatalf("no service %s in %+v", topology.ServiceID("east", 1), entries)
	}

	// The topology command shows them.
	out := runTributary(t, "topology", "--consul", c.HTTP)
	for _, want := range []string{"dc1", "east", "west", b1.Addr, b2.Addr, other.Addr, "passing"} {
		if !containsStr(out, want) {
			t.Fatalf("tributary topology lacks %q:\n%s", want, out)
		}
	}

	// SIGTERM: deregistered, not merely critical.
	b2.Stop()
	cluster.Eventually(t, 10*time.Second, "broker 2 to deregister", func() bool {
		var all []struct{ Service struct{ ID string } }
		if err := c.GetJSON("/v1/health/service/"+topology.ServiceBroker, &all); err != nil {
			return false
		}
		for _, e := range all {
			if e.Service.ID == topology.ServiceID("east", 2) {
				return false
			}
		}
		return true
	})

	// SIGKILL: critical, and dropped by discovery within TTL (2s) + 5s.
	b1.Signal(syscall.SIGKILL)
	killed := time.Now()
	cluster.Eventually(t, 2*time.Second+5*time.Second, "discovery to drop the killed broker", func() bool {
		return len(passing(t, cl, east)) == 0
	})
	t.Logf("killed broker dropped after %v", time.Since(killed).Round(100*time.Millisecond))
	var checks []struct{ ServiceID, Status string }
	if err := c.GetJSON("/v1/health/checks/"+topology.ServiceBroker, &checks); err != nil {
		t.Fatal(err)
	}
	var critical bool
	for _, ch := range checks {
		if ch.ServiceID == topology.ServiceID("east", 1) {
			critical = ch.Status == "critical"
		}
	}
	if !critical {
		t.Fatalf("check of the killed broker is not critical: %+v", checks)
	}
	if out := runTributary(t, "topology", "--consul", c.HTTP); !containsStr(out, "critical") {
		t.Fatalf("tributary topology does not show the killed broker critical:\n%s", out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
