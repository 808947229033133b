package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// producePaced produces n records "i" (i = 0..n-1) to topic at about rate
// records per second, in small synchronous batches; it returns when done
// or ctx ends, reporting the first error on errc.
func producePaced(ctx context.Context, t testing.TB, addr, topic string, n, rate int) error {
	cl := cluster.Dial(t, addr, kgo.ProducerLinger(0))
	defer cl.Close()
	const batch = 500
	interval := time.Duration(float64(time.Second) * batch / float64(rate))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; i < n; i += batch {
		recs := make([]*kgo.Record, 0, batch)
		for j := i; j < i+batch && j < n; j++ {
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(j % 97)), Value: []byte(strconv.Itoa(j))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("produce records %d..: %w", i, err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// TestKafkaToJetStreamSIGKILL SIGKILLs the worker three times while
// 100,000 records stream from Tributary into JetStream at ~30,000 records/s:
// the stream must hold each record exactly once, and JetStream must have
// dropped replayed duplicates (so the deduplication is what kept it exact).
func TestKafkaToJetStreamSIGKILL(t *testing.T) {
	ns := cluster.StartNATS(t)
	k := cluster.StartBroker(t)
	cluster.CreateTopic(t, k.Addr, "orders", 3, nil)
	_, js := jetStream(t, ns.URL)
	cfg := cluster.WriteFile(t, "k2js.yaml", fmt.Sprintf(`clusters:
  kafka: {bootstrap: %q}
  events: {nats: {servers: [%q]}}
jobs:
  - name: orders-to-js
    sources: [{cluster: kafka, topics: [orders]}]
    targets: [events]
    delivery: exactly-once
    nats: {stream: ORDERS, subjects: ["orders.>"], create_stream: true, subject: "orders.{key}"}
    tuning: {max_batch_records: 20000, linger: 500ms}   # long batches: a SIGKILL lands between publish and checkpoint
`, k.Addr, ns.URL))
	const n = 100_000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var prodErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		prodErr = producePaced(ctx, t, k.Addr, "orders", n, 30_000)
	}()
	defer wg.Wait()

	m := cluster.StartMirror(t, cfg)
	var dups int64
	for i, at := range []int64{15_000, 40_000, 65_000} {
		cluster.Eventually(t, mirrorTimeout, fmt.Sprintf("%d messages in ORDERS", at), func() bool { return streamMsgs(js, "ORDERS") >= at })
		// Kill while messages are stored but not yet checkpointed, so the
		// restarted worker replays them (the best effort of a poll).
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && streamMsgs(js, "ORDERS") <= checkpointed(t, js, "orders-to-js/events") {
		}
		dups += duplicates(t, m)
		m.Signal(syscall.SIGKILL)
		if _, ok := m.Wait(30 * time.Second); !ok {
			t.Fatalf("worker did not die of SIGKILL %d", i+1)
		}
		m.Restart()
	}
	wg.Wait()
	if prodErr != nil {
		t.Fatal(prodErr)
	}
	cluster.Eventually(t, mirrorTimeout, "100,000 messages in ORDERS", func() bool { return streamMsgs(js, "ORDERS") >= n })
	// Let the worker checkpoint, then stop it cleanly and count.
	flowRunning(t, m, "orders-to-js", "events")
	dups += duplicates(t, m)
	m.Terminate(time.Minute)

	if got := streamMsgs(js, "ORDERS"); got != n {
		t.Fatalf("ORDERS holds %d messages, want exactly %d", got, n)
	}
	seen := make([]int, n)
	for _, msg := range readStream(t, js, "ORDERS", n) {
		i, err := strconv.Atoi(string(msg.Data()))
		if err != nil || i < 0 || i >= n {
			t.Fatalf("unexpected message %q on %s", msg.Data(), msg.Subject())
		}
		seen[i]++
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("record %d is in ORDERS %d times", i, c)
		}
	}
	t.Logf("JetStream dropped %d duplicates over 3 SIGKILLs", dups)
	if dups == 0 {
		t.Fatalf("no PubAck had the duplicate flag: the SIGKILLs replayed nothing, so the test did not exercise deduplication")
	}
}

// TestJetStreamToKafkaSIGKILL SIGKILLs the worker three times while it
// copies a stream into Tributary: nothing is lost.
func TestJetStreamToKafkaSIGKILL(t *testing.T) {
	ns := cluster.StartNATS(t)
	k := cluster.StartBroker(t)
	cluster.CreateTopic(t, k.Addr, "orders", 3, nil)
	_, js := jetStream(t, ns.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	const n = 60_000
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync(fmt.Sprintf("orders.%d", i%50), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishing to ORDERS did not complete")
	}
	cfg := cluster.WriteFile(t, "js2k.yaml", fmt.Sprintf(`clusters:
  events: {nats: {servers: [%q]}}
  kafka: {bootstrap: %q}
jobs:
  - name: orders-from-js
    sources: [{cluster: events, topics: [orders]}]
    targets: [kafka]
    partitioning: key-hash
    nats: {stream: ORDERS, topic: orders, durable: tributary-orders}
    tuning: {max_batch_records: 2000}
`, ns.URL, k.Addr))
	m := cluster.StartMirror(t, cfg)
	for i, at := range []int64{10_000, 25_000, 40_000} {
		waitAtLeast(t, k.Addr, "orders", at, mirrorTimeout)
		m.Signal(syscall.SIGKILL)
		if _, ok := m.Wait(30 * time.Second); !ok {
			t.Fatalf("worker did not die of SIGKILL %d", i+1)
		}
		m.Restart()
	}
	total := waitAtLeast(t, k.Addr, "orders", n, mirrorTimeout)
	flowRunning(t, m, "orders-from-js", "kafka")
	m.Terminate(time.Minute)
	total, _ = cluster.RecordCount(k.Addr, "orders")
	seen := make([]int, n)
	for _, r := range readAll(t, k.Addr, "orders", int(total)) {
		i, err := strconv.Atoi(string(r.Value))
		if err != nil || i < 0 || i >= n {
			t.Fatalf("unexpected record %q", r.Value)
		}
		seen[i]++
	}
	lost := 0
	for _, c := range seen {
		if c == 0 {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d messages are missing from Kafka", lost, n)
	}
	t.Logf("Kafka holds %d records for %d messages (%d repeated after SIGKILLs)", total, n, total-n)
}

// checkpointed is the number of records a flow's checkpoint in the
// bucket tributary_checkpoints covers (its next offsets summed: the
// source topic starts at offset 0), or 0 without one.
func checkpointed(t testing.TB, js jetstream.JetStream, flow string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), cluster.RequestTimeout)
	defer cancel()
	kv, err := js.KeyValue(ctx, "tributary_checkpoints")
	if err != nil {
		return 0
	}
	e, err := kv.Get(ctx, flow)
	if err != nil {
		return 0
	}
	var cp struct {
		Positions []struct {
			Offset int64 `json:"offset"`
		} `json:"positions"`
	}
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		t.Fatalf("checkpoint of %s: %v", flow, err)
	}
	var n int64
	for _, p := range cp.Positions {
		n += p.Offset
	}
	return n
}
