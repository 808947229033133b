package eos

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestZombieFenced pauses a worker with SIGSTOP mid-stream (while its
// transaction is open, as far as the test can arrange), starts a second
// worker with the same job file — the same flow, so the same transactional
// ID — and lets it mirror, then resumes the first with SIGCONT. The first
// is fenced: it exits non-zero saying "fenced". The second goes on; central
// holds every record exactly once.
func TestZombieFenced(t *testing.T) {
	const partitions, keys, perSecond = 3, 30, 3000
	east, central := cluster.StartBroker(t), cluster.StartBroker(t)
	cluster.CreateTopic(t, east.Addr, "orders", partitions, nil)
	job := cluster.WriteFile(t, "zombie.yaml", cluster.ClustersYAML(map[string]string{"east": east.Addr, "central": central.Addr})+`
jobs:
  - name: zombie
    sources:
      - cluster: east
        topics: [orders]
    targets: [central]
    rename: identity
    partitioning: preserve
    start: earliest
    delivery: exactly-once
    tuning: {metadata_refresh: 1s, max_retry_backoff: 1s}
`)
	txnID := transactionalID("zombie", "central")
	p := startPacer(t, east.Addr, "orders", "east", keys, 0, perSecond)
	first := cluster.StartMirror(t, job)
	waitEndAtLeast(t, central.Addr, "orders", 3000, mirrorTimeout)
	open := awaitOngoing(central.Addr, txnID, 3*time.Second)
	first.Signal(syscall.SIGSTOP)
	paused := waitEndAtLeast(t, central.Addr, "orders", 0, cluster.RequestTimeout)
	t.Logf("paused the first worker (transaction open: %v; central's end offsets add up to %d)", open, paused)

	second := cluster.StartMirror(t, job)
	cluster.Eventually(t, mirrorTimeout, "the second worker to mirror", func() bool {
		f, ok, err := second.Flow("zombie", "central")
		return err == nil && ok && f.State == "running" && f.Records > 0
	})
	waitEndAtLeast(t, central.Addr, "orders", paused+3000, mirrorTimeout)
	t.Logf("the second worker mirrors; resuming the first")

	first.Signal(syscall.SIGCONT)
	err, exited := first.Wait(mirrorTimeout)
	if !exited {
		t.Fatalf("the resumed first worker did not exit within %v:\n%s", mirrorTimeout, tailOf(first.Output()))
	}
	if err == nil {
		t.Fatalf("the fenced first worker exited with status 0:\n%s", tailOf(first.Output()))
	}
	if !strings.Contains(first.Output(), "fenced") {
		t.Fatalf("the first worker exited (%v) without saying it was fenced:\n%s", err, tailOf(first.Output()))
	}
	t.Logf("the first worker exited: %v; its last lines:\n%s", err, tailOf(first.Output()))
	if f, ok, err := second.Flow("zombie", "central"); err != nil || !ok || f.State != "running" {
		t.Fatalf("the second worker's flow is not running after the first was fenced: %+v (%v)", f, err)
	}

	waitEndAtLeast(t, central.Addr, "orders", paused+6000, mirrorTimeout)
	p.Stop()
	want := map[string]map[string]int{"east": p.Produced(t)}
	waitLagZero(t, second, "zombie", "central", partitions)
	got := cluster.ReadTopic(t, central.Addr, "orders", true)
	checkExactlyOnce(t, got.Records, want)
	all := cluster.ReadTopic(t, central.Addr, "orders", false)
	t.Logf("central, read_committed: %d records; read_uncommitted: %d records, %d abort markers", len(got.Records), len(all.Records), all.Aborts)
	second.Terminate(60 * time.Second)
}

// tailOf is the last lines of a process's output.
func tailOf(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}
