// Package benchmark measures how fast a Kafka-protocol broker or a NATS
// JetStream server takes and hands back records, for the `tributary bench`
// commands.
//
// It owns:
//   - the workloads: [Produce] and [Consume] against any Kafka-protocol
//     brokers with franz-go's kgo client, [ProduceJetStream] and
//     [ConsumeJetStream] against a JetStream server with nats.go;
//   - the peers [Compare] starts in-process, runs the same workload against
//     one after the other and stops: the Tributary broker, franz-go's kfake
//     and an embedded nats-server with file-backed JetStream;
//   - the mirror benchmark, [RunMirror]: two in-process Tributary brokers, raw
//     produce into the target with sarama configured as the mirror's Kafka
//     sink (bridge/kafka's ProducerConfig) and with franz-go, a one-hop mirror job's
//     throughput, and replication latency at a fixed rate, read both from a
//     consumer of the target and from the job's own Prometheus histogram;
//   - the measurement: a latency [Histogram] (log-linear buckets, about 1.6%
//     relative error), a [Result] per run, the progress display and the
//     tables that print them.
//
// Promises: a run measures only records that were acknowledged (produce) or
// delivered (consume); a cancelled context stops a run promptly and the run
// still returns what it measured up to then, together with the context's
// error. Peers run one after the other, never at the same time, so they do
// not compete for the machine's cores. Nothing here asserts or assumes any
// speed.
package benchmark
