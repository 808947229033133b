package benchmark

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// syntheticResult is a result of n records of 100 bytes over elapsed, with
// latencies 1..n ms.
func syntheticResult(op, peer string, n int64, elapsed time.Duration) *Result {
	r := &Result{Op: op, Peer: peer, Records: n, Bytes: n * 100, Elapsed: elapsed}
	for i := int64(1); i <= n; i++ {
		r.Latency.Record(time.Duration(i) * time.Millisecond)
	}
	return r
}

func TestResultRates(t *testing.T) {
	r := syntheticResult(OpProduce, "kfake", 1000, 2*time.Second)
	if got := r.RecordsPerSec(); got != 500 {
		t.Errorf("records/s %v, want 500", got)
	}
	if got, want := r.MiBPerSec(), 100_000.0/(1<<20)/2; got != want {
		t.Errorf("MiB/s %v, want %v", got, want)
	}
	var zero Result
	if zero.RecordsPerSec() != 0 || zero.MiBPerSec() != 0 {
		t.Error("a result with no elapsed time has a non-zero rate")
	}
	want := "1000 records sent, 500.0 records/sec (0.05 MiB/sec), 500.50 ms avg latency, 1000.00 ms max latency, "
	if s := r.Summary(); !strings.HasPrefix(s, want) || !strings.Contains(s, "ms 99.9th.") {
		t.Errorf("summary %q, want prefix %q", s, want)
	}
}

func TestWriteResultsColumns(t *testing.T) {
	p := syntheticResult(OpProduce, "kafka", 1000, time.Second)
	c := syntheticResult(OpConsume, "kafka", 1000, time.Second/2)
	c.Interrupted = true
	c.EndToEnd.Record(3 * time.Millisecond)
	var out bytes.Buffer
	if err := WriteResults(&out, p, c); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	header := strings.Fields(lines[0])
	wantHeader := []string{"op", "peer", "records", "records/s", "MiB/s", "avg", "ms", "max", "ms", "p50", "ms", "p95", "ms", "p99", "ms", "p99.9", "ms"}
	if strings.Join(header, " ") != strings.Join(wantHeader, " ") {
		t.Fatalf("header %q, want %q", header, wantHeader)
	}
	produce := strings.Fields(lines[1])
	wantProduce := []string{"produce", "kafka", "1000", "1000.0", "0.10", "500.50", "1000.00"}
	if strings.Join(produce[:7], " ") != strings.Join(wantProduce, " ") {
		t.Errorf("produce row %q, want it to start %q", lines[1], wantProduce)
	}
	if f := strings.Fields(lines[2]); !strings.HasSuffix(lines[2], " interrupted") || strings.Join(f[:4], " ") != "consume kafka 1000 2000.0" {
		t.Errorf("consume row %q, want 2000 records/s and marked interrupted", lines[2])
	}
	if !strings.Contains(out.String(), "end-to-end (record timestamp to delivery): avg 3.00 ms") {
		t.Errorf("no end-to-end line in:\n%s", out.String())
	}
	// Every row lines up under the header: same column end positions.
	if len(lines[0]) != len(strings.TrimSuffix(lines[1], " ")) {
		t.Errorf("rows not aligned:\n%s\n%s", lines[0], lines[1])
	}
}

func TestComparisonTable(t *testing.T) {
	cmp := &Comparison{
		Machine:          Machine{CPUs: 2, GOOS: "linux", GOARCH: "amd64", CPUModel: "Test CPU", GoVersion: "go1.26"},
		Workload:         Workload{RecordSize: 100, Acks: AcksAll, Partitions: 1, Producers: 1, Records: 4000}.withDefaults(),
		JetStreamRecords: 1000,
		Peers: []PeerResult{
			{Peer: PeerTributary, Records: 4000,
				Produce: syntheticResult(OpProduce, PeerTributary, 4000, time.Second),
				Consume: syntheticResult(OpConsume, PeerTributary, 4000, time.Second)},
			{Peer: PeerKfake, Records: 4000,
				Produce: syntheticResult(OpProduce, PeerKfake, 4000, 2*time.Second),
				Consume: syntheticResult(OpConsume, PeerKfake, 4000, time.Second/2)},
			{Peer: PeerJetStream, Records: 1000,
				Produce: syntheticResult(OpProduce, PeerJetStream, 1000, time.Second),
				Consume: syntheticResult(OpConsume, PeerJetStream, 500, time.Second),
				Err:     errors.New("boom")},
		},
	}
	var out bytes.Buffer
	if err := cmp.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"machine:  2 cores, linux/amd64, Test CPU, go1.26",
		"1000 on jetstream (fewer",
		"tributary/kfake 2.00x",     // produce: 4000/s vs 2000/s
		"tributary/jetstream 4.00x", // produce: 4000/s vs 1000/s
		"tributary/kfake 0.50x",     // consume: 4000/s vs 8000/s
	} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
	row := regexp.MustCompile(`(?m)^\s*consume\s+jetstream\s+500\s+500\s.*tributary/jetstream 8\.00x failed: boom$`)
	if !row.MatchString(s) {
		t.Errorf("table lacks the failed jetstream consume row:\n%s", s)
	}
	if regexp.MustCompile(`(?m)^\s*produce\s+jetstream.*failed`).MatchString(s) {
		t.Errorf("jetstream produce row marked failed though its consume failed:\n%s", s)
	}
	// p50 and p99 of 1..4000 ms, to the histogram's 1/64 resolution.
	row = regexp.MustCompile(`(?m)^\s*produce\s+kfake\s+4000\s+2000\s+0\.19\s+20[0-3]\d\.\d\d\s+39[6-9]\d\.\d\d\s+tributary/kfake 2\.00x$`)
	if !row.MatchString(s) {
		t.Errorf("kfake produce row not as expected:\n%s", s)
	}
}

func TestComparisonTableWithoutTributary(t *testing.T) {
	cmp := &Comparison{
		Workload:         Workload{}.withDefaults(),
		JetStreamRecords: DefaultJetStreamRecords,
		Peers: []PeerResult{
			{Peer: PeerTributary, Err: ErrPeerUnavailable},
			{Peer: PeerKfake, Produce: syntheticResult(OpProduce, PeerKfake, 10, time.Second),
				Consume: syntheticResult(OpConsume, PeerKfake, 10, time.Second)},
		},
	}
	var out bytes.Buffer
	if err := cmp.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "tributary/kfake n/a") || !strings.Contains(out.String(), "failed: "+ErrPeerUnavailable.Error()) {
		t.Errorf("table does not show tributary failing and the ratio unknown:\n%s", out.String())
	}
}
