package compaction

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

const (
	topic          = "compacted"
	keys           = 40
	versions       = 30
	segmentBytes   = 2048
	deleteRetainMs = 3000
	requestTimeout = 15 * time.Second
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// produced is what the test knows about the partition: the offset and
// value of every record it produced, by key.
type produced struct {
	latest map[string]int64 // key -> offset of its latest record
	values map[int64]string // offset -> value ("" for a tombstone)
	keyAt  map[int64]string // offset -> key
}

func (p *produced) produce(t *testing.T, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	res := cl.ProduceSync(ctxFor(t), recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for _, r := range res {
		k := string(r.Record.Key)
		p.latest[k] = r.Record.Offset
		p.values[r.Record.Offset] = string(r.Record.Value)
		p.keyAt[r.Record.Offset] = k
	}
}

// fill produces n records with keys of their own, one batch each, enough
// to roll the active segment past everything produced before.
func (p *produced) fill(t *testing.T, cl *kgo.Client, prefix string, n int) {
	t.Helper()
	// Values of random hex digits: producers compress batches, and these
	// still take about 100 bytes each.
	rng := rand.New(rand.NewPCG(uint64(n), uint64(len(prefix))))
	for i := 0; i < n; i++ {
		v := make([]byte, 100)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		rec := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("%s-%d", prefix, i)), Value: []byte(hex.EncodeToString(v))}
		p.produce(t, cl, []*kgo.Record{rec})
	}
}

// consumeAll reads the partition from the earliest offset to the high
// watermark.
func consumeAll(t *testing.T, addr string) []*kgo.Record {
	t.Helper()
	adm := kadm.NewClient(cluster.Client(t, addr))
	ends, err := adm.ListEndOffsets(ctxFor(t), topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	end, _ := ends.Lookup(topic, 0)
	if end.Err != nil {
		t.Fatalf("end offset: %v", end.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx := ctxFor(t)
	for len(out) == 0 || out[len(out)-1].Offset < end.Offset-1 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume up to %d: got to %d records: %v", end.Offset, len(out), err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// check verifies that every consumed record is the one produced at its
// offset, that offsets increase, and that every key's latest record is
// there. It returns the consumed offsets by key.
func (p *produced) check(t *testing.T, recs []*kgo.Record) map[string][]int64 {
	t.Helper()
	byKey := map[string][]int64{}
	prev := int64(-1)
	for _, r := range recs {
		k := string(r.Key)
		if r.Offset <= prev {
			t.Fatalf("offset %d after %d", r.Offset, prev)
		}
		prev = r.Offset
		if want, ok := p.values[r.Offset]; !ok || p.keyAt[r.Offset] != k || want != string(r.Value) {
			t.Fatalf("offset %d holds %q=%q; produced %q=%q", r.Offset, k, r.Value, p.keyAt[r.Offset], want)
		}
		byKey[k] = append(byKey[k], r.Offset)
	}
	for k, off := range p.latest {
		if p.values[off] == "" {
			continue // tombstones are checked by the test
		}
		offs := byKey[k]
		if len(offs) == 0 || offs[len(offs)-1] != off {
			t.Fatalf("key %q: latest record at %d missing (consumed %v)", k, off, offs)
		}
	}
	return byKey
}

func TestCompactedTopic(t *testing.T) {
	b := cluster.StartBroker(t, "--log-cleaner-interval", "200ms")
	adm := kadm.NewClient(cluster.Client(t, b.Addr))
	str := func(s string) *string { return &s }
	resp, err := adm.CreateTopic(ctxFor(t), 1, 1, map[string]*string{
		"cleanup.policy":      str("compact"),
		"segment.bytes":       str(fmt.Sprint(segmentBytes)),
		"delete.retention.ms": str(fmt.Sprint(deleteRetainMs)),
	}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create compacted topic: %v", err)
	}
	rc, err := adm.DescribeTopicConfigs(ctxFor(t), topic)
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	cfgs, err := rc.On(topic, nil)
	if err != nil || cfgs.Err != nil {
		t.Fatalf("describe configs: %v %v", err, cfgs.Err)
	}
	want := map[string]string{"cleanup.policy": "compact", "delete.retention.ms": fmt.Sprint(deleteRetainMs),
		"min.compaction.lag.ms": "0", "min.cleanable.dirty.ratio": "0.5"}
	for _, c := range cfgs.Configs {
		if w, ok := want[c.Key]; ok {
			if c.MaybeValue() != w {
				t.Errorf("config %s = %q, want %q", c.Key, c.MaybeValue(), w)
			}
			delete(want, c.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("configs not described: %v", want)
	}

	// A record without a key is refused.
	plain := cluster.Client(t, b.Addr, kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))
	res := plain.ProduceSync(ctxFor(t), &kgo.Record{Topic: topic, Value: []byte("no key")})
	if err := res.FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("record without key: error %v, want INVALID_RECORD", err)
	}

	// Many versions of each key, in batches of several keys, then enough
	// records of other keys to push them all out of the active segment.
	p := &produced{latest: map[string]int64{}, values: map[int64]string{}, keyAt: map[int64]string{}}
	prod := cluster.Client(t, b.Addr, kgo.ProducerLinger(0))
	for v := 0; v < versions; v++ {
		var recs []*kgo.Record
		for k := 0; k < keys; k++ {
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%d", k)), Value: []byte(fmt.Sprintf("key-%d-v%d", k, v))})
		}
		p.produce(t, prod, recs)
	}
	firstFiller := int64(-1)
	p.fill(t, prod, "a", 60)
	for off, k := range p.keyAt {
		if k == "a-0" {
			firstFiller = off
		}
	}
	total := len(p.values)

	// The cleaner keeps exactly one record per key below the fillers: the
	// latest, at its offset.
	var recs []*kgo.Record
	cluster.Eventually(t, 30*time.Second, "the versions below the active segment to be compacted", func() bool {
		recs = consumeAll(t, b.Addr)
		byKey := p.check(t, recs)
		for k := 0; k < keys; k++ {
			if len(byKey[fmt.Sprintf("key-%d", k)]) != 1 {
				return false
			}
		}
		return true
	})
	for _, r := range recs {
		if r.Offset < firstFiller && string(r.Value) != fmt.Sprintf("%s-v%d", r.Key, versions-1) {
			t.Fatalf("offset %d: %q=%q is not the latest value", r.Offset, r.Key, r.Value)
		}
	}
	if len(recs) >= total {
		t.Fatalf("consumed %d records of %d produced: nothing compacted", len(recs), total)
	}

	// Tombstones for the first ten keys: first they replace the values and
	// stay (delete.retention.ms), then they go.
	var tombs []*kgo.Record
	for k := 0; k < 10; k++ {
		tombs = append(tombs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%d", k))})
	}
	p.produce(t, prod, tombs)
	p.fill(t, prod, "b", 60)
	tombstoned := func(byKey map[string][]int64, k int) (tomb, gone bool) {
		offs := byKey[fmt.Sprintf("key-%d", k)]
		if len(offs) == 0 {
			return false, true
		}
		return len(offs) == 1 && p.values[offs[0]] == "", false
	}
	cluster.Eventually(t, 30*time.Second, "tombstones to replace the values of their keys", func() bool {
		byKey := p.check(t, consumeAll(t, b.Addr))
		for k := 0; k < 10; k++ {
			if tomb, _ := tombstoned(byKey, k); !tomb {
				return false
			}
		}
		return true
	})
	cluster.Eventually(t, 30*time.Second, "tombstones to go after delete.retention.ms", func() bool {
		byKey := p.check(t, consumeAll(t, b.Addr))
		for k := 0; k < 10; k++ {
			if _, gone := tombstoned(byKey, k); !gone {
				return false
			}
		}
		return true
	})

	// A restart keeps the compacted log as it is.
	before := consumeAll(t, b.Addr)
	b.Restart()
	after := consumeAll(t, b.Addr)
	if len(after) != len(before) {
		t.Fatalf("%d records after restart, %d before", len(after), len(before))
	}
	for i := range after {
		if after[i].Offset != before[i].Offset || string(after[i].Value) != string(before[i].Value) {
			t.Fatalf("record %d after restart: %d=%q, before %d=%q", i, after[i].Offset, after[i].Value, before[i].Offset, before[i].Value)
		}
	}
}
