package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// recover loads the log directory (see doc.go, "Recovery"). l.mu is not
// needed: the log is not shared yet.
func (l *Log) recover() error {
	if err := l.fsys.MkdirAll(l.dir, 0o755); err != nil {
		return fmt.Errorf("create dir: %w", err)
	}
	// Make the directory's own entry durable if it was just created.
	if err := l.fsys.SyncDir(filepath.Dir(l.dir)); err != nil {
		return fmt.Errorf("sync parent dir: %w", err)
	}
	names, err := l.fsys.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("list dir: %w", err)
	}
	if names, err = l.finishCleanerSwaps(names); err != nil {
		return err
	}
	var bases []int64
	logs := make(map[int64]bool)
	for _, name := range names {
		if strings.HasSuffix(name, tmpSuffix) || strings.HasSuffix(name, deletedSuffix) {
			if err := l.fsys.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove leftover %s: %w", name, err)
			}
			continue
		}
		if b, ok := parseBaseName(name, logSuffix); ok {
			bases = append(bases, b)
			logs[b] = true
		} else if b, ok := parseBaseName(name, snapshotSuffix); ok {
			l.snapshots = append(l.snapshots, b)
		}
	}
	// Index files without their log are leftovers of an interrupted
	// deletion.
	for _, name := range names {
		for _, suf := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			if b, ok := parseBaseName(name, suf); ok && !logs[b] {
				if err := l.fsys.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("remove orphan %s: %w", name, err)
				}
			}
		}
	}

	// The clean shutdown marker holds the size of the active segment at
	// Close; a different size means the file changed since.
	clean := false
	cleanSize := int64(-1)
	if b, err := ReadFile(l.fsys, filepath.Join(l.dir, cleanShutdownName)); err == nil {
		cleanSize, clean = decodeOffsetFile(b)
	}
	if b, err := ReadFile(l.fsys, filepath.Join(l.dir, recoveryPointName)); err == nil {
		if off, ok := decodeOffsetFile(b); ok {
			l.recoveryPoint = off
		}
	}
	epochsOK := false
	if b, err := ReadFile(l.fsys, filepath.Join(l.dir, epochCheckpointName)); err == nil {
		l.epochs, epochsOK = decodeEpochs(b)
		if !epochsOK {
			l.logger.Warn("corrupt leader epoch checkpoint, rebuilding from the log")
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read leader epoch checkpoint: %w", err)
	} else {
		epochsOK = true
	}

	if len(bases) == 0 {
		bases = []int64{0}
		if len(l.snapshots) > 0 {
			// Everything was deleted but snapshots: continue after them.
			bases[0] = l.snapshots[len(l.snapshots)-1]
		}
	}
	interval := int64(l.cfg.IndexIntervalBytes)
	needSync := !clean
	for i, base := range bases {
		seg, err := openSegment(l.fsys, l.dir, base)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, seg)
		if err := seg.loadTxnIndex(); err != nil {
			return err
		}
		last := i == len(bases)-1
		next := int64(-1)
		if !last {
			next = bases[i+1]
		}
		trusted := !last && (clean || next <= l.recoveryPoint)
		if last && clean {
			size, err := seg.log.Size()
			if err != nil {
				return fmt.Errorf("size of segment %d: %w", base, err)
			}
			trusted = size == cleanSize
			if !trusted {
				l.logger.Warn("active segment changed after clean shutdown", "segment", base, "size", size, "size_at_close", cleanSize)
			}
		}
		if trusted {
			ok, err := seg.loadIndexes(next)
			if err != nil {
				return err
			}
			if ok && last {
				ok, err = seg.loadTail(interval)
				if err != nil {
					return err
				}
			} else if ok {
				seg.next = next
				seg.lastBatchBase = -1
			}
			if ok {
				// No timestamp for retention, or no index over more than
				// an interval: rebuild.
				if !last && (len(seg.times) == 0 && seg.size > 0 || len(seg.entries) == 0 && seg.size > interval) {
					ok = false
				}
			}
			if ok {
				continue
			}
			l.logger.Warn("rebuilding indexes", "segment", base)
			needSync = true
		}
		needSync = true
		torn, err := seg.rebuild(interval, nil)
		if err != nil {
			return err
		}
		if torn != nil {
			l.logger.Warn("truncated torn log tail", "segment", base, "offset", torn.offset, "position", torn.pos, "reason", torn.reason)
		}
		if (torn != nil || seg.size == 0) && !last {
			// Nothing after a torn segment can follow it: drop the rest.
			for _, b := range bases[i+1:] {
				l.logger.Warn("removing segment after torn tail", "segment", b)
				for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
					if err := l.fsys.Remove(filepath.Join(l.dir, fileName(b, suf))); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("remove segment %d: %w", b, err)
					}
				}
			}
			break
		}
	}
	// An empty active segment that does not start where the previous one
	// ends (its data was lost) is dropped: the previous one becomes active.
	if n := len(l.segs); n > 1 && l.segs[n-1].size == 0 && l.segs[n-1].base != l.segs[n-2].next {
		seg := l.segs[n-1]
		l.logger.Warn("removing empty segment after a gap", "segment", seg.base, "previous_end", l.segs[n-2].next)
		seg.release()
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			if err := l.fsys.Remove(seg.path(suf)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove segment %d: %w", seg.base, err)
			}
		}
		l.segs = l.segs[:n-1]
		// It was loaded as a full non-active segment: rescan it.
		if _, err := l.segs[n-2].rebuild(interval, nil); err != nil {
			return err
		}
	}
	for i := 1; i < len(l.segs); i++ {
		if prev, s := l.segs[i-1], l.segs[i]; prev.next > s.base {
			return fmt.Errorf("segment %d overlaps segment %d ending at %d: %w", s.base, prev.base, prev.next, ErrCorruptMessage)
		}
	}
	active := l.segs[len(l.segs)-1]
	l.leo = active.next
	for _, s := range l.segs {
		l.size += s.size
		s.syncedSize = s.size
	}
	if active.size > 0 {
		active.firstAppend = l.now()
	}

	// Leader epochs: drop those past the end; rebuild if unreadable.
	if !epochsOK {
		l.epochs = nil
		if err := l.walk(l.segs[0].base, func(_ *segment, h *BatchHeader, _ int64) error {
			if n := len(l.epochs); h.PartitionLeaderEpoch >= 0 && (n == 0 || h.PartitionLeaderEpoch > l.epochs[n-1].epoch) {
				l.epochs = append(l.epochs, epochEntry{epoch: h.PartitionLeaderEpoch, start: h.BaseOffset})
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if l.truncateEpochsTo(l.leo) || !epochsOK {
		if err := l.persistEpochs(); err != nil {
			return err
		}
	}

	if err := l.recoverProducers(); err != nil {
		return err
	}
	l.hw, l.durable = l.leo, l.leo // recovery fsyncs below

	if err := l.fsys.Remove(filepath.Join(l.dir, cleanShutdownName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove clean shutdown marker: %w", err)
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	if needSync || l.recoveryPoint != l.leo {
		for _, s := range l.segs {
			if err := s.sync(); err != nil {
				return err
			}
			s.indexDirty = false
		}
		if err := l.writeRecoveryPoint(l.leo); err != nil {
			return err
		}
	}
	l.logger.Debug("opened log", "log_start_offset", l.segs[0].base, "log_end_offset", l.leo, "segments", len(l.segs), "clean", clean)
	return nil
}

// walk calls fn for the header of every batch from the one containing from
// to the end of the log. l.mu held or log not shared.
func (l *Log) walk(from int64, fn func(s *segment, h *BatchHeader, pos int64) error) error {
	for i := l.segmentFor(from); i < len(l.segs); i++ {
		s := l.segs[i]
		pos := s.lookup(from)
		if s.base > from {
			pos = 0
		}
		_, err := s.scan(pos, s.base, false, func(h *BatchHeader, pos int64, _ []byte) error {
			if h.LastOffset() >= from {
				return fn(s, h, pos)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("walk segment %d: %w", s.base, err)
		}
	}
	return nil
}

// recoverProducers loads the newest valid producer snapshot at or below the
// log end offset and replays the batches after it. Snapshots above the log
// end are removed. Log not shared yet.
func (l *Log) recoverProducers() error {
	var keep []int64
	from := l.segs[0].base
	loaded := false
	for i := len(l.snapshots) - 1; i >= 0; i-- {
		off := l.snapshots[i]
		path := filepath.Join(l.dir, fileName(off, snapshotSuffix))
		if off > l.leo {
			if err := l.fsys.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove snapshot %d: %w", off, err)
			}
			continue
		}
		if !loaded {
			b, err := ReadFile(l.fsys, path)
			var producers map[int64]*producerState
			if err == nil {
				producers, err = decodeSnapshot(b, off, l.now().UnixMilli())
			}
			if err != nil {
				l.logger.Warn("ignoring producer snapshot", "offset", off, "err", err)
				if err := l.fsys.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("remove snapshot %d: %w", off, err)
				}
				continue
			}
			l.producers = producers
			from = max(off, l.segs[0].base)
			loaded = true
		}
		keep = append(keep, off)
	}
	for i, j := 0, len(keep)-1; i < j; i, j = i+1, j-1 {
		keep[i], keep[j] = keep[j], keep[i]
	}
	l.snapshots = keep
	for id, p := range l.producers {
		if p.txnFirst >= l.leo {
			p.txnFirst = -1
		}
		if p.txnFirst >= 0 {
			l.openTxns[id] = p.txnFirst
		}
	}
	l.recomputeFirstOpenTxn()
	if err := l.truncateTxnIndexes(from); err != nil {
		return err
	}
	if from >= l.leo {
		return nil
	}
	replayMs := l.now().UnixMilli()
	return l.walk(from, func(s *segment, h *BatchHeader, pos int64) error {
		if h.BaseOffset < from {
			return nil
		}
		abort := false
		if h.IsControl() {
			batch := make([]byte, h.Size())
			if _, err := s.log.ReadAt(batch, pos); err != nil {
				return fmt.Errorf("read control batch at offset %d: %w", h.BaseOffset, err)
			}
			abort = isAbortMarker(batch)
		}
		if aborted, ok := l.applyProducer(h, abort, replayMs); ok {
			return s.appendAborted(aborted)
		}
		return nil
	})
}
