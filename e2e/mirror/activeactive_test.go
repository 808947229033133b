package mirror

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestActiveActive runs east → west and west → east with identity names
// (two jobs in one file) while producers write orders on both sides for a
// few seconds. Once quiet, every record exists exactly once in each
// cluster, the mirrored ones carry their origin, and a few seconds later
// nothing has grown: provenance stops the loop.
func TestActiveActive(t *testing.T) {
	const rounds, perRound, keys = 20, 100, 20
	east, west := cluster.StartBroker(t), cluster.StartBroker(t)
	brokers := map[string]*cluster.Broker{"east": east, "west": west}
	for _, b := range brokers {
		cluster.CreateTopic(t, b.Addr, "orders", 3, nil)
	}
	job := cluster.WriteFile(t, "active-active.yaml", cluster.ClustersYAML(map[string]string{"east": east.Addr, "west": west.Addr})+`
jobs:
  - name: east-to-west
    sources:
      - cluster: east
        topics: [orders]
    targets: [west]
    rename: identity
    start: earliest
    tuning: {metadata_refresh: 1s}
  - name: west-to-east
    sources:
      - cluster: west
        topics: [orders]
    targets: [east]
    rename: identity
    start: earliest
    tuning: {metadata_refresh: 1s}
`)
	m := cluster.StartMirror(t, job)
	next := map[string]map[string]int{"east": {}, "west": {}}
	clients := map[string]*kgo.Client{}
	for name, b := range brokers {
		clients[name] = cluster.Dial(t, b.Addr, kgo.DefaultProduceTopic("orders"), kgo.ProducerLinger(0))
		defer clients[name].Close()
	}
	// Produce on both sides for a while, in small rounds, so records cross
	// in both directions while the flows run.
	for i := 0; i < rounds; i++ {
		for name, cl := range clients {
			ctx, cancel := contextWithTimeout(cluster.RequestTimeout)
			err := cl.ProduceSync(ctx, keyedRecords(name, keys, perRound, next[name])...).FirstErr()
			cancel()
			if err != nil {
				t.Fatalf("produce to %s: %v", name, err)
			}
		}
		if i == rounds/2 {
			// Both directions have written something by now.
			waitAtLeast(t, east.Addr, "orders", int64(perRound*(rounds/2+1)+1), mirrorTimeout)
			waitAtLeast(t, west.Addr, "orders", int64(perRound*(rounds/2+1)+1), mirrorTimeout)
		}
	}
	total := int64(2 * rounds * perRound)
	ids := map[string]string{"east": clusterID(t, east.Addr), "west": clusterID(t, west.Addr)}
	for name, b := range brokers {
		waitCount(t, b.Addr, "orders", total, mirrorTimeout)
		checkActiveActive(t, name, ids, cluster.ReadTopic(t, b.Addr, "orders", false).Records, rounds*perRound)
	}
	// Quiet: nothing may grow now.
	for _, b := range brokers {
		stableCount(t, b.Addr, "orders", total, 5*time.Second)
	}
	for _, dir := range [][2]string{{"east-to-west", "west"}, {"west-to-east", "east"}} {
		f, ok, err := m.Flow(dir[0], dir[1])
		if err != nil || !ok {
			t.Fatalf("flow %s not shown: %v", dir[0], err)
		}
		if f.Records != int64(rounds*perRound) {
			t.Errorf("flow %s wrote %d records, want %d (each cluster's own records once)", dir[0], f.Records, rounds*perRound)
		}
	}
	metrics, err := m.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, job := range []string{"east-to-west", "west-to-east"} {
		want := fmt.Sprintf(`tributary_mirror_records_skipped_total{job=%q,reason="loop"`, job)
		if v, ok := cluster.MetricValue(metrics, want); !ok || v < 1 {
			t.Errorf("metric %s...} = %v (present %v), want >= 1: the loop check never fired", want, v, ok)
		}
	}
}

// checkActiveActive checks the orders of cluster self in an active-active
// pair: each origin's every (key, sequence) once and in order per key;
// records produced here carry no provenance, mirrored ones name their
// origin as the only cluster on their path.
func checkActiveActive(t *testing.T, self string, ids map[string]string, recs []*kgo.Record, perOrigin int) {
	t.Helper()
	type originKey struct{ origin, key string }
	next := map[originKey]int{}
	perOriginSeen := map[string]int{}
	for _, r := range recs {
		it := parseItem(t, r.Value)
		ok := originKey{it.Origin, it.Key}
		if it.Seq != next[ok] {
			t.Fatalf("%s %s-%d@%d: %s follows sequence %d of (%s, %s): lost, repeated or out of order",
				self, r.Topic, r.Partition, r.Offset, it, next[ok]-1, it.Origin, it.Key)
		}
		next[ok]++
		perOriginSeen[it.Origin]++
		hasProv := false
		for _, h := range r.Headers {
			hasProv = hasProv || h.Key == "tributary.prov"
		}
		switch {
		case it.Origin == self && hasProv:
			t.Fatalf("%s %s-%d@%d: own record %s came back with provenance %v: a loop", self, r.Topic, r.Partition, r.Offset, it, provenance(t, r).Path)
		case it.Origin != self:
			if p := provenance(t, r); len(p.Path) != 1 || p.Path[0] != ids[it.Origin] {
				t.Fatalf("%s %s-%d@%d: %s has provenance path %v, want [%s]", self, r.Topic, r.Partition, r.Offset, it, p.Path, ids[it.Origin])
			}
		}
	}
	for origin := range ids {
		if perOriginSeen[origin] != perOrigin {
			t.Fatalf("%s holds %d records from %s, want %d", self, perOriginSeen[origin], origin, perOrigin)
		}
	}
}
