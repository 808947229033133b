package benchmark

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestPromHistogramQuantile(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lat_seconds", Buckets: []float64{0.001, 0.002, 0.004}},
		[]string{"job", "target"})
	reg.MustRegister(h)
	// 90 observations of 1.5 ms, 9 of 3 ms, 1 of 10 ms; another job's are ignored.
	for i := 0; i < 90; i++ {
		h.WithLabelValues("a", "t").Observe(0.0015)
	}
	for i := 0; i < 9; i++ {
		h.WithLabelValues("a", "t").Observe(0.003)
	}
	h.WithLabelValues("a", "t").Observe(0.010)
	h.WithLabelValues("b", "t").Observe(1)

	got, err := gatherHistogram(reg, "lat_seconds", "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 100 {
		t.Fatalf("count %d, want 100", got.Count)
	}
	for _, c := range []struct{ q, want float64 }{{0, 0.002}, {0.5, 0.002}, {0.9, 0.002}, {0.99, 0.004}, {1, math.Inf(1)}} {
		if q := got.Quantile(c.q); q != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, q, c.want)
		}
	}
	if m, want := got.Mean(), (90*0.0015+9*0.003+0.010)/100; math.Abs(m-want) > 1e-12 {
		t.Errorf("Mean = %v, want %v", m, want)
	}
	if _, err := gatherHistogram(reg, "lat_seconds", "c"); err == nil {
		t.Error("gatherHistogram of a job with no samples: no error")
	}
	if q := (PromHistogram{}).Quantile(0.5); q != 0 {
		t.Errorf("empty Quantile = %v, want 0", q)
	}
}
