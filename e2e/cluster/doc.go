// Package cluster starts real Tributary processes for end-to-end tests and
// ends them: the binary built once by `make test` (TRIBUTARY_BIN) or, when
// that is unset, built here once per test binary.
//
// Every process is started in its own process group with Pdeathsig set, so
// a test binary killed by its timeout leaks none, and t.Cleanup stops it.
// Only loopback addresses are used.
//
// It also holds the Kafka-client helpers the e2e packages share (kafka.go):
// franz-go clients (Dial, Client), topic creation, synchronous produce,
// end offsets and record counts, reading a topic to its end with either
// isolation level (ReadTopic), job-file clusters sections and Prometheus
// samples; and an in-process kfake cluster standing in for a legacy Kafka
// (StartKfake). Helpers taking a testing.TB fail the test on error; the
// others return errors, for polling.
package cluster
