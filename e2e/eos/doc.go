// Package eos holds the end-to-end tests of exactly-once mirroring
// (`delivery: exactly-once` into Kafka-protocol targets) against real
// processes: Tributary brokers and `tributary mirror run` workers started by
// e2e/cluster, with kfake standing in for a legacy Kafka and a Consul agent
// for job ownership.
//
// What the tests prove, each reading the target read_committed:
//
//   - a worker SIGKILLed five times during a paced 200,000-record
//     aggregation leaves every record in the target exactly once, in order
//     per (source cluster, key), while the target's log shows aborted
//     transactions (the kills did cut transactions short);
//   - a paused worker ("zombie") whose flow a second worker took over is
//     fenced when it resumes: it exits non-zero saying so, and wrote no
//     duplicate;
//   - a consumer group moved from a legacy Kafka with `groups translate`
//     after a SIGKILLed mirror sees neither a gap nor a repeat;
//   - with two Consul workers, the owner SIGKILLed mid-stream, the heir
//     continues with nothing lost and nothing duplicated.
//
// Run with `go test -count=1 -p 1 -timeout 10m ./e2e/eos/`; TRIBUTARY_BIN
// names the binary under test (else it is built once).
package eos
