package nats

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
	"github.com/tributary/tributary/mirror"
)

// roundTripRecords are keyed records whose keys, values and headers need
// every rule of the bridge's encoding; value "seq=N" orders each key.
func roundTripRecords(n int) []*kgo.Record {
	keys := [][]byte{nil, {}, []byte("plain"), []byte("a.b c"), {0, 0xff, '\n'}, []byte("~n"), []byte("ünï")}
	recs := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		k := keys[i%len(keys)]
		var value []byte
		switch i % 11 {
		case 3:
			value = nil // tombstone
		case 5:
			value = []byte{}
		default:
			value = append([]byte(fmt.Sprintf("seq=%d|", i)), byte(i), 0, '\r', '\n')
		}
		hs := []kgo.RecordHeader{{Key: "trace", Value: []byte(fmt.Sprint(i))}}
		if i%2 == 0 {
			hs = append(hs, kgo.RecordHeader{Key: "multi", Value: []byte("1")}, kgo.RecordHeader{Key: "multi", Value: nil},
				kgo.RecordHeader{Key: "multi", Value: []byte{}}, kgo.RecordHeader{Key: "Nats-Msg-Id", Value: []byte(" x ")},
				kgo.RecordHeader{Key: "bin: ary", Value: []byte{0xde, 0xad}})
		}
		recs = append(recs, &kgo.Record{Topic: "orders", Key: k, Value: value, Headers: hs,
			Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i))})
	}
	return recs
}

// describe is a record's key, value and headers (grouped by name, in
// order within a name; without the provenance header), nil apart from
// empty.
func describe(key, value []byte, headers []kgo.RecordHeader, ts time.Time) string {
	b := func(x []byte) string {
		if x == nil {
			return "<null>"
		}
		return fmt.Sprintf("%q", x)
	}
	byName := map[string][]string{}
	var names []string
	for _, h := range headers {
		if h.Key == mirror.ProvenanceHeader {
			continue
		}
		if _, ok := byName[h.Key]; !ok {
			names = append(names, h.Key)
		}
		byName[h.Key] = append(byName[h.Key], b(h.Value))
	}
	sort.Strings(names)
	s := fmt.Sprintf("key=%s value=%s ts=%d", b(key), b(value), ts.UnixMilli())
	for _, n := range names {
		s += fmt.Sprintf(" %q=%v", n, byName[n])
	}
	return s
}

// TestRoundTrip mirrors Tributary → JetStream → another Tributary in one
// worker and checks that every record arrives byte-identical (the order
// between different header names aside) and in order per key.
func TestRoundTrip(t *testing.T) {
	ns := cluster.StartNATS(t)
	a := cluster.StartBroker(t)
	b := cluster.StartBroker(t)
	cluster.CreateTopic(t, a.Addr, "orders", 3, nil)
	cluster.CreateTopic(t, b.Addr, "orders", 4, nil)
	const n = 700
	recs := roundTripRecords(n)
	cl := cluster.Dial(t, a.Addr, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	ctx, cancel := context.WithTimeout(context.Background(), cluster.RequestTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	cfg := cluster.WriteFile(t, "roundtrip.yaml", fmt.Sprintf(`clusters:
  a: {bootstrap: %q}
  b: {bootstrap: %q}
  events: {nats: {servers: [%q]}}
jobs:
  - name: a-to-js
    sources: [{cluster: a, topics: [orders]}]
    targets: [events]
    delivery: exactly-once
    partitioning: key-hash
    nats: {stream: ORDERS, subjects: ["orders.>"], create_stream: true, subject: "orders.{key}"}
  - name: js-to-b
    sources: [{cluster: events, topics: [orders]}]
    targets: [b]
    partitioning: key-hash
    nats: {stream: ORDERS, topic: orders}
`, a.Addr, b.Addr, ns.URL))
	m := cluster.StartMirror(t, cfg)
	waitAtLeast(t, b.Addr, "orders", n, mirrorTimeout)
	m.Terminate(time.Minute)

	got := readAll(t, b.Addr, "orders", n)
	if len(got) != n {
		t.Fatalf("b holds %d records, want %d", len(got), n)
	}
	// Byte-identical: compare as multisets of descriptions.
	want := map[string]int{}
	for _, r := range recs {
		want[describe(r.Key, r.Value, r.Headers, r.Timestamp)]++
	}
	for _, r := range got {
		d := describe(r.Key, r.Value, r.Headers, r.Timestamp)
		if want[d] == 0 {
			t.Errorf("b holds a record a never had: %s", d)
			continue
		}
		want[d]--
	}
	// Order per key: records of one key are in one partition, in the
	// order a had them (a's order per key is production order).
	orig := map[string][]string{}
	for _, r := range recs {
		orig[string(r.Key)+fmt.Sprint(r.Key == nil)] = append(orig[string(r.Key)+fmt.Sprint(r.Key == nil)], describe(r.Key, r.Value, r.Headers, r.Timestamp))
	}
	seen := map[string][]string{}
	part := map[string]int32{}
	for _, r := range got {
		k := string(r.Key) + fmt.Sprint(r.Key == nil)
		if p, ok := part[k]; ok && p != r.Partition && r.Key != nil {
			t.Errorf("key %q in partitions %d and %d", r.Key, p, r.Partition)
		}
		part[k] = r.Partition
		seen[k] = append(seen[k], describe(r.Key, r.Value, r.Headers, r.Timestamp))
	}
	for k, want := range orig {
		if k == "true" {
			continue // null keys keep their source partition, so their order across a's partitions is not one order
		}
		if g := seen[k]; len(g) != len(want) || !equalStrings(g, want) {
			t.Errorf("key %q: order on b differs from a (%d vs %d records)", k, len(g), len(want))
		}
	}
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
