package storage

import (
	"path/filepath"
	"testing"
)

// benchBatch is a batch of n 100-byte records, like a producer's linger
// batch.
func benchBatch(n int) []byte {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Timestamp: int64(i), Value: make([]byte, 100)}
	}
	return EncodeBatch(recs, -1, -1, -1)
}

func BenchmarkAppend(b *testing.B) {
	for _, fs := range []struct {
		name string
		fsys func(b *testing.B) (FS, string)
	}{
		{"os", func(b *testing.B) (FS, string) { return OSFS, filepath.Join(b.TempDir(), "p") }},
		{"mem", func(b *testing.B) (FS, string) { return newCrashFS(), "/p" }},
	} {
		b.Run(fs.name, func(b *testing.B) {
			fsys, dir := fs.fsys(b)
			cfg := DefaultConfig()
			cfg.SegmentBytes = 64 << 20
			l, err := Open(fsys, dir, cfg, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			const perBatch = 100
			batch := benchBatch(perBatch)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.Append(batch, OriginClient, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "p")
	cfg := DefaultConfig()
	cfg.SegmentBytes = 16 << 20
	l, err := Open(OSFS, dir, cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch := benchBatch(100)
	for i := 0; i < 2000; i++ {
		if _, err := l.Append(batch, OriginClient, 0); err != nil {
			b.Fatal(err)
		}
	}
	hw := l.HighWatermark()
	b.ReportAllocs()
	b.ResetTimer()
	var off int64
	for i := 0; i < b.N; i++ {
		res, err := l.Read(off, 1<<20, true, hw)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(res.Bytes)
		res.Release()
		off = (off + 777) % hw
	}
}

// BenchmarkAppendFsyncAlways appends from several goroutines with
// FsyncAlways, where concurrent appenders share fsyncs.
func BenchmarkAppendFsyncAlways(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Fsync = FsyncPolicy{Mode: FsyncAlways}
	l, err := Open(OSFS, filepath.Join(b.TempDir(), "p"), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		batch := benchBatch(100)
		for pb.Next() {
			if _, err := l.Append(batch, OriginClient, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
