package benchmark

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// startKfake starts a kfake cluster for one test and stops it at the end.
func startKfake(t *testing.T) []string {
	t.Helper()
	brokers, stop, err := StartKfake(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop(context.Background()) })
	return brokers
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkComplete fails t unless r holds exactly want records of size bytes,
// and (for produce) one latency sample per record.
func checkComplete(t *testing.T, r *Result, want int64, size int) {
	t.Helper()
	if r == nil {
		t.Fatalf("no result, want %d records", want)
	}
	if r.Records != want || r.Bytes != want*int64(size) || r.Interrupted {
		t.Errorf("%s %s: %d records, %d bytes, interrupted %v; want %d records, %d bytes",
			r.Peer, r.Op, r.Records, r.Bytes, r.Interrupted, want, want*int64(size))
	}
	if r.Op == OpProduce && r.Latency.Count() != uint64(want) {
		t.Errorf("%s produce: %d latency samples, want one per record (%d)", r.Peer, r.Latency.Count(), want)
	}
	if r.Op == OpConsume && r.Latency.Count() == 0 {
		t.Errorf("%s consume: no poll latency recorded", r.Peer)
	}
	if r.Elapsed <= 0 {
		t.Errorf("%s %s: elapsed %v", r.Peer, r.Op, r.Elapsed)
	}
}

// TestCompareEveryPeer runs the comparison `make bench` runs, with tiny
// counts, and checks the plumbing: every peer took and gave back every
// record, and the table compares Tributary with each.
func TestCompareEveryPeer(t *testing.T) {
	const records, jsRecords, size = 3000, 1000, 50
	var progress bytes.Buffer
	cmp, err := Compare(testContext(t), CompareConfig{
		Workload: Workload{
			Records: records, RecordSize: size, Acks: AcksAll, Partitions: 3, Producers: 2,
			Progress: ProgressOutput{W: &progress},
		},
		JetStreamRecords: jsRecords,
		TempDir:          t.TempDir(),
	})
	if err != nil {
		t.Fatalf("compare: %v", err)
	}
	if len(cmp.Peers) != 3 {
		t.Fatalf("%d peers measured, want 3", len(cmp.Peers))
	}
	for i, name := range []string{PeerTributary, PeerKfake, PeerJetStream} {
		pr := cmp.Peers[i]
		want := int64(records)
		if name == PeerJetStream {
			want = jsRecords
		}
		if pr.Peer != name || pr.Records != want || pr.Err != nil {
			t.Fatalf("peer %d: %s asked for %d records, err %v; want %s with %d", i, pr.Peer, pr.Records, pr.Err, name, want)
		}
		checkComplete(t, pr.Produce, want, size)
		checkComplete(t, pr.Consume, want, size)
	}
	var out bytes.Buffer
	if err := cmp.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tributary/kfake ", "tributary/jetstream ", "produce", "consume", "cores"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "n/a") {
		t.Errorf("table has a ratio it could not compute:\n%s", out.String())
	}
}

func TestProduceConsumeAcks(t *testing.T) {
	brokers := startKfake(t)
	for _, acks := range []Acks{AcksNone, AcksLeader, AcksAll} {
		t.Run("acks="+acks.String(), func(t *testing.T) {
			w := Workload{Topic: "acks-" + acks.String(), Records: 1001, RecordSize: 10, Acks: acks, Partitions: 2, Producers: 3}
			p, err := Produce(testContext(t), brokers, w)
			if err != nil {
				t.Fatalf("produce: %v", err)
			}
			checkComplete(t, p, 1001, 10)
			c, err := Consume(testContext(t), brokers, w)
			if err != nil {
				t.Fatalf("consume: %v", err)
			}
			checkComplete(t, c, 1001, 10)
			if c.EndToEnd.Count() != 1001 {
				t.Errorf("consume: %d end-to-end samples, want 1001", c.EndToEnd.Count())
			}
		})
	}
}

func TestConsumeIdle(t *testing.T) {
	brokers := startKfake(t)
	w := Workload{Topic: "short", Records: 100, RecordSize: 10, Acks: AcksAll}
	if _, err := Produce(testContext(t), brokers, w); err != nil {
		t.Fatalf("produce: %v", err)
	}
	w.Records, w.IdleTimeout = 150, 300*time.Millisecond
	c, err := Consume(testContext(t), brokers, w)
	if !errors.Is(err, ErrIdle) {
		t.Fatalf("consume past the end: err %v, want ErrIdle", err)
	}
	if c.Records != 100 || c.Interrupted {
		t.Fatalf("consume past the end: %d records, interrupted %v; want the 100 there are", c.Records, c.Interrupted)
	}
}

func TestJetStreamConsumeIdle(t *testing.T) {
	srv, err := StartJetStream(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	w := Workload{Topic: "short.subject", Records: 100, RecordSize: 10}
	if _, err := ProduceJetStream(testContext(t), srv.URL(), w); err != nil {
		t.Fatalf("produce: %v", err)
	}
	w.Records, w.IdleTimeout = 150, 300*time.Millisecond
	c, err := ConsumeJetStream(testContext(t), srv.URL(), w)
	if !errors.Is(err, ErrIdle) {
		t.Fatalf("consume past the end: err %v, want ErrIdle", err)
	}
	if c.Records != 100 {
		t.Fatalf("consume past the end: %d records, want the 100 there are", c.Records)
	}
}

// cancelOnWrite cancels a context at the first progress line, that is once
// a run is under way.
type cancelOnWrite struct{ cancel context.CancelFunc }

func (c cancelOnWrite) Write(p []byte) (int, error) { c.cancel(); return len(p), nil }

func TestCancelReturnsWhatWasMeasured(t *testing.T) {
	brokers := startKfake(t)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	// Terminal mode draws every 100ms; the first draw cancels the run.
	w := Workload{Topic: "long", Records: 1 << 40, RecordSize: 10, Acks: AcksAll,
		Progress: ProgressOutput{W: cancelOnWrite{cancel}, Terminal: true}}
	p, err := Produce(ctx, brokers, w)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled produce: err %v, want context.Canceled", err)
	}
	if !p.Interrupted || p.Records >= w.Records || p.Latency.Count() != uint64(p.Records) {
		t.Fatalf("cancelled produce: interrupted %v, %d records, %d latencies", p.Interrupted, p.Records, p.Latency.Count())
	}

	ctx, cancel = context.WithCancel(testContext(t))
	defer cancel()
	w.Progress.W = cancelOnWrite{cancel}
	c, err := Consume(ctx, brokers, w)
	if !errors.Is(err, context.Canceled) || !c.Interrupted {
		t.Fatalf("cancelled consume: err %v, interrupted %v; want context.Canceled", err, c.Interrupted)
	}

	// Compare stops at once and returns the peers measured so far.
	cmp, err := Compare(ctx, CompareConfig{Workload: w, Peers: []Peer{KfakePeer()}, TempDir: t.TempDir()})
	if !errors.Is(err, context.Canceled) || len(cmp.Peers) != 0 {
		t.Fatalf("compare with a cancelled context: err %v, %d peers", err, len(cmp.Peers))
	}
}

func TestCompareCarriesOnAfterAFailingPeer(t *testing.T) {
	errBroken := errors.New("broken on purpose")
	broken := KafkaPeer("broken", func(context.Context, string, *slog.Logger) ([]string, func(context.Context) error, error) {
		return nil, nil, errBroken
	})
	cmp, err := Compare(testContext(t), CompareConfig{
		Workload: Workload{Records: 100, RecordSize: 10, Acks: AcksLeader},
		Peers:    []Peer{broken, KfakePeer()},
		TempDir:  t.TempDir(),
	})
	if !errors.Is(err, errBroken) {
		t.Fatalf("compare: err %v, want the broken peer's error", err)
	}
	if len(cmp.Peers) != 2 || !errors.Is(cmp.Peers[0].Err, errBroken) || cmp.Peers[1].Err != nil {
		t.Fatalf("compare results %+v, want broken failed and kfake measured", cmp.Peers)
	}
	checkComplete(t, cmp.Peers[1].Produce, 100, 10)
	checkComplete(t, cmp.Peers[1].Consume, 100, 10)
}
