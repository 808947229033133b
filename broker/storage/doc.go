// Package storage is the partition log of a single-node Kafka-protocol
// broker: append-only segment files of v2 record batches, stored exactly as
// producers sent them, with a sparse offset index, a time index, producer
// state for idempotence and transactions, a leader epoch cache, retention,
// an fsync policy and crash recovery.
//
// # What it owns and promises
//
// A Log owns one directory (one partition) and nothing else in it may be
// written by anyone else. It promises:
//
//   - Offsets are dense and assigned in append order; a batch is stored with
//     its base offset and partition leader epoch rewritten (both outside the
//     CRC) and, with LogAppendTime, its timestamps and timestamp-type bit
//     rewritten and its CRC recomputed. Nothing else is changed.
//   - The high watermark (HW) is the log end offset (LEO) once an append
//     returns; with FsyncAlways, once the batch is fsynced. The last stable
//     offset (LSO) is min(first offset of every open transaction, HW).
//   - With FsyncAlways, every batch whose Append returned nil survives a
//     crash. With any policy, Open recovers whatever is on disk to a
//     consistent prefix: it never refuses to start because of a torn tail.
//   - A retried idempotent batch (same producer, epoch and sequence range as
//     one of its last five batches) is not stored twice, also across a
//     restart, as long as its producer state was not expired.
//   - Files of a segment deleted by retention stay readable until every
//     ReadResult referring to them is released.
//   - Producer IDs from a ProducerIDAllocator are never handed out twice,
//     also across crashes.
//
// All I/O goes through the FS interface (OSFS in production).
//
// # Directory layout
//
// Every number in a file name is a base offset formatted as %020d.
//
//	00000000000000000000.log        segment: record batches
//	00000000000000000000.index      sparse offset index of that segment
//	00000000000000000000.timeindex  time index of that segment
//	00000000000000000000.txnindex   aborted transactions of that segment (optional)
//	00000000000000001000.snapshot   producer state as of offset 1000
//	leader-epoch-checkpoint         leader epoch -> start offset
//	recovery-point                  everything below it is fsynced
//	clean-shutdown                  present only after a clean Close
//	*.tmp                           being written; removed at Open
//	*.deleted                       deleted by retention, still read; removed at Open
//
// A segment holds the batches whose offsets are in [base, base of the next
// segment). The last segment is the active one, the only one appended to. The
// log start offset is the base of the first segment; the log end offset is
// the offset after the last batch.
//
// All integers are big-endian. CRC-32C is the Castagnoli CRC also used by
// record batches.
//
// # Segment file (.log)
//
// A concatenation of Kafka v2 record batches, byte for byte as on the wire:
//
//	offset  size  field
//	0       8     base offset (int64), assigned by the log
//	8       4     length (int32) of the rest of the batch, from byte 12
//	12      4     partition leader epoch (int32), stamped by the log
//	16      1     magic (int8) = 2
//	17      4     CRC-32C (uint32) of bytes 21..end
//	21      2     attributes (int16): bits 0-2 compression (0 none, 1 gzip,
//	              2 snappy, 3 lz4, 4 zstd), bit 3 timestamp type
//	              (1 = LogAppendTime), bit 4 transactional, bit 5 control
//	23      4     last offset delta (int32) = record count - 1
//	27      8     first timestamp (int64, ms)
//	35      8     max timestamp (int64, ms)
//	43      8     producer ID (int64, -1 if none)
//	51      2     producer epoch (int16)
//	53      4     base sequence (int32, -1 if none)
//	57      4     record count (int32)
//	61      ...   records (compressed as a whole if bits 0-2 are set)
//
// Batches are contiguous; the file ends exactly after the last batch. A
// segment never exceeds 4 GiB - 1 bytes, and its offsets are within
// base..base+2^32-1, so index entries fit 32 bits.
//
// # Offset index (.index)
//
// Entries of 8 bytes, in increasing order of both fields:
//
//	0  4  relative offset (uint32): base offset of a batch - segment base
//	4  4  position (uint32): byte position of that batch in the .log
//
// An entry is added before appending a batch when at least
// Config.IndexIntervalBytes bytes were appended since the previous entry (or
// since the segment start, which is the implicit entry (0, 0)). To find
// offset X, take the last entry with relative offset <= X - base and scan
// batch headers from its position.
//
// # Time index (.timeindex)
//
// Entries of 12 bytes, timestamps and relative offsets non-decreasing:
//
//	0  8  timestamp (int64, ms): largest batch max timestamp of the segment
//	      up to and including the batch below
//	8  4  relative offset (uint32) of the base offset of that batch
//
// An entry is added together with each offset index entry, and when the
// segment stops being active (roll, Close), whenever the largest timestamp
// grew since the last entry; so the last entry of a non-active segment holds
// its largest timestamp, which time retention uses. To find the first record
// with timestamp >= T: skip segments whose largest timestamp is < T; in the
// first other one, every batch up to the last entry with timestamp < T is
// older than T, so scan batch headers from that entry's offset for the first
// batch with max timestamp >= T and decode it for the first such record.
//
// # Aborted transaction index (.txnindex)
//
// Entries of 36 bytes, in the order of their abort markers:
//
//	0   8  producer ID (int64)
//	8   8  first offset of the aborted transaction (int64)
//	16  8  offset of the abort marker (int64)
//	24  8  last stable offset when the marker was appended (int64)
//	32  4  CRC-32C (uint32) of bytes 0..32
//
// An entry is appended when an abort marker (a control batch whose first
// record key is version int16, type int16 = 0) ends an open transaction, to
// the file of the segment holding the marker; the last stable offset is
// min(first offset of the other open transactions, marker offset + 1). The
// file exists only once its segment holds such a marker. Readers stop at the
// first entry whose CRC does not match and cut the file there. Recovery drops
// the entries whose marker is at or after the offset it replays producer
// state from (the snapshot's) and recreates them during the replay, so they
// match the recovered log; retention deletes the file with its segment.
// Log.AbortedTransactions serves them to read_committed fetches.
//
// # Producer state snapshot (.snapshot)
//
// The producer state as of the offset in the name (all batches below it
// applied). Written at every roll (at the new segment's base) and at Close (at
// the log end offset), by temp file + fsync + rename + directory fsync:
//
//	0   4  CRC-32C (uint32) of bytes 4..end
//	4   2  version (int16) = 1
//	6   8  offset (int64), equal to the name
//	14  4  producer count (int32)
//	18  ...producers, each:
//	       0   8  producer ID (int64)
//	       8   2  producer epoch (int16)
//	       10  8  first offset of its open transaction (int64, -1 if none)
//	       18  8  max timestamp of its last batch (int64), for expiration
//	       26  1  number of recent batches n (0..5)
//	       27  n × 32 bytes, oldest first:
//	           0   4  first sequence (int32)
//	           4   4  last sequence (int32)
//	           8   8  first offset (int64)
//	           16  8  last offset (int64)
//	           24  8  max timestamp (int64)
//
// Retention deletes the snapshots below the new log start offset except the
// newest of them, so there is always a snapshot to start from if there ever
// was one.
//
// # leader-epoch-checkpoint
//
//	0   4  CRC-32C (uint32) of bytes 4..end
//	4   2  version (int16) = 0
//	6   4  entry count (int32)
//	10  ...entries of 12 bytes, epochs and offsets increasing:
//	       0  4  leader epoch (int32)
//	       4  8  start offset (int64): first offset appended in that epoch
//
// Rewritten (temp file, fsync, rename, directory fsync) before the first batch
// of a new epoch is written, so it never misses an epoch of durable data;
// truncated with the log; its first entry is moved up to the log start
// offset by retention.
//
// # recovery-point and clean-shutdown
//
// Both are 12 bytes: an int64 and the CRC-32C (uint32) of those 8 bytes.
// recovery-point holds an offset below which every segment and its indexes
// are fsynced; it is written by Sync, at every roll and at Close.
// clean-shutdown holds the size of the active segment at Close, written after
// everything else is fsynced; Open removes it (durably) before accepting
// appends.
//
// # Producer ID allocator file
//
// 12 bytes: the end (int64, exclusive) of the last reserved block of producer
// IDs and the CRC-32C of those 8 bytes; replaced with temp file + fsync +
// rename + directory fsync before any ID of a new block is handed out. Open
// continues at the stored end, skipping the unused rest of the last block.
//
// # Recovery
//
// Open removes *.tmp and *.deleted files and index files without a segment.
// Segments entirely below the recovery point (and, after a clean shutdown,
// all but the active one) are trusted: their indexes are loaded and checked
// (entry size, ordering, positions within the file), and rebuilt by a scan if
// that fails. The other segments — at least the active one unless the
// clean-shutdown marker matches its size — are scanned batch by batch,
// checking length, magic, CRC, record count and increasing offsets; the
// first bad batch and everything after it (including later segments) is
// truncated with a warning giving the offset and byte position, and the
// indexes are rebuilt. Then the leader epoch cache is truncated to the log
// end, the newest valid producer snapshot at or below the log end is loaded
// and the batches after it are replayed, the scanned data is fsynced and the
// recovery point moves to the log end.
//
// # Concurrency
//
// One sync.RWMutex per Log (Log.mu) guards all of its state; Append and the
// other mutators take it exclusively, Read and the getters shared. Batch
// validation and CRC checking run before taking it. Sync fsyncs outside it.
package storage
