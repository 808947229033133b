package mirror

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProvenanceRoundTrip(t *testing.T) {
	for _, p := range []Provenance{
		{Path: []string{uuid.NewString()}, Topic: "orders", Partition: 3, Offset: 123456789},
		{Path: []string{"east", uuid.NewString(), "name with spaces"}, Topic: "", Partition: 0, Offset: 0},
		{Path: []string{"ABCDEF00-0000-0000-0000-000000000000"}, Topic: "t", Partition: 1<<31 - 1, Offset: 1<<63 - 1},
	} {
		enc := p.AppendTo(nil)
		got, err := DecodeProvenance(enc)
		if err != nil {
			t.Fatalf("decode %+v: %v", p, err)
		}
		if got.Topic != p.Topic || got.Partition != p.Partition || got.Offset != p.Offset || len(got.Path) != len(p.Path) {
			t.Fatalf("round trip %+v -> %+v", p, got)
		}
		for i := range p.Path {
			if got.Path[i] != p.Path[i] {
				t.Fatalf("path[%d] %q -> %q (an upper-case UUID must stay a name)", i, p.Path[i], got.Path[i])
			}
		}
	}
	one := Provenance{Path: []string{uuid.NewString()}, Topic: "orders", Partition: 1, Offset: 1000}
	if n := len(one.AppendTo(nil)); n > 32 {
		t.Fatalf("a one-hop provenance takes %d bytes; keep it small", n)
	}
	enc := one.AppendTo(nil)
	for i := 0; i < len(enc); i++ {
		if _, err := DecodeProvenance(enc[:i]); err == nil {
			t.Fatalf("truncated header of %d bytes decoded", i)
		}
	}
	if _, err := DecodeProvenance(append(bytes.Clone(enc), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

// TestKeyPartitionMatchesJava checks murmur2 against the values of Kafka's
// Java client and against franz-go's Kafka-compatible partitioner.
func TestKeyPartitionMatchesJava(t *testing.T) {
	for key, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := murmur2([]byte(key)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", key, got, want)
		}
	}
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for i := 0; i < 1000; i++ {
		key := []byte(uuid.NewString()[:i%36])
		for _, n := range []int{1, 3, 7, 64} {
			want := p.Partition(&kgo.Record{Key: key}, n)
			if got := KeyPartition(key, int32(n)); int(got) != want {
				t.Fatalf("KeyPartition(%q, %d) = %d, franz-go says %d", key, n, got, want)
			}
		}
	}
}

func TestMatchesAndRename(t *testing.T) {
	mk := func(ps ...string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for _, p := range ps {
			out = append(out, pattern(t, p))
		}
		return out
	}
	s := SourceSpec{Include: mk("orders", `pay\..*`, "__consumer_offsets"), Exclude: mk(`pay\.internal`)}
	for topic, want := range map[string]bool{
		"orders": true, "orders2": false, "xorders": false, "pay.eu": true, "pay.internal": false,
		"__consumer_offsets": true, "__tributary_checkpoints": false,
	} {
		if got := s.Matches(topic); got != want {
			t.Errorf("Matches(%q) = %v, want %v", topic, got, want)
		}
	}
	all := SourceSpec{Include: mk(".*")}
	if all.Matches("__consumer_offsets") || !all.Matches("orders") {
		t.Error(".* must match user topics and no internal topic")
	}
	for _, tc := range []struct {
		r    Rename
		want string
	}{
		{Rename{}, "orders"},
		{Rename{Kind: RenamePrefix, Prefix: "{cluster}."}, "east.orders"},
		{Rename{Kind: RenameTemplate, Template: "{topic}-from-{cluster}"}, "orders-from-east"},
	} {
		if got := tc.r.Target("east", "orders"); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}
