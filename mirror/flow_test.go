package mirror

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func pattern(t *testing.T, p string) *regexp.Regexp {
	t.Helper()
	re, err := CompilePattern(p)
	if err != nil {
		t.Fatal(err)
	}
	return re
}

func testSpec(t *testing.T, name string, sources []string, topic string, targets ...string) JobSpec {
	spec := JobSpec{Name: name, Targets: targets, TopicSync: TopicSync{Create: true, AddPartitions: true},
		Tuning: Tuning{Linger: time.Millisecond, RetryBackoff: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond}}
	for _, s := range sources {
		spec.Sources = append(spec.Sources, SourceSpec{Cluster: s, Include: []*regexp.Regexp{pattern(t, topic)}})
	}
	return spec
}

// runJob runs a job in the background and returns a stop function that
// cancels it and waits for it to drain.
func runJob(t *testing.T, spec JobSpec, ep Endpoints) (*Job, func() error) {
	t.Helper()
	j := NewJob(spec, ep, Options{Logger: quietLogger(), Metrics: NewMetrics(nil)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("job did not stop within 10s")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return j, stop
}

func rec(key, value string) Record {
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	return Record{Key: k, Value: []byte(value), Timestamp: time.UnixMilli(1_700_000_000_000)}
}

// TestAggregation mirrors orders from east and west into central with
// identity names: every record arrives once, in order per source
// partition, with provenance naming its origin and source offset.
func TestAggregation(t *testing.T) {
	east, west, central := newMemCluster("id-east"), newMemCluster("id-west"), newMemCluster("id-central")
	for _, c := range []*memCluster{east, west} {
		c.createTopic("orders", 2)
		for i := 0; i < 500; i++ {
			c.produce("orders", int32(i%2), rec(fmt.Sprintf("k%d", i%7), fmt.Sprintf("%s-%d", c.id, i)))
		}
	}
	spec := testSpec(t, "agg", []string{"east", "west"}, "orders", "central")
	_, stop := runJob(t, spec, memEndpoints{"east": east, "west": west, "central": central})
	if !waitFor(10*time.Second, func() bool { return central.count("orders") == 1000 }) {
		t.Fatalf("central has %d records, want 1000", central.count("orders"))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		next := map[string]int64{}
		for _, r := range central.records("orders", p) {
			prov := ProvenanceOf(r.Headers)
			if prov == nil {
				t.Fatalf("record without provenance: %+v", r)
			}
			if prov.Partition != p || prov.Topic != "orders" || len(prov.Path) != 1 {
				t.Fatalf("bad provenance %+v in partition %d", prov, p)
			}
			src := prov.Origin()
			if prov.Offset < next[src] {
				t.Fatalf("partition %d: %s offset %d after %d: order broken", p, src, prov.Offset, next[src])
			}
			next[src] = prov.Offset + 1
		}
	}
	if n := central.count("orders"); n != 1000 {
		t.Fatalf("central has %d records after stop, want 1000", n)
	}
}

// TestRewindOnSinkError fails writes midway (some records of the batch
// written, then an error): nothing is lost, the first occurrence of each
// record keeps source order, and no checkpoint is ever written for a failed
// batch.
func TestRewindOnSinkError(t *testing.T) {
	east, central := newMemCluster("id-east"), newMemCluster("id-central")
	east.createTopic("orders", 1)
	spec := testSpec(t, "rewind", []string{"east"}, "orders", "central")
	spec.Tuning.MaxBatchRecords = 50
	central.failWrite = func(n int) (int, error) {
		if n%3 == 0 {
			return 20, errInjected
		}
		return 0, nil
	}
	_, stop := runJob(t, spec, memEndpoints{"east": east, "central": central})
	for i := 0; i < 2000; i++ {
		east.produce("orders", 0, rec("", fmt.Sprint(i)))
	}
	seen := func() map[string]bool {
		m := map[string]bool{}
		for _, r := range central.records("orders", 0) {
			m[string(r.Value)] = true
		}
		return m
	}
	flow := FlowID("rewind", "central")
	position := func() int64 {
		cp, _ := central.LoadCheckpoint(context.Background(), flow)
		if cp == nil {
			return -1
		}
		return cp.Positions[SourcePartition{Cluster: "east", Topic: "orders", Partition: 0}]
	}
	// Every record is on the target, and the last write (which may have
	// failed after writing some) was repeated until it succeeded.
	if !waitFor(20*time.Second, func() bool { return len(seen()) == 2000 && position() == 2000 }) {
		t.Fatalf("central has %d distinct records and checkpoint %d, want 2000 and 2000", len(seen()), position())
	}
	stop()
	first := map[string]bool{}
	last := -1
	for _, r := range central.records("orders", 0) {
		v := string(r.Value)
		if first[v] {
			continue
		}
		first[v] = true
		var n int
		fmt.Sscan(v, &n)
		if n != last+1 {
			t.Fatalf("first occurrences out of order: %d after %d", n, last)
		}
		last = n
	}
	if central.count("orders") == 2000 {
		t.Fatalf("no record was repeated: the injected failures did not bite")
	}
}

// TestActiveActiveNoLoop runs east->west and west->east with identity
// names: each record exists exactly once in each cluster.
func TestActiveActiveNoLoop(t *testing.T) {
	east, west := newMemCluster("id-east"), newMemCluster("id-west")
	east.createTopic("orders", 1)
	west.createTopic("orders", 1)
	ep := memEndpoints{"east": east, "west": west}
	_, stop1 := runJob(t, testSpec(t, "e2w", []string{"east"}, "orders", "west"), ep)
	_, stop2 := runJob(t, testSpec(t, "w2e", []string{"west"}, "orders", "east"), ep)
	for i := 0; i < 300; i++ {
		east.produce("orders", 0, rec("", fmt.Sprintf("east-%d", i)))
		west.produce("orders", 0, rec("", fmt.Sprintf("west-%d", i)))
	}
	if !waitFor(10*time.Second, func() bool { return east.count("orders") == 600 && west.count("orders") == 600 }) {
		t.Fatalf("east %d west %d, want 600 each", east.count("orders"), west.count("orders"))
	}
	// Let the flows see the mirrored records (they must be dropped as loops).
	j1, j2 := stop1(), stop2()
	if j1 != nil || j2 != nil {
		t.Fatal(j1, j2)
	}
	for _, c := range []*memCluster{east, west} {
		counts := map[string]int{}
		for _, r := range c.records("orders", 0) {
			counts[string(r.Value)]++
		}
		if len(counts) != 600 || c.count("orders") != 600 {
			t.Fatalf("%s: %d distinct of %d records, want 600 of 600", c.id, len(counts), c.count("orders"))
		}
	}
}

// TestSameClusterRefused refuses a flow whose source and target report one
// cluster ID.
func TestSameClusterRefused(t *testing.T) {
	a := newMemCluster("same")
	b := newMemCluster("same")
	a.createTopic("orders", 1)
	j := NewJob(testSpec(t, "self", []string{"a"}, "orders", "b"), memEndpoints{"a": a, "b": b}, Options{Logger: quietLogger()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := j.Run(ctx)
	if err == nil || !regexp.MustCompile(`same cluster`).MatchString(err.Error()) {
		t.Fatalf("Run = %v, want a same-cluster refusal", err)
	}
	if st := j.Status().Flows[0]; st.State != "failed" {
		t.Fatalf("state %q, want failed", st.State)
	}
}

// TestOversized applies each oversized-record policy.
func TestOversized(t *testing.T) {
	big := Record{Key: []byte("big"), Value: make([]byte, 5000), Timestamp: time.Now()}
	for _, tc := range []struct {
		kind OversizedKind
		want int // records in orders on the target
		dlq  int
	}{{OversizedSkip, 2, 0}, {OversizedDeadLetter, 2, 1}, {OversizedFail, 1, 0}} {
		t.Run(fmt.Sprint(tc.kind), func(t *testing.T) {
			east, central := newMemCluster("id-east"), newMemCluster("id-central")
			central.maxBytes = 1000
			east.createTopic("orders", 1)
			east.produce("orders", 0, rec("a", "small"), big, rec("b", "small"))
			spec := testSpec(t, "big", []string{"east"}, "orders", "central")
			spec.Oversized = Oversized{Kind: tc.kind, DeadLetterTopic: "orders.dlq"}
			spec.Tuning.MaxBatchRecords = 1
			j, stop := runJob(t, spec, memEndpoints{"east": east, "central": central})
			if tc.kind == OversizedFail {
				if !waitFor(10*time.Second, func() bool {
					return j.Status().Flows[0].LastError != "" && central.count("orders") == 1
				}) {
					t.Fatalf("flow did not fail on the oversized record: %+v", j.Status())
				}
				stop()
				if !regexp.MustCompile(`too large`).MatchString(j.Status().Flows[0].LastError) {
					t.Fatalf("last error %q", j.Status().Flows[0].LastError)
				}
				return
			}
			if !waitFor(10*time.Second, func() bool { return central.count("orders") == tc.want && central.count("orders.dlq") == tc.dlq }) {
				t.Fatalf("orders %d dlq %d, want %d and %d", central.count("orders"), central.count("orders.dlq"), tc.want, tc.dlq)
			}
			stop()
			if tc.dlq > 0 {
				d := central.records("orders.dlq", 0)[0]
				if string(d.Key) != "big" || d.Value != nil || ProvenanceOf(d.Headers) == nil {
					t.Fatalf("dead letter %+v", d)
				}
			}
		})
	}
}

// TestBackpressure blocks the sink: the flow stops reading once its
// in-flight budget is used, however large the backlog, and catches up once
// the sink moves again.
func TestBackpressure(t *testing.T) {
	east, central := newMemCluster("id-east"), newMemCluster("id-central")
	east.createTopic("orders", 1)
	const records, size, budget = 20000, 100, 20000
	for i := 0; i < records; i++ {
		east.produce("orders", 0, Record{Value: make([]byte, size)})
	}
	block := make(chan struct{})
	central.mu.Lock()
	central.blockWrites = block
	central.mu.Unlock()
	spec := testSpec(t, "bp", []string{"east"}, "orders", "central")
	spec.Tuning.MaxInFlightBytes = budget
	_, stop := runJob(t, spec, memEndpoints{"east": east, "central": central})
	polled := func() int {
		east.mu.Lock()
		defer east.mu.Unlock()
		return east.polled
	}
	// Reading stops: the count of polled records stays put.
	var last int
	if !waitFor(10*time.Second, func() bool {
		n := polled()
		stable := n > 0 && n == last
		last = n
		time.Sleep(20 * time.Millisecond)
		return stable && n == polled()
	}) {
		t.Fatalf("reading did not stop while the sink was blocked (polled %d)", polled())
	}
	// At most the budget, plus the chunk a reader holds while it waits for
	// budget (a Poll returns at most 100 records here).
	if max := budget/size + 100; last > max {
		t.Fatalf("read %d records of %d bytes with the sink blocked; the budget allows about %d", last, size, max)
	}
	close(block)
	if !waitFor(20*time.Second, func() bool { return central.count("orders") == records }) {
		t.Fatalf("central has %d, want %d", central.count("orders"), records)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// assertNoGap fails when a source offset below the flow's checkpoint is
// missing on the target: the checkpoint moved past records never written.
func assertNoGap(t *testing.T, central *memCluster, flow string) {
	t.Helper()
	cp, _ := central.LoadCheckpoint(context.Background(), flow)
	if cp == nil {
		t.Fatal("no checkpoint")
	}
	have := map[int64]bool{}
	for _, r := range central.records("orders", 0) {
		have[ProvenanceOf(r.Headers).Offset] = true
	}
	pos := cp.Positions[SourcePartition{Cluster: "east", Topic: "orders", Partition: 0}]
	for o := int64(0); o < pos; o++ {
		if !have[o] {
			t.Fatalf("offset %d is below the checkpoint (%d) but not on the target", o, pos)
		}
	}
}

// TestStopWhilePaused stops a paused flow that holds a batch: the batch is
// not written, and neither is anything read after it, so the checkpoint
// never passes a record the target does not have.
func TestStopWhilePaused(t *testing.T) {
	east, central := newMemCluster("id-east"), newMemCluster("id-central")
	east.createTopic("orders", 1)
	for i := 0; i < 200; i++ {
		east.produce("orders", 0, rec("", fmt.Sprintf("v%d", i)))
	}
	spec := testSpec(t, "pause", []string{"east"}, "orders", "central")
	spec.Tuning.MaxBatchRecords = 50
	j, stop := runJob(t, spec, memEndpoints{"east": east, "central": central})
	if !waitFor(10*time.Second, func() bool { return central.count("orders") == 200 }) {
		t.Fatalf("central has %d, want 200", central.count("orders"))
	}
	j.Pause()
	for i := 200; i < 400; i++ {
		east.produce("orders", 0, rec("", fmt.Sprintf("v%d", i)))
	}
	// "paused" is set while the writer holds a batch it may not write.
	if !waitFor(10*time.Second, func() bool { return j.Status().Flows[0].State == "paused" }) {
		t.Fatalf("flow never paused: %+v", j.Status())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertNoGap(t, central, FlowID("pause", "central"))
	if n := central.count("orders"); n != 200 {
		t.Fatalf("a paused flow wrote %d records while stopping; want the 200 from before the pause", n)
	}
}

// TestStopWhileRateLimited stops a flow waiting on its byte rate: nothing
// below the checkpoint is missing on the target.
func TestStopWhileRateLimited(t *testing.T) {
	east, central := newMemCluster("id-east"), newMemCluster("id-central")
	east.createTopic("orders", 1)
	for i := 0; i < 500; i++ {
		east.produce("orders", 0, rec("", fmt.Sprintf("%0100d", i)))
	}
	spec := testSpec(t, "rate", []string{"east"}, "orders", "central")
	spec.RateLimitBytes = 20000 // every batch (a poll's 100 records, ~13 KB) waits on the limit
	spec.Tuning.MaxBatchBytes = 2000
	_, stop := runJob(t, spec, memEndpoints{"east": east, "central": central})
	if !waitFor(10*time.Second, func() bool { return central.count("orders") > 0 }) {
		t.Fatal("nothing mirrored")
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stopping took %v: draining must not wait on the rate limit", d)
	}
	assertNoGap(t, central, FlowID("rate", "central"))
}
