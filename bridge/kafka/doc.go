// Package kafka connects the mirror pipeline to any cluster that speaks the
// Apache Kafka wire protocol — Tributary's own brokers, Apache Kafka, and
// franz-go's kfake — through the sarama client library.
//
// It owns two endpoints:
//
//   - Source (NewSource) implements mirror.Source. It reads with plain
//     sarama partition consumers, never a consumer group, so correctness
//     never depends on rebalances. It reads read_committed: records of
//     aborted transactions and transaction control batches are skipped, so
//     the offsets it hands over may have gaps. Keys, values and header
//     values keep the difference between null (nil) and empty; timestamps
//     are the records' own (CreateTime). A Consumer's Poll merges every
//     partition it reads, keeps per-partition order, and returns whatever is
//     ready (up to Config.PollMaxRecords) without waiting once something is.
//
//   - Sink (NewSink) implements mirror.Sink with sarama's idempotent
//     producer (acks=all, one in-flight request per broker, explicit
//     partitions chosen by the flow). Write returns nil only after every
//     record of the batch and then the batch's checkpoint were acknowledged.
//     After any failed or cancelled Write the producer is discarded and the
//     next Write starts a fresh one, because an idempotent producer that saw
//     an error may have lost its sequence state.
//
// Sarama keeps null and empty apart in both directions (a nil []byte
// encodes as length -1, an empty one as length 0, and decoding does the
// reverse), so nothing is lost. One caveat: a record with a zero Timestamp
// is stamped with the current time by sarama's producer.
//
// Neither endpoint ever creates a topic by asking for its metadata
// (Metadata.AllowAutoTopicCreation is off): the flow creates target topics
// itself through Sink.CreateTopic, with the partitions and configs it
// chose. Source.Topics reports non-default configs (DescribeConfigs, one
// request for all topics not cached), cached for Config.MetadataMaxAge.
//
// # Checkpoints
//
// A Sink keeps flow checkpoints in an internal topic of its target cluster,
// SinkOptions.CheckpointTopic (default DefaultCheckpointTopic), which it
// creates when missing with cleanup.policy=compact. A cluster that refuses
// compaction (Tributary's broker, until it implements log compaction) gets
// cleanup.policy=delete with retention.ms=-1 instead, logged at info level.
//
// A checkpoint record's key is the flow ID (UTF-8). Its partition is the
// 32-bit FNV-1a hash of the flow ID, taken as unsigned, modulo the topic's
// partition count, set explicitly on produce, so every checkpoint of a flow
// lands in one partition; the checkpoint topic's partition count must
// therefore never change (a Sink reads it once). Its value is the
// checkpoint value of package mirror (mirror.EncodeCheckpoint, JSON,
// version 1; see the mirror package doc). LoadCheckpoint reads the flow's
// partition backwards from its end in growing windows (DefaultCheckpointWindow records, then
// twice as many before that, and so on) and returns the latest record with
// the flow's key, so it rarely reads the whole partition.
//
// # Errors and logs
//
// Every error names the job file's cluster name (Config.Name) and what was
// being done. A record refused for its size — by the target (MESSAGE_TOO_LARGE)
// or by the producer's own limit (SinkOptions.MaxBatchBytes) — is reported
// wrapping mirror.ErrRecordTooLarge with its topic, partition and size.
// Log lines use the keys "cluster", "topic", "partition", "flow" and "err".
//
// # Security
//
// Config.TLS and Config.SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 through
// github.com/xdg-go/scram; Kafka 1.0+) apply to every sarama client the
// package opens, as does Config.Version. With either set, connections go
// through the package's own dialer: it does the TLS handshake itself and
// follows the framing of each connection (not its payload, except
// SaslAuthenticate responses), so that a refusal is told apart from a
// network error. A refusal — a broker certificate not trusted, a client
// certificate refused, SaslAuthenticate answered with
// SASL_AUTHENTICATION_FAILED or with a closed connection — becomes an
// *AuthError matching mirror.ErrAuth, which names the cluster, the
// mechanism and user or the TLS files involved, and the reason; every
// error of the package that stems from it is that *AuthError itself,
// without sarama's wrapping. After the first refusal a Source or Sink
// (with its Consumers) opens no connection again: each attempt, sarama's
// retries included, fails at once with the same error, so a broker sees
// one failed exchange per Source or Sink, not a retry storm. The flow
// treats mirror.ErrAuth as permanent.
//
// Passwords are never logged nor put in an error (SASL's String and
// LogValue leave them out), and neither is key material.
//
// Calls into sarama do not take a context; where a method takes one, it
// stops waiting when the context ends, and the abandoned sarama call ends
// within sarama's network timeouts or at Close, which waits for it.
package kafka
