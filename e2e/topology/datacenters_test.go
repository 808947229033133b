package topology

import (
	"testing"
	"time"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestTwoDatacenters: agents of dc1 and dc2, WAN-joined; cluster east
// registers in dc1, central in dc2. A worker talking to dc2's agent runs a
// job naming east in dc1 and central in its own datacenter, and mirrors.
func TestTwoDatacenters(t *testing.T) {
	dc1 := cluster.StartConsul(t, cluster.ConsulOptions{Datacenter: "dc1"})
	dc2 := cluster.StartConsul(t, cluster.ConsulOptions{Datacenter: "dc2", JoinWAN: dc1.SerfWAN})
	cluster.Eventually(t, 60*time.Second, "dc2's agent to know dc1", func() bool {
		var dcs []string
		return dc2.GetJSON("/v1/catalog/datacenters", &dcs) == nil && contains(dcs, "dc1") && contains(dcs, "dc2")
	})
	east := startBroker(t, dc1, "east", 1)
	central := startBroker(t, dc2, "central", 1)
	cluster.CreateTopic(t, east.Addr, "orders", 1, nil)
	produce(t, east.Addr, "orders", "o", 0, 500)

	job := cluster.WriteFile(t, "wan.yaml", jobYAML("wan", consulDef("east", "dc1"), consulDef("central", ""), "orders"))
	m := cluster.StartConsulMirror(t, dc2.HTTP, "--config", job)
	produce(t, east.Addr, "orders", "o", 500, 500)
	requireAll(t, central.Addr, "orders", "o", 1000)

	out := runTributary(t, "topology", "--consul", dc2.HTTP)
	for _, want := range []string{"dc1", "dc2", "east", "central", east.Addr, central.Addr} {
		if !containsStr(out, want) {
			t.Fatalf("tributary topology against dc2 lacks %q:\n%s", want, out)
		}
	}
	m.Terminate(60 * time.Second)
}
