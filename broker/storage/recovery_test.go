package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestTornTailTruncated(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	l := openTestLog(t, fsys, "/p", DefaultConfig(), clock)
	for i := 0; i < 5; i++ {
		mustAppend(t, l, plainBatch(fmt.Sprint(i), 2, 1), OriginClient)
	}
	l.Close()
	seg := "/p/" + fileName(0, logSuffix)
	data, _ := fsys.fileData(seg)
	good := len(data)
	garbage := []struct {
		name string
		tail []byte
	}{
		{"short header", []byte{0, 0, 0}},
		{"length past EOF", plainBatch("x", 2, 1)[:40]},
		{"bad crc", func() []byte {
			b := plainBatch("x", 2, 1)
			binary_put(b, 10)
			b[len(b)-1] ^= 1
			return b
		}()},
		{"wrong magic", func() []byte { b := plainBatch("x", 2, 1); binary_put(b, 10); b[offMagic] = 1; return b }()},
		{"offset going back", func() []byte { b := plainBatch("x", 2, 1); binary_put(b, 3); return b }()},
		{"random", func() []byte {
			b := make([]byte, 300)
			for i := range b {
				b[i] = byte(i * 7)
			}
			return b
		}()},
	}
	for _, g := range garbage {
		t.Run(g.name, func(t *testing.T) {
			if err := fsys.setFileData(seg, append(slices.Clone(data[:good]), g.tail...)); err != nil {
				t.Fatal(err)
			}
			l := openTestLog(t, fsys, "/p", DefaultConfig(), clock)
			defer l.Close()
			if l.LogEndOffset() != 10 {
				t.Fatalf("LEO %d after torn tail", l.LogEndOffset())
			}
			got := readAllRecords(t, l, 0, l.HighWatermark())
			if len(got) != 10 || string(got[9].Value) != "4-1" {
				t.Fatalf("read %d records", len(got))
			}
			after, _ := fsys.fileData(seg)
			if len(after) != good {
				t.Fatalf("segment is %d bytes, want %d", len(after), good)
			}
			mustAppend(t, l, plainBatch("new", 1, 1), OriginClient)
		})
		// Restore the original five batches for the next case.
		fsys.setFileData(seg, data[:good])
	}
}

// binary_put sets the base offset of a batch (outside the CRC).
func binary_put(b []byte, off int64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(uint64(off) >> (56 - 8*i))
	}
}

// TestRecoveryAtEveryTruncation cuts a small log at every byte, and also
// overwrites each byte with garbage, then recovers: the result must be the
// batches entirely before the damage.
func TestRecoveryAtEveryTruncation(t *testing.T) {
	src := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 64
	l := openTestLog(t, src, "/p", cfg, clock)
	var ends []int // byte end of each batch
	for i := 0; i < 6; i++ {
		mustAppend(t, l, plainBatch(fmt.Sprint(i), 1+i%2, int64(i)), OriginClient)
		ends = append(ends, int(l.Size()))
	}
	l.Close()
	data, _ := src.fileData("/p/" + fileName(0, logSuffix))
	offsetsBefore := func(n int) int64 { // records in batches ending at or before n
		var off int64
		for i, e := range ends {
			if e <= n {
				off += int64(1 + i%2)
			}
		}
		return off
	}
	check := func(name string, content []byte, want int64) {
		fsys := newCrashFS()
		if err := fsys.setFileData("/p/"+fileName(0, logSuffix), content); err != nil {
			t.Fatal(err)
		}
		l, err := Open(fsys, "/p", cfg, Options{Now: clock.Now, Logger: testOptions(t, clock).Logger.With("case", name)})
		if err != nil {
			t.Fatalf("%s: Open: %v", name, err)
		}
		defer l.Close()
		if l.LogEndOffset() != want {
			t.Fatalf("%s: LEO %d, want %d", name, l.LogEndOffset(), want)
		}
		if want > 0 {
			got := readAllRecords(t, l, 0, want)
			if int64(len(got)) != want {
				t.Fatalf("%s: read %d records", name, len(got))
			}
		}
		mustAppend(t, l, plainBatch("after", 1, 1), OriginClient)
	}
	for n := 0; n <= len(data); n++ {
		check(fmt.Sprint("cut at ", n), data[:n], offsetsBefore(n))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < len(data); n++ {
		damaged := slices.Clone(data)
		damaged[n] ^= byte(1 + rng.IntN(255))
		// Damage within the CRC-covered part of batch i (from the magic
		// on) loses batch i and everything after. The base offset, length
		// and leader epoch are outside the CRC: damage there may go
		// unnoticed or cut earlier, but never loses the batches before.
		i := 0
		for ends[i] <= n {
			i++
		}
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		fsys := newCrashFS()
		fsys.setFileData("/p/"+fileName(0, logSuffix), damaged)
		l, err := Open(fsys, "/p", cfg, testOptions(t, clock))
		if err != nil {
			t.Fatalf("garbage at %d: Open: %v", n, err)
		}
		leo := l.LogEndOffset()
		if pos := n - start; pos >= offMagic && leo != offsetsBefore(start) {
			t.Fatalf("garbage at %d (batch %d, byte %d): LEO %d, want %d", n, i, pos, leo, offsetsBefore(start))
		}
		if leo < offsetsBefore(start) {
			t.Fatalf("garbage at %d: LEO %d lost batches before the damage", n, leo)
		}
		if leo > 0 {
			readAllRecords(t, l, 0, leo)
		}
		l.Close()
	}
}

// TestCrashFsyncAlways: with FsyncAlways every acknowledged batch survives a
// power loss at any point, across rolls and retention.
func TestCrashFsyncAlways(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	cfg.Fsync = FsyncPolicy{Mode: FsyncAlways}
	cfg.SegmentBytes = 1000
	cfg.RetentionBytes = 3000
	cfg.IndexIntervalBytes = 100
	rng := rand.New(rand.NewPCG(3, 4))
	var acked []string // values by offset
	for round := 0; round < 15; round++ {
		l := openTestLog(t, fsys, "/p", cfg, clock)
		if l.LogEndOffset() != int64(len(acked)) {
			t.Fatalf("round %d: LEO %d, acknowledged %d", round, l.LogEndOffset(), len(acked))
		}
		if l.HighWatermark() != l.LogEndOffset() {
			t.Fatalf("round %d: HW %d LEO %d", round, l.HighWatermark(), l.LogEndOffset())
		}
		start := l.LogStartOffset()
		got := readAllRecords(t, l, start, l.HighWatermark())
		for i, r := range got {
			if want := acked[start+int64(i)]; string(r.Value) != want {
				t.Fatalf("round %d: offset %d = %q, want %q", round, r.Offset, r.Value, want)
			}
		}
		// Concurrent appenders; all acknowledged ones must survive.
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := 0; w < 3; w++ {
			n := rng.IntN(10)
			wg.Add(1)
			go func(w, n int) {
				defer wg.Done()
				for i := 0; i < n; i++ {
					v := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					b := EncodeBatch([]Record{{Timestamp: int64(i), Value: []byte(v)}}, -1, -1, -1)
					mu.Lock() // keep acked ordered by offset
					res, err := l.Append(b, OriginClient, int32(round))
					if err == nil {
						for int64(len(acked)) <= res.BaseOffset {
							acked = append(acked, "")
						}
						acked[res.BaseOffset] = v
					}
					mu.Unlock()
					if err != nil {
						t.Errorf("append: %v", err)
						return
					}
					if hw := l.HighWatermark(); hw <= res.LastOffset {
						t.Errorf("append of offset %d returned with HW %d", res.LastOffset, hw)
					}
				}
			}(w, n)
		}
		wg.Wait()
		if round%3 == 0 {
			if _, err := l.EnforceRetention(); err != nil {
				t.Fatal(err)
			}
		}
		if round%4 == 1 {
			l.Close()
		} else {
			fsys.Crash()
		}
	}
}

// TestCrashFsyncNever: without fsync, a crash may lose any un-synced suffix
// (with torn pages), but recovery succeeds and yields a prefix of what was
// appended, including everything up to the last Sync.
func TestCrashFsyncNever(t *testing.T) {
	clock := newTestClock()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 700
	cfg.IndexIntervalBytes = 64
	for seed := uint64(0); seed < 30; seed++ {
		fsys := newCrashFS()
		rng := rand.New(rand.NewPCG(seed, 99))
		var appended []string
		synced := 0
		for round := 0; round < 4; round++ {
			l := openTestLog(t, fsys, "/p", cfg, clock)
			leo := int(l.LogEndOffset())
			if leo < synced || leo > len(appended) {
				t.Fatalf("seed %d round %d: LEO %d, synced %d, appended %d", seed, round, leo, synced, len(appended))
			}
			got := readAllRecords(t, l, 0, int64(leo))
			for i, r := range got {
				if string(r.Value) != appended[i] {
					t.Fatalf("seed %d round %d: offset %d = %q, want %q", seed, round, i, r.Value, appended[i])
				}
			}
			appended = appended[:leo]
			n := 1 + rng.IntN(20)
			for i := 0; i < n; i++ {
				v := fmt.Sprintf("s%d-r%d-%d", seed, round, i)
				b := EncodeBatch([]Record{{Value: []byte(v)}}, int64(seed), 0, -1)
				if _, err := l.Append(b, OriginClient, 0); err != nil {
					t.Fatal(err)
				}
				appended = append(appended, v)
				if rng.IntN(8) == 0 {
					if err := l.Sync(); err != nil {
						t.Fatal(err)
					}
					synced = len(appended)
				}
			}
			fsys.CrashTorn(rng)
		}
	}
}

func TestLeftoverFilesRemoved(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	l := openTestLog(t, fsys, "/p", DefaultConfig(), clock)
	mustAppend(t, l, plainBatch("x", 1, 1), OriginClient)
	l.Close()
	for _, name := range []string{"foo.tmp", fileName(5, logSuffix) + deletedSuffix, fileName(7, indexSuffix)} {
		fsys.setFileData("/p/"+name, []byte("junk"))
	}
	l = openTestLog(t, fsys, "/p", DefaultConfig(), clock)
	defer l.Close()
	for _, n := range fileNames(t, fsys, "/p") {
		if strings.HasSuffix(n, ".tmp") || strings.HasSuffix(n, deletedSuffix) || strings.HasPrefix(n, fileName(7, "")) {
			t.Fatalf("leftover %s not removed", n)
		}
	}
	if got := readAllRecords(t, l, 0, 1); len(got) != 1 || !bytes.Equal(got[0].Value, []byte("x-0")) {
		t.Fatalf("read %v", got)
	}
}
