package eos

import (
	"testing"
	"time"

	"github.com/tributary/tributary/e2e/cluster"
)

// aggregateJob is an exactly-once job mirroring orders of east and west
// into orders of central, names and partitions kept.
func aggregateJob(addrs map[string]string) string {
	return cluster.ClustersYAML(addrs) + `
jobs:
  - name: aggregate
    sources:
      - cluster: east
        topics: [orders]
      - cluster: west
        topics: [orders]
    targets: [central]
    rename: identity
    partitioning: preserve
    start: earliest
    delivery: exactly-once
    tuning: {metadata_refresh: 1s, max_retry_backoff: 1s}
`
}

// TestSIGKILLDuringAggregation aggregates 200,000 records (100,000 from
// each of east and west, 3 partitions each, 30 keys each, produced at
// 30,000 records/s in total) into central with delivery: exactly-once, and
// SIGKILLs the worker at 15, 30, 45, 60 and 75 % of central's progress —
// each time, as far as the test can arrange, while a transaction is open —
// restarting it each time. Read read_committed, central then holds every
// record exactly once, in order per (source cluster, key); and its log
// holds abort markers, proof that kills cut transactions short (without
// them the test would prove nothing about the rewind).
func TestSIGKILLDuringAggregation(t *testing.T) {
	const (
		perOrigin  = 100_000
		total      = 2 * perOrigin
		partitions = 3
		keys       = 30
		perSecond  = 15_000 // per producer
	)
	east, west, central := cluster.StartBroker(t), cluster.StartBroker(t), cluster.StartBroker(t)
	cluster.CreateTopic(t, east.Addr, "orders", partitions, nil)
	cluster.CreateTopic(t, west.Addr, "orders", partitions, nil)
	job := cluster.WriteFile(t, "aggregate.yaml", aggregateJob(map[string]string{
		"east": east.Addr, "west": west.Addr, "central": central.Addr}))
	m := cluster.StartMirror(t, job)
	txnID := transactionalID("aggregate", "central")

	start := time.Now()
	pe := startPacer(t, east.Addr, "orders", "east", keys, perOrigin, perSecond)
	pw := startPacer(t, west.Addr, "orders", "west", keys, perOrigin, perSecond)
	cut := 0
	for _, pct := range []int64{15, 30, 45, 60, 75} {
		at := waitEndAtLeast(t, central.Addr, "orders", total*pct/100, mirrorTimeout)
		open := awaitOngoing(central.Addr, txnID, 3*time.Second)
		m.Kill()
		if open {
			cut++
		}
		t.Logf("SIGKILLed the worker at %d%% (central's end offsets add up to %d; %d produced; transaction open: %v)",
			pct, at, pe.acked.Load()+pw.acked.Load(), open)
		m.Restart()
	}
	pe.Wait()
	pw.Wait()
	want := map[string]map[string]int{"east": pe.Produced(t), "west": pw.Produced(t)}
	elapsed := time.Since(start)
	produced := pe.acked.Load() + pw.acked.Load()
	t.Logf("produced %d records in %v (%.0f records/s)", produced, elapsed.Round(time.Millisecond), float64(produced)/elapsed.Seconds())
	if produced != total {
		t.Fatalf("producers acknowledged %d records, want %d", produced, total)
	}

	waitLagZero(t, m, "aggregate", "central", 2*partitions)
	committed := cluster.ReadTopic(t, central.Addr, "orders", true)
	checkExactlyOnce(t, committed.Records, want)
	all := cluster.ReadTopic(t, central.Addr, "orders", false)
	t.Logf("central, read_committed: %d records; read_uncommitted: %d records, %d commit and %d abort markers; %d of 5 kills saw an open transaction",
		len(committed.Records), len(all.Records), all.Commits, all.Aborts, cut)
	if all.Aborts == 0 {
		t.Fatalf("central's orders holds no abort marker after 5 SIGKILLs (%d during an open transaction): no transaction was cut short, so the test proved nothing about exactly-once", cut)
	}
	if st := txnState(central.Addr, txnID); st == "Ongoing" || st == "PrepareCommit" || st == "PrepareAbort" {
		t.Logf("transaction state of %s at the end: %s", txnID, st)
	}
	m.Terminate(60 * time.Second)
	if again := cluster.ReadTopic(t, central.Addr, "orders", true); len(again.Records) != total {
		t.Fatalf("after the worker stopped, central holds %d committed records, want %d", len(again.Records), total)
	}
}
