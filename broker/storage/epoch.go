package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
)

// epochEntry says that leader epoch epoch starts at offset start.
type epochEntry struct {
	epoch int32
	start int64
}

const epochCheckpointVersion = 0

func encodeEpochs(entries []epochEntry) []byte {
	b := make([]byte, 10, 10+12*len(entries))
	binary.BigEndian.PutUint16(b[4:], epochCheckpointVersion)
	binary.BigEndian.PutUint32(b[6:], uint32(len(entries)))
	for _, e := range entries {
		b = binary.BigEndian.AppendUint32(b, uint32(e.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.start))
	}
	binary.BigEndian.PutUint32(b, crc32.Checksum(b[4:], castagnoli))
	return b
}

func decodeEpochs(b []byte) ([]epochEntry, bool) {
	if len(b) < 10 || crc32.Checksum(b[4:], castagnoli) != binary.BigEndian.Uint32(b) ||
		binary.BigEndian.Uint16(b[4:]) != epochCheckpointVersion {
		return nil, false
	}
	n := int(binary.BigEndian.Uint32(b[6:]))
	if len(b) != 10+12*n {
		return nil, false
	}
	out := make([]epochEntry, n)
	for i := range out {
		p := b[10+12*i:]
		out[i] = epochEntry{epoch: int32(binary.BigEndian.Uint32(p)), start: int64(binary.BigEndian.Uint64(p[4:]))}
		if i > 0 && (out[i].epoch <= out[i-1].epoch || out[i].start < out[i-1].start) {
			return nil, false
		}
	}
	return out, true
}

// persistEpochs writes the leader epoch checkpoint. l.mu held.
func (l *Log) persistEpochs() error {
	if err := WriteFileAtomic(l.fsys, filepath.Join(l.dir, epochCheckpointName), encodeEpochs(l.epochs)); err != nil {
		return fmt.Errorf("write leader epoch checkpoint: %w", err)
	}
	return nil
}

// truncateEpochsTo drops the epochs that start at or after end. l.mu held.
func (l *Log) truncateEpochsTo(end int64) bool {
	n := len(l.epochs)
	for n > 0 && l.epochs[n-1].start >= end {
		n--
	}
	changed := n != len(l.epochs)
	l.epochs = l.epochs[:n]
	return changed
}

// truncateEpochsFrom drops the epochs entirely below start, moving the
// start of the first remaining one up to start. l.mu held.
func (l *Log) truncateEpochsFrom(start int64) bool {
	i := 0
	for i+1 < len(l.epochs) && l.epochs[i+1].start <= start {
		i++
	}
	changed := i > 0
	l.epochs = l.epochs[i:]
	if len(l.epochs) > 0 && l.epochs[0].start < start {
		l.epochs[0].start = start
		changed = true
	}
	return changed
}

// LeaderEpoch returns the latest leader epoch stamped on the log, or -1.
func (l *Log) LeaderEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if n := len(l.epochs); n > 0 {
		return l.epochs[n-1].epoch
	}
	return -1
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch <= the
// requested one and the offset where the next larger epoch starts (the log
// end offset for the latest epoch). It returns (-1, -1) if the requested
// epoch is above the latest one or the log has no epochs; for an epoch below
// the first known one it returns (epoch, start of the first epoch).
func (l *Log) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := len(l.epochs)
	if epoch < 0 || n == 0 {
		return -1, -1
	}
	if l.epochs[n-1].epoch == epoch {
		return epoch, l.leo
	}
	// First entry with a larger epoch.
	i := 0
	for i < n && l.epochs[i].epoch <= epoch {
		i++
	}
	if i == n {
		return -1, -1
	}
	if i == 0 {
		return epoch, l.epochs[0].start
	}
	return l.epochs[i-1].epoch, l.epochs[i].start
}
