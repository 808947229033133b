package benchmark

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Bucket layout: a value v (in nanoseconds) below 2*subBucketCount has a
// bucket of its own; above that, each power of two is cut into
// subBucketCount equal buckets, so a bucket's width is at most 1/64 of its
// lower bound. The bucket index is e*subBucketCount + v>>e, where
// e = max(0, bits.Len64(v) - subBucketBits - 1).
const (
	subBucketBits  = 6
	subBucketCount = 1 << subBucketBits

	// maxTrackable is the largest latency a Histogram tells apart; longer
	// ones are counted as this value (about 73 minutes).
	maxTrackable = 1<<42 - 1

	numBuckets = (42-subBucketBits-1)*subBucketCount + 2*subBucketCount
)

// A Histogram counts latencies in log-linear buckets, enough to report
// percentiles within about 1.6% of the true value. The zero value is empty and
// ready to use. It is safe for concurrent use: writers only add atomically, so
// a reader running alongside them sees a snapshot that may be a few records
// behind.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	count  atomic.Uint64
	sumNs  atomic.Uint64
	maxNs  atomic.Int64
}

func bucketIndex(v uint64) int {
	if v > maxTrackable {
		v = maxTrackable
	}
	e := bits.Len64(v) - subBucketBits - 1
	if e < 0 {
		e = 0
	}
	return e*subBucketCount + int(v>>uint(e))
}

// bucketHighest is the largest value that falls into bucket i.
func bucketHighest(i int) uint64 {
	e := i/subBucketCount - 1
	if e < 0 {
		e = 0
	}
	m := uint64(i - e*subBucketCount)
	return m<<uint(e) + (1 << uint(e)) - 1
}

// Record adds one latency. Negative durations (a clock step) count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	v := uint64(d)
	h.counts[bucketIndex(v)].Add(1)
	h.count.Add(1)
	h.sumNs.Add(v)
	for {
		cur := h.maxNs.Load()
		if int64(d) <= cur || h.maxNs.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// Merge adds every latency counted in o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if n := o.counts[i].Load(); n != 0 {
			h.counts[i].Add(n)
		}
	}
	h.count.Add(o.count.Load())
	h.sumNs.Add(o.sumNs.Load())
	if m := o.maxNs.Load(); m > h.maxNs.Load() {
		h.maxNs.Store(m)
	}
}

// Count is the number of latencies recorded.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// Max is the largest latency recorded, exactly; zero when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.maxNs.Load()) }

// Mean is the average latency, exactly; zero when empty.
func (h *Histogram) Mean() time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sumNs.Load() / n)
}

// Quantile returns the latency at or below which a fraction q (0..1) of the
// recorded latencies fall: the highest value of the bucket holding that rank,
// never more than Max. It is zero when the histogram is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	q = math.Max(0, math.Min(1, q))
	rank := uint64(math.Ceil(q * float64(n)))
	if rank == 0 {
		rank = 1
	}
	maxNs := h.maxNs.Load()
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(int64(bucketHighest(i)), maxNs))
		}
	}
	return time.Duration(maxNs)
}
