package benchmark

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Workload defaults.
const (
	// DefaultTopic is the topic (or JetStream subject) the benchmarks use.
	DefaultTopic = "tributary-bench"
	// DefaultRecords is how many records a run produces or consumes.
	DefaultRecords = 2_000_000
	// DefaultRecordSize is the size in bytes of each record's value.
	DefaultRecordSize = 100
	// DefaultPartitions is the partition count of a topic the benchmark
	// creates.
	DefaultPartitions = 1
	// DefaultProducers is the number of concurrent producer clients.
	DefaultProducers = 1
	// DefaultIdleTimeout is how long a consume run waits for its next record
	// before giving up with ErrIdle.
	DefaultIdleTimeout = 10 * time.Second
)

// Acks is the acknowledgement a producer asks of the broker: AcksNone,
// AcksLeader or AcksAll, the values of Kafka's acks setting.
type Acks int16

// Acks values.
const (
	AcksNone   Acks = 0  // fire and forget: a record counts as acknowledged once written to the connection
	AcksLeader Acks = 1  // the partition leader has appended the record
	AcksAll    Acks = -1 // every in-sync replica has the record; kgo then produces idempotently
)

// ParseAcks reads "0", "1", "-1" or "all".
func ParseAcks(s string) (Acks, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "0":
		return AcksNone, nil
	case "1":
		return AcksLeader, nil
	case "-1", "all":
		return AcksAll, nil
	}
	return 0, fmt.Errorf("acks %q: want 0, 1, -1 or all", s)
}

func (a Acks) String() string {
	if a == AcksAll {
		return "all"
	}
	return strconv.Itoa(int(a))
}

// Workload is what one produce or consume run does. Zero fields take the
// Default* values (Acks's zero value is AcksNone and is kept).
type Workload struct {
	Topic      string // default DefaultTopic
	Records    int64  // default DefaultRecords
	RecordSize int    // default DefaultRecordSize; values are pseudo-random bytes, so compression gains nothing
	Acks       Acks
	Partitions int32 // partitions of a topic that does not exist yet; default DefaultPartitions
	Producers  int   // concurrent producer clients (JetStream: connections); default DefaultProducers

	// IdleTimeout bounds how long a consume run waits for its next record;
	// default DefaultIdleTimeout.
	IdleTimeout time.Duration

	// MsgIDs gives each JetStream message a Nats-Msg-Id header, so the
	// server deduplicates it: the guarantee the exactly-once bridge gives.
	MsgIDs bool

	// Label names the peer in progress lines and in Result.Peer; default
	// "kafka" for Kafka-protocol runs, "jetstream" for JetStream runs.
	Label string

	Progress ProgressOutput
	Logger   *slog.Logger // default: discard
}

func (w Workload) withDefaults() Workload {
	if w.Topic == "" {
		w.Topic = DefaultTopic
	}
	if w.Records <= 0 {
		w.Records = DefaultRecords
	}
	if w.RecordSize <= 0 {
		w.RecordSize = DefaultRecordSize
	}
	if w.Partitions <= 0 {
		w.Partitions = DefaultPartitions
	}
	if w.Producers <= 0 {
		w.Producers = DefaultProducers
	}
	if w.IdleTimeout <= 0 {
		w.IdleTimeout = DefaultIdleTimeout
	}
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	return w
}

// share is how many of the workload's records producer i of w.Producers
// sends.
func (w Workload) share(i int) int64 {
	n := w.Records / int64(w.Producers)
	if int64(i) < w.Records%int64(w.Producers) {
		n++
	}
	return n
}

// payload returns size pseudo-random bytes, the same for every run so that
// peers get identical data.
func payload(size int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func labelOr(label, fallback string) string {
	if label == "" {
		return fallback
	}
	return label
}
