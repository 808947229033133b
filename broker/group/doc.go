// Package group is the consumer-group coordinator of a single-node
// Kafka-protocol broker: the classic group protocol (JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup), committed offsets (OffsetCommit, OffsetFetch) and
// the group admin APIs (ListGroups, DescribeGroups, DeleteGroups).
//
// # What it owns
//
// A Coordinator owns every group's in-memory state: its members, the
// rebalance state machine (Empty, PreparingRebalance, CompletingRebalance,
// Stable, Dead), per-member session timers and the group's committed
// offsets. The broker decodes requests with kmsg, hands them to the
// Coordinator and encodes the kmsg response it gets back; the Coordinator
// sets the response's Version to the request's and fills only the fields
// that version carries.
//
// # What it promises
//
//   - Durability: offsets and group metadata are written through a Journal
//     to the offsets topic (Kafka's __consumer_offsets) using Kafka's own
//     record schemas (kmsg.OffsetCommitKey/Value, kmsg.GroupMetadataKey/Value),
//     so Kafka tooling can read them. An offset commit is acknowledged only
//     after Journal.Append returned nil; a failed append leaves the offset
//     invisible and is reported with the partition's error code.
//   - Recovery: Load replays the offsets topic, in log order, and rebuilds
//     offsets and groups. Loaded members get fresh session timers, so members
//     that died with the old broker expire; the generation never goes
//     backwards.
//   - Placement: Partition(group) is Kafka's
//     Utils.abs(groupId.hashCode()) % partitions, so a group lands on the same
//     offsets-topic partition it would on Apache Kafka with the same count.
//   - Concurrency: one mutex per group, never held while a request waits for
//     the rest of its group; Journal appends of one group are serialised in
//     log order by a second per-group mutex. JoinGroup and SyncGroup block
//     until their phase completes, the caller's context is done, or the
//     Coordinator is closed; Close fails them with COORDINATOR_NOT_AVAILABLE
//     (so clients look the coordinator up again) and stops every timer.
//
// # Transactional offsets
//
// TxnOffsetCommit (v0–v3) writes offsets through TxnJournal.AppendTxn in the
// producer's transaction; they stay pending, per producer ID, until
// CompleteTxn applies the transaction's marker in that offsets partition:
// commit makes them the committed offsets, abort drops them. Meanwhile
// OffsetFetch with RequireStable answers UNSTABLE_OFFSET_COMMIT for their
// partitions. The broker checks the producer against the transaction
// coordinator (broker/txn) before calling TxnOffsetCommit; on replay,
// LoadTxn restores pending offsets and CompleteTxn is called for each
// marker met.
//
// # Deliberate simplifications
//
//   - Static membership (group.instance.id, JoinGroup v5+) is accepted:
//     members are tracked by instance id, a rejoin with a known instance id
//     and an empty member id takes over the old member's slot and fences the
//     old member id with FENCED_INSTANCE_ID, but unlike Kafka it triggers a
//     normal rebalance instead of handing back the previous assignment.
//     Leaving by instance id is supported (LeaveGroup v3+).
//   - Offsets are never expired by retention (retention times in
//     OffsetCommit v2–v4 are accepted and ignored, as Kafka 2.1+ does for
//     empty groups).
//   - Protocol selection: the first protocol in the leader's order that
//     every member supports (Kafka runs a vote; with clients that list
//     protocols in the same order the result is the same).
//   - Journal failures map to COORDINATOR_NOT_AVAILABLE (retriable: clients
//     rediscover the coordinator and retry), unless the error wraps a
//     *kerr.Error, whose code is used as is.
package group
