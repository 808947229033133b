// Package mirror is Tributary's replication pipeline, independent of any
// client library: sources and sinks (bridge/kafka, bridge/nats) implement
// its Source, Consumer and Sink interfaces.
//
// A Job (a JobSpec, built from a job file by mirror/config) runs one flow
// per target cluster, each with its own connections and positions, so a
// slow or unreachable target holds up no other. A flow:
//
//   - discovers the source topics its patterns select and keeps the target
//     topics in step (creates them, adds partitions) as topic sync says;
//   - resumes from the checkpoint its target holds (the target's word wins
//     over anything recorded elsewhere), or from the job's start position;
//   - reads every source partition in order, with bounded in-flight bytes
//     (reading pauses while Tuning.MaxInFlightBytes are unacknowledged, so
//     memory does not grow with the backlog) and an optional byte rate;
//   - applies the policy to each record: the loop check, rename,
//     partitioning, the provenance header, the oversized-record policy;
//   - hands batches to the sink together with the checkpoint that holds
//     once the batch is written: Sink.Write returns nil only when every
//     record is acknowledged and the checkpoint durable after them;
//   - advances its positions only then.
//
// Any error ends the flow's session and the next one starts over from the
// target's checkpoint: the whole flow rewinds to what the target
// acknowledged, so nothing is written past a failed batch, a crash repeats
// at most the records in flight (at-least-once), and none is lost. With a
// transactional sink the rewind also discards what the failed batch wrote
// (exactly-once).
//
// # Provenance and loops
//
// Every mirrored record carries the header ProvenanceHeader (see
// Provenance for its encoding): the path of clusters it crossed, from its
// origin to its immediate source, and the topic, partition and offset it
// was read at. Clusters are identified by the cluster ID they report,
// falling back to the job file's name for them. A record is never mirrored
// into a cluster on its path, so active-active replication with identity
// names cannot loop. A flow whose source and target report the same cluster
// ID is refused.
//
// # Checkpoints
//
// A Checkpoint is kept in its target (see Sink.LoadCheckpoint) as the
// value EncodeCheckpoint returns, the same in every bridge: JSON, version
// CheckpointVersion (1):
//
//	{"v":1,"flow":"orders/central","time":"2026-11-21T23:51:02.123456789Z",
//	 "positions":[{"cluster":"east","topic":"orders","partition":0,"offset":42}]}
//
// where "flow" is the flow ID, "time" when the checkpoint was made (UTC,
// RFC 3339 with nanoseconds), and each position the offset of the next
// record to read from that source partition, sorted by cluster, topic and
// partition. DecodeCheckpoint refuses any other "v" (ErrCheckpointVersion)
// and takes a null "positions" for none.
package mirror
