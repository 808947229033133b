package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
)

// DefaultProducerIDBlockSize is how many producer IDs the allocator reserves
// with one durable write.
const DefaultProducerIDBlockSize = 1000

// ProducerIDAllocator hands out producer IDs that are never reused, even
// across restarts and crashes: before handing out IDs from a block it
// durably records the block's end, and on open it continues from there.
// It is goroutine-safe.
type ProducerIDAllocator struct {
	fsys FS
	path string

	mu       sync.Mutex
	next     int64 // next ID to hand out
	blockEnd int64 // first ID not covered by the persisted reservation
	closed   bool
}

// OpenProducerIDAllocator opens the allocator persisted at path (created
// on the first Next). The file holds the end of the last reserved block
// (format in doc.go); a corrupt file is an error, since continuing could
// reuse IDs.
func OpenProducerIDAllocator(fsys FS, path string) (*ProducerIDAllocator, error) {
	a := &ProducerIDAllocator{fsys: fsys, path: path}
	b, err := ReadFile(fsys, path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("open producer ID allocator %s: %w", path, err)
	default:
		end, ok := decodeOffsetFile(b)
		if !ok || end < 0 {
			return nil, fmt.Errorf("open producer ID allocator %s: corrupt file of %d bytes", path, len(b))
		}
		a.next, a.blockEnd = end, end
	}
	// Remove a temp file left by a crash during a reservation.
	if err := fsys.Remove(path + tmpSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open producer ID allocator %s: remove temp file: %w", path, err)
	}
	return a, nil
}

// Next returns a new producer ID.
func (a *ProducerIDAllocator) Next() (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return -1, ErrClosed
	}
	if a.next >= a.blockEnd {
		end := a.next + DefaultProducerIDBlockSize
		if err := WriteFileAtomic(a.fsys, a.path, encodeOffsetFile(end)); err != nil {
			return -1, fmt.Errorf("reserve producer IDs up to %d: %w", end, err)
		}
		a.blockEnd = end
	}
	id := a.next
	a.next++
	return id, nil
}

// Close makes further Next calls fail with ErrClosed. The unused rest of the
// block is skipped on the next open.
func (a *ProducerIDAllocator) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	return nil
}
