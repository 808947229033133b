package eos

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// mirrorTimeout is how long a flow may take to deliver what a test
// produced. It is generous: the machine has two cores shared with other
// test runs, and speed is never what these tests assert.
const mirrorTimeout = 2 * time.Minute

// item is what the tests put in a record's value: where it was produced,
// its key, and its sequence number within (origin, key).
type item struct {
	Origin string
	Key    string
	Seq    int
}

func (it item) String() string { return fmt.Sprintf("%s|%s|%d", it.Origin, it.Key, it.Seq) }

// value is the record value of it, padded to about 100 bytes.
func (it item) value() []byte { return []byte(it.String() + "|" + strings.Repeat("x", 80)) }

func parseItem(v []byte) (item, error) {
	parts := strings.SplitN(string(v), "|", 4)
	if len(parts) < 3 {
		return item{}, fmt.Errorf("record value %q is not origin|key|seq[|padding]", v)
	}
	seq, err := strconv.Atoi(parts[2])
	if err != nil {
		return item{}, fmt.Errorf("record value %q: bad sequence number: %w", v, err)
	}
	return item{Origin: parts[0], Key: parts[1], Seq: seq}, nil
}

// keyed returns n records of origin over keys keys, each key's sequence
// numbers continuing from next[key] (updated).
func keyed(origin string, keys, n int, next map[string]int) []*kgo.Record {
	recs := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("k%02d", i%keys)
		it := item{Origin: origin, Key: key, Seq: next[key]}
		next[key]++
		recs = append(recs, &kgo.Record{Key: []byte(key), Value: it.value()})
	}
	return recs
}

// pacer produces keyed records of one origin at a fixed rate until it has
// produced total or is stopped.
type pacer struct {
	origin string
	keys   int
	acked  atomic.Int64
	stop   chan struct{}
	done   chan struct{}

	mu   sync.Mutex
	err  error
	next map[string]int // sequence numbers handed out, per key
}

// startPacer produces total records (0: until stopped) of origin over keys
// keys into topic on addr, perSecond records a second.
func startPacer(t testing.TB, addr, topic, origin string, keys, total, perSecond int) *pacer {
	t.Helper()
	const tick = 10 * time.Millisecond
	perTick := max(1, perSecond*int(tick)/int(time.Second))
	cl := cluster.Dial(t, addr, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond))
	p := &pacer{origin: origin, keys: keys, stop: make(chan struct{}), done: make(chan struct{}), next: map[string]int{}}
	go func() {
		defer close(p.done)
		defer cl.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tk := time.NewTicker(tick)
		defer tk.Stop()
	produce:
		for i := 0; total == 0 || i < total; {
			select {
			case <-p.stop:
				break produce // flush what was handed out
			case <-tk.C:
			}
			n := perTick
			if total > 0 {
				n = min(n, total-i)
			}
			p.mu.Lock()
			recs := keyed(origin, keys, n, p.next)
			p.mu.Unlock()
			i += n
			for _, r := range recs {
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						p.fail(err)
						return
					}
					p.acked.Add(1)
				})
			}
		}
		fctx, fcancel := context.WithTimeout(context.Background(), 2*cluster.RequestTimeout)
		defer fcancel()
		if err := cl.Flush(fctx); err != nil {
			p.fail(err)
		}
	}()
	t.Cleanup(p.Stop)
	return p
}

func (p *pacer) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// Stop stops producing and waits until every record handed to the client
// was acknowledged or failed.
func (p *pacer) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// Wait waits until the pacer produced its total (or was stopped).
func (p *pacer) Wait() { <-p.done }

// Produced returns the sequence numbers handed out per key, failing the
// test if any record failed. Call it after Stop or Wait.
func (p *pacer) Produced(t testing.TB) map[string]int {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		t.Fatalf("producer of %s: %v", p.origin, p.err)
	}
	out := make(map[string]int, len(p.next))
	n := 0
	for k, v := range p.next {
		out[k] = v
		n += v
	}
	if int64(n) != p.acked.Load() {
		t.Fatalf("producer of %s: handed out %d records, %d acknowledged", p.origin, n, p.acked.Load())
	}
	return out
}

// waitEndAtLeast waits until the high watermarks of topic on addr add up
// to at least want (records, aborted ones included, and markers: a measure
// of progress, not a count) and returns the sum.
func waitEndAtLeast(t testing.TB, addr, topic string, want int64, timeout time.Duration) int64 {
	t.Helper()
	var sum int64
	var lastErr error
	cluster.Eventually(t, timeout, fmt.Sprintf("%s on %s to reach %d", topic, addr, want), func() bool {
		var e map[int32]int64
		if e, lastErr = cluster.EndOffsets(addr, topic, false); lastErr != nil {
			return false
		}
		sum = 0
		for _, o := range e {
			sum += o
		}
		return sum >= want
	})
	return sum
}

// checkExactlyOnce asserts that recs (in partition and offset order) hold,
// for every origin and key of want, the sequence numbers 0..want-1 exactly
// once each and in order, and nothing else.
func checkExactlyOnce(t testing.TB, recs []*kgo.Record, want map[string]map[string]int) {
	t.Helper()
	next := make(map[string]map[string]int)
	total := 0
	for origin, keys := range want {
		next[origin] = make(map[string]int)
		for _, n := range keys {
			total += n
		}
	}
	for _, r := range recs {
		it, err := parseItem(r.Value)
		if err != nil {
			t.Fatalf("%s-%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		if _, ok := want[it.Origin]; !ok {
			t.Fatalf("%s-%d@%d: record %s of an unknown origin", r.Topic, r.Partition, r.Offset, it)
		}
		exp := next[it.Origin][it.Key]
		switch {
		case it.Seq < exp:
			t.Fatalf("%s-%d@%d: %s is a duplicate (the next expected of %s/%s was %d)", r.Topic, r.Partition, r.Offset, it, it.Origin, it.Key, exp)
		case it.Seq > exp:
			t.Fatalf("%s-%d@%d: %s follows %s/%s seq %d: records lost or out of order", r.Topic, r.Partition, r.Offset, it, it.Origin, it.Key, exp-1)
		}
		next[it.Origin][it.Key]++
	}
	for origin, keys := range want {
		for key, n := range keys {
			if got := next[origin][key]; got != n {
				t.Fatalf("%s/%s: target holds sequences 0..%d, want 0..%d", origin, key, got-1, n-1)
			}
		}
	}
	if len(recs) != total {
		t.Fatalf("target holds %d records, want %d", len(recs), total)
	}
}

// txnState returns the state of transactional ID id on addr ("" if
// unknown).
func txnState(addr, id string) string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return ""
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := kadm.NewClient(cl).DescribeTransactions(ctx, id)
	if err != nil {
		return ""
	}
	if tx, ok := d[id]; ok && tx.Err == nil {
		return tx.State
	}
	return ""
}

// awaitOngoing polls until transactional ID id has a transaction open on
// addr, for at most within, and reports whether it saw one: the tests kill
// or pause a worker right then, so that the kill cuts a transaction short.
func awaitOngoing(addr, id string, within time.Duration) bool {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return false
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d, err := adm.DescribeTransactions(ctx, id)
		cancel()
		if err == nil {
			if tx, ok := d[id]; ok && tx.Err == nil && tx.State == "Ongoing" && len(tx.Topics) > 0 {
				return true
			}
		}
	}
	return false
}

// transactionalID is the transactional ID of job's flow into target (see
// runner.TransactionalID).
func transactionalID(job, target string) string { return "tributary-" + job + "/" + target }

// waitLagZero waits until the worker reports job's flow into target with
// lag 0 over parts source partitions.
func waitLagZero(t testing.TB, m *cluster.Mirror, job, target string, parts int) {
	t.Helper()
	var last cluster.FlowStatus
	cluster.Eventually(t, mirrorTimeout, fmt.Sprintf("lag 0 for %s → %s", job, target), func() bool {
		f, ok, err := m.Flow(job, target)
		last = f
		return err == nil && ok && len(f.PartitionLag) == parts && f.LagRecords == 0
	})
	t.Logf("%s → %s: lag 0, %d records written by this worker", job, target, last.Records)
}
