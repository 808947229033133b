package storage

import (
	"fmt"
	"path/filepath"
	"testing"
)

func TestOSFS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "topic-0")
	clock := newTestClock()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 500
	cfg.Fsync = FsyncPolicy{Mode: FsyncAlways}
	l := openTestLog(t, OSFS, dir, cfg, clock)
	for i := 0; i < 20; i++ {
		mustAppend(t, l, plainBatch(fmt.Sprint(i), 2, 1), OriginClient)
	}
	res, err := l.Read(0, 1<<20, true, l.HighWatermark())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Chunks {
		if f, ok := c.File.(interface{ Fd() uintptr }); !ok || f.Fd() == 0 {
			t.Fatalf("chunk file %T has no Fd", c.File)
		}
	}
	res.Release()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, OSFS, dir, cfg, clock)
	defer l.Close()
	if got := readAllRecords(t, l, 0, l.HighWatermark()); len(got) != 40 {
		t.Fatalf("read %d records after reopen", len(got))
	}
}
