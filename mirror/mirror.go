package mirror

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Record is one record moving through a flow: as read from a source, and
// (with Target set) as it will be written to the target.
type Record struct {
	// Key and Value are nil for a null key and a null value (a tombstone);
	// empty but non-nil slices are empty, not null.
	Key, Value []byte
	// Headers in the order the source gave them; values may be nil (null).
	Headers []Header
	// Timestamp is the record's timestamp as the source reported it
	// (CreateTime for Kafka sources), kept on the target.
	Timestamp time.Time
	// Source is where the record was read.
	Source SourcePosition
}

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// TopicPartition names a partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// SourcePartition names a partition of a source cluster within a job: the
// cluster is the job file's name for it.
type SourcePartition struct {
	Cluster   string
	Topic     string
	Partition int32
}

func (sp SourcePartition) String() string {
	return fmt.Sprintf("%s/%s-%d", sp.Cluster, sp.Topic, sp.Partition)
}

// SourcePosition is a record's place in its source.
type SourcePosition struct {
	SourcePartition
	Offset int64
}

// TopicInfo describes a topic of a cluster.
type TopicInfo struct {
	Name       string
	Partitions int32
	// Configs holds the topic's non-default configs, when the cluster
	// reports them.
	Configs map[string]string
}

// StartPosition is where a flow starts reading a partition for which its
// target holds no checkpoint.
type StartPosition struct {
	// Kind is StartEarliest, StartLatest or StartTimestamp.
	Kind StartKind
	// Time is the timestamp for StartTimestamp: the first record at or
	// after it.
	Time time.Time
}

// StartKind enumerates start positions.
type StartKind int8

const (
	StartEarliest StartKind = iota
	StartLatest
	StartTimestamp
)

// Source reads the topics of one cluster. Implementations: bridge/kafka
// (any Kafka-protocol cluster) and bridge/nats.
type Source interface {
	// ClusterID is the ID the cluster reports for itself (Kafka's Metadata
	// cluster ID); "" when it has none, and the job's cluster name is used.
	ClusterID(ctx context.Context) (string, error)
	// Topics lists the cluster's topics, internal ones included (the flow
	// filters them).
	Topics(ctx context.Context) ([]TopicInfo, error)
	// Offsets resolves where reading starts for partitions without a
	// checkpoint.
	Offsets(ctx context.Context, tps []TopicPartition, start StartPosition) (map[TopicPartition]int64, error)
	// EndOffsets returns each partition's end (the high watermark, or the
	// last stable offset when reading committed data), for lag.
	EndOffsets(ctx context.Context, tps []TopicPartition) (map[TopicPartition]int64, error)
	// Consume starts reading partitions from the given offsets (the offset
	// of the next record wanted).
	Consume(ctx context.Context, from map[TopicPartition]int64) (Consumer, error)
	Close() error
}

// Consumer streams records from a Source. Records of one partition come in
// offset order; offsets may have gaps (transaction markers, compaction,
// aborted records skipped by read_committed).
type Consumer interface {
	// Poll blocks until records are available, ctx ends or the consumer
	// fails, and returns them.
	Poll(ctx context.Context) ([]Record, error)
	// Acknowledge tells the source that every record before upTo (the next
	// offset per partition) is durably on the target and checkpointed.
	// Kafka sources ignore it; a JetStream source acks its messages.
	Acknowledge(ctx context.Context, upTo map[TopicPartition]int64) error
	Close() error
}

// Sink writes to one target cluster. Implementations: bridge/kafka and
// bridge/nats.
type Sink interface {
	ClusterID(ctx context.Context) (string, error)
	Topics(ctx context.Context) ([]TopicInfo, error)
	// CreateTopic creates a topic; ErrTopicExists if it already exists.
	CreateTopic(ctx context.Context, t TopicInfo) error
	// AddPartitions grows a topic to total partitions.
	AddPartitions(ctx context.Context, topic string, total int32) error
	// MaxRecordBytes is the largest record the topic accepts (Kafka's
	// max.message.bytes, less batch overhead), or 0 when unknown.
	MaxRecordBytes(ctx context.Context, topic string) (int, error)
	// LoadCheckpoint returns the flow's last checkpoint, or nil if it has
	// none.
	LoadCheckpoint(ctx context.Context, flow string) (*Checkpoint, error)
	// Write writes the batch's records and then its checkpoint, as one
	// unit. It returns nil only when every record has been acknowledged by
	// the target and the checkpoint is durable after them. On error,
	// nothing of the batch may be assumed written (some records may have
	// been: a rewind repeats them in at-least-once mode; a transactional
	// sink aborts them).
	Write(ctx context.Context, b *Batch) error
	Close() error
}

// OutRecord is a record bound for a target partition.
type OutRecord struct {
	Record
	Topic     string
	Partition int32
}

// Batch is what a flow hands its sink: records, and the checkpoint that
// holds once they are all written.
type Batch struct {
	Records    []OutRecord
	Checkpoint *Checkpoint
}

// Checkpoint is a flow's position in each of its source partitions: the
// offset of the next record to read. It lives in the target, so the
// target's word on what it holds wins after any restart.
type Checkpoint struct {
	// Flow is the flow's ID: job name and target cluster name.
	Flow string
	// Positions maps each source partition to its next offset.
	Positions map[SourcePartition]int64
	// Time is when the checkpoint was made.
	Time time.Time
}

// Clone returns a deep copy.
func (c *Checkpoint) Clone() *Checkpoint {
	out := &Checkpoint{Flow: c.Flow, Time: c.Time, Positions: make(map[SourcePartition]int64, len(c.Positions))}
	for k, v := range c.Positions {
		out.Positions[k] = v
	}
	return out
}

// Errors of sources and sinks that the pipeline acts on.
var (
	// ErrTopicExists is returned by Sink.CreateTopic for an existing topic.
	ErrTopicExists = errors.New("topic already exists")
	// ErrRecordTooLarge is returned (wrapped) by Sink.Write when the
	// target refused a record for its size.
	ErrRecordTooLarge = errors.New("record too large for the target")
	// ErrFenced is returned (wrapped) by a transactional Sink whose
	// producer another instance of the flow has fenced: the flow must stop,
	// not retry.
	ErrFenced = errors.New("fenced by a newer instance of the flow")
	// ErrAuth is returned (wrapped) by a Source or Sink whose connection
	// was refused for its credentials or certificate (wrong SASL
	// password, untrusted broker certificate, client certificate
	// refused): retrying with the same settings fails the same way, so the
	// flow stops (state failed) instead of retrying; a corrected job file
	// restarts it.
	ErrAuth = errors.New("authentication failed")
)

// FlowID names the flow of a job into one target.
func FlowID(job, target string) string { return job + "/" + target }
