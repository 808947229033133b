package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Log compaction (the cleaner). See doc.go, "Log compaction", for the rules
// and the on-disk swap protocol.

const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"

	cleanerCheckpointName = "cleaner-checkpoint"

	// attrDeleteHorizon marks a batch whose first timestamp field holds the
	// delete horizon (KIP-534): after it, the cleaner removes the batch's
	// tombstones, or the batch itself if it is a removable marker.
	attrDeleteHorizon = 0x40

	noHorizon      = int64(math.MaxInt64)
	horizonUnknown = int64(math.MinInt64)
)

// segmentSuffixes are the files of a segment; the log file is last, which
// the swap protocol relies on.
var segmentSuffixes = []string{indexSuffix, timeIndexSuffix, txnIndexSuffix, logSuffix}

// cleanerState is the cleaner's part of a Log.
type cleanerState struct {
	// compacted mirrors cfg.Cleanup&CleanupCompact for Append, which checks
	// keys before taking Log.mu.
	compacted atomic.Bool
	// The fields below are guarded by Log.mu.
	loaded     bool  // checkpoint read from disk
	checkpoint int64 // offsets below it have been cleaned at least once
	// horizon is the earliest delete horizon (ms) of a batch the last run
	// kept; noHorizon if none, horizonUnknown until the first run.
	horizon int64
}

// CleanStats describes one Clean run.
type CleanStats struct {
	// SegmentsRewritten counts the segments replaced by cleaned copies.
	SegmentsRewritten int
	// BatchesRemoved and RecordsRemoved count what the run dropped.
	BatchesRemoved, RecordsRemoved int64
	// BytesBefore and BytesAfter are the sizes of the rewritten segments.
	BytesBefore, BytesAfter int64
	// CleanedUpTo is the first offset the run did not look at (the first
	// uncleanable offset), or -1 if the run did nothing.
	CleanedUpTo int64
}

// cleanPlan is what a run works on, taken under Log.mu.
type cleanPlan struct {
	segs     []*segment // cleanable segments, acquired
	dirty    int        // index in segs of the first dirty segment (not yet cleaned); -1: none
	end      int64      // first uncleanable offset
	cfg      Config
	nowMs    int64
	lastOf   map[int64]int64        // producer ID -> last offset of its last batch
	aborted  map[int64][]AbortedTxn // producer ID -> its aborted transactions
	interval int64
}

func (p *cleanPlan) release() {
	for _, s := range p.segs {
		s.release()
	}
	p.segs = nil
}

// isAborted reports whether a transactional data batch of pid starting at
// off belongs to an aborted transaction.
func (p *cleanPlan) isAborted(pid, off int64) bool {
	for _, a := range p.aborted[pid] {
		if off >= a.FirstOffset && off < a.LastOffset {
			return true
		}
	}
	return false
}

// Clean compacts the log if its cleanup policy includes CleanupCompact and
// cleaning is due: the dirty share of the cleanable bytes reached
// MinCleanableDirtyRatio, or the delete horizon of a kept tombstone or
// marker has passed. The cleanable part is every non-active segment below
// the last stable offset (and older than MinCompactionLag). It keeps the
// latest record of each key, drops records without a key and records of
// aborted transactions, removes tombstones and empty transactions' markers
// DeleteRetention after the cleaner first kept them, and replaces each
// changed segment crash-safely. Offsets never change. It returns zero stats
// and nil when there is nothing to do. Reads and appends go on meanwhile;
// runs of one log are serialized.
func (l *Log) Clean(ctx context.Context) (CleanStats, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	stats := CleanStats{CleanedUpTo: -1}
	plan, err := l.planClean()
	if err != nil || plan == nil {
		return stats, err
	}
	defer plan.release()

	c := &cleaning{plan: plan, log: l, keys: make(map[keyHash]int64), txnData: make(map[int64]bool), horizon: noHorizon}
	if err := c.buildKeyMap(ctx); err != nil {
		return stats, fmt.Errorf("clean %s: %w", l.dir, err)
	}
	out, err := c.rewrite(ctx, &stats)
	if err != nil {
		c.discard(out)
		return stats, fmt.Errorf("clean %s: %w", l.dir, err)
	}
	if err := c.stage(out); err != nil {
		c.discard(out)
		return stats, fmt.Errorf("clean %s: %w", l.dir, err)
	}
	if err := l.installCleaned(out, plan.end, c.horizon); err != nil {
		return stats, fmt.Errorf("clean %s: %w", l.dir, err)
	}
	stats.CleanedUpTo = plan.end
	if stats.SegmentsRewritten > 0 {
		l.logger.Info("log cleaned", "segments", stats.SegmentsRewritten, "records_removed", stats.RecordsRemoved,
			"bytes_before", stats.BytesBefore, "bytes_after", stats.BytesAfter, "cleaned_up_to", plan.end)
	}
	return stats, nil
}

// planClean decides whether cleaning is due and takes what a run needs.
// It returns nil if there is nothing to do.
func (l *Log) planClean() (*cleanPlan, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if l.cfg.Cleanup&CleanupCompact == 0 {
		return nil, nil
	}
	if !l.cleaner.loaded {
		l.cleaner.loaded = true
		l.cleaner.horizon = horizonUnknown
		if b, err := ReadFile(l.fsys, filepath.Join(l.dir, cleanerCheckpointName)); err == nil {
			if off, ok := decodeOffsetFile(b); ok {
				l.cleaner.checkpoint = off
			}
		}
	}
	nowMs := l.now().UnixMilli()
	end := min(l.segs[len(l.segs)-1].base, l.lsoLocked())
	if lag := l.cfg.MinCompactionLag; lag > 0 {
		for _, s := range l.segs[:len(l.segs)-1] {
			if s.maxTS > nowMs-lag.Milliseconds() {
				end = min(end, s.base)
				break
			}
		}
	}
	var segs []*segment
	var cleanBytes, dirtyBytes int64
	firstDirty := -1
	for i, s := range l.segs[:len(l.segs)-1] {
		next := l.segs[i+1].base
		if next > end {
			break
		}
		segs = append(segs, s)
		if next <= l.cleaner.checkpoint {
			cleanBytes += s.size
		} else {
			if firstDirty < 0 {
				firstDirty = len(segs) - 1
			}
			dirtyBytes += s.size
		}
	}
	if len(segs) == 0 {
		return nil, nil
	}
	ratio := 0.0
	if total := cleanBytes + dirtyBytes; total > 0 {
		ratio = float64(dirtyBytes) / float64(total)
	}
	if !(dirtyBytes > 0 && ratio >= l.cfg.MinCleanableDirtyRatio) && l.cleaner.horizon > nowMs {
		return nil, nil
	}
	p := &cleanPlan{end: end, dirty: firstDirty, cfg: l.cfg, nowMs: nowMs, lastOf: make(map[int64]int64, len(l.producers)),
		aborted: make(map[int64][]AbortedTxn), interval: int64(l.cfg.IndexIntervalBytes)}
	for _, s := range segs {
		s.acquire()
		p.segs = append(p.segs, s)
	}
	for id, ps := range l.producers {
		if last := ps.last(); last != nil {
			p.lastOf[id] = last.lastOffset
		}
	}
	for _, s := range l.segs {
		for _, a := range s.aborted {
			p.aborted[a.ProducerID] = append(p.aborted[a.ProducerID], a)
		}
	}
	return p, nil
}

// cleaning is the state of one run.
type cleaning struct {
	plan    *cleanPlan
	log     *Log
	keys    map[keyHash]int64 // key -> offset of its latest record in the cleaned part
	txnData map[int64]bool    // producer ID -> its current transaction has kept batches
	horizon int64             // earliest delete horizon of the batches kept
}

// superseded reports whether a later record of r's key is in the map.
func superseded(keys map[keyHash]int64, r Record) bool {
	off, ok := keys[hashKey(r.Key)]
	return ok && off != r.Offset
}

// cleanedSegment is the cleaned copy of old, written to *.cleaned files.
type cleanedSegment struct {
	old, seg *segment
}

// keyHash identifies a key in the cleaner's map: 16 bytes of its SHA-256,
// so the map's memory does not grow with key sizes (and a collision, which
// would drop a record, is as unlikely as a collision of random UUIDs).
type keyHash [16]byte

func hashKey(k []byte) keyHash {
	sum := sha256.Sum256(k)
	return keyHash(sum[:16])
}

// buildKeyMap maps every key of the dirty segments (those not cleaned
// yet) to the offset of its latest record there, ignoring control batches
// and aborted transactions. A record is then superseded when its key maps
// to a later offset; a key the map lacks was not written again since the
// last run, so its record in the already-cleaned part stays. Once the map
// holds Config.CleanerMaxKeys keys it stops at the end of that segment and
// shrinks the plan to the segments before (always at least one dirty one):
// the next run goes on from there.
func (c *cleaning) buildKeyMap(ctx context.Context) error {
	if c.plan.dirty < 0 {
		return nil
	}
	for i := c.plan.dirty; i < len(c.plan.segs); i++ {
		s := c.plan.segs[i]
		if i > c.plan.dirty && len(c.keys) >= c.plan.cfg.CleanerMaxKeys {
			for _, rest := range c.plan.segs[i:] {
				rest.release()
			}
			c.plan.segs = c.plan.segs[:i]
			c.plan.end = s.base
			c.log.logger.Info("cleaner key map full; cleaning part of the log this run", "keys", len(c.keys), "up_to", s.base)
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := s.scan(0, s.base, true, func(h *BatchHeader, _ int64, batch []byte) error {
			if h.IsControl() || h.NumRecords == 0 || (h.IsTransactional() && c.plan.isAborted(h.ProducerID, h.BaseOffset)) {
				return nil
			}
			recs, err := DecodeRecords(batch)
			if err != nil {
				return fmt.Errorf("segment %d batch at offset %d: %w", s.base, h.BaseOffset, err)
			}
			for _, r := range recs {
				if r.Key != nil {
					c.keys[hashKey(r.Key)] = r.Offset
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read segment %d: %w", s.base, err)
		}
	}
	return nil
}

// rewrite filters every cleanable segment and writes a cleaned copy of each
// one that changes.
func (c *cleaning) rewrite(ctx context.Context, stats *CleanStats) ([]*cleanedSegment, error) {
	var out []*cleanedSegment
	for _, s := range c.plan.segs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		cs, err := c.rewriteSegment(s, stats)
		if cs != nil {
			out = append(out, cs)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// rewriteSegment filters one segment. The cleaned copy is created at the
// first batch that changes, starting with the unchanged bytes before it.
func (c *cleaning) rewriteSegment(s *segment, stats *CleanStats) (*cleanedSegment, error) {
	var cs *cleanedSegment
	var lastPos int64 = -1
	if _, err := s.scan(0, s.base, false, func(h *BatchHeader, pos int64, _ []byte) error {
		lastPos = pos
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read segment %d: %w", s.base, err)
	}
	_, err := s.scan(0, s.base, true, func(h *BatchHeader, pos int64, batch []byte) error {
		res, err := c.filterBatch(h, batch, pos == lastPos)
		if err != nil {
			return fmt.Errorf("segment %d batch at offset %d: %w", s.base, h.BaseOffset, err)
		}
		stats.RecordsRemoved += int64(res.removed)
		if res.out == nil {
			stats.BatchesRemoved++
		}
		if cs == nil && res.changed {
			if cs, err = c.startCleaned(s, pos); err != nil {
				return err
			}
		}
		if cs != nil && res.out != nil {
			return cs.append(res.out, c.plan.interval)
		}
		return nil
	})
	if err != nil {
		return cs, fmt.Errorf("rewrite segment %d: %w", s.base, err)
	}
	if cs == nil {
		return nil, nil
	}
	if err := cs.finish(); err != nil {
		return cs, err
	}
	stats.SegmentsRewritten++
	stats.BytesBefore += s.size
	stats.BytesAfter += cs.seg.size
	return cs, nil
}

// startCleaned creates the cleaned copy of s and copies the batches before
// pos, which are unchanged.
func (c *cleaning) startCleaned(s *segment, pos int64) (*cleanedSegment, error) {
	fsys, dir := c.log.fsys, c.log.dir
	n := &segment{fsys: fsys, dir: dir, base: s.base, next: s.base, lastBatchBase: -1, maxTS: -1}
	n.refs.Store(1)
	cs := &cleanedSegment{old: s, seg: n}
	flag := os.O_CREATE | os.O_TRUNC | os.O_RDWR
	var err error
	if n.log, err = fsys.OpenFile(n.path(logSuffix)+cleanedSuffix, flag, 0o644); err != nil {
		return cs, fmt.Errorf("create cleaned segment %d: %w", s.base, err)
	}
	if n.index, err = fsys.OpenFile(n.path(indexSuffix)+cleanedSuffix, flag, 0o644); err != nil {
		return cs, fmt.Errorf("create cleaned offset index %d: %w", s.base, err)
	}
	if n.timeIndex, err = fsys.OpenFile(n.path(timeIndexSuffix)+cleanedSuffix, flag, 0o644); err != nil {
		return cs, fmt.Errorf("create cleaned time index %d: %w", s.base, err)
	}
	if pos == 0 {
		return cs, nil
	}
	_, err = s.scan(0, s.base, true, func(h *BatchHeader, p int64, batch []byte) error {
		if p >= pos {
			return errStopScan
		}
		return cs.append(batch, c.plan.interval)
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return cs, fmt.Errorf("copy segment %d: %w", s.base, err)
	}
	return cs, nil
}

var errStopScan = errors.New("stop scan")

// append writes one batch to the cleaned copy and indexes it.
func (cs *cleanedSegment) append(batch []byte, interval int64) error {
	s := cs.seg
	h := parseHeader(batch)
	pos := s.size
	if _, err := s.log.Write(batch); err != nil {
		return fmt.Errorf("write cleaned segment %d: %w", s.base, err)
	}
	return s.noteBatch(&h, pos, interval)
}

// finish writes the aborted-transaction index and fsyncs the cleaned copy.
func (cs *cleanedSegment) finish() error {
	s := cs.seg
	if err := s.appendTimeEntry(); err != nil {
		return err
	}
	if len(cs.old.aborted) > 0 {
		f, err := s.fsys.OpenFile(s.path(txnIndexSuffix)+cleanedSuffix, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("create cleaned aborted transaction index %d: %w", s.base, err)
		}
		s.txnIndex = f
		var b []byte
		for _, e := range cs.old.aborted {
			b = encodeTxnEntry(b, e)
		}
		if _, err := f.Write(b); err != nil {
			return fmt.Errorf("write cleaned aborted transaction index %d: %w", s.base, err)
		}
		s.aborted = append([]AbortedTxn(nil), cs.old.aborted...)
	}
	if err := s.sync(); err != nil {
		return err
	}
	s.next = cs.old.next
	s.syncedSize, s.indexDirty = s.size, false
	return nil
}

// batchResult is the fate of one batch: out is nil if it is removed,
// changed if out differs from the stored batch.
type batchResult struct {
	out     []byte
	changed bool
	removed int // records removed
}

// filterBatch applies the compaction rules to one batch (doc.go, "Log
// compaction"). lastInSegment keeps at least the header of the segment's
// last batch, so that no segment becomes empty and its offset range stays.
func (c *cleaning) filterBatch(h *BatchHeader, batch []byte, lastInSegment bool) (batchResult, error) {
	now := c.plan.nowMs
	keepHeader := lastInSegment || (h.ProducerID >= 0 && c.plan.lastOf[h.ProducerID] == h.LastOffset())
	hasHorizon := h.Attributes&attrDeleteHorizon != 0
	if h.IsControl() {
		removable := !c.txnData[h.ProducerID]
		delete(c.txnData, h.ProducerID)
		switch {
		case h.NumRecords == 0 && !keepHeader:
			return batchResult{changed: true}, nil
		case !removable || h.NumRecords == 0:
			return batchResult{out: batch}, nil
		case !hasHorizon:
			// First time seen removable: keep it DeleteRetention longer.
			horizon := now + c.plan.cfg.DeleteRetention.Milliseconds()
			c.horizon = min(c.horizon, horizon)
			out, err := c.reencode(h, batch, nil, horizon)
			return batchResult{out: out, changed: true}, err
		case h.FirstTimestamp > now:
			c.horizon = min(c.horizon, h.FirstTimestamp)
			return batchResult{out: batch}, nil
		case keepHeader:
			return batchResult{out: emptyBatch(h), changed: true, removed: int(h.NumRecords)}, nil
		default:
			return batchResult{changed: true, removed: int(h.NumRecords)}, nil
		}
	}
	if h.NumRecords == 0 {
		// An empty header kept earlier: drop it once it is not needed.
		if keepHeader {
			if h.IsTransactional() {
				c.txnData[h.ProducerID] = true
			}
			return batchResult{out: batch}, nil
		}
		return batchResult{changed: true}, nil
	}
	aborted := h.IsTransactional() && c.plan.isAborted(h.ProducerID, h.BaseOffset)
	recs, err := DecodeRecords(batch)
	if err != nil {
		return batchResult{}, err
	}
	kept := recs[:0:0]
	tombstones := false
	for _, r := range recs {
		switch {
		case aborted || r.Key == nil:
		case superseded(c.keys, r):
		case r.Value == nil && hasHorizon && h.FirstTimestamp <= now:
		default:
			kept = append(kept, r)
			tombstones = tombstones || r.Value == nil
		}
	}
	removed := len(recs) - len(kept)
	if h.IsTransactional() && (len(kept) > 0 || keepHeader) {
		c.txnData[h.ProducerID] = true
	}
	switch {
	case len(kept) == 0 && keepHeader:
		return batchResult{out: emptyBatch(h), changed: true, removed: removed}, nil
	case len(kept) == 0:
		return batchResult{changed: true, removed: removed}, nil
	case !tombstones && removed == 0 && !hasHorizon:
		return batchResult{out: batch}, nil
	case tombstones && hasHorizon && removed == 0:
		c.horizon = min(c.horizon, h.FirstTimestamp)
		return batchResult{out: batch}, nil
	}
	horizon := int64(-1)
	if tombstones {
		horizon = now + c.plan.cfg.DeleteRetention.Milliseconds()
		if hasHorizon {
			horizon = h.FirstTimestamp
		}
		c.horizon = min(c.horizon, horizon)
	}
	out, err := c.reencode(h, batch, kept, horizon)
	return batchResult{out: out, changed: true, removed: removed}, err
}

// reencode rebuilds a batch with the given records (all of the batch's if
// recs is nil), keeping its offsets, producer fields, leader epoch, max
// timestamp and codec. A horizon >= 0 is stored in the first timestamp field
// with the delete-horizon attribute; record timestamps stay right because
// their deltas are taken from it.
func (c *cleaning) reencode(h *BatchHeader, batch []byte, recs []Record, horizon int64) ([]byte, error) {
	if recs == nil {
		var err error
		if recs, err = DecodeRecords(batch); err != nil {
			return nil, err
		}
	}
	attrs := h.Attributes &^ attrDeleteHorizon
	base := recs[0].Timestamp
	if h.Attributes&attrLogAppendTime != 0 {
		base = h.MaxTimestamp
	}
	if horizon >= 0 {
		attrs |= attrDeleteHorizon
		base = horizon
	}
	var body []byte
	var rec []byte
	for i := range recs {
		body, rec = appendRecord(body, rec, &recs[i], recs[i].Timestamp-base, recs[i].Offset-h.BaseOffset)
	}
	body, err := compressBody(h.Compression(), body)
	if err != nil {
		return nil, fmt.Errorf("recompress batch at offset %d: %w", h.BaseOffset, err)
	}
	out := make([]byte, BatchHeaderSize, BatchHeaderSize+len(body))
	copy(out, batch[:BatchHeaderSize])
	out = append(out, body...)
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-batchLengthOverhead))
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint64(out[offFirstTimestamp:], uint64(base))
	binary.BigEndian.PutUint32(out[offNumRecords:], uint32(len(recs)))
	binary.BigEndian.PutUint32(out[offCRC:], batchCRC(out))
	return out, nil
}

// emptyBatch is the header of h with no records (Kafka keeps such a batch
// to retain a producer's last sequence and epoch): same offsets, producer
// fields and timestamps, no compression, no delete horizon.
func emptyBatch(h *BatchHeader) []byte {
	b := make([]byte, BatchHeaderSize)
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(h.BaseOffset))
	binary.BigEndian.PutUint32(b[offLength:], BatchHeaderSize-batchLengthOverhead)
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
	b[offMagic] = 2
	attrs := h.Attributes &^ (attrCompressionMask | attrDeleteHorizon)
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	first := h.FirstTimestamp
	if h.Attributes&attrDeleteHorizon != 0 {
		first = h.MaxTimestamp
	}
	binary.BigEndian.PutUint64(b[offFirstTimestamp:], uint64(first))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(h.MaxTimestamp))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(h.ProducerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(h.ProducerEpoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(h.BaseSequence))
	binary.BigEndian.PutUint32(b[offNumRecords:], 0)
	binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
	return b
}

// compressBody compresses the records of a batch with codec. Snappy uses
// the xerial framing of the Java client, which every client reads.
func compressBody(codec int, body []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch codec {
	case CompressionNone:
		return body, nil
	case CompressionGzip:
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case CompressionSnappy:
		buf.Write(xerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1}) // version 1, compatible version 1
		const block = 32 << 10
		for rest := body; len(rest) > 0; {
			n := min(len(rest), block)
			enc := snappy.Encode(nil, rest[:n])
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(enc))))
			buf.Write(enc)
			rest = rest[n:]
		}
	case CompressionLZ4:
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case CompressionZstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer enc.Close()
		return enc.EncodeAll(body, nil), nil
	default:
		return nil, fmt.Errorf("compression codec %d: %w", codec, ErrCorruptMessage)
	}
	return buf.Bytes(), nil
}

// stage makes the cleaned copies the committed replacements: every index
// file is renamed from *.cleaned to *.swap, the directory fsynced, then the
// log files likewise. A durable <base>.log.swap is the commit point.
func (c *cleaning) stage(out []*cleanedSegment) error {
	fsys, dir := c.log.fsys, c.log.dir
	for _, logFile := range []bool{false, true} {
		if len(out) == 0 {
			return nil
		}
		for _, cs := range out {
			for _, suf := range segmentSuffixes {
				if (suf == logSuffix) != logFile || (suf == txnIndexSuffix && cs.seg.txnIndex == nil) {
					continue
				}
				p := cs.seg.path(suf)
				if err := fsys.Rename(p+cleanedSuffix, p+swapSuffix); err != nil {
					return fmt.Errorf("stage cleaned segment %d: %w", cs.seg.base, err)
				}
			}
		}
		if err := fsys.SyncDir(dir); err != nil {
			return fmt.Errorf("sync dir after staging cleaned segments: %w", err)
		}
	}
	return nil
}

// discard removes the cleaned copies of a failed run, whatever stage they
// reached; the old segments are untouched until installCleaned.
func (c *cleaning) discard(out []*cleanedSegment) {
	for _, cs := range out {
		cs.seg.closeFiles()
		for _, suf := range segmentSuffixes {
			p := cs.seg.path(suf)
			for _, x := range []string{cleanedSuffix, swapSuffix} {
				if err := c.log.fsys.Remove(p + x); err != nil && !errors.Is(err, fs.ErrNotExist) {
					c.log.logger.Warn("removing cleaned segment file failed", "file", p+x, "err", err)
				}
			}
		}
	}
}

// installCleaned replaces the old segments with their staged copies, under
// Log.mu, and records the run's checkpoint and delete horizon. A segment
// deleted by retention meanwhile loses its copy. Readers holding an old
// segment keep reading its (now unlinked) files.
func (l *Log) installCleaned(out []*cleanedSegment, end, horizon int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		// The copies are committed; the next Open installs them.
		for _, cs := range out {
			cs.seg.closeFiles()
		}
		return ErrClosed
	}
	var errs []error
	installed := 0
	for _, cs := range out {
		i := -1
		for j, s := range l.segs {
			if s == cs.old {
				i = j
				break
			}
		}
		if i < 0 {
			(&cleaning{log: l}).discard([]*cleanedSegment{cs})
			continue
		}
		var err error
		for _, suf := range segmentSuffixes {
			if suf == txnIndexSuffix && cs.seg.txnIndex == nil {
				continue
			}
			p := cs.seg.path(suf)
			if err = l.fsys.Rename(p+swapSuffix, p); err != nil {
				err = fmt.Errorf("install cleaned segment %d: %w", cs.seg.base, err)
				break
			}
		}
		if err != nil {
			// The old segment stays in use; the next Open completes the
			// committed swap.
			cs.seg.closeFiles()
			errs = append(errs, err)
			continue
		}
		l.segs[i] = cs.seg
		l.size += cs.seg.size - cs.old.size
		cs.old.release()
		installed++
	}
	if installed > 0 {
		if err := l.fsys.SyncDir(l.dir); err != nil {
			errs = append(errs, fmt.Errorf("sync dir after installing cleaned segments: %w", err))
		}
	}
	if len(errs) == 0 {
		if err := WriteFileAtomic(l.fsys, filepath.Join(l.dir, cleanerCheckpointName), encodeOffsetFile(end)); err != nil {
			errs = append(errs, fmt.Errorf("write cleaner checkpoint: %w", err))
		} else {
			l.cleaner.checkpoint = end
			l.cleaner.horizon = horizon
		}
	}
	return errors.Join(errs...)
}

// finishCleanerSwaps runs at Open before the segments are loaded: it removes
// *.cleaned files (a run that had not committed), completes every committed
// swap (<base>.log.swap present: rename each <base>.*.swap over its file, log
// last) and removes the swap files of a segment that no longer exists
// (retention deleted it during the run). It returns the directory listing
// after these changes.
func (l *Log) finishCleanerSwaps(names []string) ([]string, error) {
	present := make(map[string]bool, len(names))
	for _, n := range names {
		present[n] = true
	}
	changed := false
	swaps := make(map[int64][]string) // base -> suffixes with a .swap file
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, cleanedSuffix):
			if err := l.fsys.Remove(filepath.Join(l.dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("remove leftover %s: %w", n, err)
			}
			changed = true
		case strings.HasSuffix(n, swapSuffix):
			for _, suf := range segmentSuffixes {
				if b, ok := parseBaseName(strings.TrimSuffix(n, swapSuffix), suf); ok {
					swaps[b] = append(swaps[b], suf)
				}
			}
		}
	}
	for base, sufs := range swaps {
		logName := fileName(base, logSuffix)
		commit := present[logName+swapSuffix] && present[logName]
		if commit {
			l.logger.Warn("completing interrupted cleaner swap", "segment", base)
		}
		for _, suf := range segmentSuffixes {
			if !contains(sufs, suf) {
				continue
			}
			p := filepath.Join(l.dir, fileName(base, suf))
			var err error
			if commit {
				err = l.fsys.Rename(p+swapSuffix, p)
			} else {
				err = l.fsys.Remove(p + swapSuffix)
			}
			if err != nil {
				return nil, fmt.Errorf("finish cleaner swap of segment %d: %w", base, err)
			}
			changed = true
		}
	}
	if !changed {
		return names, nil
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return nil, fmt.Errorf("sync dir after finishing cleaner swaps: %w", err)
	}
	return l.fsys.ReadDir(l.dir)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// checkKeys refuses a batch with a record without a key: a compacted log
// could not keep it (Kafka answers INVALID_RECORD too).
func checkKeys(batch []byte) error {
	recs, err := DecodeRecords(batch)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Key == nil {
			return fmt.Errorf("record at offset delta %d has no key, which a compacted topic requires: %w", r.Offset-recs[0].Offset, ErrInvalidRecord)
		}
	}
	return nil
}
