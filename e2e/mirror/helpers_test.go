package mirror

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
	"github.com/tributary/tributary/mirror"
)

// Deadlines. They are generous: the machine has two cores shared with
// other test runs, and speed is never what these tests assert.
const (
	requestTimeout = 30 * time.Second
	mirrorTimeout  = 90 * time.Second // for a flow to deliver what the test produced
)

// dial returns a franz-go client of addr that the caller closes.
func dial(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("new client of %s: %v", addr, err)
	}
	return cl
}

// createTopic creates topic with partitions and config overrides and fails
// the test if the cluster refuses it.
func createTopic(t testing.TB, addr, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	cl := dial(t, addr)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s on %s: %v", topic, addr, err)
	}
}

// produce writes recs synchronously (acks=all, idempotent) and fails the
// test on any error.
func produce(t testing.TB, addr string, recs []*kgo.Record, opts ...kgo.Opt) {
	t.Helper()
	cl := dial(t, addr, append([]kgo.Opt{kgo.ProducerLinger(0)}, opts...)...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*requestTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records to %s: %v", len(recs), addr, err)
	}
}

// endOffsets returns the end offset of every partition of topic.
func endOffsets(addr, topic string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s on %s: %w", topic, addr, err)
	}
	out := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	if len(out) == 0 {
		return nil, fmt.Errorf("end offsets of %s on %s: no partitions", topic, addr)
	}
	return out, nil
}

// count is the number of records in topic (the sum of its partitions' end
// offsets: the tests' topics are never truncated), or an error when the
// topic does not exist (yet).
func count(addr, topic string) (int64, error) {
	ends, err := endOffsets(addr, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ends {
		n += e
	}
	return n, nil
}

// waitCount waits until topic on addr holds exactly want records; it fails
// at once if it holds more.
func waitCount(t testing.TB, addr, topic string, want int64, timeout time.Duration) {
	t.Helper()
	var last int64
	var lastErr error
	deadline := time.Now().Add(timeout)
	for {
		last, lastErr = count(addr, topic)
		if lastErr == nil && last == want {
			return
		}
		if lastErr == nil && last > want {
			t.Fatalf("%s on %s holds %d records, more than the %d expected", topic, addr, last, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s holds %d records after %v, want %d (last error: %v)", topic, addr, last, timeout, want, lastErr)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

// waitAtLeast waits until topic on addr holds at least want records.
func waitAtLeast(t testing.TB, addr, topic string, want int64, timeout time.Duration) int64 {
	t.Helper()
	var last int64
	var lastErr error
	deadline := time.Now().Add(timeout)
	for {
		last, lastErr = count(addr, topic)
		if lastErr == nil && last >= want {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s holds %d records after %v, want at least %d (last error: %v)", topic, addr, last, timeout, want, lastErr)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

// stayFor polls cond for d and fails the test the first time it is false:
// it asserts that something does not happen (a count does not grow) over
// a quiet period.
func stayFor(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok, detail := cond(); !ok {
			t.Fatalf("%s stopped holding: %s", what, detail)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
}

// stableCount asserts that topic on addr keeps exactly want records for d.
func stableCount(t testing.TB, addr, topic string, want int64, d time.Duration) {
	t.Helper()
	stayFor(t, d, fmt.Sprintf("%s on %s holding %d records", topic, addr, want), func() (bool, string) {
		n, err := count(addr, topic)
		if err != nil {
			return false, err.Error()
		}
		return n == want, fmt.Sprintf("it holds %d", n)
	})
}

// readAll reads every partition of topic from its start to its end offset
// as of the call and returns the records ordered by partition and offset.
func readAll(t testing.TB, addr, topic string) []*kgo.Record {
	t.Helper()
	ends, err := endOffsets(addr, topic)
	if err != nil {
		t.Fatal(err)
	}
	parts := make(map[int32]kgo.Offset)
	for p, end := range ends {
		if end > 0 {
			parts[p] = kgo.NewOffset().AtStart()
		}
	}
	if len(parts) == 0 {
		return nil
	}
	cl := dial(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxWait(500*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	next := make(map[int32]int64)
	byPart := make(map[int32][]*kgo.Record)
	done := func() bool {
		for p := range parts {
			if next[p] < ends[p] {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s on %s: positions %v of ends %v before %v", topic, addr, next, ends, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("reading %s-%d on %s: %v", fe.Topic, fe.Partition, addr, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				byPart[r.Partition] = append(byPart[r.Partition], r)
			}
			next[r.Partition] = r.Offset + 1
		})
	}
	ps := make([]int32, 0, len(byPart))
	for p := range byPart {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	var out []*kgo.Record
	for _, p := range ps {
		out = append(out, byPart[p]...)
	}
	return out
}

// item is what the tests put in a record's value: where it was produced,
// its key and its sequence number within (origin, key).
type item struct {
	Origin string
	Key    string
	Seq    int
}

func (it item) value() []byte { return []byte(fmt.Sprintf("%s|%s|%d", it.Origin, it.Key, it.Seq)) }

func (it item) String() string { return string(it.value()) }

func parseItem(t testing.TB, v []byte) item {
	t.Helper()
	parts := strings.Split(string(v), "|")
	if len(parts) != 3 {
		t.Fatalf("record value %q is not origin|key|seq", v)
	}
	seq, err := strconv.Atoi(parts[2])
	if err != nil {
		t.Fatalf("record value %q: bad sequence number: %v", v, err)
	}
	return item{Origin: parts[0], Key: parts[1], Seq: seq}
}

// keyedRecords returns n records of origin spread over keys, each key's
// sequence numbers starting at first[key] (updated).
func keyedRecords(origin string, keys, n int, first map[string]int) []*kgo.Record {
	recs := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("k%02d", i%keys)
		it := item{Origin: origin, Key: key, Seq: first[key]}
		first[key]++
		recs = append(recs, &kgo.Record{Key: []byte(key), Value: it.value()})
	}
	return recs
}

// provenance decodes a record's provenance header, failing the test if it
// has none or it does not decode.
func provenance(t testing.TB, r *kgo.Record) *mirror.Provenance {
	t.Helper()
	var found *mirror.Provenance
	for _, h := range r.Headers {
		if h.Key != mirror.ProvenanceHeader {
			continue
		}
		if found != nil {
			t.Fatalf("record %s-%d@%d carries two provenance headers", r.Topic, r.Partition, r.Offset)
		}
		p, err := mirror.DecodeProvenance(h.Value)
		if err != nil {
			t.Fatalf("record %s-%d@%d: provenance header: %v", r.Topic, r.Partition, r.Offset, err)
		}
		found = p
	}
	if found == nil {
		t.Fatalf("record %s-%d@%d (value %q) has no provenance header", r.Topic, r.Partition, r.Offset, r.Value)
	}
	return found
}

// clusterID is the cluster ID a Kafka-protocol cluster reports in Metadata.
func clusterID(t testing.TB, addr string) string {
	t.Helper()
	cl := dial(t, addr)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	md, err := kadm.NewClient(cl).Metadata(ctx)
	if err != nil {
		t.Fatalf("metadata of %s: %v", addr, err)
	}
	return md.Cluster
}

// run runs the tributary binary with args and returns its combined output
// and exit error.
func run(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, cluster.Binary(t), args...).CombinedOutput()
	return string(out), err
}

// waitFlowRunning waits until the worker shows job's flow into target
// running.
func waitFlowRunning(t testing.TB, m *cluster.Mirror, job, target string) {
	t.Helper()
	cluster.Eventually(t, mirrorTimeout, fmt.Sprintf("flow %s → %s running", job, target), func() bool {
		f, ok, err := m.Flow(job, target)
		return err == nil && ok && f.State == "running"
	})
}

// clustersYAML renders the clusters section of a job file.
func clustersYAML(addrs map[string]string) string {
	names := make([]string, 0, len(addrs))
	for n := range addrs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("clusters:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %s:\n    bootstrap: [%q]\n", n, addrs[n])
	}
	return b.String()
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// metricValue returns the value of the first sample in Prometheus text
// whose line starts with prefix (labels come sorted by name).
func metricValue(text, prefix string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, false
		}
		return v, true
	}
	return 0, false
}
