package mirror

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
	"github.com/tributary/tributary/mirror"
)

// mirrorTimeout is how long a flow may take to deliver what a test
// produced. It is generous: the machine has two cores shared with other
// test runs, and speed is never what these tests assert.
const mirrorTimeout = 90 * time.Second

// waitCount waits until topic on addr holds exactly want records; it fails
// at once if it holds more.
func waitCount(t testing.TB, addr, topic string, want int64, timeout time.Duration) {
	t.Helper()
	var last int64
	var lastErr error
	deadline := time.Now().Add(timeout)
	for {
		last, lastErr = cluster.RecordCount(addr, topic)
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
		last, lastErr = cluster.RecordCount(addr, topic)
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
		n, err := cluster.RecordCount(addr, topic)
		if err != nil {
			return false, err.Error()
		}
		return n == want, fmt.Sprintf("it holds %d", n)
	})
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
	cl := cluster.Dial(t, addr)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cluster.RequestTimeout)
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

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
