package eos

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/e2e/cluster"
	"github.com/tributary/tributary/topology"
)

// TestConsulOwnerKilled: two workers share an exactly-once job kept in
// Consul's KV store; the one holding its lock runs it. The owner is
// SIGKILLed mid-stream (while a transaction is open, as far as the test can
// arrange); the other takes the job over, its InitProducerId fencing the
// dead owner's transactional producer and aborting its open transaction,
// and resumes from the last committed checkpoint. Central then holds every
// record exactly once, in order per key.
func TestConsulOwnerKilled(t *testing.T) {
	const partitions, keys, perSecond = 3, 30, 3000
	c := cluster.StartConsul(t, cluster.ConsulOptions{})
	east, central := cluster.StartBroker(t), cluster.StartBroker(t)
	cluster.CreateTopic(t, east.Addr, "orders", partitions, nil)
	c.Do("PUT", "/v1/kv/"+topology.KVJobs+"owned", []byte(fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  central: {bootstrap: [%q]}
jobs:
  - name: owned
    sources:
      - cluster: east
        topics: [orders]
    targets: [central]
    rename: identity
    partitioning: preserve
    start: earliest
    delivery: exactly-once
    tuning: {metadata_refresh: 1s, max_retry_backoff: 1s}
`, east.Addr, central.Addr)))
	workers := []*cluster.Mirror{
		cluster.StartConsulMirror(t, c.HTTP, "--worker-id", "w0"),
		cluster.StartConsulMirror(t, c.HTTP, "--worker-id", "w1"),
	}
	var owner []int
	cluster.Eventually(t, mirrorTimeout, "one worker to own the job", func() bool {
		owner = owners(workers, "owned")
		return len(owner) == 1
	})
	p := startPacer(t, east.Addr, "orders", "east", keys, 0, perSecond)
	waitEndAtLeast(t, central.Addr, "orders", 3000, mirrorTimeout)
	if got := owners(workers, "owned"); len(got) != 1 {
		t.Fatalf("workers %v run the job, want exactly one", got)
	}

	killed, heir := workers[owner[0]], workers[1-owner[0]]
	open := awaitOngoing(central.Addr, transactionalID("owned", "central"), 3*time.Second)
	killed.Signal(syscall.SIGKILL)
	at := time.Now()
	t.Logf("SIGKILLed the owner w%d (transaction open: %v)", owner[0], open)
	cluster.Eventually(t, mirrorTimeout, "the other worker to take the job over and mirror", func() bool {
		f, ok, err := heir.Flow("owned", "central")
		return err == nil && ok && f.State == "running" && f.Records > 0
	})
	t.Logf("taken over and mirroring after %v", time.Since(at).Round(100*time.Millisecond))
	mid := waitEndAtLeast(t, central.Addr, "orders", 0, cluster.RequestTimeout)
	waitEndAtLeast(t, central.Addr, "orders", mid+3000, mirrorTimeout)
	p.Stop()
	want := map[string]map[string]int{"east": p.Produced(t)}
	waitLagZero(t, heir, "owned", "central", partitions)
	got := cluster.ReadTopic(t, central.Addr, "orders", true)
	checkExactlyOnce(t, got.Records, want)
	all := cluster.ReadTopic(t, central.Addr, "orders", false)
	t.Logf("central, read_committed: %d records; read_uncommitted: %d records, %d abort markers", len(got.Records), len(all.Records), all.Aborts)
	heir.Terminate(60 * time.Second)
}

// owners returns the indexes of the live workers that run job.
func owners(ms []*cluster.Mirror, job string) []int {
	var out []int
	for i, m := range ms {
		if m.Exited() {
			continue
		}
		jobs, err := m.Jobs()
		if err != nil {
			continue
		}
		for _, j := range jobs {
			if j.Name == job {
				out = append(out, i)
			}
		}
	}
	return out
}
