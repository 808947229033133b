package mirror

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
	"github.com/tributary/tributary/mirror"
)

// TestFidelity mirrors records with every awkward shape from east to
// central and compares them byte for byte: null and empty keys, tombstones
// (null values) and empty values, binary keys, values and headers (NUL and
// 0xff bytes), a header with a null value, an empty one, repeated header
// keys in their order, and CreateTime timestamps. The only difference
// allowed is the one provenance header appended last.
func TestFidelity(t *testing.T) {
	east, central := cluster.StartBroker(t), cluster.StartBroker(t)
	cluster.CreateTopic(t, east.Addr, "fidelity", 1, nil)
	base := time.UnixMilli(1_600_000_000_123)
	sent := []*kgo.Record{
		{Key: nil, Value: []byte("null key")},
		{Key: []byte{}, Value: []byte("empty key")},
		{Key: []byte("tombstone"), Value: nil},
		{Key: []byte("empty value"), Value: []byte{}},
		{Key: nil, Value: nil},
		{Key: []byte{0x00, 0xff, 0x00}, Value: []byte{0xff, 0x00, 0xfe, 0x00, 0x01},
			Headers: []kgo.RecordHeader{
				{Key: "bin", Value: []byte{0x00, 0xff, 0x80, 0x00}},
				{Key: "null", Value: nil},
				{Key: "empty", Value: []byte{}},
				{Key: "dup", Value: []byte("first")},
				{Key: "dup", Value: []byte("second")},
				{Key: "dup", Value: nil},
			}},
		{Key: []byte("utf-8 ключ"), Value: []byte("значение\x00"), Headers: []kgo.RecordHeader{{Key: "заголовок", Value: []byte{0xff}}}},
		{Key: []byte("old"), Value: []byte("from 2001"), Headers: []kgo.RecordHeader{{Key: "", Value: []byte("empty header key")}}},
	}
	for i, r := range sent {
		r.Topic = "fidelity"
		r.Timestamp = base.Add(time.Duration(i) * 1001 * time.Millisecond)
	}
	sent[len(sent)-1].Timestamp = time.UnixMilli(1_000_000_000_000)
	cluster.Produce(t, east.Addr, sent)

	// The source must hold the shapes themselves, or the comparison below
	// proves nothing.
	src := cluster.ReadTopic(t, east.Addr, "fidelity", false).Records
	if len(src) != len(sent) {
		t.Fatalf("east holds %d records, want %d", len(src), len(sent))
	}
	for i, r := range src {
		if !sameBytes(r.Key, sent[i].Key) || !sameBytes(r.Value, sent[i].Value) || !sameHeaders(r.Headers, sent[i].Headers) ||
			!r.Timestamp.Equal(sent[i].Timestamp) {
			t.Fatalf("east record %d is not what was produced:\n got  %s\n want %s", i, describe(r), describe(sent[i]))
		}
	}

	job := cluster.WriteFile(t, "fidelity.yaml", cluster.ClustersYAML(map[string]string{"east": east.Addr, "central": central.Addr})+`
jobs:
  - name: fidelity
    sources:
      - cluster: east
        topics: [fidelity]
    targets: [central]
    start: earliest
`)
	cluster.StartMirror(t, job)
	waitCount(t, central.Addr, "fidelity", int64(len(sent)), mirrorTimeout)
	eastID := clusterID(t, east.Addr)
	for i, r := range cluster.ReadTopic(t, central.Addr, "fidelity", false).Records {
		want := src[i]
		if len(r.Headers) != len(want.Headers)+1 || r.Headers[len(r.Headers)-1].Key != mirror.ProvenanceHeader {
			t.Errorf("central record %d: headers %s, want east's followed by one %s", i, describe(r), mirror.ProvenanceHeader)
			continue
		}
		hs := r.Headers[:len(r.Headers)-1]
		if !sameBytes(r.Key, want.Key) || !sameBytes(r.Value, want.Value) || !sameHeaders(hs, want.Headers) {
			t.Errorf("central record %d differs from east's:\n got  %s\n want %s", i, describe(r), describe(want))
		}
		if !r.Timestamp.Equal(want.Timestamp) || r.Attrs.TimestampType() != 0 {
			t.Errorf("central record %d: timestamp %v (type %d), want CreateTime %v", i, r.Timestamp, r.Attrs.TimestampType(), want.Timestamp)
		}
		p := provenance(t, r)
		if len(p.Path) != 1 || p.Path[0] != eastID || p.Topic != "fidelity" || p.Partition != 0 || p.Offset != want.Offset {
			t.Errorf("central record %d: provenance %+v, want path [%s] fidelity-0 offset %d", i, *p, eastID, want.Offset)
		}
	}
}

// sameBytes compares two byte slices, telling null (nil) from empty.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

func sameHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !sameBytes(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// describe formats a record's key, value, headers and timestamp, showing
// null as <null>.
func describe(r *kgo.Record) string {
	q := func(b []byte) string {
		if b == nil {
			return "<null>"
		}
		return "\"" + string(bytes.ToValidUTF8(b, []byte("\uFFFD"))) + "\"" + "(" + strconv.Itoa(len(b)) + "B)"
	}
	s := "key=" + q(r.Key) + " value=" + q(r.Value) + " headers=["
	for i, h := range r.Headers {
		if i > 0 {
			s += " "
		}
		s += h.Key + ":" + q(h.Value)
	}
	return s + "] ts=" + r.Timestamp.UTC().Format(time.RFC3339Nano)
}
