package benchmark

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestHistogramEmpty(t *testing.T) {
	var h Histogram
	if h.Count() != 0 || h.Max() != 0 || h.Mean() != 0 || h.Quantile(0.5) != 0 || h.Quantile(1) != 0 {
		t.Fatalf("empty histogram: count %d max %v mean %v p50 %v", h.Count(), h.Max(), h.Mean(), h.Quantile(0.5))
	}
}

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	check := func(v uint64) {
		i := bucketIndex(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("value %d: bucket %d outside [0,%d)", v, i, numBuckets)
		}
		if hi := bucketHighest(i); hi < v || (i > 0 && bucketHighest(i-1) >= v) {
			t.Fatalf("value %d: bucket %d spans (%d, %d]", v, i, bucketHighest(i-1), hi)
		}
		if hi := bucketHighest(i); float64(hi-v) > float64(v)/subBucketCount+1 {
			t.Fatalf("value %d: bucket %d highest %d is more than 1/%d above", v, i, hi, subBucketCount)
		}
	}
	for v := uint64(0); v < 10_000; v++ {
		check(v)
	}
	for range 100_000 {
		check(r.Uint64N(maxTrackable + 1))
	}
	check(maxTrackable)
	if got := bucketIndex(1 << 60); got != numBuckets-1 {
		t.Fatalf("value above the range: bucket %d, want the last (%d)", got, numBuckets-1)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	// 1µs..10000µs, each once: the q-quantile is q*10000 µs.
	const n = 10_000
	for i := n; i >= 1; i-- {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	if h.Count() != n {
		t.Fatalf("count %d, want %d", h.Count(), n)
	}
	if h.Max() != n*time.Microsecond {
		t.Fatalf("max %v, want %v", h.Max(), n*time.Microsecond)
	}
	if want := (n + 1) * time.Microsecond / 2; h.Mean() != want {
		t.Fatalf("mean %v, want %v", h.Mean(), want)
	}
	for _, q := range []float64{0.001, 0.5, 0.95, 0.99, 0.999} {
		exact := time.Duration(q*n) * time.Microsecond
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/subBucketCount {
			t.Errorf("quantile %v = %v, want %v within +1/%d", q, got, exact, subBucketCount)
		}
	}
	if got := h.Quantile(1); got != h.Max() {
		t.Errorf("quantile 1 = %v, want max %v", got, h.Max())
	}
	if got := h.Quantile(0); got < time.Microsecond || got > time.Microsecond+time.Microsecond/subBucketCount {
		t.Errorf("quantile 0 = %v, want the minimum 1µs within +1/%d", got, subBucketCount)
	}
}

func TestHistogramNegativeAndHuge(t *testing.T) {
	var h Histogram
	h.Record(-time.Second)
	h.Record(100 * time.Hour)
	if h.Quantile(0.5) != 0 {
		t.Fatalf("negative latency: p50 %v, want 0", h.Quantile(0.5))
	}
	if h.Max() != 100*time.Hour || h.Quantile(1) > h.Max() {
		t.Fatalf("huge latency: max %v p100 %v, want max 100h and p100 <= max", h.Max(), h.Quantile(1))
	}
}

func TestHistogramMergeAndConcurrentRecord(t *testing.T) {
	var a, b Histogram
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				a.Record(time.Duration(w*1000+i) * time.Millisecond)
			}
		}()
	}
	for i := range 500 {
		b.Record(time.Duration(i) * time.Hour)
	}
	wg.Wait()
	a.Merge(&b)
	if a.Count() != 4500 {
		t.Fatalf("count after merge %d, want 4500", a.Count())
	}
	if a.Max() != 499*time.Hour {
		t.Fatalf("max after merge %v, want 499h", a.Max())
	}
	// 4000 of 4500 samples are under 4s, the rest are hours.
	if p := a.Quantile(0.88); p > 4*time.Second {
		t.Fatalf("p88 after merge %v, want under 4s", p)
	}
	if p := a.Quantile(0.9); p < time.Hour {
		t.Fatalf("p90 after merge %v, want at least 1h", p)
	}
}

func TestParseAcks(t *testing.T) {
	for in, want := range map[string]Acks{"0": AcksNone, "1": AcksLeader, "-1": AcksAll, "all": AcksAll, " ALL ": AcksAll} {
		got, err := ParseAcks(in)
		if err != nil || got != want {
			t.Errorf("ParseAcks(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseAcks("2"); err == nil {
		t.Error("ParseAcks(\"2\") succeeded, want an error")
	}
	if AcksAll.String() != "all" || AcksLeader.String() != "1" {
		t.Errorf("String: %s %s", AcksAll, AcksLeader)
	}
}
