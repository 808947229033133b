// Package compaction holds end-to-end tests of log compaction against a real
// broker process started by e2e/cluster, with franz-go clients:
//
//   - a topic created with cleanup.policy=compact lists its compaction
//     configs in DescribeConfigs and refuses records without a key
//     (INVALID_RECORD);
//   - after many versions per key and enough other records to push them out
//     of the active segment, a consumer from the earliest offset sees
//     exactly one record per key there — the latest value, at the offset it
//     was produced at — and every record of the active segment;
//   - a tombstone first replaces its key's values, is still served for a
//     while, and is gone after delete.retention.ms;
//   - all of it survives a restart.
package compaction
