package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
)

// Defaults of Config and SinkOptions.
const (
	// DefaultClientID is the client ID sent to brokers.
	DefaultClientID = "tributary"
	// DefaultVersion is the protocol version sarama speaks: served by
	// Tributary's broker, kfake and Apache Kafka 2.8+, and new enough for
	// idempotence, headers and read_committed (0.11+).
	DefaultVersion = "2.8.0"
	// DefaultPollMaxRecords bounds the records one Consumer.Poll returns.
	DefaultPollMaxRecords = 10000
	// DefaultMetadataMaxAge is how long topic configs (and a Sink's
	// per-topic record limit) are cached.
	DefaultMetadataMaxAge = 5 * time.Minute
	// DefaultCheckpointTopic is the target topic holding flow checkpoints.
	DefaultCheckpointTopic = "__tributary_checkpoints"
	// DefaultCheckpointPartitions is the partition count the checkpoint
	// topic is created with. One partition suffices for hundreds of flows;
	// an existing topic's count is used as it is.
	DefaultCheckpointPartitions = 1
	// DefaultCheckpointWindow is the first window (in offsets) that
	// LoadCheckpoint reads back from the end of the checkpoint partition.
	DefaultCheckpointWindow = 1000
	// DefaultMaxBatchBytes bounds one produce batch per partition, and so
	// the largest record the producer sends; it matches Kafka's default
	// max.message.bytes less the batch header.
	DefaultMaxBatchBytes = 1000000
	// BatchOverhead is what MaxRecordBytes subtracts from a topic's
	// max.message.bytes: a v2 record batch header (61 bytes) plus the
	// largest varint framing of one record (36 bytes), rounded up.
	BatchOverhead = 100
)

// Config says how to reach one Kafka-protocol cluster.
type Config struct {
	// Name is the job file's name for the cluster; it prefixes errors and
	// is the "cluster" key of log lines. Required.
	Name string
	// Bootstrap lists host:port addresses of some of the cluster's
	// brokers. Required.
	Bootstrap []string
	// ClientID is sent to the brokers. Default DefaultClientID.
	ClientID string
	// Version is the Kafka version sarama assumes the cluster runs, which
	// decides the protocol versions it sends ("2.8.0"; at least "0.11.0").
	// Default DefaultVersion.
	Version string
	// PollMaxRecords bounds the records one Consumer.Poll returns.
	// Default DefaultPollMaxRecords.
	PollMaxRecords int
	// MetadataMaxAge is how long topic configs are cached by Source.Topics
	// and record limits by Sink.MaxRecordBytes. Default
	// DefaultMetadataMaxAge; negative: Source.Topics reports no configs.
	MetadataMaxAge time.Duration

	// TLS, when set, encrypts connections and verifies the brokers'
	// certificates. Default: plaintext.
	TLS *TLS
	// SASL, when set, authenticates every connection. Default: none.
	SASL *SASL

	// Logger receives log lines. Default slog.Default().
	Logger *slog.Logger

	sec *security // set by fill
}

// ErrClosed is returned by methods of a closed Source, Consumer or Sink.
var ErrClosed = errors.New("kafka bridge closed")

// fill validates c and sets defaults.
func (c *Config) fill() error {
	if c.Name == "" {
		return errors.New("kafka bridge: cluster Name is required")
	}
	if len(c.Bootstrap) == 0 {
		return fmt.Errorf("cluster %s: no bootstrap addresses", c.Name)
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.PollMaxRecords <= 0 {
		c.PollMaxRecords = DefaultPollMaxRecords
	}
	if c.MetadataMaxAge == 0 {
		c.MetadataMaxAge = DefaultMetadataMaxAge
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if _, err := c.kafkaVersion(); err != nil {
		return err
	}
	return c.fillSecurity()
}

func (c *Config) kafkaVersion() (sarama.KafkaVersion, error) {
	v, err := sarama.ParseKafkaVersion(c.Version)
	if err != nil {
		return v, fmt.Errorf("cluster %s: version %q: %w", c.Name, c.Version, err)
	}
	if !v.IsAtLeast(sarama.V0_11_0_0) {
		return v, fmt.Errorf("cluster %s: version %s: at least 0.11.0 is needed for headers, idempotence and read_committed", c.Name, c.Version)
	}
	return v, nil
}

// saramaConfig is the client configuration shared by every purpose: the
// consumer and producer settings only matter to the clients that consume
// or produce. Every sarama client of the package is made from it, so the
// version, TLS and SASL settings hold for all; c has been filled.
func (c *Config) saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = c.ClientID
	sc.Version, _ = c.kafkaVersion() // checked by fill
	// Never create topics by asking for their metadata: the flow creates
	// target topics itself, with the right partition count and configs.
	sc.Metadata.AllowAutoTopicCreation = false

	// Consumer: read_committed, errors reported to us, large channels so
	// that a partition keeps fetching while the flow works.
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Return.Errors = true
	sc.Consumer.Fetch.Default = 1 << 20
	sc.Consumer.MaxWaitTime = 250 * time.Millisecond
	sc.ChannelBufferSize = 1024

	// Producer: idempotent, acks=all; sarama requires one open request per
	// broker for idempotence. Flushing as soon as possible with one
	// request in flight batches naturally under load without adding
	// latency when idle.
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.MaxMessageBytes = DefaultMaxBatchBytes

	c.applySecurity(sc)
	return sc
}
