package topology

import (
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestOwnerKilled: two workers share a KV job; exactly one runs it. The
// owner is SIGKILLed mid-stream; the other takes the job over within 15 s
// and every record produced arrives (some may repeat: at-least-once).
func TestOwnerKilled(t *testing.T) {
	c := cluster.StartConsul(t, cluster.ConsulOptions{})
	src := startBroker(t, c, "src", 1)
	dst := startBroker(t, c, "dst", 1)
	cluster.CreateTopic(t, src.Addr, "events", 1, nil)
	putJob(t, c, "move", jobYAML("move", consulDef("src", ""), consulDef("dst", ""), "events"))
	workers := []*cluster.Mirror{
		cluster.StartConsulMirror(t, c.HTTP, "--worker-id", "w0"),
		cluster.StartConsulMirror(t, c.HTTP, "--worker-id", "w1"),
	}
	var owner []int
	cluster.Eventually(t, 60*time.Second, "one worker to own the job", func() bool {
		owner = owners(workers, "move")
		return len(owner) == 1
	})
	s := startStreamer(t, src.Addr, "events", "e")
	waitAtLeast(t, dst.Addr, "events", 200, mirrorTimeout)
	if got := owners(workers, "move"); len(got) != 1 {
		t.Fatalf("workers %v run the job, want exactly one", got)
	}

	killed := workers[owner[0]]
	heir := workers[1-owner[0]]
	killed.Signal(syscall.SIGKILL)
	at := time.Now()
	cluster.Eventually(t, 15*time.Second, "the other worker to take the job over", func() bool {
		return runs(heir, "move")
	})
	t.Logf("taken over after %v", time.Since(at).Round(100*time.Millisecond))
	mid := s.n.Load()
	waitAtLeast(t, dst.Addr, "events", mid, mirrorTimeout)
	s.Stop()
	if s.err != nil {
		t.Fatalf("producer: %v", s.err)
	}
	requireAll(t, dst.Addr, "events", "e", s.n.Load())
	heir.Terminate(60 * time.Second)
}
