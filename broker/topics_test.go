package broker

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary/tributary/broker/storage"
)

// pausingFS blocks the first RemoveAll of a path containing match until
// release is closed, after closing entered.
type pausingFS struct {
	storage.FS
	match            string
	entered, release chan struct{}
}

func (f *pausingFS) RemoveAll(p string) error {
	if f.entered != nil && strings.Contains(filepath.Base(p), f.match) {
		close(f.entered)
		f.entered = nil
		<-f.release
	}
	return f.FS.RemoveAll(p)
}

func appendRecord(t *testing.T, l *storage.Log, v string) {
	t.Helper()
	batch := storage.EncodeBatch([]storage.Record{{Key: []byte(v), Value: []byte(v)}}, -1, -1, -1)
	if _, err := l.Append(batch, storage.OriginClient, 0); err != nil {
		t.Fatalf("append %q: %v", v, err)
	}
}

// A CreateTopics racing a DeleteTopics of the same name gets an empty
// partition, not the old one's data, and what it appends survives a restart.
func TestDeleteThenCreateSameName(t *testing.T) {
	dir := t.TempDir()
	fsys := &pausingFS{FS: storage.OSFS, match: "orders-0", entered: make(chan struct{}), release: make(chan struct{})}
	entered := fsys.entered
	r, err := openTopicRegistry(fsys, dir, storage.DefaultConfig(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.close() }()
	if _, err := r.create("orders", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	appendRecord(t, r.partition("orders", 0).log, "old")

	deleted := make(chan error, 1)
	go func() { deleted <- r.delete("orders") }()
	<-entered // the delete has released the registry and removes the old files
	_, cerr := r.create("orders", 1, nil, false)
	close(fsys.release)
	if err := <-deleted; err != nil {
		t.Fatalf("delete: %v", err)
	}
	if cerr != nil {
		t.Fatalf("create during delete: %v", cerr)
	}
	l := r.partition("orders", 0).log
	if leo := l.LogEndOffset(); leo != 0 {
		t.Fatalf("recreated partition starts at log end offset %d: the old data came back", leo)
	}
	appendRecord(t, l, "new")
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}

	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	r, err = openTopicRegistry(storage.OSFS, dir, storage.DefaultConfig(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	l = r.partition("orders", 0).log
	res, err := l.Read(0, 1<<20, true, l.HighWatermark())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if leo := l.LogEndOffset(); leo != 1 {
		t.Fatalf("after restart the recreated partition has log end offset %d, want 1", leo)
	}
}

// Tombstones of a delete interrupted by a crash are removed at the next
// start, and a live partition directory is kept.
func TestTombstonesRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	r, err := openTopicRegistry(storage.OSFS, dir, storage.DefaultConfig(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.create("keep", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	tomb := filepath.Join(dir, "gone-0.6f1c1e5e-0000-4000-8000-000000000000"+tombstoneSuffix)
	if err := os.MkdirAll(tomb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tomb, "00000000000000000000.log"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = openTopicRegistry(storage.OSFS, dir, storage.DefaultConfig(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if _, err := os.Stat(tomb); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tombstone after start: %v, want it removed", err)
	}
	if _, err := os.Stat(r.partitionDir("keep", 0)); err != nil {
		t.Fatalf("live partition directory: %v", err)
	}
}
