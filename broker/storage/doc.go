// Package storage is the partition log of a single-node Kafka-protocol
// broker: append-only segment files of v2 record batches, stored exactly as
// producers sent them, with a sparse offset index, a time index, producer
// state for idempotence and transactions, a leader epoch cache, retention,
// log compaction, an fsync policy and crash recovery.
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
//   - A failed fsync (Append with FsyncAlways, Sync, a roll) fails the log:
//     every later Append and Sync returns ErrLogFailed, the HW and the
//     durable end never move over the bytes that fsync covered, and Close
//     writes no clean-shutdown marker, so the next Open recovers from what
//     reached the disk. A retried fsync may succeed after the kernel dropped
//     the dirty pages; it is never trusted.
//   - A retried idempotent batch (same producer, epoch and sequence range as
//     one of its last five batches) is not stored twice, also across a
//     restart, as long as its producer state was not expired. Producer state
//     expires ProducerIDExpiration after the producer's last append by the
//     broker's clock (Options.Now), whatever the records' timestamps.
//   - Files of a segment deleted by retention stay readable until every
//     ReadResult referring to them is released.
//   - Producer IDs from a ProducerIDAllocator are never handed out twice,
//     also across crashes.
//   - Compaction (Clean) never changes an offset, keeps the latest record of
//     every key and, as of any crash, each segment holds either its old or
//     its cleaned content.
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
//	cleaner-checkpoint              offsets below it have been compacted at least once
//	<segment file>.cleaned          cleaned copy being written; removed at Open
//	<segment file>.swap             cleaned copy staged for the swap; see "Log compaction"
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
//	              (1 = LogAppendTime), bit 4 transactional, bit 5 control,
//	              bit 6 delete horizon (set by the cleaner: the first
//	              timestamp field holds the delete horizon, KIP-534)
//	23      4     last offset delta (int32) = record count - 1
//	27      8     first timestamp (int64, ms)
//	35      8     max timestamp (int64, ms)
//	43      8     producer ID (int64, -1 if none)
//	51      2     producer epoch (int16)
//	53      4     base sequence (int32, -1 if none)
//	57      4     record count (int32)
//	61      ...   records (compressed as a whole if bits 0-2 are set)
//
// Batches are contiguous; the file ends exactly after the last batch. A batch
// with a record count of 0 and no records (61 bytes) exists only in cleaned
// segments (see "Log compaction"). A
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
//	4   2  version (int16) = 2
//	6   8  offset (int64), equal to the name
//	14  4  producer count (int32)
//	18  ...producers, each:
//	       0   8  producer ID (int64)
//	       8   2  producer epoch (int16)
//	       10  8  first offset of its open transaction (int64, -1 if none)
//	       18  8  broker time of its last append (int64, Unix ms, from
//	              Options.Now), for expiration
//	       26  1  number of recent batches n (0..5)
//	       27  n × 32 bytes, oldest first:
//	           0   4  first sequence (int32)
//	           4   4  last sequence (int32)
//	           8   8  first offset (int64)
//	           16  8  last offset (int64)
//	           24  8  max timestamp (int64)
//
// Version 1 had the same layout, but bytes 18..26 of a producer held the
// max record timestamp of its last batch; expiry by the records' own
// timestamps dropped the dedup state of producers writing old timestamps (a
// mirror keeping the source's CreateTimes), so a retry was appended twice.
// A version 1 snapshot still loads: its producers' last-append time is set
// to the broker's clock at the load. Producers replayed from the log after
// the snapshot likewise get the clock at the replay, so recovery only ever
// postpones an expiry (ProducerIDExpiration) and never advances one.
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
// # Log compaction
//
// With CleanupCompact in Config.Cleanup, Log.Clean (run by the owner on an
// interval) compacts the cleanable part of the log: the non-active segments
// that end at or below the last stable offset, stopping at the first one
// whose largest timestamp is younger than MinCompactionLag. A run starts
// only if the dirty share (bytes of cleanable segments at or above the
// cleaner checkpoint / all cleanable bytes) is at least
// MinCleanableDirtyRatio, or a delete horizon the previous run saw has
// passed (after Open, the first run always looks).
//
// A run first maps every key of the dirty segments (those past the cleaner
// checkpoint) to the offset of its latest record there — by a 16-byte
// SHA-256 prefix of the key, ignoring control batches and records of
// aborted transactions (data batches of a producer from its transaction's
// first offset up to its abort marker, per the .txnindex entries of every
// segment). The map holds at most Config.CleanerMaxKeys keys (whole
// segments: at least one); a run whose map fills cleans only up to the
// segments it mapped, and the next run goes on from there. Then it filters
// each cleanable segment, batch by batch, in offset order:
//
//   - a data record stays if it has a key, is not aborted, is not
//     superseded (its key maps to a later offset; a key the map lacks was
//     not written again since the previous run) and is not a tombstone (null value) whose batch's delete horizon
//     has passed. Records without a key are dropped (a compacted log refuses
//     them at Append with ErrInvalidRecord, as Kafka does).
//   - a control batch (transaction marker) stays while any batch of its
//     transaction stays. Once none does it gets a delete horizon, and goes
//     when that has passed.
//   - a batch that keeps a tombstone, or a removable marker, and has no
//     delete horizon gets one: now + DeleteRetention, stored in its first
//     timestamp field with attribute bit 6; record timestamp deltas are
//     taken from it, so record timestamps do not change.
//   - a batch whose records all stay and which needs no new horizon is
//     copied byte for byte. Otherwise it is re-encoded with the records that
//     stay: same base offset, last offset delta, partition leader epoch,
//     producer ID, epoch and base sequence, max timestamp and codec
//     (recompressed; snappy in the xerial framing), new length, record count
//     and CRC.
//   - a batch left with no record is dropped, except its header alone (no
//     records, no compression) is kept when it is its producer's last batch
//     (so producer state, which recovery may replay from the log, keeps its
//     sequence and epoch) or the last batch of its segment (so no segment
//     becomes empty and every segment keeps its offset range).
//
// Offsets never change; gaps appear. Segments are cleaned one to one, keeping
// their base offsets; merging small cleaned segments is not done. A segment
// in which nothing changes is not rewritten.
//
// Swap protocol, per changed segment B (files B.log, B.index, B.timeindex and
// B.txnindex if the old segment has one; the .txnindex entries are copied):
//
//  1. write the cleaned copy to B.<suffix>.cleaned and fsync each file;
//  2. rename the index files B.<suffix>.cleaned -> B.<suffix>.swap, fsync
//     the directory; then B.log.cleaned -> B.log.swap, fsync the directory.
//     A durable B.log.swap is the commit point;
//  3. under Log.mu: rename each B.<suffix>.swap over B.<suffix>, B.log last,
//     swap the segment in memory and fsync the directory; readers holding
//     the old segment keep reading its unlinked files until they release
//     it. Then cleaner-checkpoint is replaced (temp file, fsync, rename).
//
// Open, before loading segments, finishes whatever a crash interrupted:
//
//	B.*.cleaned present                  remove (not committed; old segment intact)
//	B.*.swap without B.log.swap          remove (not committed)
//	B.log.swap and B.log present         committed: rename each B.*.swap over
//	                                     its file, log last (completes step 3)
//	B.log.swap, B.log absent             retention deleted B during the run: remove
//
// then fsyncs the directory. Each segment therefore holds either its old or
// its cleaned content, both valid below the recovery point. The cleaner
// checkpoint is advisory: if it is lost, the next run treats everything as
// dirty.
//
// # Concurrency
//
// One sync.RWMutex per Log (Log.mu) guards all of its state; Append and the
// other mutators take it exclusively, Read and the getters shared. Batch
// validation and CRC checking run before taking it. Sync fsyncs outside it.
// Clean (serialized by Log.cleanMu) holds Log.mu only to plan a run and to
// install its result; it reads and writes segment files outside it.
package storage
