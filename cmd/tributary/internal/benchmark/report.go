package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
)

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

// WriteResults prints results as a table with kafka-producer-perf-test's
// columns: records, records/s, MiB/s, then average, maximum and percentile
// latencies in milliseconds. A consume result with end-to-end ages adds a
// line for them.
func WriteResults(w io.Writer, results ...*Result) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "op\tpeer\trecords\trecords/s\tMiB/s\tavg ms\tmax ms\tp50 ms\tp95 ms\tp99 ms\tp99.9 ms\t")
	for _, r := range results {
		note := ""
		if r.Interrupted {
			note = " interrupted"
		}
		h := &r.Latency
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Op, r.Peer, r.Records, r.RecordsPerSec(), r.MiBPerSec(),
			fmtMillis(h.Mean()), fmtMillis(h.Max()), fmtMillis(h.Quantile(0.50)),
			fmtMillis(h.Quantile(0.95)), fmtMillis(h.Quantile(0.99)), fmtMillis(h.Quantile(0.999)), note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		switch r.Op {
		case OpProduce:
			fmt.Fprintf(w, "%s latency: from a record handed to the client to its acknowledgement.\n", r.Peer)
		case OpConsume:
			fmt.Fprintf(w, "%s latency: one poll delivering records (%d polls).\n", r.Peer, r.Latency.Count())
			if e := &r.EndToEnd; e.Count() > 0 {
				fmt.Fprintf(w, "%s end-to-end (record timestamp to delivery): avg %s ms, p50 %s ms, p99 %s ms, max %s ms.\n",
					r.Peer, fmtMillis(e.Mean()), fmtMillis(e.Quantile(0.50)), fmtMillis(e.Quantile(0.99)), fmtMillis(e.Max()))
			}
		}
	}
	return nil
}

// WriteTable prints the comparison as one table: for produce, then consume,
// each peer's records, records/s, MiB/s, p50 and p99 latency, and Tributary's
// records/s as a multiple of that peer's ("tributary/kfake 1.12x").
func (c *Comparison) WriteTable(w io.Writer) error {
	wl := c.Workload
	fmt.Fprintf(w, "machine:  %s\n", c.Machine)
	fmt.Fprintf(w, "workload: %d-byte records, acks=%s, %d partition(s), %d producer(s), %d records per Kafka-protocol peer",
		wl.RecordSize, wl.Acks, wl.Partitions, wl.Producers, wl.Records)
	if c.JetStreamRecords < wl.Records {
		fmt.Fprintf(w, ", %d on jetstream (fewer: it is slower; compare rates, not totals)", c.JetStreamRecords)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)

	var trib *PeerResult
	for i := range c.Peers {
		if c.Peers[i].Peer == PeerTributary {
			trib = &c.Peers[i]
		}
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "op\tpeer\trecords\trecords/s\tMiB/s\tp50 ms\tp99 ms\tratio\t")
	for _, op := range []string{OpProduce, OpConsume} {
		for _, pr := range c.Peers {
			r := pr.result(op)
			if r == nil {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t %s\n", op, pr.Peer, failure(pr.Err))
				continue
			}
			note := ""
			switch {
			case r.Interrupted:
				note = "interrupted"
			case pr.Err != nil && (op == OpConsume || pr.Consume == nil):
				note = failure(pr.Err)
			}
			if note != "" {
				note = " " + note
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2f\t%s\t%s\t%s\t%s\n",
				op, pr.Peer, r.Records, r.RecordsPerSec(), r.MiBPerSec(),
				fmtMillis(r.Latency.Quantile(0.50)), fmtMillis(r.Latency.Quantile(0.99)),
				ratio(trib, pr.Peer, op, r), note)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ratio: tributary records/s divided by that peer's records/s.")
	fmt.Fprintln(w, "produce latency: from a record handed to the client to its acknowledgement;")
	fmt.Fprintln(w, "consume latency: one poll (kgo PollFetches, JetStream Fetch of a batch) delivering records.")
	_, err := fmt.Fprintln(w, "jetstream ignores acks and partitions: every publish is acknowledged, into one stream.")
	return err
}

func (pr *PeerResult) result(op string) *Result {
	if op == OpProduce {
		return pr.Produce
	}
	return pr.Consume
}

// ratio formats tributary's rate over r's, e.g. "tributary/kfake 1.12x".
func ratio(trib *PeerResult, peer, op string, r *Result) string {
	if peer == PeerTributary {
		return ""
	}
	label := "tributary/" + peer + " "
	if trib == nil {
		return "" // tributary was not measured
	}
	t := trib.result(op)
	if t == nil || t.RecordsPerSec() == 0 || r.RecordsPerSec() == 0 {
		return label + "n/a"
	}
	return fmt.Sprintf("%s%.2fx", label, t.RecordsPerSec()/r.RecordsPerSec())
}

func failure(err error) string {
	switch {
	case err == nil:
		return "not run"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return "failed: " + err.Error()
}
