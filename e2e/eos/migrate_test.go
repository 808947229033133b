package eos

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestMigrateExactlyOnce moves a consumer group from a legacy Kafka (kfake,
// in-process) to Tributary through an exactly-once mirror that is
// SIGKILLed once before the switch:
//
//  1. legacy holds 3,000 records in orders (3 partitions); group billing
//     consumes 999 of them there (333 of each partition) and commits;
//  2. the worker mirrors legacy into Tributary with delivery: exactly-once;
//     it is SIGKILLed mid-stream (while a transaction is open, as far as
//     the test can arrange) and restarted, and legacy gets 1,000 more
//     records meanwhile;
//  3. once the mirror's lag is 0, `groups translate --write` commits
//     billing's offsets on Tributary;
//  4. a billing consumer on Tributary (read_committed; reset policy latest,
//     so a missing commit would show as a gap) reads to the end: with what
//     it consumed on legacy, it has every record exactly once — no gap and
//     no repeat.
func TestMigrateExactlyOnce(t *testing.T) {
	const first, second, consumedOnLegacy, keys = 3000, 1000, 999, 30
	legacyAddr := cluster.StartKfake(t, "legacy-kafka", 3, "orders")
	trib := cluster.StartBroker(t)

	next := map[string]int{}
	cluster.Produce(t, legacyAddr, keyed("legacy", keys, first, next), kgo.DefaultProduceTopic("orders"))
	before := consumeGroup(t, legacyAddr, "billing", consumedOnLegacy/3, kgo.NewOffset().AtStart())
	if len(before) != consumedOnLegacy {
		t.Fatalf("billing consumed %d records on legacy, want %d", len(before), consumedOnLegacy)
	}

	job := cluster.WriteFile(t, "migrate.yaml", cluster.ClustersYAML(map[string]string{"legacy": legacyAddr, "tributary": trib.Addr})+`
jobs:
  - name: migrate
    sources:
      - cluster: legacy
        topics: [orders]
    targets: [tributary]
    rename: identity
    partitioning: preserve
    start: earliest
    delivery: exactly-once
    tuning: {metadata_refresh: 1s, max_retry_backoff: 1s, max_batch_records: 100}
`)
	m := cluster.StartMirror(t, job)
	waitEndAtLeast(t, trib.Addr, "orders", 1, mirrorTimeout)
	open := awaitOngoing(trib.Addr, transactionalID("migrate", "tributary"), 3*time.Second)
	m.Kill()
	t.Logf("SIGKILLed the worker (transaction open: %v)", open)
	cluster.Produce(t, legacyAddr, keyed("legacy", keys, second, next), kgo.DefaultProduceTopic("orders"))
	m.Restart()
	waitLagZero(t, m, "migrate", "tributary", 3)

	out, err := runTributary(t, "groups", "translate", "--config", job, "--job", "migrate", "--group", "billing", "--write")
	if err != nil {
		t.Fatalf("translate of group billing: %v\n%s", err, out)
	}
	if !strings.Contains(out, "committed") {
		t.Fatalf("translate --write of group billing did not say it committed:\n%s", out)
	}
	t.Logf("translate:\n%s", out)
	all := cluster.ReadTopic(t, trib.Addr, "orders", false)
	t.Logf("tributary's orders, read_uncommitted: %d records, %d abort markers", len(all.Records), all.Aborts)

	after := consumeGroup(t, trib.Addr, "billing", 0, kgo.NewOffset().AtEnd(), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string]int{}
	var repeats []string
	for _, v := range append(before, after...) {
		if seen[v]++; seen[v] == 2 {
			repeats = append(repeats, v)
		}
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
		t.Errorf("after the move, %d records were consumed neither on legacy nor on Tributary (a gap), e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	if len(repeats) > 0 {
		t.Errorf("after the move, %d records were consumed twice (a repeat), e.g. %v", len(repeats), repeats[:min(5, len(repeats))])
	}
	if len(before)+len(after) != first+second {
		t.Errorf("billing consumed %d records on legacy and %d on Tributary, want %d in all", len(before), len(after), first+second)
	}
	t.Logf("billing: %d records on legacy, %d on Tributary: no gap, no repeat", len(before), len(after))
	m.Terminate(60 * time.Second)
}

// consumeGroup consumes orders on addr as group (from its committed
// offsets, or reset) and commits what it returns. With perPartition > 0 it
// takes exactly that many records of each of the 3 partitions; with 0 it
// reads every partition to its end (the last stable offset as of the
// call). It returns the item strings (origin|key|seq) in the order
// consumed.
func consumeGroup(t *testing.T, addr, group string, perPartition int, reset kgo.Offset, opts ...kgo.Opt) []string {
	t.Helper()
	var end map[int32]int64
	if perPartition == 0 {
		var err error
		if end, err = cluster.EndOffsets(addr, "orders", true); err != nil {
			t.Fatal(err)
		}
	}
	cl := cluster.Dial(t, addr, append([]kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(reset), kgo.FetchMaxWait(500 * time.Millisecond), kgo.KeepControlRecords()}, opts...)...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	defer cancel()
	var took []*kgo.Record
	var values []string
	taken := map[int32]int{}
	pos := map[int32]int64{}
	done := func() bool {
		for p := int32(0); p < 3; p++ {
			if perPartition > 0 && taken[p] < perPartition {
				return false
			}
			if perPartition == 0 && end[p] > 0 && pos[p] < end[p] {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group %s on %s: consumed %v (positions %v, ends %v) before %v", group, addr, taken, pos, end, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("group %s on %s: %s-%d: %v", group, addr, fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			pos[r.Partition] = r.Offset + 1
			if r.Attrs.IsControl() || (perPartition > 0 && taken[r.Partition] >= perPartition) ||
				(perPartition == 0 && r.Offset >= end[r.Partition]) {
				return
			}
			it, err := parseItem(r.Value)
			if err != nil {
				t.Fatalf("%s-%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			taken[r.Partition]++
			took = append(took, r)
			values = append(values, it.String())
		})
	}
	if len(took) > 0 {
		if err := cl.CommitRecords(ctx, took...); err != nil {
			t.Fatalf("group %s on %s: commit: %v", group, addr, err)
		}
	}
	return values
}

// runTributary runs the tributary binary with args and returns its
// combined output and exit error.
func runTributary(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, cluster.Binary(t), args...).CombinedOutput()
	return string(out), err
}
