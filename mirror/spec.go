package mirror

import (
	"regexp"
	"time"
)

// JobSpec is a validated mirror job, as mirror/config builds it from a job
// file. The pipeline takes it as given.
type JobSpec struct {
	// Name identifies the job; with a target's name it forms the flow ID
	// under which checkpoints are kept.
	Name string
	// Sources are the clusters and topics read.
	Sources []SourceSpec
	// Targets are the clusters written; each gets a flow of its own.
	Targets []string
	// Rename maps source topic names to target topic names.
	Rename Rename
	// Partitioning chooses target partitions.
	Partitioning Partitioning
	// Start is where a partition without a checkpoint starts.
	Start StartPosition
	// RateLimitBytes caps each flow's throughput in bytes per second; 0
	// means no cap.
	RateLimitBytes int64
	// Oversized says what to do with a record the target refuses for its
	// size.
	Oversized Oversized
	// TopicSync keeps target topics in step with their sources.
	TopicSync TopicSync
	// Delivery is the delivery guarantee.
	Delivery Delivery
	// Tuning bounds batching and memory; zero fields take defaults.
	Tuning Tuning
}

// SourceSpec selects topics of one cluster. A topic is read when its whole
// name matches an Include pattern and no Exclude pattern. Internal topics
// (names starting with "__") match only when an Include pattern names them
// literally.
type SourceSpec struct {
	Cluster string
	Include []*regexp.Regexp
	Exclude []*regexp.Regexp
}

// RenameKind enumerates rename policies.
type RenameKind int8

const (
	// RenameIdentity keeps the topic name.
	RenameIdentity RenameKind = iota
	// RenamePrefix prepends Prefix, in which {cluster} is replaced by the
	// source cluster's name: "{cluster}." turns east's orders into
	// east.orders.
	RenamePrefix
	// RenameTemplate replaces {cluster} and {topic} in Template.
	RenameTemplate
)

// Rename is a rename policy.
type Rename struct {
	Kind     RenameKind
	Prefix   string
	Template string
}

// Partitioning enumerates partitioning policies.
type Partitioning int8

const (
	// PartitionPreserve writes each record to the partition number it had
	// in its source; target topics get as many partitions as their largest
	// source.
	PartitionPreserve Partitioning = iota
	// PartitionKeyHash writes a record to murmur2(key) mod partitions, where
	// Kafka's Java client would put it; records with a null key keep their
	// source partition modulo the target's count.
	PartitionKeyHash
	// PartitionRoundRobin spreads records over the target's partitions.
	PartitionRoundRobin
)

// OversizedKind enumerates what happens to a record too large for the
// target.
type OversizedKind int8

const (
	// OversizedFail stops the flow with an error (it retries, and keeps
	// failing, until an operator acts).
	OversizedFail OversizedKind = iota
	// OversizedSkip drops the record with a log line and a metric.
	OversizedSkip
	// OversizedDeadLetter writes the record's provenance and headers, with
	// its value cut, to DeadLetterTopic on the target instead.
	OversizedDeadLetter
)

// Oversized is the oversized-record policy.
type Oversized struct {
	Kind            OversizedKind
	DeadLetterTopic string
}

// TopicSync keeps target topics in step with their sources.
type TopicSync struct {
	// Create creates missing target topics (partitions: the largest
	// source's count with PartitionPreserve, else the source's count).
	Create bool
	// Configs are the topic configs copied from source to target when a
	// topic is created.
	Configs []string
	// AddPartitions grows target topics when a source grows. With
	// PartitionKeyHash this moves keys to other partitions.
	AddPartitions bool
}

// Delivery is a delivery guarantee.
type Delivery int8

const (
	// AtLeastOnce: nothing is lost; after a crash the records in flight
	// may be written again.
	AtLeastOnce Delivery = iota
	// ExactlyOnce: records and checkpoint commit together in a target
	// transaction (Kafka targets) or are deduplicated by message ID
	// (JetStream targets).
	ExactlyOnce
)

// Tuning bounds a flow's batching and memory.
type Tuning struct {
	// MaxInFlightBytes bounds the bytes read but not yet acknowledged by
	// the target; reading pauses at the bound. Default
	// DefaultMaxInFlightBytes.
	MaxInFlightBytes int64
	// MaxBatchRecords and MaxBatchBytes bound one sink write. Defaults
	// DefaultMaxBatchRecords and DefaultMaxBatchBytes.
	MaxBatchRecords int
	MaxBatchBytes   int64
	// Linger is how long a batch waits to fill. Default DefaultLinger.
	Linger time.Duration
	// MetadataRefresh is how often a flow looks for new topics and
	// partitions. Default DefaultMetadataRefresh.
	MetadataRefresh time.Duration
	// RetryBackoff is the first wait after a failed write; it doubles up
	// to MaxRetryBackoff. Defaults DefaultRetryBackoff and
	// DefaultMaxRetryBackoff.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
}

// Defaults of Tuning.
const (
	DefaultMaxInFlightBytes = 64 << 20
	DefaultMaxBatchRecords  = 10000
	DefaultMaxBatchBytes    = 4 << 20
	DefaultLinger           = 5 * time.Millisecond
	DefaultMetadataRefresh  = 30 * time.Second
	DefaultRetryBackoff     = 200 * time.Millisecond
	DefaultMaxRetryBackoff  = 10 * time.Second
)
