// Command tributary is the one Tributary binary, one file per command:
//
//	tributary broker     a Kafka-protocol broker node (broker.go)
//	tributary dev        three brokers and the embedded configs/dev.yaml jobs in one process (dev.go)
//	tributary mirror     validate, plan, run and watch mirror jobs (mirror.go)
//	tributary groups     translate consumer-group offsets across a mirror (groups.go)
//	tributary topology   clusters, brokers, workers and job owners in Consul (topology.go)
//	tributary bench      produce, consume, compare, mirror and bridge benchmarks (bench*.go)
//
// Every command logs through log/slog to stderr; --log-level sets the level.
package main
