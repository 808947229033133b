package benchmark

import (
	"fmt"
	"io"
	"math"
	"time"
)

// WriteTable prints the mirror benchmark: the machine, the workload, one
// throughput table (the mirror, then raw produce with sarama and franz-go,
// each with the mirror's rate as a fraction of its own), and the latency
// of the fixed-rate phase against its target. Phases that did not run
// show as "-".
func (r *MirrorReport) WriteTable(w io.Writer) error {
	c := r.Config
	fmt.Fprintf(w, "machine:  %s\n", r.Machine)
	fmt.Fprintf(w, "workload: %d records of %d bytes (null keys), %d partition(s), acks=all, mirror linger %s;\n",
		c.Records, c.RecordSize, c.Partitions, c.Linger)
	fmt.Fprintln(w, "          two in-process Tributary brokers (source, target) on loopback")
	fmt.Fprintln(w)

	tw := newTable(w)
	fmt.Fprintln(tw, "op\trecords\trecords/s\tMiB/s\tratio\t")
	row := func(label string, res *Result, ratio string) {
		if res == nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t\n", label)
			return
		}
		note := ""
		if res.Interrupted {
			note = " interrupted"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%s\t%s\n", label, res.Records, res.RecordsPerSec(), res.MiBPerSec(), ratio, note)
	}
	row("mirror (one hop)", r.Mirror, "")
	row("mirror exactly-once", r.MirrorExactlyOnce, r.eosRatio())
	row("produce sarama", r.Sarama, r.ratio(r.Sarama, fmt.Sprintf("mirror/sarama %%s (target %.1f)", DefaultMirrorRatioTarget)))
	row("produce franz-go", r.Franz, r.ratio(r.Franz, "mirror/franz-go %s"))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "MiB/s: record keys and values; ratio: the mirror's MiB/s over that row's.")
	if r.Mirror != nil {
		fmt.Fprintf(w, "mirror: timed from the job's start (%s of it before the flow ran) until the target acknowledged\n",
			r.MirrorSetup.Round(time.Millisecond))
		fmt.Fprintf(w, "        every record; with its provenance headers it wrote %.2f MiB/s.\n",
			float64(r.MirrorWireBytes)/(1<<20)/max(r.Mirror.Elapsed.Seconds(), 1e-9))
	}
	if r.MirrorExactlyOnce != nil {
		fmt.Fprintf(w, "mirror exactly-once: the same on a topic of its own, each batch and its checkpoint in one\n")
		fmt.Fprintf(w, "        transaction on the target (%s of it before the flow ran); ratio: its MiB/s over the mirror's.\n",
			r.MirrorExactlyOnceSetup.Round(time.Millisecond))
	}
	fmt.Fprintln(w, "sarama: an async producer with the mirror sink's settings (idempotent, acks=all,")
	fmt.Fprintln(w, "        MaxOpenRequests=1, manual partitioner, flush as soon as possible); franz-go: kgo, acks=all.")

	lr := r.Latency
	if lr == nil {
		return nil
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "replication latency at %d records/s for %s: %d produced, %d delivered on the target\n",
		lr.Rate, lr.Duration, lr.Produced, lr.Delivered)
	tw = newTable(w)
	fmt.Fprintln(tw, "latency\tsamples\tp50 ms\tp99 ms\tmax ms\t")
	e := &lr.EndToEnd
	fmt.Fprintf(tw, "end-to-end (target consumer)\t%d\t%s\t%s\t%s\t\n",
		e.Count(), fmtMillis(e.Quantile(0.50)), fmtMillis(e.Quantile(0.99)), fmtMillis(e.Max()))
	m := lr.Mirror
	fmt.Fprintf(tw, "mirror histogram (bucket bounds)\t%d\t<= %s\t<= %s\t-\t\n",
		m.Count, fmtSeconds(m.Quantile(0.50)), fmtSeconds(m.Quantile(0.99)))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "end-to-end: the consumer's clock at delivery minus the record's source CreateTime (kept by")
	fmt.Fprintln(w, "  the mirror; millisecond precision), so it includes the target consumer's fetch.")
	fmt.Fprintf(w, "mirror histogram: %s (source timestamp to the sink's acknowledgement of\n", mirrorLatencyMetric)
	fmt.Fprintf(w, "  the batch and its checkpoint); p50/p99 are the upper bounds of their buckets; mean %s ms.\n",
		fmtSeconds(m.Mean()))
	verdict := "met"
	if e.Count() == 0 || e.Quantile(0.99) >= DefaultMirrorP99Target {
		verdict = "NOT met"
	}
	_, err := fmt.Fprintf(w, "target: p99 under %d ms at %d records/s: %s (end-to-end p99 %s ms at %d records/s).\n",
		DefaultMirrorP99Target.Milliseconds(), DefaultMirrorRate, verdict, fmtMillis(e.Quantile(0.99)), lr.Rate)
	return err
}

// ratio formats the mirror's MiB/s over res's with format's one %s, or
// "n/a" when either is unknown.
func (r *MirrorReport) ratio(res *Result, format string) string {
	if r.Mirror == nil || res == nil || r.Mirror.MiBPerSec() == 0 || res.MiBPerSec() == 0 {
		return fmt.Sprintf(format, "n/a")
	}
	return fmt.Sprintf(format, fmt.Sprintf("%.2f", r.Mirror.MiBPerSec()/res.MiBPerSec()))
}

// eosRatio formats the exactly-once mirror's MiB/s over the at-least-once
// mirror's, or "n/a" when either is unknown.
func (r *MirrorReport) eosRatio() string {
	e, m := r.MirrorExactlyOnce, r.Mirror
	if e == nil || m == nil || e.MiBPerSec() == 0 || m.MiBPerSec() == 0 {
		return "exactly-once/mirror n/a"
	}
	return fmt.Sprintf("exactly-once/mirror %.2f", e.MiBPerSec()/m.MiBPerSec())
}

// fmtSeconds formats seconds as milliseconds with two decimals; "+Inf" for
// an unbounded bucket.
func fmtSeconds(s float64) string {
	if math.IsInf(s, 1) {
		return "+Inf"
	}
	return fmt.Sprintf("%.2f", s*1000)
}
