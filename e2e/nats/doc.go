// Package nats holds end-to-end tests of the NATS bridge: `tributary
// mirror run` worker processes between Tributary brokers and Debian's
// nats-server (2.9.10) as separate processes — a Kafka → JetStream → Kafka
// round trip, SIGKILLs of the worker in both directions, and core NATS in
// both directions.
package nats
