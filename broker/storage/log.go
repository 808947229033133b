package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Origin says who is appending a batch.
type Origin int8

const (
	// OriginClient is a produce request: sequence numbers are checked and
	// control batches are refused.
	OriginClient Origin = iota
	// OriginCoordinator is a transaction marker or an internal write (group
	// offsets): no sequence checks, producer state still updated.
	OriginCoordinator
	// OriginReplica is reserved for follower replication.
	OriginReplica
)

// AppendResult describes an appended (or deduplicated) batch.
type AppendResult struct {
	BaseOffset, LastOffset int64
	// LogAppendTime is the broker timestamp given to the batch, -1 unless
	// the log uses LogAppendTime.
	LogAppendTime  int64
	LogStartOffset int64
	// Duplicate reports a retried batch that was not appended again; the
	// offsets are those of the original append.
	Duplicate bool
}

// Chunk is a byte range of a segment file holding whole batches.
type Chunk struct {
	File     File
	Pos, Len int64
}

// ReadResult is the answer of Read. Its chunks stay readable, even if
// retention deletes their segments, until Release.
type ReadResult struct {
	Chunks                                          []Chunk
	Bytes                                           int64
	HighWatermark, LastStableOffset, LogStartOffset int64

	segs []*segment
}

// Release lets the log close and remove the files of the chunks. It is
// idempotent; the chunks must not be used afterwards.
func (r *ReadResult) Release() {
	for _, s := range r.segs {
		s.release()
	}
	r.segs = nil
}

// Options are the optional collaborators of a Log.
type Options struct {
	// Logger receives recovery and retention events. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock for LogAppendTime, segment rolling and retention.
	// Default time.Now.
	Now func() time.Time
}

// Log is the log of one partition. All methods are goroutine-safe.
type Log struct {
	fsys   FS
	dir    string
	logger *slog.Logger
	now    func() time.Time

	// syncMu serializes Sync so fsyncs run outside mu.
	syncMu sync.Mutex
	// cleanMu serializes Clean runs, which work mostly outside mu.
	cleanMu sync.Mutex
	cleaner cleanerState

	// mu guards the fields below (and the mutable fields of segments).
	mu            sync.RWMutex
	cfg           Config
	segs          []*segment // by base offset; the last is active
	leo           int64
	hw            int64
	durable       int64 // offsets below it are fsynced
	size          int64 // total bytes of all segments
	recoveryPoint int64 // offsets below it are fsynced with their indexes
	producers     map[int64]*producerState
	openTxns      map[int64]int64 // producer ID -> first offset of its open transaction
	firstOpenTxn  int64           // min of openTxns, noTxn if none
	epochs        []epochEntry
	snapshots     []int64 // offsets of producer snapshots on disk, sorted
	changed       chan struct{}
	closed        bool
	failed        error // wraps ErrLogFailed: a write or fsync failed and could not be undone; refuse appends and syncs
}

// Open opens the log in dir, creating dir if missing, and recovers it:
// leftover temp files are removed, a torn or corrupt tail is truncated, and
// indexes and producer state are rebuilt as needed. Zero fields of cfg take
// their defaults.
func Open(fsys FS, dir string, cfg Config, opts Options) (*Log, error) {
	l := &Log{
		fsys:         fsys,
		dir:          dir,
		logger:       opts.Logger,
		now:          opts.Now,
		cfg:          cfg.withDefaults(),
		producers:    make(map[int64]*producerState),
		openTxns:     make(map[int64]int64),
		firstOpenTxn: noTxn,
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	l.logger = l.logger.With("dir", dir)
	l.cleaner.compacted.Store(l.cfg.Cleanup&CleanupCompact != 0)
	if l.now == nil {
		l.now = time.Now
	}
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			s.release()
		}
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	return l, nil
}

// Append validates exactly one v2 record batch, assigns it offsets and
// appends it. It rewrites the batch in place: base offset, partition leader
// epoch (leaderEpoch, which also feeds the epoch cache when it is the highest
// seen) and, with LogAppendTime, attributes, timestamps and CRC.
//
// Errors: ErrCorruptMessage (length or CRC), ErrUnsupportedMagic,
// ErrInvalidRecord, ErrMessageTooLarge, ErrOutOfOrderSequence,
// ErrInvalidProducerEpoch, ErrClosed, or an I/O error. A retried idempotent
// batch is not appended again (AppendResult.Duplicate, original offsets).
// With FsyncAlways it returns once the batch is fsynced (concurrent appends
// share one fsync) and the high watermark covers it.
func (l *Log) Append(batch []byte, origin Origin, leaderEpoch int32) (AppendResult, error) {
	h, err := l.validate(batch, origin)
	if err != nil {
		return AppendResult{}, err
	}
	if origin == OriginClient && !h.IsControl() && l.cleaner.compacted.Load() {
		if err := checkKeys(batch); err != nil {
			return AppendResult{}, err
		}
	}
	l.mu.Lock()
	res, err := l.appendLocked(batch, &h, origin, leaderEpoch)
	always := l.cfg.Fsync.Mode == FsyncAlways
	l.mu.Unlock()
	if err != nil || !always {
		return res, err
	}
	// Group commit: one fsync covers every batch written before it, so
	// concurrent appenders share fsyncs. A duplicate waits too, as its
	// original may still be in flight.
	if err := l.awaitDurable(res.LastOffset + 1); err != nil {
		return AppendResult{}, err
	}
	return res, nil
}

// appendLocked is Append after validation: l.mu held (write).
func (l *Log) appendLocked(batch []byte, hp *BatchHeader, origin Origin, leaderEpoch int32) (AppendResult, error) {
	h := *hp
	if l.closed {
		return AppendResult{}, ErrClosed
	}
	if l.failed != nil {
		return AppendResult{}, fmt.Errorf("append to failed log: %w", l.failed)
	}
	if int64(len(batch)) > int64(l.cfg.MaxMessageBytes) {
		return AppendResult{}, fmt.Errorf("batch of %d bytes, max %d: %w", len(batch), l.cfg.MaxMessageBytes, ErrMessageTooLarge)
	}
	dup, err := l.checkProducer(&h, origin)
	if err != nil {
		return AppendResult{}, err
	}
	if dup != nil {
		return AppendResult{BaseOffset: dup.firstOffset, LastOffset: dup.lastOffset, LogAppendTime: -1, LogStartOffset: l.segs[0].base, Duplicate: true}, nil
	}

	now := l.now()
	seg := l.segs[len(l.segs)-1]
	base := l.leo
	if seg.size > 0 && (seg.size+int64(len(batch)) > l.cfg.SegmentBytes ||
		now.Sub(seg.firstAppend) >= l.cfg.SegmentMs ||
		base+int64(h.LastOffsetDelta)-seg.base > math.MaxUint32) {
		if seg, err = l.roll(); err != nil {
			return AppendResult{}, err
		}
	}
	if seg.size == 0 {
		seg.firstAppend = now
	}

	res := AppendResult{BaseOffset: base, LastOffset: base + int64(h.LastOffsetDelta), LogAppendTime: -1}
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], uint32(leaderEpoch))
	h.BaseOffset, h.PartitionLeaderEpoch = base, leaderEpoch
	if l.cfg.TimestampType == LogAppendTime {
		ms := now.UnixMilli()
		h.Attributes |= attrLogAppendTime
		h.FirstTimestamp, h.MaxTimestamp = ms, ms
		binary.BigEndian.PutUint16(batch[offAttributes:], uint16(h.Attributes))
		binary.BigEndian.PutUint64(batch[offFirstTimestamp:], uint64(ms))
		binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(ms))
		binary.BigEndian.PutUint32(batch[offCRC:], batchCRC(batch))
		res.LogAppendTime = ms
	}

	if n := len(l.epochs); leaderEpoch >= 0 && (n == 0 || leaderEpoch > l.epochs[n-1].epoch) {
		l.epochs = append(l.epochs, epochEntry{epoch: leaderEpoch, start: base})
		if err := l.persistEpochs(); err != nil {
			l.epochs = l.epochs[:n]
			return AppendResult{}, err
		}
	}

	pos := seg.size
	if _, err := seg.log.Write(batch); err != nil {
		if terr := seg.log.Truncate(pos); terr != nil {
			l.failed = fmt.Errorf("%w: segment %d: write failed (%v) and truncate failed: %w", ErrLogFailed, seg.base, err, terr)
		}
		return AppendResult{}, fmt.Errorf("write segment %d: %w", seg.base, err)
	}
	if err := seg.noteBatch(&h, pos, int64(l.cfg.IndexIntervalBytes)); err != nil {
		// The batch is in the log; only an index entry is missing, which
		// lookups tolerate and recovery rebuilds.
		l.logger.Warn("index append failed", "segment", seg.base, "offset", base, "err", err)
	}
	l.size += int64(len(batch))
	l.leo = res.LastOffset + 1
	if aborted, ok := l.applyProducer(&h, h.IsControl() && isAbortMarker(batch), now.UnixMilli()); ok {
		if err := seg.appendAborted(aborted); err != nil {
			// The marker is in the log; recovery regenerates entries
			// after the latest producer snapshot, not before it.
			l.logger.Warn("aborted transaction index append failed", "segment", seg.base, "offset", base, "err", err)
		}
	}

	if l.cfg.Fsync.Mode != FsyncAlways {
		l.hw = l.leo
		l.notifyLocked()
	}
	res.LogStartOffset = l.segs[0].base
	return res, nil
}

// awaitDurable returns once every offset below target is fsynced, fsyncing
// the segments with unsynced data itself unless another call already did.
// With FsyncAlways the high watermark follows the fsynced end.
func (l *Log) awaitDurable(target int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if l.durable >= target {
		l.mu.Unlock()
		return nil
	}
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.failed != nil {
		l.mu.Unlock()
		return fmt.Errorf("sync failed log: %w", l.failed)
	}
	type pending struct {
		seg  *segment
		size int64
	}
	var todo []pending
	for _, s := range l.segs {
		if s.syncedSize < s.size {
			s.acquire()
			todo = append(todo, pending{s, s.size})
		}
	}
	end := l.leo
	l.mu.Unlock()

	var err error
	for _, p := range todo {
		if err == nil {
			if serr := p.seg.log.Sync(); serr != nil {
				err = fmt.Errorf("sync segment %d: %w", p.seg.base, serr)
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range todo {
		if err == nil {
			p.seg.syncedSize = max(p.seg.syncedSize, p.size)
		}
		p.seg.release()
	}
	if err != nil {
		l.failSyncLocked(err)
		return err
	}
	l.markDurableLocked(end)
	return nil
}

// failSyncLocked marks the log failed after an fsync error. After a failed
// fsync the kernel may have dropped the dirty pages and cleared the error, so
// a later fsync can succeed without the bytes being on disk: nothing written
// since the last good fsync may ever be called durable, and appends and syncs
// are refused until the log is reopened, when recovery decides what survived
// (the approach of PostgreSQL and etcd). l.mu held (write).
func (l *Log) failSyncLocked(err error) {
	if l.failed == nil {
		l.failed = fmt.Errorf("%w: fsync failed, reopen to recover: %w", ErrLogFailed, err)
		l.logger.Error("fsync failed; log refuses appends until reopened", "err", err)
		l.notifyLocked()
	}
}

// markDurableLocked records that offsets below end are fsynced. l.mu held
// (write).
func (l *Log) markDurableLocked(end int64) {
	if end <= l.durable {
		return
	}
	l.durable = end
	if l.cfg.Fsync.Mode == FsyncAlways && end > l.hw {
		l.hw = end
		l.notifyLocked()
	}
}

// validate checks a batch before it is appended. It does not need l.mu.
func (l *Log) validate(batch []byte, origin Origin) (BatchHeader, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return h, err
	}
	switch {
	case h.Size() != int64(len(batch)):
		return h, fmt.Errorf("batch length field %d for %d bytes: %w", h.Length, len(batch), ErrCorruptMessage)
	case batchCRC(batch) != h.CRC:
		return h, fmt.Errorf("batch CRC %08x, computed %08x: %w", h.CRC, batchCRC(batch), ErrCorruptMessage)
	case h.NumRecords <= 0:
		return h, fmt.Errorf("batch with %d records: %w", h.NumRecords, ErrInvalidRecord)
	case h.LastOffsetDelta != h.NumRecords-1:
		return h, fmt.Errorf("batch last offset delta %d for %d records: %w", h.LastOffsetDelta, h.NumRecords, ErrInvalidRecord)
	case h.IsControl() && origin == OriginClient:
		return h, fmt.Errorf("control batch from a client: %w", ErrInvalidRecord)
	}
	return h, nil
}

// Check validates a client's batch as Append would — format, CRC, record
// count, size against max.message.bytes — without appending it, so that a
// request carrying several batches for one partition can be refused whole
// before any of them is appended. Append checks again.
func (l *Log) Check(batch []byte) error {
	if _, err := l.validate(batch, OriginClient); err != nil {
		return err
	}
	l.mu.RLock()
	max := l.cfg.MaxMessageBytes
	l.mu.RUnlock()
	if int64(len(batch)) > int64(max) {
		return fmt.Errorf("batch of %d bytes, max %d: %w", len(batch), max, ErrMessageTooLarge)
	}
	return nil
}

// roll closes the active segment for appends and starts a new one at the
// log end offset. The old segment is fsynced, the recovery point moves to
// the new base and the producer state is snapshotted there. l.mu held.
func (l *Log) roll() (*segment, error) {
	old := l.segs[len(l.segs)-1]
	if err := old.appendTimeEntry(); err != nil {
		return nil, err
	}
	if err := old.sync(); err != nil {
		l.failSyncLocked(err)
		return nil, err
	}
	old.syncedSize, old.indexDirty = old.size, false
	seg, err := openSegment(l.fsys, l.dir, l.leo)
	if err != nil {
		return nil, err
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		seg.release()
		err = fmt.Errorf("sync dir after creating segment %d: %w", seg.base, err)
		l.failSyncLocked(err)
		return nil, err
	}
	l.segs = append(l.segs, seg)
	if err := l.writeSnapshot(seg.base); err != nil {
		l.logger.Warn("producer snapshot failed", "offset", seg.base, "err", err)
	}
	if err := l.writeRecoveryPoint(seg.base); err != nil {
		l.logger.Warn("recovery point update failed", "offset", seg.base, "err", err)
	}
	l.logger.Debug("rolled segment", "base", seg.base, "previous", old.base, "previous_bytes", old.size)
	return seg, nil
}

// notifyLocked wakes Changed waiters. l.mu held (write).
func (l *Log) notifyLocked() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// Changed returns a channel closed the next time the high watermark or the
// last stable offset moves, or the log closes.
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
		if l.closed {
			close(l.changed)
			ch := l.changed
			l.changed = nil
			return ch
		}
	}
	return l.changed
}

// LogStartOffset returns the first offset still in the log.
func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.segs[0].base
}

// LogEndOffset returns the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.leo
}

// HighWatermark returns the offset below which records are committed: the
// log end offset, or with FsyncAlways the end of the fsynced data.
func (l *Log) HighWatermark() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.hw
}

// LastStableOffset returns min(first offset of every open transaction, HW).
func (l *Log) LastStableOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lsoLocked()
}

func (l *Log) lsoLocked() int64 { return min(l.firstOpenTxn, l.hw) }

// Size returns the total size of the segment files in bytes.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.size
}

// Config returns the configuration in effect, defaults filled in.
func (l *Log) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg
}

// SetConfig changes the configuration; zero fields take their defaults.
// It applies to subsequent appends and retention runs.
func (l *Log) SetConfig(cfg Config) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg.withDefaults()
	l.cleaner.compacted.Store(l.cfg.Cleanup&CleanupCompact != 0)
}

// segmentFor returns the index of the segment holding off. l.mu held.
func (l *Log) segmentFor(off int64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > off })
	return max(i-1, 0)
}

// Read returns file chunks of whole batches starting with the batch that
// contains offset, stopping before any batch reaching upTo (the broker
// passes the high watermark or the last stable offset) and at maxBytes,
// except that with minOneBatch the first batch is returned whatever its size.
// An offset below the log start or above the log end is
// ErrOffsetOutOfRange; an offset at or above upTo gives an empty result. The
// caller must Release the result.
func (l *Log) Read(offset, maxBytes int64, minOneBatch bool, upTo int64) (ReadResult, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ReadResult{}, ErrClosed
	}
	res := ReadResult{HighWatermark: l.hw, LastStableOffset: l.lsoLocked(), LogStartOffset: l.segs[0].base}
	if offset < res.LogStartOffset || offset > l.leo {
		return res, fmt.Errorf("read offset %d, log has [%d, %d): %w", offset, res.LogStartOffset, l.leo, ErrOffsetOutOfRange)
	}
	upTo = min(upTo, l.leo)
	if offset >= upTo {
		return res, nil
	}
	hdr := make([]byte, offLastOffsetDelta+4)
	for i := l.segmentFor(offset); i < len(l.segs); i++ {
		seg := l.segs[i]
		if seg.base >= upTo {
			break
		}
		pos, start, end := seg.lookup(offset), int64(-1), int64(-1)
		if i > 0 && seg.base > offset {
			pos = 0
		}
		done := false
		for pos < seg.size {
			if start >= 0 && seg.next <= upTo && res.Bytes+(seg.size-pos) <= maxBytes {
				// Everything left in this segment fits: skip the walk.
				res.Bytes += seg.size - pos
				end = seg.size
				break
			}
			if _, err := seg.log.ReadAt(hdr, pos); err != nil && !errors.Is(err, io.EOF) {
				res.Release()
				return ReadResult{}, fmt.Errorf("read segment %d at %d: %w", seg.base, pos, err)
			}
			size := int64(int32(binary.BigEndian.Uint32(hdr[offLength:]))) + batchLengthOverhead
			last := int64(binary.BigEndian.Uint64(hdr[offBaseOffset:])) + int64(int32(binary.BigEndian.Uint32(hdr[offLastOffsetDelta:])))
			if size < BatchHeaderSize || pos+size > seg.size {
				res.Release()
				return ReadResult{}, fmt.Errorf("segment %d: batch at %d has length %d: %w", seg.base, pos, size, ErrCorruptMessage)
			}
			if last < offset {
				pos += size
				continue
			}
			if last >= upTo || (res.Bytes+size > maxBytes && !(minOneBatch && res.Bytes == 0)) {
				done = true
				break
			}
			if start < 0 {
				start = pos
			}
			res.Bytes += size
			pos += size
			end = pos
		}
		if start >= 0 {
			seg.acquire()
			res.segs = append(res.segs, seg)
			res.Chunks = append(res.Chunks, Chunk{File: seg.log, Pos: start, Len: end - start})
		}
		if done || res.Bytes >= maxBytes {
			break
		}
	}
	return res, nil
}

// Sync fsyncs every segment with unsynced data and moves the recovery point
// to the log end offset. With FsyncInterval the owner calls it every
// interval (see SyncLoop).
func (l *Log) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.failed != nil {
		l.mu.Unlock()
		return fmt.Errorf("sync failed log: %w", l.failed)
	}
	type pending struct {
		seg  *segment
		size int64
	}
	var todo []pending
	for _, s := range l.segs {
		if s.syncedSize < s.size || s.indexDirty {
			s.acquire()
			todo = append(todo, pending{s, s.size})
			s.indexDirty = false
		}
	}
	leo := l.leo
	l.mu.Unlock()

	var err error
	for _, p := range todo {
		if err == nil {
			err = p.seg.sync()
		}
	}
	l.mu.Lock()
	for _, p := range todo {
		if err == nil {
			p.seg.syncedSize = max(p.seg.syncedSize, p.size)
		} else {
			p.seg.indexDirty = true
		}
		p.seg.release()
	}
	if err != nil {
		l.failSyncLocked(err)
	} else {
		l.markDurableLocked(leo)
	}
	if err == nil && leo > l.recoveryPoint && !l.closed {
		err = l.writeRecoveryPoint(leo)
	}
	l.mu.Unlock()
	return err
}

// SyncLoop calls Sync every interval (if positive; else the Interval of the
// fsync policy, else every second) until ctx is done or the log closes.
// Errors are logged with key "err".
func (l *Log) SyncLoop(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = l.Config().Fsync.Interval
	}
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.Sync(); err != nil {
				if errors.Is(err, ErrClosed) {
					return
				}
				l.logger.Warn("periodic sync failed", "err", err)
			}
		}
	}
}

// writeRecoveryPoint persists off as the recovery point. l.mu held.
func (l *Log) writeRecoveryPoint(off int64) error {
	if err := WriteFileAtomic(l.fsys, filepath.Join(l.dir, recoveryPointName), encodeOffsetFile(off)); err != nil {
		return fmt.Errorf("write recovery point: %w", err)
	}
	l.recoveryPoint = off
	return nil
}

// Close flushes everything, snapshots the producer state at the log end
// offset and marks the log cleanly shut down. Chunks of unreleased reads
// stay readable until released.
func (l *Log) Close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.notifyLocked()
	if l.failed != nil {
		// Nothing is flushed or marked clean: a retried fsync may succeed
		// without the lost bytes on disk, so recovery at the next open
		// decides what survived.
		for _, s := range l.segs {
			s.release()
		}
		return nil
	}
	var errs []error
	active := l.segs[len(l.segs)-1]
	if err := active.appendTimeEntry(); err != nil {
		errs = append(errs, err)
	}
	for _, s := range l.segs {
		if s.syncedSize < s.size || s.indexDirty {
			if err := s.sync(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 {
		l.markDurableLocked(l.leo)
		if err := l.writeSnapshot(l.leo); err != nil {
			errs = append(errs, err)
		} else if err := l.writeRecoveryPoint(l.leo); err != nil {
			errs = append(errs, err)
		} else if err := WriteFileAtomic(l.fsys, filepath.Join(l.dir, cleanShutdownName), encodeOffsetFile(active.size)); err != nil {
			errs = append(errs, fmt.Errorf("write clean shutdown marker: %w", err))
		}
	}
	for _, s := range l.segs {
		s.release()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close log %s: %w", l.dir, err)
	}
	return nil
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	cerr := l.Close()
	if err := l.fsys.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("delete log %s: %w", l.dir, err)
	}
	if cerr != nil && !errors.Is(cerr, ErrClosed) {
		return cerr
	}
	return nil
}

// EnforceRetention deletes the oldest non-active segments (only with
// CleanupDelete in the cleanup policy) that are past RetentionMs (largest
// timestamp older than Now - RetentionMs) or, by size, while the log without
// the oldest segment is still at least RetentionBytes; deletion stops at
// the first segment that is kept. It also expires idle producers. Files
// of deleted segments are removed once no read holds them.
func (l *Log) EnforceRetention() (segmentsDeleted int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	now := l.now()
	nowMs := now.UnixMilli()
	n, size := 0, l.size
	for n < len(l.segs)-1 && l.cfg.Cleanup&CleanupDelete != 0 {
		s := l.segs[n]
		byTime := l.cfg.RetentionMs >= 0 && s.maxTS >= 0 && s.maxTS < nowMs-l.cfg.RetentionMs.Milliseconds()
		bySize := l.cfg.RetentionBytes >= 0 && size-s.size >= l.cfg.RetentionBytes
		if !byTime && !bySize {
			break
		}
		size -= s.size
		n++
	}
	if n > 0 {
		if err := l.deleteSegments(n); err != nil {
			return 0, err
		}
	}
	if exp := l.cfg.ProducerIDExpiration; exp > 0 {
		for id, p := range l.producers {
			if p.txnFirst < 0 && p.lastAppendMs < nowMs-exp.Milliseconds() {
				delete(l.producers, id)
			}
		}
	}
	return n, nil
}

// deleteSegments removes the n oldest segments: their files are renamed to
// *.deleted (durably) and removed when the last reader releases them. l.mu
// held.
func (l *Log) deleteSegments(n int) error {
	dead := l.segs[:n]
	var errs []error
	for _, s := range dead {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			if err := l.fsys.Rename(s.path(suf), s.path(suf)+deletedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("rename segment %d file: %w", s.base, err))
			}
		}
		s.deleted.Store(true)
		l.size -= s.size
		l.logger.Info("deleted segment", "base", s.base, "next", s.next, "bytes", s.size)
	}
	l.segs = append([]*segment(nil), l.segs[n:]...)
	start := l.segs[0].base
	// Keep the newest snapshot at or below the new start, and all above.
	keepFrom := 0
	for i, off := range l.snapshots {
		if off <= start {
			keepFrom = i
		}
	}
	for _, off := range l.snapshots[:keepFrom] {
		if err := l.fsys.Remove(filepath.Join(l.dir, fileName(off, snapshotSuffix))); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove snapshot %d: %w", off, err))
		}
	}
	l.snapshots = append([]int64(nil), l.snapshots[keepFrom:]...)
	if l.truncateEpochsFrom(start) {
		if err := l.persistEpochs(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		errs = append(errs, fmt.Errorf("sync dir: %w", err))
	}
	for _, s := range dead {
		s.release()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete segments: %w", err)
	}
	return nil
}

// encodeOffsetFile encodes the recovery-point and clean-shutdown files: an
// int64 offset and the CRC-32C of those 8 bytes.
func encodeOffsetFile(off int64) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(off))
	return binary.BigEndian.AppendUint32(b, crc32c(b))
}

func decodeOffsetFile(b []byte) (int64, bool) {
	if len(b) != 12 || crc32c(b[:8]) != binary.BigEndian.Uint32(b[8:]) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

// AbortedTransactions returns the aborted transactions that overlap the
// offsets [from, upTo): those whose abort marker is at or after from and
// whose first offset is below upTo, in marker order. A read_committed fetch
// of [from, upTo) reports them so the consumer can drop their records.
func (l *Log) AbortedTransactions(from, upTo int64) []AbortedTxn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []AbortedTxn
	for _, s := range l.segs[l.segmentFor(from):] {
		for _, e := range s.aborted {
			if e.LastOffset >= from && e.FirstOffset < upTo {
				out = append(out, e)
			}
		}
	}
	return out
}
