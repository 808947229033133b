package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// txnIndexEntrySize is the size of one aborted-transaction index entry
// (format in doc.go).
const txnIndexEntrySize = 36

// AbortedTxn is one entry of the aborted-transaction index: producer
// ProducerID aborted the transaction spanning [FirstOffset, LastOffset]
// (LastOffset is the abort marker), while the last stable offset was
// LastStableOffset.
type AbortedTxn struct {
	ProducerID, FirstOffset, LastOffset, LastStableOffset int64
}

func encodeTxnEntry(b []byte, e AbortedTxn) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint64(b, uint64(e.ProducerID))
	b = binary.BigEndian.AppendUint64(b, uint64(e.FirstOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(e.LastOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(e.LastStableOffset))
	return binary.BigEndian.AppendUint32(b, crc32c(b[start:]))
}

// decodeTxnEntries decodes the valid prefix of an aborted-transaction index.
func decodeTxnEntries(b []byte) []AbortedTxn {
	var out []AbortedTxn
	for ; len(b) >= txnIndexEntrySize; b = b[txnIndexEntrySize:] {
		if crc32c(b[:32]) != binary.BigEndian.Uint32(b[32:]) {
			break
		}
		out = append(out, AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(b)),
			FirstOffset:      int64(binary.BigEndian.Uint64(b[8:])),
			LastOffset:       int64(binary.BigEndian.Uint64(b[16:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(b[24:])),
		})
	}
	return out
}

// loadTxnIndex opens the segment's aborted-transaction index if it exists
// and loads its entries, cutting a torn or corrupt tail. Log not shared.
func (s *segment) loadTxnIndex() error {
	f, err := s.fsys.OpenFile(s.path(txnIndexSuffix), os.O_RDWR, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open aborted transaction index %d: %w", s.base, err)
	}
	s.txnIndex = f
	b, err := readAll(f)
	if err != nil {
		return fmt.Errorf("read aborted transaction index %d: %w", s.base, err)
	}
	s.aborted = decodeTxnEntries(b)
	if len(s.aborted)*txnIndexEntrySize != len(b) {
		return s.truncateAborted(len(s.aborted))
	}
	return nil
}

// truncateAborted keeps the first n entries. l.mu held or log not shared.
func (s *segment) truncateAborted(n int) error {
	s.aborted = s.aborted[:n]
	if s.txnIndex == nil {
		return nil
	}
	if err := s.txnIndex.Truncate(int64(n * txnIndexEntrySize)); err != nil {
		return fmt.Errorf("truncate aborted transaction index %d: %w", s.base, err)
	}
	s.indexDirty = true
	return nil
}

// appendAborted adds an entry to the segment's aborted-transaction index,
// creating the file if needed. l.mu held (write).
func (s *segment) appendAborted(e AbortedTxn) error {
	if s.txnIndex == nil {
		f, err := s.fsys.OpenFile(s.path(txnIndexSuffix), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("create aborted transaction index %d: %w", s.base, err)
		}
		s.txnIndex = f
	}
	if _, err := s.txnIndex.Write(encodeTxnEntry(nil, e)); err != nil {
		return fmt.Errorf("write aborted transaction index %d: %w", s.base, err)
	}
	s.aborted = append(s.aborted, e)
	s.indexDirty = true
	return nil
}

// truncateTxnIndexes drops the aborted-transaction entries whose marker is
// at or after from; the replay from there recreates them. l.mu held or log
// not shared.
func (l *Log) truncateTxnIndexes(from int64) error {
	for _, s := range l.segs {
		n := len(s.aborted)
		for n > 0 && s.aborted[n-1].LastOffset >= from {
			n--
		}
		if n != len(s.aborted) {
			if err := s.truncateAborted(n); err != nil {
				return err
			}
		}
	}
	return nil
}
