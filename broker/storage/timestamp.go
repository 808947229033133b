package storage

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// OffsetForTimestamp returns the earliest offset whose record timestamp is
// >= ts, and that timestamp (ListOffsets by timestamp). found is false if
// every record is older. Compressed batches are decompressed to find the
// exact record.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return -1, -1, false, ErrClosed
	}
	for _, s := range l.segs {
		if s.size == 0 || s.maxTS < ts {
			continue
		}
		return s.offsetForTimestamp(ts)
	}
	return -1, -1, false, nil
}

// offsetForTimestamp searches one segment whose maxTS >= ts. l.mu held.
func (s *segment) offsetForTimestamp(ts int64) (int64, int64, bool, error) {
	// The last time entry below ts: every batch up to it is older than ts.
	start := int64(0)
	if i := sort.Search(len(s.times), func(i int) bool { return s.times[i].ts >= ts }); i > 0 {
		start = s.lookup(s.base + int64(s.times[i-1].rel))
	}
	hdr := make([]byte, BatchHeaderSize)
	for pos := start; pos < s.size; {
		if _, err := s.log.ReadAt(hdr, pos); err != nil && !errors.Is(err, io.EOF) {
			return -1, -1, false, fmt.Errorf("read segment %d at %d: %w", s.base, pos, err)
		}
		h := parseHeader(hdr)
		if h.Size() < BatchHeaderSize || pos+h.Size() > s.size {
			return -1, -1, false, fmt.Errorf("segment %d: batch at %d has length %d: %w", s.base, pos, h.Length, ErrCorruptMessage)
		}
		if h.MaxTimestamp < ts {
			pos += h.Size()
			continue
		}
		if h.Attributes&attrLogAppendTime != 0 || h.IsControl() {
			return h.BaseOffset, h.MaxTimestamp, true, nil
		}
		batch := make([]byte, h.Size())
		if _, err := s.log.ReadAt(batch, pos); err != nil && !errors.Is(err, io.EOF) {
			return -1, -1, false, fmt.Errorf("read segment %d at %d: %w", s.base, pos, err)
		}
		recs, err := DecodeRecords(batch)
		if err != nil {
			return -1, -1, false, fmt.Errorf("segment %d batch at offset %d: %w", s.base, h.BaseOffset, err)
		}
		for _, r := range recs {
			if r.Timestamp >= ts {
				return r.Offset, r.Timestamp, true, nil
			}
		}
		// MaxTimestamp promised a record: fall back to the batch.
		return h.BaseOffset, h.MaxTimestamp, true, nil
	}
	return -1, -1, false, nil
}
