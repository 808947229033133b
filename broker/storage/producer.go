package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
)

// maxBatchesPerProducer is how many recent batches per producer are kept to
// detect retries (like Kafka's five in-flight requests).
const maxBatchesPerProducer = 5

// batchMeta describes one recently appended idempotent batch.
type batchMeta struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	timestamp               int64
}

// producerState is what the log remembers about one producer ID.
type producerState struct {
	epoch    int16
	batches  [maxBatchesPerProducer]batchMeta // oldest first
	nBatches int
	txnFirst int64 // first offset of the open transaction, -1 if none
	// lastAppendMs is the broker's clock (Options.Now, Unix ms) at its last
	// append, for expiration. Not the records' timestamps: a mirror keeps
	// the source's old CreateTimes, and a producer's clock is not ours.
	lastAppendMs int64
}

func (p *producerState) last() *batchMeta {
	if p.nBatches == 0 {
		return nil
	}
	return &p.batches[p.nBatches-1]
}

func (p *producerState) addBatch(m batchMeta) {
	if p.nBatches == maxBatchesPerProducer {
		copy(p.batches[:], p.batches[1:])
		p.nBatches--
	}
	p.batches[p.nBatches] = m
	p.nBatches++
}

// findDuplicate returns the recorded batch with the same sequence range.
func (p *producerState) findDuplicate(firstSeq, lastSeq int32) *batchMeta {
	for i := 0; i < p.nBatches; i++ {
		if b := &p.batches[i]; b.firstSeq == firstSeq && b.lastSeq == lastSeq {
			return b
		}
	}
	return nil
}

// checkProducer validates an append of h (not yet assigned offsets) against
// the producer's state. It returns the original batch if h is a retry.
// l.mu held.
func (l *Log) checkProducer(h *BatchHeader, origin Origin) (*batchMeta, error) {
	if h.ProducerID < 0 {
		return nil, nil
	}
	p := l.producers[h.ProducerID]
	if p == nil {
		return nil, nil // unknown (new, or expired): accept
	}
	if h.ProducerEpoch < p.epoch {
		return nil, fmt.Errorf("producer %d epoch %d, current %d: %w", h.ProducerID, h.ProducerEpoch, p.epoch, ErrInvalidProducerEpoch)
	}
	if origin != OriginClient || h.BaseSequence < 0 {
		return nil, nil
	}
	if h.ProducerEpoch > p.epoch {
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("producer %d new epoch %d starts at sequence %d: %w", h.ProducerID, h.ProducerEpoch, h.BaseSequence, ErrOutOfOrderSequence)
		}
		return nil, nil
	}
	if dup := p.findDuplicate(h.BaseSequence, h.LastSequence()); dup != nil {
		return dup, nil
	}
	last := p.last()
	if last == nil {
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("producer %d epoch %d starts at sequence %d: %w", h.ProducerID, h.ProducerEpoch, h.BaseSequence, ErrOutOfOrderSequence)
		}
		return nil, nil
	}
	if want := addSequence(last.lastSeq, 1); h.BaseSequence != want {
		return nil, fmt.Errorf("producer %d sequence %d, expected %d: %w", h.ProducerID, h.BaseSequence, want, ErrOutOfOrderSequence)
	}
	return nil, nil
}

// applyProducer records an appended batch (offsets assigned) in the producer
// state: epoch, recent batches and transactions. abort tells whether a
// control batch is an abort marker; if it ends an open transaction, the
// aborted transaction is returned (ok true) for the aborted-transaction
// index. nowMs is the broker's clock (Unix ms) at the append, or at the
// replay, which restarts the expiry clock of the producers it sees. It is
// used by Append and by the replay at recovery. l.mu held.
func (l *Log) applyProducer(h *BatchHeader, abort bool, nowMs int64) (aborted AbortedTxn, ok bool) {
	if h.ProducerID < 0 {
		return AbortedTxn{}, false
	}
	p := l.producers[h.ProducerID]
	if p == nil {
		p = &producerState{epoch: h.ProducerEpoch, txnFirst: -1}
		l.producers[h.ProducerID] = p
	}
	if h.ProducerEpoch > p.epoch {
		p.epoch = h.ProducerEpoch
		p.nBatches = 0
	}
	p.lastAppendMs = max(p.lastAppendMs, nowMs)
	switch {
	case h.IsControl():
		if p.txnFirst < 0 {
			return AbortedTxn{}, false
		}
		aborted = AbortedTxn{ProducerID: h.ProducerID, FirstOffset: p.txnFirst, LastOffset: h.BaseOffset}
		p.txnFirst = -1
		delete(l.openTxns, h.ProducerID)
		l.recomputeFirstOpenTxn()
		aborted.LastStableOffset = min(l.firstOpenTxn, h.BaseOffset+1)
		return aborted, abort
	case h.IsTransactional() && p.txnFirst < 0:
		p.txnFirst = h.BaseOffset
		l.openTxns[h.ProducerID] = h.BaseOffset
		l.firstOpenTxn = min(l.firstOpenTxn, h.BaseOffset)
	}
	if h.BaseSequence >= 0 {
		p.addBatch(batchMeta{
			firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
			firstOffset: h.BaseOffset, lastOffset: h.LastOffset(),
			timestamp: h.MaxTimestamp,
		})
	}
	return AbortedTxn{}, false
}

// isAbortMarker reports whether a control batch is an abort marker: its
// first record's key is version int16, type int16 with type 0 = abort,
// 1 = commit.
func isAbortMarker(batch []byte) bool {
	recs, err := DecodeRecords(batch)
	if err != nil || len(recs) == 0 || len(recs[0].Key) < 4 {
		return false
	}
	return binary.BigEndian.Uint16(recs[0].Key[2:]) == 0
}

// recomputeFirstOpenTxn recomputes the smallest first offset of the open
// transactions (noTxn if none). l.mu held.
func (l *Log) recomputeFirstOpenTxn() {
	l.firstOpenTxn = noTxn
	for _, off := range l.openTxns {
		l.firstOpenTxn = min(l.firstOpenTxn, off)
	}
}

const noTxn = int64(1<<63 - 1)

// Producer snapshot versions (format in doc.go). Version 1 kept the max
// record timestamp of the producer's last batch where version 2 keeps the
// broker's clock at its last append; a version 1 snapshot still loads, its
// producers' expiry clock restarting at the load.
const (
	snapshotVersionV1    = 1
	snapshotVersion      = 2
	snapshotHeaderSize   = 4 + 2 + 8 + 4
	snapshotProducerSize = 8 + 2 + 8 + 8 + 1
	snapshotBatchSize    = 4 + 4 + 8 + 8 + 8
)

// encodeSnapshot serializes the producer state as of offset (format in
// doc.go). l.mu held.
func (l *Log) encodeSnapshot(offset int64) []byte {
	b := make([]byte, snapshotHeaderSize, snapshotHeaderSize+len(l.producers)*(snapshotProducerSize+2*snapshotBatchSize))
	binary.BigEndian.PutUint16(b[4:], snapshotVersion)
	binary.BigEndian.PutUint64(b[6:], uint64(offset))
	binary.BigEndian.PutUint32(b[14:], uint32(len(l.producers)))
	for id, p := range l.producers {
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(p.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(p.txnFirst))
		b = binary.BigEndian.AppendUint64(b, uint64(p.lastAppendMs))
		b = append(b, byte(p.nBatches))
		for i := 0; i < p.nBatches; i++ {
			m := &p.batches[i]
			b = binary.BigEndian.AppendUint32(b, uint32(m.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.firstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.lastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.timestamp))
		}
	}
	binary.BigEndian.PutUint32(b[0:], crc32.Checksum(b[4:], castagnoli))
	return b
}

var errBadSnapshot = errors.New("invalid producer snapshot")

// decodeSnapshot parses a snapshot written at offset. nowMs (Unix ms) is
// the last-append time given to the producers of a version 1 snapshot,
// which does not have one.
func decodeSnapshot(b []byte, offset, nowMs int64) (map[int64]*producerState, error) {
	if len(b) < snapshotHeaderSize || crc32.Checksum(b[4:], castagnoli) != binary.BigEndian.Uint32(b) ||
		int64(binary.BigEndian.Uint64(b[6:])) != offset {
		return nil, errBadSnapshot
	}
	version := binary.BigEndian.Uint16(b[4:])
	if version != snapshotVersionV1 && version != snapshotVersion {
		return nil, errBadSnapshot
	}
	n := int(binary.BigEndian.Uint32(b[14:]))
	b = b[snapshotHeaderSize:]
	out := make(map[int64]*producerState, min(n, len(b)/snapshotProducerSize))
	for i := 0; i < n; i++ {
		if len(b) < snapshotProducerSize {
			return nil, errBadSnapshot
		}
		id := int64(binary.BigEndian.Uint64(b))
		p := &producerState{
			epoch:        int16(binary.BigEndian.Uint16(b[8:])),
			txnFirst:     int64(binary.BigEndian.Uint64(b[10:])),
			lastAppendMs: int64(binary.BigEndian.Uint64(b[18:])),
			nBatches:     int(b[26]),
		}
		if version == snapshotVersionV1 {
			p.lastAppendMs = nowMs // v1 held a record timestamp
		}
		b = b[snapshotProducerSize:]
		if p.nBatches > maxBatchesPerProducer || len(b) < p.nBatches*snapshotBatchSize {
			return nil, errBadSnapshot
		}
		for j := 0; j < p.nBatches; j++ {
			p.batches[j] = batchMeta{
				firstSeq:    int32(binary.BigEndian.Uint32(b)),
				lastSeq:     int32(binary.BigEndian.Uint32(b[4:])),
				firstOffset: int64(binary.BigEndian.Uint64(b[8:])),
				lastOffset:  int64(binary.BigEndian.Uint64(b[16:])),
				timestamp:   int64(binary.BigEndian.Uint64(b[24:])),
			}
			b = b[snapshotBatchSize:]
		}
		out[id] = p
	}
	if len(b) != 0 {
		return nil, errBadSnapshot
	}
	return out, nil
}

// writeSnapshot persists the producer state as of offset. l.mu held.
func (l *Log) writeSnapshot(offset int64) error {
	path := filepath.Join(l.dir, fileName(offset, snapshotSuffix))
	if err := WriteFileAtomic(l.fsys, path, l.encodeSnapshot(offset)); err != nil {
		return fmt.Errorf("write producer snapshot %d: %w", offset, err)
	}
	l.snapshots = insertSorted(l.snapshots, offset)
	return nil
}

func insertSorted(s []int64, v int64) []int64 {
	for i, x := range s {
		if x == v {
			return s
		}
		if x > v {
			s = append(s, 0)
			copy(s[i+1:], s[i:])
			s[i] = v
			return s
		}
	}
	return append(s, v)
}
