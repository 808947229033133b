package kafka

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/mirror"
)

// peer is a Kafka-protocol cluster a test talks to.
type peer struct {
	name      string
	addrs     []string
	clusterID string
	ours      bool // Tributary's broker (no compaction)
}

// goroutines returns the stacks of all goroutines but the one process-wide
// meter goroutine of go-metrics (which sarama uses), started once and
// never stopped.
func goroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "go-metrics.(*meterArbiter)") {
			out = append(out, g)
		}
	}
	return out
}

// checkGoroutines fails t if, after every cleanup registered later has run,
// more goroutines remain than when it was called. Call it first.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := len(goroutines())
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			gs := goroutines()
			if len(gs) <= before {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines left running (%d before):\n%s", len(gs), before, strings.Join(gs, "\n\n"))
				return
			}
			time.Sleep(20 * time.Millisecond) // polling, not synchronisation
		}
	})
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startBroker starts an in-process Tributary broker on loopback.
func startBroker(t testing.TB) peer {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.AutoCreateTopics = true
	cfg.Logger = quietLogger()
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
	})
	return peer{name: "tributary", addrs: []string{b.Addr()}, clusterID: b.ClusterID(), ours: true}
}

// startKfake starts an in-process kfake cluster on loopback.
func startKfake(t *testing.T, opts ...kfake.Opt) peer {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.ClusterID("kfake-cluster"), kfake.AllowAutoTopicCreation()}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return peer{name: "kfake", addrs: c.ListenAddrs(), clusterID: "kfake-cluster"}
}

// peers returns one Tributary broker and one kfake cluster.
func peers(t *testing.T) []peer { return []peer{startBroker(t), startKfake(t)} }

func testConfig(p peer) Config {
	return Config{Name: p.name, Bootstrap: p.addrs, Logger: quietLogger()}
}

func newTestSource(t *testing.T, p peer) *Source {
	t.Helper()
	s, err := NewSource(testConfig(p))
	if err != nil {
		t.Fatalf("new source on %s: %v", p.name, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close source: %v", err)
		}
	})
	return s
}

func newTestSink(t *testing.T, p peer, opts SinkOptions) *Sink {
	t.Helper()
	s, err := NewSink(testConfig(p), opts)
	if err != nil {
		t.Fatalf("new sink on %s: %v", p.name, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close sink: %v", err)
		}
	})
	return s
}

// newFranz returns a franz-go client of p, closed at cleanup.
func newFranz(t *testing.T, p peer, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(p.addrs...)}, opts...)...)
	if err != nil {
		t.Fatalf("franz-go client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates a topic through a Sink's admin path.
func createTopic(t *testing.T, ctx context.Context, s *Sink, name string, partitions int32, configs map[string]string) {
	t.Helper()
	if err := s.CreateTopic(ctx, mirror.TopicInfo{Name: name, Partitions: partitions, Configs: configs}); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

// consumeAll reads topic's partitions from the start with franz-go until
// want records arrived.
func consumeAll(t *testing.T, ctx context.Context, p peer, topic string, want int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newFranz(t, p, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s: got %d of %d records: %v", topic, len(out), want, err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("consume %s-%d: %v", tp, p, err) })
		out = append(out, fs.Records()...)
	}
	cl.Close()
	return out
}

// pollN polls c until n records arrived.
func pollN(t *testing.T, ctx context.Context, c mirror.Consumer, n int) []mirror.Record {
	t.Helper()
	var out []mirror.Record
	for len(out) < n {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("poll: got %d of %d records: %v", len(out), n, err)
		}
		out = append(out, recs...)
	}
	return out
}
