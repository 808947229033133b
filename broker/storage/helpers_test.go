package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// testClock is an injectable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.UnixMilli(1_700_000_000_000)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func testOptions(t testing.TB, clock *testClock) Options {
	return Options{
		Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Now:    clock.Now,
	}
}

func openTestLog(t testing.TB, fsys FS, dir string, cfg Config, clock *testClock) *Log {
	t.Helper()
	l, err := Open(fsys, dir, cfg, testOptions(t, clock))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// records makes n records with values "<prefix>-<i>" and timestamp ts+i.
func records(prefix string, n int, ts int64) []Record {
	rs := make([]Record, n)
	for i := range rs {
		rs[i] = Record{Timestamp: ts + int64(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
	}
	return rs
}

func plainBatch(prefix string, n int, ts int64) []byte {
	return EncodeBatch(records(prefix, n, ts), -1, -1, -1)
}

func mustAppend(t testing.TB, l *Log, batch []byte, origin Origin) AppendResult {
	t.Helper()
	res, err := l.Append(batch, origin, 0)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

// readAllRecords reads the log from offset up to upTo and decodes it.
func readAllRecords(t testing.TB, l *Log, from, upTo int64) []Record {
	t.Helper()
	var out []Record
	for from < upTo {
		res, err := l.Read(from, 1<<20, true, upTo)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if res.Bytes == 0 {
			t.Fatalf("Read(%d) up to %d returned nothing", from, upTo)
		}
		data := chunkBytes(t, res)
		res.Release()
		batches, err := SplitBatches(data)
		if err != nil {
			t.Fatalf("SplitBatches: %v", err)
		}
		for _, b := range batches {
			h, err := ParseBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if batchCRC(b) != h.CRC {
				t.Fatalf("batch at %d: bad CRC", h.BaseOffset)
			}
			rs, err := DecodeRecords(b)
			if err != nil {
				t.Fatalf("DecodeRecords: %v", err)
			}
			for _, r := range rs {
				if r.Offset >= from {
					out = append(out, r)
				}
			}
			from = h.LastOffset() + 1
		}
	}
	return out
}

func chunkBytes(t testing.TB, res ReadResult) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, c := range res.Chunks {
		if _, err := io.Copy(&buf, io.NewSectionReader(c.File, c.Pos, c.Len)); err != nil {
			t.Fatalf("read chunk: %v", err)
		}
	}
	if int64(buf.Len()) != res.Bytes {
		t.Fatalf("chunks hold %d bytes, result says %d", buf.Len(), res.Bytes)
	}
	return buf.Bytes()
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

func fileNames(t testing.TB, fsys FS, dir string) []string {
	t.Helper()
	names, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}
