package benchmark

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Operations a Result measures.
const (
	OpProduce = "produce"
	OpConsume = "consume"
)

// ErrIdle is returned by a consume run that saw no new record for its
// Workload.IdleTimeout: the topic or stream holds fewer records than asked
// for, or the peer stopped delivering.
var ErrIdle = errors.New("no record delivered within the idle timeout")

// ErrPeerUnavailable is returned by a peer that cannot be started in this
// build; Compare reports it in the table and carries on with the other peers.
var ErrPeerUnavailable = errors.New("peer not available in this build")

// A Result is what one produce or consume run measured.
type Result struct {
	Op   string // OpProduce or OpConsume
	Peer string // who served the run: "kafka", "tributary", "kfake", "jetstream", ...

	Records int64         // records acknowledged (produce) or delivered (consume)
	Bytes   int64         // value bytes in those records
	Elapsed time.Duration // from the first record handed over to the last acknowledged or delivered

	// Latency for produce: from a record handed to the client to its
	// acknowledgement, one sample per record. For consume: how long one
	// poll (a kgo PollFetches, a JetStream Fetch of a batch) took to deliver
	// its records, one sample per non-empty poll.
	Latency Histogram
	// EndToEnd is, for Kafka-protocol consume runs, the age of each record
	// when delivered: now minus the record's timestamp (millisecond
	// precision). Empty for produce and JetStream runs.
	EndToEnd Histogram

	// Interrupted is set when the run's context was cancelled before it
	// reached its record count; the figures cover the records up to then.
	Interrupted bool
}

// RecordsPerSec is the run's throughput in records per second.
func (r *Result) RecordsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// MiBPerSec is the run's throughput in MiB (2^20 bytes) of record values per
// second.
func (r *Result) MiBPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / (1 << 20) / r.Elapsed.Seconds()
}

// Summary is the one-line form kafka-producer-perf-test prints at the end.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records %s, %.1f records/sec (%.2f MiB/sec), %.2f ms avg latency, %.2f ms max latency, %s ms 50th, %s ms 95th, %s ms 99th, %s ms 99.9th",
		r.Records, pastTense(r.Op), r.RecordsPerSec(), r.MiBPerSec(),
		millis(r.Latency.Mean()), millis(r.Latency.Max()),
		fmtMillis(r.Latency.Quantile(0.50)), fmtMillis(r.Latency.Quantile(0.95)),
		fmtMillis(r.Latency.Quantile(0.99)), fmtMillis(r.Latency.Quantile(0.999)))
	if r.Interrupted {
		b.WriteString(" (interrupted)")
	}
	b.WriteString(".")
	return b.String()
}

func pastTense(op string) string {
	switch op {
	case OpProduce:
		return "sent"
	case OpConsume:
		return "consumed"
	}
	return op
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtMillis formats a latency in milliseconds with two decimals.
func fmtMillis(d time.Duration) string { return fmt.Sprintf("%.2f", millis(d)) }
