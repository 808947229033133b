package mirror

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestMigrateFromKafka moves a consumer group from a legacy Kafka (kfake,
// in-process) to Tributary:
//
//  1. legacy holds 3,000 records in orders (3 partitions); group billing
//     consumes 1,000 of them there (a third from each partition) and
//     commits;
//  2. the worker mirrors legacy into Tributary (identity, preserve,
//     earliest) until lag is 0, and is stopped; legacy gets 1,000 more;
//  3. group audit consumes everything on legacy and commits: translating it
//     is refused, because the mirror has not acknowledged that far;
//  4. the worker runs again until lag is 0; `groups translate --write`
//     commits billing's offsets on Tributary;
//  5. a billing consumer on Tributary (reset policy: latest, so a missing
//     commit would show as a gap) continues: with what it consumed on
//     legacy, it has every record; repeats are counted and logged.
func TestMigrateFromKafka(t *testing.T) {
	const first, second, consumedOnLegacy, keys = 3000, 1000, 1000, 30
	legacyAddr := cluster.StartKfake(t, "legacy-kafka", 3, "orders")
	trib := cluster.StartBroker(t)

	next := map[string]int{}
	cluster.Produce(t, legacyAddr, keyedRecords("legacy", keys, first, next), kgo.DefaultProduceTopic("orders"))
	before := consumeGroup(t, legacyAddr, "billing", consumedOnLegacy, consumedOnLegacy/3+1, kgo.NewOffset().AtStart())
	if len(before) != consumedOnLegacy {
		t.Fatalf("billing consumed %d records on legacy, want %d", len(before), consumedOnLegacy)
	}

	job := cluster.WriteFile(t, "migrate.yaml", cluster.ClustersYAML(map[string]string{"legacy": legacyAddr, "tributary": trib.Addr})+`
jobs:
  - name: migrate
    sources:
      - cluster: legacy
        topics: ['.*']
    targets: [tributary]
    rename: identity
    partitioning: preserve
    start: earliest
    tuning: {metadata_refresh: 1s}
`)
	m := cluster.StartMirror(t, job)
	waitCount(t, trib.Addr, "orders", first, mirrorTimeout)
	waitLagZero(t, m, "migrate", "tributary", 3)
	m.Terminate(30 * time.Second)

	cluster.Produce(t, legacyAddr, keyedRecords("legacy", keys, second, next), kgo.DefaultProduceTopic("orders"))
	if got := consumeGroup(t, legacyAddr, "audit", first+second, first+second, kgo.NewOffset().AtStart()); len(got) != first+second {
		t.Fatalf("audit consumed %d records on legacy, want %d", len(got), first+second)
	}
	out, err := run(t, "groups", "translate", "--config", job, "--job", "migrate", "--group", "audit", "--write")
	if err == nil {
		t.Fatalf("translate of group audit, committed past the mirror's checkpoint, succeeded:\n%s", out)
	}
	if !strings.Contains(out, "has not yet acknowledged past group audit") {
		t.Fatalf("translate of group audit failed without saying the mirror is behind: %v\n%s", err, out)
	}
	t.Logf("translate refused as it should:\n%s", out)

	m.Restart()
	waitCount(t, trib.Addr, "orders", first+second, mirrorTimeout)
	waitLagZero(t, m, "migrate", "tributary", 3)
	out, err = run(t, "groups", "translate", "--config", job, "--job", "migrate", "--group", "billing", "--write")
	if err != nil {
		t.Fatalf("translate of group billing: %v\n%s", err, out)
	}
	if !strings.Contains(out, "committed") {
		t.Fatalf("translate --write of group billing did not say it committed:\n%s", out)
	}
	t.Logf("translate:\n%s", out)

	after := consumeGroup(t, trib.Addr, "billing", first+second-consumedOnLegacy, first+second, kgo.NewOffset().AtEnd())
	seen := map[string]int{}
	for _, v := range before {
		seen[v]++
	}
	repeats := 0
	for _, v := range after {
		if seen[v] > 0 {
			repeats++
		}
		seen[v]++
	}
	var missing []string
	for key, n := range next {
		for seq := 0; seq < n; seq++ {
			if v := (item{Origin: "legacy", Key: key, Seq: seq}).String(); seen[v] == 0 {
				missing = append(missing, v)
			}
		}
	}
	if len(missing) > 0 {
		t.Fatalf("after the move, %d records were consumed neither on legacy nor on Tributary (a gap), e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	t.Logf("billing: %d records on legacy, %d on Tributary, %d repeated", len(before), len(after), repeats)
}

// consumeGroup consumes orders as group (starting where it committed, or at
// reset) until it has n records, taking at most perPartition from each
// partition (a prefix of what it has there), commits exactly the records
// it returns, and leaves the group. It returns their values in the order
// consumed.
func consumeGroup(t *testing.T, addr, group string, n, perPartition int, reset kgo.Offset) []string {
	t.Helper()
	cl := cluster.Dial(t, addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(reset), kgo.FetchMaxWait(500*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	defer cancel()
	var took []*kgo.Record
	var values []string
	taken := map[int32]int{}
	for len(took) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group %s on %s: consumed %d of %d records before %v", group, addr, len(took), n, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("group %s on %s: %s-%d: %v", group, addr, fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if len(took) < n && taken[r.Partition] < perPartition {
				taken[r.Partition]++
				took = append(took, r)
				values = append(values, string(r.Value))
			}
		})
	}
	if err := cl.CommitRecords(ctx, took...); err != nil {
		t.Fatalf("group %s on %s: commit: %v", group, addr, err)
	}
	return values
}

// waitLagZero waits until the worker reports job's flow into target with
// lag 0 over parts source partitions.
func waitLagZero(t *testing.T, m *cluster.Mirror, job, target string, parts int) {
	t.Helper()
	var last cluster.FlowStatus
	cluster.Eventually(t, mirrorTimeout, fmt.Sprintf("lag 0 for %s → %s", job, target), func() bool {
		f, ok, err := m.Flow(job, target)
		last = f
		return err == nil && ok && len(f.PartitionLag) == parts && f.LagRecords == 0
	})
	t.Logf("%s → %s: lag 0, %d records written by this worker", job, target, last.Records)
}
