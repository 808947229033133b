package clients

import (
	"fmt"
	"strings"
	"testing"
)

// errRecorder is a testing.TB whose Errorf records instead of failing, to
// test that checkRecords catches what it promises to catch.
type errRecorder struct {
	testing.TB
	errs []string
}

func (r *errRecorder) Helper() {}

func (r *errRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestCheckRecordsCatches runs the comparison every client test relies on
// against deliveries broken in each way it must detect.
func TestCheckRecordsCatches(t *testing.T) {
	want := makeRecords(20, genOptions{nullKeyEvery: 4, keySpace: 5})
	delivered := func() []record {
		got := make([]record, len(want))
		for i, r := range want {
			r.Offset = int64(i)
			got[i] = r
		}
		return got
	}
	var rec errRecorder
	rec.TB = t
	checkRecords(&rec, want, delivered())
	if len(rec.errs) > 0 {
		t.Fatalf("a faithful delivery fails the check: %v", rec.errs)
	}

	for _, c := range []struct {
		name   string
		break_ func([]record) []record
		expect string
	}{
		{"missing", func(g []record) []record { return g[1:] }, "never delivered"},
		{"repeated", func(g []record) []record { return append(g, g[3]) }, "delivered twice"},
		{"reordered", func(g []record) []record { g[5], g[6] = g[6], g[5]; return g }, "delivered after"},
		{"value byte", func(g []record) []record {
			g[2].Value = append([]byte(nil), g[2].Value...)
			g[2].Value[9] ^= 1
			return g
		}, "value"},
		{"null key as empty", func(g []record) []record { g[0].Key = []byte{}; return g }, "key"},
		{"header value", func(g []record) []record {
			g[7].Headers = append([]header(nil), g[7].Headers...)
			g[7].Headers[1].Value = []byte("other")
			return g
		}, "headers"},
		{"header dropped", func(g []record) []record { g[8].Headers = g[8].Headers[:2]; return g }, "headers"},
		{"key in two partitions", func(g []record) []record { g[1].Partition = 1; return g }, "partitions"},
	} {
		rec := errRecorder{TB: t}
		checkRecords(&rec, want, c.break_(delivered()))
		if !strings.Contains(strings.Join(rec.errs, "\n"), c.expect) {
			t.Errorf("%s: check reported %q, want an error about %q", c.name, rec.errs, c.expect)
		}
	}
}
