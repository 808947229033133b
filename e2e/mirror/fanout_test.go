package mirror

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// westDowntime is how long west's broker stays down in TestFanOut.
const westDowntime = 10 * time.Second

// TestFanOut fans announcements out from central to east and west. West's
// broker is SIGKILLed mid-stream and kept down for 10 s while central gets
// the second half: east receives everything while west is down (one flow's
// target being down holds up no other), and west catches up once it is
// started again on the same address and data dir. East, never disturbed,
// holds every record exactly once; west holds every record, the first
// occurrences in order (a rewind after the failure may repeat records in
// flight; they are counted and logged).
func TestFanOut(t *testing.T) {
	const half, keys = 3000, 30
	central, east, west := cluster.StartBroker(t), cluster.StartBroker(t), cluster.StartBroker(t)
	cluster.CreateTopic(t, central.Addr, "announcements", 3, nil)
	next := map[string]int{}
	cluster.Produce(t, central.Addr, keyedRecords("central", keys, half, next), kgo.DefaultProduceTopic("announcements"))
	job := cluster.WriteFile(t, "fanout.yaml", cluster.ClustersYAML(map[string]string{
		"east": east.Addr, "west": west.Addr, "central": central.Addr,
	})+`
jobs:
  - name: fanout
    sources:
      - cluster: central
        topics: [announcements]
    targets: [east, west]
    rename: identity
    partitioning: preserve
    start: earliest
    tuning: {metadata_refresh: 1s, max_retry_backoff: 1s}
`)
	m := cluster.StartMirror(t, job)
	waitCount(t, east.Addr, "announcements", half, mirrorTimeout)
	waitCount(t, west.Addr, "announcements", half, mirrorTimeout)

	west.Kill()
	downUntil := time.Now().Add(westDowntime)
	cluster.Produce(t, central.Addr, keyedRecords("central", keys, half, next), kgo.DefaultProduceTopic("announcements"))
	// East must be complete while west is still down.
	waitCount(t, east.Addr, "announcements", 2*half, time.Until(downUntil))
	t.Logf("east complete %v before west comes back", time.Until(downUntil).Round(time.Millisecond))
	if f, ok, err := m.Flow("fanout", "west"); err == nil && ok {
		t.Logf("west flow while its broker is down: state %s, last error %q", f.State, f.LastError)
	}
	// The outage lasts westDowntime: this wait is the scenario, not
	// synchronisation.
	time.Sleep(time.Until(downUntil))
	west.StartAgain()

	ids := map[string]string{"central": clusterID(t, central.Addr)}
	waitCount(t, east.Addr, "announcements", 2*half, time.Second)
	checkKeyOrder(t, cluster.ReadTopic(t, east.Addr, "announcements", false).Records, ids, "announcements")

	waitAtLeast(t, west.Addr, "announcements", 2*half, mirrorTimeout)
	var distinct, repeats int
	cluster.Eventually(t, mirrorTimeout, "west holding every record", func() bool {
		distinct, repeats = checkFirstOccurrences(t, cluster.ReadTopic(t, west.Addr, "announcements", false).Records, ids)
		return distinct == 2*half
	})
	t.Logf("west: %d repeated records after its broker's SIGKILL", repeats)
	n, err := cluster.RecordCount(west.Addr, "announcements")
	if err != nil {
		t.Fatal(err)
	}
	stableCount(t, west.Addr, "announcements", n, 2*time.Second)
	stableCount(t, east.Addr, "announcements", 2*half, time.Second)
}

// checkFirstOccurrences checks mirrored items (ordered by partition and
// offset) where repeats are allowed: the first occurrences of each (origin,
// key) come in sequence order with no gap, and each record's provenance
// names its origin. It returns the number of distinct items and of repeats.
func checkFirstOccurrences(t *testing.T, recs []*kgo.Record, ids map[string]string) (distinct, repeats int) {
	t.Helper()
	type originKey struct{ origin, key string }
	next := map[originKey]int{}
	for _, r := range recs {
		it := parseItem(t, r.Value)
		ok := originKey{it.Origin, it.Key}
		switch {
		case it.Seq < next[ok]:
			repeats++
		case it.Seq == next[ok]:
			next[ok]++
			distinct++
		default:
			t.Fatalf("%s-%d@%d: %s follows sequence %d of (%s, %s): lost or out of order",
				r.Topic, r.Partition, r.Offset, it, next[ok]-1, it.Origin, it.Key)
		}
		if p := provenance(t, r); p.Path[0] != ids[it.Origin] {
			t.Fatalf("%s-%d@%d (%s): provenance origin %s, want %s", r.Topic, r.Partition, r.Offset, it, p.Path[0], ids[it.Origin])
		}
	}
	return distinct, repeats
}
