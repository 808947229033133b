package mirror

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestAggregate mirrors orders of east and west (3 partitions each) into
// central, with prefix names (east.orders, west.orders) and with identity
// names (one orders). Half the records exist before the worker starts, half
// are produced while it runs. Every record arrives exactly once, each
// (source cluster, key) in order, each in the partition it had in its
// source, with a provenance header naming its origin.
func TestAggregate(t *testing.T) {
	for _, tc := range []struct {
		rename string
		target func(cluster string) string
	}{
		{"prefix", func(c string) string { return c + ".orders" }},
		{"identity", func(string) string { return "orders" }},
	} {
		t.Run(tc.rename, func(t *testing.T) {
			const perRound, keys = 1500, 30
			east, west, central := cluster.StartBroker(t), cluster.StartBroker(t), cluster.StartBroker(t)
			sources := map[string]*cluster.Broker{"east": east, "west": west}
			next := map[string]map[string]int{"east": {}, "west": {}}
			for name, b := range sources {
				cluster.CreateTopic(t, b.Addr, "orders", 3, nil)
				cluster.Produce(t, b.Addr, keyedRecords(name, keys, perRound, next[name]), kgo.DefaultProduceTopic("orders"))
			}
			job := cluster.WriteFile(t, "aggregate.yaml", cluster.ClustersYAML(map[string]string{
				"east": east.Addr, "west": west.Addr, "central": central.Addr,
			})+fmt.Sprintf(`
jobs:
  - name: aggregate
    sources:
      - cluster: east
        topics: [orders]
      - cluster: west
        topics: [orders]
    targets: [central]
    rename: %s
    partitioning: preserve
    start: earliest
    tuning: {metadata_refresh: 1s}
`, tc.rename))
			m := cluster.StartMirror(t, job)
			for name, b := range sources {
				cluster.Produce(t, b.Addr, keyedRecords(name, keys, perRound, next[name]), kgo.DefaultProduceTopic("orders"))
			}

			wantPerTopic := map[string]int64{}
			for name := range sources {
				wantPerTopic[tc.target(name)] += 2 * perRound
			}
			for topic, n := range wantPerTopic {
				waitCount(t, central.Addr, topic, n, mirrorTimeout)
			}
			ids := map[string]string{"east": clusterID(t, east.Addr), "west": clusterID(t, west.Addr)}
			for topic := range wantPerTopic {
				checkKeyOrder(t, cluster.ReadTopic(t, central.Addr, topic, false).Records, ids, "orders")
			}
			for topic, n := range wantPerTopic {
				stableCount(t, central.Addr, topic, n, 2*time.Second)
			}
			f, ok, err := m.Flow("aggregate", "central")
			if err != nil || !ok {
				t.Fatalf("flow aggregate → central not shown: %v", err)
			}
			if f.Records != 4*perRound {
				t.Errorf("/v1/jobs shows %d records written, want %d", f.Records, 4*perRound)
			}
		})
	}
}

// checkKeyOrder checks mirrored records (ordered by partition and offset)
// of items: each (origin, key) has the sequence numbers 0, 1, 2, ... once
// each and in order, all in one partition; each record's provenance names
// its origin's cluster ID (ids), sourceTopic, and its own partition.
func checkKeyOrder(t *testing.T, recs []*kgo.Record, ids map[string]string, sourceTopic string) {
	t.Helper()
	type originKey struct{ origin, key string }
	next := map[originKey]int{}
	part := map[originKey]int32{}
	for _, r := range recs {
		it := parseItem(t, r.Value)
		ok := originKey{it.Origin, it.Key}
		if string(r.Key) != it.Key {
			t.Fatalf("%s-%d@%d: key %q but value %s", r.Topic, r.Partition, r.Offset, r.Key, it)
		}
		if p, seen := part[ok]; seen && p != r.Partition {
			t.Fatalf("%s: key %s of %s in partitions %d and %d", r.Topic, it.Key, it.Origin, p, r.Partition)
		}
		part[ok] = r.Partition
		if it.Seq != next[ok] {
			t.Fatalf("%s-%d@%d: %s follows sequence %d of (%s, %s): lost, repeated or out of order",
				r.Topic, r.Partition, r.Offset, it, next[ok]-1, it.Origin, it.Key)
		}
		next[ok]++
		p := provenance(t, r)
		if len(p.Path) != 1 || p.Path[0] != ids[it.Origin] {
			t.Fatalf("%s-%d@%d (%s): provenance path %v, want [%s]", r.Topic, r.Partition, r.Offset, it, p.Path, ids[it.Origin])
		}
		if p.Topic != sourceTopic || p.Partition != r.Partition {
			t.Fatalf("%s-%d@%d (%s): provenance says %s-%d, want %s-%d (partitioning preserve)",
				r.Topic, r.Partition, r.Offset, it, p.Topic, p.Partition, sourceTopic, r.Partition)
		}
	}
}
