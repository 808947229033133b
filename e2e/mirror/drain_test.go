package mirror

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// drainExit is how soon a SIGTERMed worker must have exited.
const drainExit = 10 * time.Second

// TestSIGTERMDrains stops the worker with SIGTERM twice: once when
// everything produced has been mirrored, once in the middle of a stream.
// Each time it exits 0 within a few seconds, and the restarted worker
// repeats nothing: central ends up with every record exactly once, in
// order per key.
func TestSIGTERMDrains(t *testing.T) {
	const keys, fixed, streamed = 30, 5000, 20000
	east, central := cluster.StartBroker(t), cluster.StartBroker(t)
	cluster.CreateTopic(t, east.Addr, "orders", 3, nil)
	next := map[string]int{}
	cluster.Produce(t, east.Addr, keyedRecords("east", keys, fixed, next), kgo.DefaultProduceTopic("orders"))
	job := cluster.WriteFile(t, "drain.yaml", cluster.ClustersYAML(map[string]string{"east": east.Addr, "central": central.Addr})+`
jobs:
  - name: drain
    sources:
      - cluster: east
        topics: [orders]
    targets: [central]
    start: earliest
    tuning: {metadata_refresh: 1s}
`)
	m := cluster.StartMirror(t, job)
	ids := map[string]string{"east": clusterID(t, east.Addr)}

	// 1. Everything mirrored, then SIGTERM: the restart must write nothing.
	waitCount(t, central.Addr, "orders", fixed, mirrorTimeout)
	m.Terminate(drainExit)
	if !strings.Contains(m.Output(), "all jobs stopped") {
		t.Errorf("worker exited without logging that all jobs stopped")
	}
	m.Restart()
	waitFlowRunning(t, m, "drain", "central")
	stableCount(t, central.Addr, "orders", fixed, 5*time.Second)
	if f, _, err := m.Flow("drain", "central"); err != nil || f.Records != 0 {
		t.Fatalf("restarted worker wrote %d records (err %v), want 0", f.Records, err)
	}

	// 2. SIGTERM in the middle of a stream: what the first worker drained
	// and checkpointed, the second does not write again.
	cl := cluster.Dial(t, east.Addr, kgo.DefaultProduceTopic("orders"))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*mirrorTimeout)
	var wg sync.WaitGroup
	var produceErr error
	defer func() { cancel(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		// 20,000 records at about 10,000 records/s.
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for sent := 0; sent < streamed; sent += 100 {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			for _, r := range keyedRecords("east", keys, 100, next) {
				cl.Produce(ctx, r, nil)
			}
		}
		produceErr = cl.Flush(ctx)
	}()
	mid := waitAtLeast(t, central.Addr, "orders", fixed+streamed/3, mirrorTimeout)
	m.Terminate(drainExit)
	t.Logf("SIGTERM with %d records on central; the worker logged:\n%s", mid, grepLines(m.Output(), "drain"))
	m.Restart()
	wg.Wait()
	if produceErr != nil {
		t.Fatalf("producer: %v", produceErr)
	}
	waitCount(t, central.Addr, "orders", fixed+streamed, mirrorTimeout)
	stableCount(t, central.Addr, "orders", fixed+streamed, 3*time.Second)
	checkKeyOrder(t, cluster.ReadTopic(t, central.Addr, "orders", false).Records, ids, "orders")
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
