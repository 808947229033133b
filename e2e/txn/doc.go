// Package txn tests Kafka transactions against real broker processes with
// real clients: confluent-kafka's (librdkafka) transactional producer,
// sarama's, franz-go's GroupTransactSession consume-transform-produce,
// fencing of an older producer instance, the abort of a transaction left
// open past its timeout, and transaction state across broker restarts
// (SIGTERM and SIGKILL).
//
// Transactional visibility is checked with a sentinel: after the
// transactions under test, a non-transactional record is appended to the
// (single-partition) topic and consumers read until they meet it, so "sees
// only the committed records" is decided by the log, not by a quiet period.
// A read_committed consumer sees the sentinel only once every transaction
// before it has ended.
package txn
