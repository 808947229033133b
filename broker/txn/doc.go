// Package txn is the transaction coordinator of a single-node
// Kafka-protocol broker: InitProducerId with a transactional ID,
// AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, the timeout of open
// transactions, and ListTransactions / DescribeTransactions for tooling.
//
// # What it owns
//
// A Coordinator owns the state of every transactional ID: its producer ID
// and epoch, its transaction timeout, the transaction state (Kafka's Empty,
// Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort) and
// the partitions of the open transaction. The broker decodes requests with
// kmsg and hands them over; the Coordinator returns kmsg responses of the
// request's version. Everything the Coordinator needs from the rest of the
// broker (the state journal, commit and abort markers, producer IDs,
// partition existence) goes through the Backend interface.
//
// # What it promises
//
//   - Durability: every state change is appended to the transaction state
//     topic (Kafka's __transaction_state) through Backend.AppendState, using
//     Kafka's record schemas (kmsg.TxnMetadataKey v0, kmsg.TxnMetadataValue
//     v0), before it is applied in memory and before the client is answered.
//     Load replays those records; the last record of an ID wins.
//   - One producer ID per transactional ID, kept across restarts; every
//     InitProducerId bumps the epoch (a new producer ID with epoch 0 once the
//     epoch is exhausted), which fences the older instance: its
//     AddPartitionsToTxn, AddOffsetsToTxn, EndTxn and TxnOffsetCommit get
//     PRODUCER_FENCED (INVALID_PRODUCER_EPOCH on versions before KIP-588),
//     its transactional produce INVALID_PRODUCER_EPOCH. A transaction the
//     fenced instance left open is aborted, markers written, before the new
//     epoch is returned.
//   - Ending a transaction: the PrepareCommit or PrepareAbort state is made
//     durable first (from then on the outcome is decided), then a marker is
//     written to every partition of the transaction (offsets-topic partitions
//     included, which is how pending transactional offsets become visible or
//     vanish), then the Complete state. If a marker cannot be written the
//     transaction stays prepared and the background scan retries; requests
//     meanwhile get CONCURRENT_TRANSACTIONS.
//   - Ordering on disk: the journal record, each marker and the Complete
//     record are written by separate, sequential Backend calls, each
//     returning only once its append returned. The broker's Backend appends
//     with storage.Log.Append, which under the always fsync policy returns
//     after the batch is fsynced (the policy applies to
//     __transaction_state and to every data and offsets partition alike),
//     so then the Prepare record is on disk before any marker is written and
//     every marker before the Complete record: the outcome survives power
//     loss. Under the never and interval policies the same order holds in
//     the page cache, so the outcome survives a process crash but not power
//     loss.
//   - Timeouts: RunScans aborts, with a bumped epoch, every transaction open
//     longer than its timeout, and completes prepared transactions whose
//     markers failed.
//   - Recovery: after Load, Recover completes the prepared transactions.
//     Ongoing transactions are resumed as Kafka does: their producer may go
//     on and commit, and the timeout (counted from the transaction's start
//     as recorded) aborts them otherwise.
//
// # Concurrency
//
// One mutex per transactional ID (txnEntry.mu) is held for a whole
// operation, journal and marker I/O included, so the operations of one ID
// are applied in log order; operations of different IDs run in parallel.
// Coordinator.mu guards only the maps and is never held during I/O. Lock
// order: txnEntry.mu, then Coordinator.mu; Backend calls may take the
// broker's log and group locks, which never call back into this package.
//
// # Simplifications
//
//   - The state topic has one partition (a single node coordinates every
//     transactional ID) and nothing expires from it yet.
//   - AddPartitionsToTxn is served up to v3 (the v4+ broker-to-broker
//     verification of KIP-890 is not served); EndTxn up to v3.
//   - Transactional IDs are never expired (Kafka's
//     transactional.id.expiration.ms).
package txn
