// Package mirror holds end-to-end tests of mirror jobs (issue 3), each
// across real processes started by e2e/cluster: Tributary brokers, the
// `tributary mirror run` worker, `tributary dev` and kcat, with kfake
// in-process standing in for a legacy Apache Kafka:
//
//   - aggregation east+west → central with prefix and identity names:
//     exact counts, order kept per (source cluster, key);
//   - fan-out central → east and west with west's broker down for 10 s:
//     east completes while west is down, west catches up after;
//   - active-active east↔west with identity names: every record exactly
//     once in each cluster, no loop;
//   - migration from kfake: mirror, translate a group's offsets (refused
//     while the mirror is behind the group), move the consumer with no gap;
//   - five SIGKILLs of the worker during a paced 200,000-record stream:
//     nothing lost, first occurrences in order per partition;
//   - record fidelity (null and empty keys and values, binary and repeated
//     headers, null header values, CreateTime timestamps);
//   - an oversized record under the fail, skip and dead-letter policies;
//   - `tributary mirror validate` reporting five mistakes with their lines;
//   - `tributary dev` aggregating and fanning out kcat-produced records;
//   - SIGTERM draining the worker: exit 0, and no repeats after restart.
//
// The package has no non-test code besides this file.
package mirror
