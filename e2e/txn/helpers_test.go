package txn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// opTimeout bounds one client operation so that a broker that stops
// answering fails the test instead of hanging it.
const opTimeout = 60 * time.Second

// sentinel is the value of the record that ends a visibility check.
const sentinel = "sentinel"

// abortInterval is the broker's --transaction-abort-interval in these
// tests, so timeouts act within a second instead of Kafka's 10 s.
const abortInterval = "200ms"

func startBroker(t *testing.T, extra ...string) *cluster.Broker {
	t.Helper()
	return cluster.StartBroker(t, append([]string{"--transaction-abort-interval", abortInterval}, extra...)...)
}

func opCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// createTopics creates single-partition topics.
func createTopics(t *testing.T, addr string, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(cluster.Client(t, addr))
	resp, err := adm.CreateTopics(opCtx(t), 1, 1, nil, topics...)
	if err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create topic %s: %v", r.Topic, r.Err)
		}
	}
}

// produceSentinel appends the sentinel record without a transaction.
func produceSentinel(t *testing.T, addr, topic string) {
	t.Helper()
	cl := cluster.Client(t, addr, kgo.DefaultProduceTopic(topic))
	if err := cl.ProduceSync(opCtx(t), kgo.StringRecord(sentinel)).FirstErr(); err != nil {
		t.Fatalf("produce sentinel to %s: %v", topic, err)
	}
	cl.Close()
}

// readUntilSentinel reads partition 0 of topic from the start with the
// given isolation and returns the values before the first sentinel.
func readUntilSentinel(t *testing.T, addr, topic string, committed bool) []string {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := cluster.Client(t, addr, kgo.FetchIsolationLevel(iso),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	defer cl.Close()
	ctx := opCtx(t)
	var out []string
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s (read_committed=%v): no sentinel after %v; read %d values: %v", topic, committed, opTimeout, len(out), out)
		}
		fs.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s-%d: %v", tp, p, err)
			}
		})
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if done {
				return
			}
			if string(r.Value) == sentinel {
				done = true
				return
			}
			out = append(out, string(r.Value))
		})
		if done {
			return out
		}
	}
}

// describe returns the coordinator's view of a transactional ID.
func describe(t *testing.T, addr, id string) kadm.DescribedTransaction {
	t.Helper()
	adm := kadm.NewClient(cluster.Client(t, addr))
	d, err := adm.DescribeTransactions(opCtx(t), id)
	if err != nil {
		t.Fatalf("describe transaction %s: %v", id, err)
	}
	dt, ok := d[id]
	if !ok || dt.Err != nil {
		t.Fatalf("describe transaction %s: %+v", id, dt)
	}
	return dt
}

// values returns prefix-0 .. prefix-(n-1).
func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func requireValues(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !equalStrings(got, want) {
		t.Fatalf("%s: got %d values %v, want %d values %v", what, len(got), got, len(want), want)
	}
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// syncWriter is a goroutine-safe bytes buffer for a child's stderr.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
