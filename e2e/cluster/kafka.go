package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// RequestTimeout bounds one admin request or one synchronous produce of
// the helpers below (a produce gets twice as long). It is generous: the
// machine is shared with other test runs, and speed is never what the
// tests assert.
const RequestTimeout = 30 * time.Second

// readTimeout bounds ReadTopic.
const readTimeout = 2 * time.Minute

// Dial returns a franz-go client seeded with addr and configured with
// opts; the caller closes it. It fails the test if the options are
// refused.
func Dial(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("new client of %s: %v", addr, err)
	}
	return cl
}

// Client is Dial for a client the test keeps: it is closed when the test
// (or subtest) and its cleanups end.
func Client(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl := Dial(t, addr, opts...)
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates topic on addr with partitions, replication factor 1
// and the config overrides configs (nil for none), and fails the test if
// the cluster refuses it.
func CreateTopic(t testing.TB, addr, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	cl := Dial(t, addr)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s on %s: %v", topic, addr, err)
	}
}

// Produce writes recs to addr synchronously with a client configured with
// kgo.ProducerLinger(0) and opts (franz-go's defaults: acks=all,
// idempotent), and fails the test on any error. Records without a topic
// need kgo.DefaultProduceTopic among opts.
func Produce(t testing.TB, addr string, recs []*kgo.Record, opts ...kgo.Opt) {
	t.Helper()
	cl := Dial(t, addr, append([]kgo.Opt{kgo.ProducerLinger(0)}, opts...)...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*RequestTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records to %s: %v", len(recs), addr, err)
	}
}

// EndOffsets returns the end of every partition of topic on addr: the high
// watermark or, with committed, the last stable offset. A topic that does
// not exist (yet) or has no partitions is an error, so it suits polling.
func EndOffsets(addr, topic string, committed bool) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	var listed kadm.ListedOffsets
	if committed {
		listed, err = adm.ListCommittedOffsets(ctx, topic)
	} else {
		listed, err = adm.ListEndOffsets(ctx, topic)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s on %s: %w", topic, addr, err)
	}
	out := make(map[int32]int64)
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	if len(out) == 0 {
		return nil, fmt.Errorf("end offsets of %s on %s: no partitions", topic, addr)
	}
	return out, nil
}

// RecordCount is the sum of the high watermarks of topic's partitions on
// addr: its record count for a topic that is never truncated and holds no
// transaction markers. It is an error when the topic does not exist (yet).
func RecordCount(addr, topic string) (int64, error) {
	ends, err := EndOffsets(addr, topic, false)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ends {
		n += e
	}
	return n, nil
}

// TopicContents is what ReadTopic found.
type TopicContents struct {
	// Records are the data records, ordered by partition and offset.
	Records []*kgo.Record
	// Aborts and Commits count the transaction markers.
	Aborts, Commits int
}

// ReadTopic reads every partition of topic on addr from its start to its
// end as of the call: read_committed up to the last stable offset with
// committed, read_uncommitted up to the high watermark without. It fails
// the test on any fetch error or when the read takes longer than two
// minutes.
func ReadTopic(t testing.TB, addr, topic string, committed bool) TopicContents {
	t.Helper()
	end, err := EndOffsets(addr, topic, committed)
	if err != nil {
		t.Fatal(err)
	}
	parts := make(map[int32]kgo.Offset)
	for p, e := range end {
		if e > 0 {
			parts[p] = kgo.NewOffset().AtStart()
		}
	}
	var c TopicContents
	if len(parts) == 0 {
		return c
	}
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := Dial(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords(), kgo.FetchMaxWait(500*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	next := make(map[int32]int64)
	byPart := make(map[int32][]*kgo.Record)
	done := func() bool {
		for p := range parts {
			if next[p] < end[p] {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s on %s: positions %v of ends %v before %v", topic, addr, next, end, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("reading %s-%d on %s: %v", fe.Topic, fe.Partition, addr, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if r.Offset >= end[r.Partition] {
				return
			}
			if r.Attrs.IsControl() {
				// Control record key: version int16, type int16 (0 abort, 1 commit).
				if len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:]) == 0 {
					c.Aborts++
				} else {
					c.Commits++
				}
				return
			}
			byPart[r.Partition] = append(byPart[r.Partition], r)
		})
	}
	ps := make([]int32, 0, len(byPart))
	for p := range byPart {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	for _, p := range ps {
		c.Records = append(c.Records, byPart[p]...)
	}
	return c
}

// ClustersYAML renders the clusters section of a job file: each name of
// addrs, sorted, with its one bootstrap address.
func ClustersYAML(addrs map[string]string) string {
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

// MetricValue returns the value of the first sample in Prometheus text
// (as Mirror.Metrics returns it) whose line starts with prefix, a metric
// name and, if any, its labels sorted by name; false if there is none or
// its value does not parse.
func MetricValue(text, prefix string) (float64, bool) {
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
