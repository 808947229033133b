// Package clients holds the real-client compatibility tests of the broker:
// every test starts its own `tributary broker` process (e2e/cluster) and
// drives it with an unmodified Kafka client — sarama, franz-go (kgo and
// kadm), kcat (librdkafka), kafka-python and confluent-kafka — the way an
// application would.
//
// What the tests promise when they pass:
//   - records round-trip byte for byte: keys (null keys included where the
//     client can send them), values and headers with arbitrary binary bytes,
//     in order within each partition, exactly once;
//   - each client's idempotent producer works (InitProducerId, sequences);
//   - each client's consumer group commits offsets that a different client
//     library reads back, and a group resumes from its committed offset after
//     a broker restart;
//   - admin operations through kadm behave as documented in README.md
//     (topic configs, cleanup.policy=compact and bad values refused, partitions, deletion,
//     ListOffsets, groups), and the cluster ID is a UUID stable across
//     restarts.
//
// The Python clients run as scripts under testdata/ with /usr/bin/python3
// (Debian's python3-kafka and python3-confluent-kafka); they take the broker
// address and their inputs as arguments and print JSON that the Go test
// checks. The package has no non-test code.
package clients
