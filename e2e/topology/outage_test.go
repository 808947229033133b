package topology

import (
	"testing"
	"time"

	"github.com/tributary/tributary/e2e/cluster"
	"github.com/tributary/tributary/topology"
)

// TestConsulOutage: a Consul server with a data directory is stopped for
// 20 s under a running job shared by two workers, whose clusters are found
// through Consul. Meanwhile mirroring goes on with the known addresses.
// Once Consul is back the brokers are registered and passing again, the
// job has exactly one owner, and nothing produced is lost.
func TestConsulOutage(t *testing.T) {
	c := cluster.StartConsul(t, cluster.ConsulOptions{Server: true})
	src := startBroker(t, c, "src", 1)
	dst := startBroker(t, c, "dst", 1)
	cluster.CreateTopic(t, src.Addr, "events", 1, nil)
	putJob(t, c, "move", jobYAML("move", consulDef("src", ""), consulDef("dst", ""), "events"))
	workers := []*cluster.Mirror{
		cluster.StartConsulMirror(t, c.HTTP, "--worker-id", "w0"),
		cluster.StartConsulMirror(t, c.HTTP, "--worker-id", "w1"),
	}
	cluster.Eventually(t, 60*time.Second, "one worker to own the job", func() bool {
		return len(owners(workers, "move")) == 1
	})
	s := startStreamer(t, src.Addr, "events", "e")
	waitAtLeast(t, dst.Addr, "events", 200, mirrorTimeout)

	c.Stop()
	down := time.Now()
	// Mirroring continues on the known addresses while Consul is down.
	before, err := cluster.RecordCount(dst.Addr, "events")
	if err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 15*time.Second, "records to be mirrored while consul is down", func() bool {
		n, err := cluster.RecordCount(dst.Addr, "events")
		return err == nil && n >= before+200
	})
	for time.Since(down) < 20*time.Second {
		time.Sleep(100 * time.Millisecond) // the outage lasts 20 s by design; not synchronisation
	}
	if n, err := cluster.RecordCount(dst.Addr, "events"); err != nil || n < before+200 {
		t.Fatalf("mirroring stalled during the outage: %d records, had %d (%v)", n, before, err)
	}
	c.StartAgain()

	cl := consulClient(t, c)
	cluster.Eventually(t, 30*time.Second, "both brokers to be passing again", func() bool {
		return len(passing(t, cl, topology.ClusterRef{Name: "src"})) == 1 &&
			len(passing(t, cl, topology.ClusterRef{Name: "dst"})) == 1
	})
	// The job may have been lost (Consul restores a TTL check that expired
	// during the outage as critical, invalidating the session) and must
	// then be regained: wait for one owner that stays for 5 s.
	var settled time.Time
	last := -1
	cluster.Eventually(t, 60*time.Second, "exactly one worker to own the job for 5 s", func() bool {
		got := owners(workers, "move")
		if len(got) != 1 || got[0] != last {
			settled, last = time.Now(), -1
			if len(got) == 1 {
				last = got[0]
			}
			return false
		}
		return time.Since(settled) >= 5*time.Second
	})
	s.Stop()
	if s.err != nil {
		t.Fatalf("producer: %v", s.err)
	}
	requireAll(t, dst.Addr, "events", "e", s.n.Load())
	for _, w := range workers {
		w.Terminate(60 * time.Second)
	}
}
