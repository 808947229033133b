package nats

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestCoreNATS mirrors core NATS → Kafka and Kafka → core NATS. Core NATS
// is at-most-once (what nobody is subscribed to is gone), so each side
// starts only once the other listens; then every message must arrive.
func TestCoreNATS(t *testing.T) {
	ns := cluster.StartNATS(t)
	k := cluster.StartBroker(t)
	cluster.CreateTopic(t, k.Addr, "in", 2, nil)
	cluster.CreateTopic(t, k.Addr, "out", 2, nil)
	nc, _ := jetStream(t, ns.URL)

	// Kafka → core NATS: a subscriber listens before the worker starts.
	var mu sync.Mutex
	got := map[string]int{}
	var keys []string
	sub, err := nc.Subscribe("out.>", func(msg *nats.Msg) {
		mu.Lock()
		got[string(msg.Data)]++
		keys = append(keys, msg.Header.Get("Tributary-Key"))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	cfg := cluster.WriteFile(t, "core.yaml", fmt.Sprintf(`clusters:
  kafka: {bootstrap: %q}
  events: {nats: {servers: [%q]}}
jobs:
  - name: from-core
    sources: [{cluster: events, topics: [in]}]
    targets: [kafka]
    partitioning: key-hash
    nats: {subjects: ["in.>"], topic: in}
  - name: to-core
    sources: [{cluster: kafka, topics: [out]}]
    targets: [events]
    nats: {subject: "out.{key}"}
`, k.Addr, ns.URL))
	m := cluster.StartMirror(t, cfg)
	flowRunning(t, m, "from-core", "kafka")
	flowRunning(t, m, "to-core", "events")
	cluster.Eventually(t, mirrorTimeout, "the worker subscribed", func() bool {
		return strings.Contains(m.Output(), "subscribed to core NATS")
	})

	const n = 2000
	for i := 0; i < n; i++ {
		if err := nc.Publish(fmt.Sprintf("in.k%d", i%10), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	out := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, &kgo.Record{Topic: "out", Key: []byte(fmt.Sprintf("key %d", i%7)), Value: []byte(strconv.Itoa(i))})
	}
	cl := cluster.Dial(t, k.Addr, kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), cluster.RequestTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	waitAtLeast(t, k.Addr, "in", n, mirrorTimeout)
	seen := map[string]int{}
	for _, r := range readAll(t, k.Addr, "in", n) {
		seen[string(r.Value)]++
		if want := fmt.Sprintf("in.k%s", mustMod(r.Value, 10)); string(r.Key) != want {
			t.Fatalf("record %s has key %q, want its subject %q", r.Value, r.Key, want)
		}
	}
	cluster.Eventually(t, mirrorTimeout, fmt.Sprintf("%d messages on out.>", n), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	})
	m.Terminate(time.Minute)
	for i := 0; i < n; i++ {
		if seen[strconv.Itoa(i)] != 1 {
			t.Errorf("message %d is in Kafka %d times", i, seen[strconv.Itoa(i)])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if keys[0] == "" || !strings.HasPrefix(keys[0], "key ") {
		t.Errorf("Tributary-Key header %q", keys[0])
	}
}

func mustMod(v []byte, n int) string {
	i, _ := strconv.Atoi(string(v))
	return strconv.Itoa(i % n)
}
