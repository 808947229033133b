package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"
)

// File name suffixes inside a partition directory.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	txnIndexSuffix  = ".txnindex"
	snapshotSuffix  = ".snapshot"
	tmpSuffix       = ".tmp"
	deletedSuffix   = ".deleted"

	epochCheckpointName = "leader-epoch-checkpoint"
	recoveryPointName   = "recovery-point"
	cleanShutdownName   = "clean-shutdown"
)

const (
	indexEntrySize     = 8  // relative offset uint32, position uint32
	timeIndexEntrySize = 12 // timestamp int64, relative offset uint32
)

func fileName(base int64, suffix string) string { return fmt.Sprintf("%020d%s", base, suffix) }

// parseBaseName parses "<20 digits><suffix>".
func parseBaseName(name, suffix string) (int64, bool) {
	if len(name) != 20+len(suffix) || name[20:] != suffix {
		return 0, false
	}
	var v int64
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
		if v < 0 {
			return 0, false
		}
	}
	return v, true
}

type indexEntry struct {
	rel uint32 // offset - segment base of the batch starting at pos
	pos uint32
}

type timeEntry struct {
	ts  int64  // largest timestamp of the segment up to and including the batch at rel
	rel uint32 // base offset - segment base of that batch
}

// segment is one log file with its indexes. Its mutable fields are guarded
// by Log.mu; files are closed (and, once deleted, removed) when the last
// reference is released.
type segment struct {
	fsys FS
	dir  string
	base int64

	log, index, timeIndex File
	txnIndex              File         // nil until the first aborted transaction
	aborted               []AbortedTxn // entries of txnIndex

	size          int64 // bytes of whole batches in log
	next          int64 // offset after the last batch
	lastBatchBase int64 // base offset of the last batch, -1 if empty
	maxTS         int64 // largest batch MaxTimestamp, -1 if empty
	entries       []indexEntry
	times         []timeEntry
	sinceIndex    int64                    // bytes appended since the last index entry
	firstAppend   time.Time                // for SegmentMs; zero until the first append
	syncedSize    int64                    // log bytes known to be fsynced
	indexDirty    bool                     // index files written since the last fsync
	scratch       [timeIndexEntrySize]byte // index entry encoding, avoids an allocation per entry

	refs    atomic.Int32
	deleted atomic.Bool // files renamed to *.deleted; remove on last release
}

func (s *segment) path(suffix string) string { return filepath.Join(s.dir, fileName(s.base, suffix)) }

// acquire takes a reference for a reader.
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the files and, for a
// deleted segment, removes them.
func (s *segment) release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	s.closeFiles()
	if s.deleted.Load() {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			_ = s.fsys.Remove(s.path(suf) + deletedSuffix)
		}
	}
}

func (s *segment) closeFiles() error {
	var first error
	for _, f := range []File{s.log, s.index, s.timeIndex, s.txnIndex} {
		if f != nil {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// openSegment opens (creating if missing) the files of the segment at base.
func openSegment(fsys FS, dir string, base int64) (*segment, error) {
	s := &segment{fsys: fsys, dir: dir, base: base, next: base, lastBatchBase: -1, maxTS: -1}
	var err error
	flag := os.O_CREATE | os.O_RDWR
	if s.log, err = fsys.OpenFile(s.path(logSuffix), flag, 0o644); err != nil {
		return nil, fmt.Errorf("open segment %d: %w", base, err)
	}
	if s.index, err = fsys.OpenFile(s.path(indexSuffix), flag, 0o644); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("open offset index %d: %w", base, err)
	}
	if s.timeIndex, err = fsys.OpenFile(s.path(timeIndexSuffix), flag, 0o644); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("open time index %d: %w", base, err)
	}
	s.refs.Store(1)
	return s, nil
}

// appendIndex records an offset index entry for the batch at pos with base
// offset off, and a time index entry if the largest timestamp grew. l.mu held.
func (s *segment) appendIndex(off, pos int64) error {
	b := s.scratch[:]
	e := indexEntry{rel: uint32(off - s.base), pos: uint32(pos)}
	binary.BigEndian.PutUint32(b[0:], e.rel)
	binary.BigEndian.PutUint32(b[4:], e.pos)
	if _, err := s.index.Write(b[:indexEntrySize]); err != nil {
		return fmt.Errorf("write offset index %d: %w", s.base, err)
	}
	s.entries = append(s.entries, e)
	s.indexDirty = true
	return s.appendTimeEntry()
}

// appendTimeEntry records (maxTS, last batch) in the time index if maxTS
// grew since the last entry. l.mu held.
func (s *segment) appendTimeEntry() error {
	if s.maxTS < 0 || s.lastBatchBase < 0 || (len(s.times) > 0 && s.times[len(s.times)-1].ts >= s.maxTS) {
		return nil
	}
	t := timeEntry{ts: s.maxTS, rel: uint32(s.lastBatchBase - s.base)}
	b := s.scratch[:]
	binary.BigEndian.PutUint64(b[0:], uint64(t.ts))
	binary.BigEndian.PutUint32(b[8:], t.rel)
	if _, err := s.timeIndex.Write(b); err != nil {
		return fmt.Errorf("write time index %d: %w", s.base, err)
	}
	s.times = append(s.times, t)
	s.indexDirty = true
	return nil
}

// noteBatch updates the in-memory state for a batch appended at pos
// (before s.size grows), adding index entries every interval bytes. l.mu
// held.
func (s *segment) noteBatch(h *BatchHeader, pos int64, interval int64) error {
	s.lastBatchBase = h.BaseOffset
	s.maxTS = max(s.maxTS, h.MaxTimestamp)
	var err error
	if s.sinceIndex >= interval {
		// On error the batch stays unindexed: lookups scan a little more
		// and recovery rebuilds the index.
		err = s.appendIndex(h.BaseOffset, pos)
		s.sinceIndex = 0
	}
	s.sinceIndex += h.Size()
	s.size = pos + h.Size()
	s.next = h.LastOffset() + 1
	return err
}

// lookup returns the position of a batch whose base offset is <= off (the
// start of the scan for off). l.mu held.
func (s *segment) lookup(off int64) int64 {
	rel := off - s.base
	i := sort.Search(len(s.entries), func(i int) bool { return int64(s.entries[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(s.entries[i-1].pos)
}

// sync fsyncs the segment's files.
func (s *segment) sync() error {
	for _, f := range []File{s.log, s.index, s.timeIndex, s.txnIndex} {
		if f == nil {
			continue
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync segment %d: %w", s.base, err)
		}
	}
	return nil
}

// resetIndexes empties the index files and in-memory indexes. l.mu held.
func (s *segment) resetIndexes() error {
	if err := s.index.Truncate(0); err != nil {
		return fmt.Errorf("truncate offset index %d: %w", s.base, err)
	}
	if err := s.timeIndex.Truncate(0); err != nil {
		return fmt.Errorf("truncate time index %d: %w", s.base, err)
	}
	s.entries, s.times = s.entries[:0], s.times[:0]
	s.size, s.next, s.lastBatchBase, s.maxTS, s.sinceIndex = 0, s.base, -1, -1, 0
	s.indexDirty = true
	return nil
}

// errTorn describes why a scan stopped before the end of a segment file.
type errTorn struct {
	pos    int64
	offset int64
	reason string
}

func (e *errTorn) Error() string {
	return fmt.Sprintf("invalid batch at byte %d (offset %d): %s", e.pos, e.offset, e.reason)
}

// scan walks the batches of the segment file from pos, calling fn for each
// valid one with its header, its position and (when verify is set) its
// bytes, which are only valid during the call. With verify, the CRC and the
// record count of every batch are checked. Offsets must increase and start at
// or above minOffset. It returns the end of the last valid batch and an
// *errTorn if the file does not end there.
func (s *segment) scan(pos, minOffset int64, verify bool, fn func(h *BatchHeader, pos int64, batch []byte) error) (int64, error) {
	fileSize, err := s.log.Size()
	if err != nil {
		return pos, fmt.Errorf("size of segment %d: %w", s.base, err)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.log, pos, fileSize-pos), 64<<10)
	var buf []byte
	hdr := make([]byte, BatchHeaderSize)
	next := minOffset
	for pos < fileSize {
		torn := func(reason string) (int64, error) {
			return pos, &errTorn{pos: pos, offset: next, reason: reason}
		}
		if fileSize-pos < BatchHeaderSize {
			return torn("short batch header")
		}
		if _, err := io.ReadFull(r, hdr); err != nil {
			return pos, fmt.Errorf("read segment %d at %d: %w", s.base, pos, err)
		}
		h := parseHeader(hdr)
		switch {
		case h.Magic != 2:
			return torn(fmt.Sprintf("magic %d", h.Magic))
		case h.Length < BatchHeaderSize-batchLengthOverhead:
			return torn(fmt.Sprintf("length %d", h.Length))
		case pos+h.Size() > fileSize:
			return torn(fmt.Sprintf("length %d past end of file", h.Length))
		case h.BaseOffset < next || h.LastOffsetDelta < 0:
			return torn(fmt.Sprintf("non-monotonic offsets %d..%d", h.BaseOffset, h.LastOffset()))
		case h.BaseOffset-s.base > 1<<32-1 || h.LastOffset()-s.base > 1<<32-1:
			return torn("offset beyond the segment's 32-bit range")
		case pos+h.Size() > maxSegmentBytes:
			return torn("position beyond the segment's 32-bit range")
		}
		bodyLen := int(h.Size()) - BatchHeaderSize
		if verify {
			if cap(buf) < int(h.Size()) {
				buf = make([]byte, h.Size())
			}
			buf = buf[:h.Size()]
			copy(buf, hdr)
			if _, err := io.ReadFull(r, buf[BatchHeaderSize:]); err != nil {
				return pos, fmt.Errorf("read segment %d at %d: %w", s.base, pos, err)
			}
			if crc32.Checksum(buf[offAttributes:], castagnoli) != h.CRC {
				return torn("CRC mismatch")
			}
			// Zero records only in a header-only batch kept by the cleaner.
			if h.NumRecords < 0 || h.NumRecords == 0 && h.Size() != BatchHeaderSize {
				return torn(fmt.Sprintf("record count %d", h.NumRecords))
			}
		} else if _, err := r.Discard(bodyLen); err != nil {
			return pos, fmt.Errorf("read segment %d at %d: %w", s.base, pos, err)
		}
		if fn != nil {
			if err := fn(&h, pos, buf); err != nil {
				return pos, err
			}
		}
		next = h.LastOffset() + 1
		pos += h.Size()
	}
	return pos, nil
}

// rebuild rescans the whole segment, truncating a torn tail, and rebuilds
// its indexes. fn sees every valid batch. It returns the torn-tail
// description, if any, after truncating.
func (s *segment) rebuild(interval int64, fn func(h *BatchHeader, pos int64, batch []byte) error) (*errTorn, error) {
	if err := s.resetIndexes(); err != nil {
		return nil, err
	}
	end, err := s.scan(0, s.base, true, func(h *BatchHeader, pos int64, batch []byte) error {
		if err := s.noteBatch(h, pos, interval); err != nil {
			return err
		}
		if fn != nil {
			return fn(h, pos, batch)
		}
		return nil
	})
	var torn *errTorn
	if err != nil && !errors.As(err, &torn) {
		return nil, err
	}
	if torn != nil {
		if err := s.log.Truncate(end); err != nil {
			return nil, fmt.Errorf("truncate segment %d to %d: %w", s.base, end, err)
		}
	}
	s.size = end
	if err := s.appendTimeEntry(); err != nil {
		return nil, err
	}
	return torn, nil
}

// loadIndexes reads the index files of a segment that was cleanly written
// up to next (the following segment's base, or -1 if unknown) and checks them
// against the log size. It reports false if they must be rebuilt.
func (s *segment) loadIndexes(next int64) (bool, error) {
	size, err := s.log.Size()
	if err != nil {
		return false, fmt.Errorf("size of segment %d: %w", s.base, err)
	}
	s.size = size
	ib, err := readAll(s.index)
	if err != nil {
		return false, fmt.Errorf("read offset index %d: %w", s.base, err)
	}
	tb, err := readAll(s.timeIndex)
	if err != nil {
		return false, fmt.Errorf("read time index %d: %w", s.base, err)
	}
	if len(ib)%indexEntrySize != 0 || len(tb)%timeIndexEntrySize != 0 {
		return false, nil
	}
	s.entries = s.entries[:0]
	for i := 0; i < len(ib); i += indexEntrySize {
		e := indexEntry{rel: binary.BigEndian.Uint32(ib[i:]), pos: binary.BigEndian.Uint32(ib[i+4:])}
		if int64(e.pos) >= size || (len(s.entries) > 0 && (e.rel <= s.entries[len(s.entries)-1].rel || e.pos <= s.entries[len(s.entries)-1].pos)) ||
			(next >= 0 && s.base+int64(e.rel) >= next) {
			return false, nil
		}
		s.entries = append(s.entries, e)
	}
	s.times = s.times[:0]
	for i := 0; i < len(tb); i += timeIndexEntrySize {
		t := timeEntry{ts: int64(binary.BigEndian.Uint64(tb[i:])), rel: binary.BigEndian.Uint32(tb[i+8:])}
		if len(s.times) > 0 && (t.ts < s.times[len(s.times)-1].ts || t.rel < s.times[len(s.times)-1].rel) ||
			(next >= 0 && s.base+int64(t.rel) >= next) {
			return false, nil
		}
		s.times = append(s.times, t)
	}
	if len(s.times) > 0 {
		s.maxTS = s.times[len(s.times)-1].ts
	}
	return true, nil
}

// loadTail completes a cleanly loaded segment: it walks the batch headers
// after the last offset index entry to find the next offset, the last batch
// and the largest timestamp. It reports false if the walk does not end
// exactly at the end of the file or if index entries are missing.
func (s *segment) loadTail(interval int64) (bool, error) {
	start, minOff := int64(0), s.base
	if n := len(s.entries); n > 0 {
		start, minOff = int64(s.entries[n-1].pos), s.base+int64(s.entries[n-1].rel)
	}
	var first = true
	end, err := s.scan(start, minOff, false, func(h *BatchHeader, pos int64, _ []byte) error {
		if first && h.BaseOffset != minOff {
			return &errTorn{pos: pos, offset: minOff, reason: "index entry does not point at its batch"}
		}
		first = false
		if s.sinceIndex >= interval {
			return &errTorn{pos: pos, offset: h.BaseOffset, reason: "offset index entry missing"}
		}
		s.lastBatchBase = h.BaseOffset
		s.maxTS = max(s.maxTS, h.MaxTimestamp)
		s.next = h.LastOffset() + 1
		s.sinceIndex += h.Size()
		return nil
	})
	var torn *errTorn
	if errors.As(err, &torn) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return end == s.size, nil
}

func readAll(f File) ([]byte, error) {
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}
