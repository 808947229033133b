package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendAndRead(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	l := openTestLog(t, fsys, "/data/p0", DefaultConfig(), clock)
	defer l.Close()

	var want []string
	for i := 0; i < 10; i++ {
		res := mustAppend(t, l, plainBatch(fmt.Sprint("b", i), 3, 1000), OriginClient)
		if res.BaseOffset != int64(i*3) || res.LastOffset != int64(i*3+2) || res.LogAppendTime != -1 || res.Duplicate {
			t.Fatalf("append %d: %+v", i, res)
		}
		for j := 0; j < 3; j++ {
			want = append(want, fmt.Sprintf("b%d-%d", i, j))
		}
	}
	if l.LogEndOffset() != 30 || l.HighWatermark() != 30 || l.LastStableOffset() != 30 || l.LogStartOffset() != 0 {
		t.Fatalf("LEO %d HW %d LSO %d LSO %d", l.LogEndOffset(), l.HighWatermark(), l.LastStableOffset(), l.LogStartOffset())
	}
	got := readAllRecords(t, l, 0, l.HighWatermark())
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.Offset != int64(i) || string(r.Value) != want[i] {
			t.Fatalf("record %d: offset %d value %q, want %q", i, r.Offset, r.Value, want[i])
		}
	}
	// Reading from the middle of a batch starts with that batch.
	res, err := l.Read(4, 1<<20, true, 30)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ParseBatchHeader(chunkBytes(t, res))
	res.Release()
	if h.BaseOffset != 3 {
		t.Fatalf("read at 4 starts at batch %d, want 3", h.BaseOffset)
	}
	// Offset == upTo: empty, no error. Above LEO: out of range.
	if res, err := l.Read(30, 100, true, 30); err != nil || res.Bytes != 0 {
		t.Fatalf("read at LEO: %v, %d bytes", err, res.Bytes)
	}
	if res, err := l.Read(12, 100, true, 12); err != nil || res.Bytes != 0 {
		t.Fatalf("read at upTo: %v, %d bytes", err, res.Bytes)
	}
	_, err = l.Read(31, 100, true, 30)
	wantErr(t, err, ErrOffsetOutOfRange)
	_, err = l.Read(-1, 100, true, 30)
	wantErr(t, err, ErrOffsetOutOfRange)
	// upTo stops before a batch reaching it.
	res, err = l.Read(0, 1<<20, true, 7)
	if err != nil {
		t.Fatal(err)
	}
	bs, _ := SplitBatches(chunkBytes(t, res))
	res.Release()
	if len(bs) != 2 {
		t.Fatalf("read up to 7 returned %d batches, want 2", len(bs))
	}
}

func TestAppendValidation(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxMessageBytes = 500
	l := openTestLog(t, newCrashFS(), "/p", cfg, newTestClock())
	defer l.Close()

	good := plainBatch("v", 2, 1)
	badCRC := slices.Clone(good)
	badCRC[len(badCRC)-1] ^= 0xff
	_, err := l.Append(badCRC, OriginClient, 0)
	wantErr(t, err, ErrCorruptMessage)

	magic1 := slices.Clone(good)
	magic1[offMagic] = 1
	_, err = l.Append(magic1, OriginClient, 0)
	wantErr(t, err, ErrUnsupportedMagic)

	_, err = l.Append(good[:len(good)-1], OriginClient, 0)
	wantErr(t, err, ErrCorruptMessage)
	_, err = l.Append(good[:30], OriginClient, 0)
	wantErr(t, err, ErrCorruptMessage)

	_, err = l.Append(EncodeBatch(nil, -1, -1, -1), OriginClient, 0)
	wantErr(t, err, ErrInvalidRecord)

	big := EncodeBatch([]Record{{Value: make([]byte, 600)}}, -1, -1, -1)
	_, err = l.Append(big, OriginClient, 0)
	wantErr(t, err, ErrMessageTooLarge)

	ctrl := controlBatch(5, 0, true)
	_, err = l.Append(ctrl, OriginClient, 0)
	wantErr(t, err, ErrInvalidRecord)

	if l.LogEndOffset() != 0 {
		t.Fatalf("rejected batches moved LEO to %d", l.LogEndOffset())
	}
	mustAppend(t, l, good, OriginClient)
}

func TestLogAppendTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TimestampType = LogAppendTime
	clock := newTestClock()
	l := openTestLog(t, newCrashFS(), "/p", cfg, clock)
	defer l.Close()
	res := mustAppend(t, l, plainBatch("v", 3, 5), OriginClient)
	if res.LogAppendTime != clock.Now().UnixMilli() {
		t.Fatalf("LogAppendTime %d, want %d", res.LogAppendTime, clock.Now().UnixMilli())
	}
	r, err := l.Read(0, 1<<20, true, 3)
	if err != nil {
		t.Fatal(err)
	}
	b := chunkBytes(t, r)
	r.Release()
	h, _ := ParseBatchHeader(b)
	if h.Attributes&attrLogAppendTime == 0 || h.MaxTimestamp != res.LogAppendTime || h.FirstTimestamp != res.LogAppendTime {
		t.Fatalf("header %+v", h)
	}
	if batchCRC(b) != h.CRC {
		t.Fatal("CRC not recomputed")
	}
	recs, _ := DecodeRecords(b)
	for _, rec := range recs {
		if rec.Timestamp != res.LogAppendTime {
			t.Fatalf("record timestamp %d", rec.Timestamp)
		}
	}
}

func TestLeaderEpochStampAndEndOffset(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	l := openTestLog(t, fsys, "/p", DefaultConfig(), clock)
	if le, off := l.EndOffsetForEpoch(0); le != -1 || off != -1 {
		t.Fatalf("empty log: %d %d", le, off)
	}
	appendEpoch := func(epoch int32, n int) {
		if _, err := l.Append(plainBatch("e", n, 1), OriginClient, epoch); err != nil {
			t.Fatal(err)
		}
	}
	appendEpoch(1, 2) // 0-1
	appendEpoch(1, 2) // 2-3
	appendEpoch(3, 2) // 4-5
	appendEpoch(5, 2) // 6-7
	check := func(req, wantEpoch int32, wantOff int64) {
		t.Helper()
		if le, off := l.EndOffsetForEpoch(req); le != wantEpoch || off != wantOff {
			t.Fatalf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", req, le, off, wantEpoch, wantOff)
		}
	}
	check(0, 0, 0)
	check(1, 1, 4)
	check(2, 1, 4)
	check(3, 3, 6)
	check(4, 3, 6)
	check(5, 5, 8)
	check(6, -1, -1)
	if l.LeaderEpoch() != 5 {
		t.Fatalf("LeaderEpoch %d", l.LeaderEpoch())
	}
	r, _ := l.Read(4, 1<<20, true, 8)
	h, _ := ParseBatchHeader(chunkBytes(t, r))
	r.Release()
	if h.PartitionLeaderEpoch != 3 {
		t.Fatalf("stamped epoch %d, want 3", h.PartitionLeaderEpoch)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, fsys, "/p", DefaultConfig(), clock)
	check(2, 1, 4)
	check(5, 5, 8)
	l.Close()

	// A torn tail truncates the epoch cache too.
	seg := "/p/" + fileName(0, logSuffix)
	data, _ := fsys.fileData(seg)
	if err := fsys.setFileData(seg, data[:len(data)-1]); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove("/p/" + cleanShutdownName); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, fsys, "/p", DefaultConfig(), clock)
	defer l.Close()
	if l.LogEndOffset() != 6 {
		t.Fatalf("LEO after torn tail %d", l.LogEndOffset())
	}
	check(3, 3, 6)
	check(5, -1, -1)
	if l.LeaderEpoch() != 3 {
		t.Fatalf("LeaderEpoch %d after truncation", l.LeaderEpoch())
	}
}

func TestRollBySizeAndTime(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	one := int64(len(plainBatch("x", 2, 1)))
	cfg.SegmentBytes = 3 * one
	cfg.SegmentMs = time.Hour
	l := openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	for i := 0; i < 7; i++ {
		mustAppend(t, l, plainBatch("x", 2, 1), OriginClient)
	}
	// 3 batches per segment: bases 0, 6, 12.
	var logs []string
	for _, n := range fileNames(t, fsys, "/p") {
		if strings.HasSuffix(n, logSuffix) {
			logs = append(logs, n)
		}
	}
	want := []string{fileName(0, logSuffix), fileName(6, logSuffix), fileName(12, logSuffix)}
	if !slices.Equal(logs, want) {
		t.Fatalf("segments %v, want %v", logs, want)
	}
	if l.Size() != 7*one {
		t.Fatalf("Size %d, want %d", l.Size(), 7*one)
	}
	// Snapshots at each rolled base.
	for _, off := range []int64{6, 12} {
		if _, ok := fsys.fileData("/p/" + fileName(off, snapshotSuffix)); !ok {
			t.Fatalf("no snapshot at %d", off)
		}
	}
	// Roll by time.
	clock.Advance(time.Hour)
	mustAppend(t, l, plainBatch("x", 2, 1), OriginClient)
	if _, ok := fsys.fileData("/p/" + fileName(14, logSuffix)); !ok {
		t.Fatalf("no time roll: %v", fileNames(t, fsys, "/p"))
	}
	if got := readAllRecords(t, l, 0, l.HighWatermark()); len(got) != 16 {
		t.Fatalf("read %d records across segments", len(got))
	}
}

func TestRetentionBySize(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	one := int64(len(plainBatch("x", 2, 1)))
	cfg.SegmentBytes = 2 * one
	cfg.RetentionMs = -1
	cfg.RetentionBytes = 3 * one
	l := openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	for i := 0; i < 9; i++ { // segments of 2 batches: [0,4) [4,8) [8,12) [12,16) [16,18)
		mustAppend(t, l, plainBatch("x", 2, clock.Now().UnixMilli()), OriginClient)
	}
	n, err := l.EnforceRetention()
	if err != nil {
		t.Fatal(err)
	}
	// Total 9 batches; delete while the rest is still >= 3 batches: 3
	// segments (6 batches) go, 3 batches stay.
	if n != 3 || l.LogStartOffset() != 12 || l.Size() != 3*one {
		t.Fatalf("deleted %d, start %d, size %d", n, l.LogStartOffset(), l.Size())
	}
	_, err = l.Read(11, 100, true, l.HighWatermark())
	wantErr(t, err, ErrOffsetOutOfRange)
	if got := readAllRecords(t, l, 12, l.HighWatermark()); len(got) != 6 || got[0].Offset != 12 {
		t.Fatalf("after retention read %d records", len(got))
	}
	for _, name := range fileNames(t, fsys, "/p") {
		if strings.HasPrefix(name, fileName(0, "")) || strings.HasSuffix(name, deletedSuffix) {
			t.Fatalf("file %s survived retention", name)
		}
	}
	// The active segment is never deleted.
	cfg.RetentionBytes = 1
	l.SetConfig(cfg)
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 16 || l.LogEndOffset() != 18 {
		t.Fatalf("start %d end %d", l.LogStartOffset(), l.LogEndOffset())
	}
	// Reopen: start offset persists (segments are gone).
	l.Close()
	l = openTestLog(t, fsys, "/p", cfg, clock)
	if l.LogStartOffset() != 16 || l.LogEndOffset() != 18 {
		t.Fatalf("after reopen start %d end %d", l.LogStartOffset(), l.LogEndOffset())
	}
}

func TestRetentionByTime(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	one := int64(len(plainBatch("x", 2, 1)))
	cfg.SegmentBytes = 2 * one
	cfg.RetentionMs = time.Hour
	l := openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	for i := 0; i < 6; i++ { // segments [0,4) [4,8) [8,12)
		mustAppend(t, l, plainBatch("x", 2, clock.Now().UnixMilli()), OriginClient)
		clock.Advance(20 * time.Minute)
	}
	// Now = T+120m. Segment 0 max ts T+20m, segment 4 T+60m, 8 active.
	if n, err := l.EnforceRetention(); err != nil || n != 1 || l.LogStartOffset() != 4 {
		t.Fatalf("deleted %d (%v), start %d", n, err, l.LogStartOffset())
	}
	clock.Advance(time.Hour)
	if n, err := l.EnforceRetention(); err != nil || n != 1 || l.LogStartOffset() != 8 {
		t.Fatalf("deleted %d (%v), start %d", n, err, l.LogStartOffset())
	}
	clock.Advance(24 * time.Hour)
	if n, err := l.EnforceRetention(); err != nil || n != 0 || l.LogStartOffset() != 8 {
		t.Fatalf("active segment: deleted %d (%v), start %d", n, err, l.LogStartOffset())
	}
	// RetentionMs -1 keeps everything.
	cfg.RetentionMs = -1
	l.SetConfig(cfg)
	mustAppend(t, l, plainBatch("x", 2, 1), OriginClient) // rolls
	mustAppend(t, l, plainBatch("x", 2, 1), OriginClient)
	if n, err := l.EnforceRetention(); err != nil || n != 0 {
		t.Fatalf("forever: deleted %d (%v)", n, err)
	}
}

func TestRetentionWhileReading(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	one := int64(len(plainBatch("x", 2, 1)))
	cfg.SegmentBytes = one
	cfg.RetentionBytes = one
	l := openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	for i := 0; i < 3; i++ {
		mustAppend(t, l, plainBatch("x", 2, 1), OriginClient)
	}
	res, err := l.Read(0, one, false, l.HighWatermark())
	if err != nil || len(res.Chunks) != 1 {
		t.Fatalf("read: %v %+v", err, res)
	}
	if n, err := l.EnforceRetention(); err != nil || n != 2 {
		t.Fatalf("retention deleted %d: %v", n, err)
	}
	// The chunk is still readable while held.
	b := chunkBytes(t, res)
	if h, err := ParseBatchHeader(b); err != nil || h.BaseOffset != 0 {
		t.Fatalf("held chunk: %v %+v", err, h)
	}
	names := fileNames(t, fsys, "/p")
	if !slices.Contains(names, fileName(0, logSuffix)+deletedSuffix) {
		t.Fatalf("held segment file gone early: %v", names)
	}
	res.Release()
	res.Release() // idempotent
	names = fileNames(t, fsys, "/p")
	for _, n := range names {
		if strings.HasSuffix(n, deletedSuffix) {
			t.Fatalf("file %s not removed after release", n)
		}
	}
}

func TestReadMaxBytesMinOneBatch(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 1
	l := openTestLog(t, newCrashFS(), "/p", cfg, newTestClock())
	defer l.Close()
	one := int64(len(plainBatch("x", 2, 1)))
	for i := 0; i < 5; i++ {
		mustAppend(t, l, plainBatch("x", 2, 1), OriginClient)
	}
	cases := []struct {
		offset, maxBytes int64
		minOne           bool
		wantBytes        int64
	}{
		{0, one - 1, true, one},
		{0, one - 1, false, 0},
		{0, one, false, one},
		{0, 2*one + 1, false, 2 * one},
		{3, 2 * one, false, 2 * one},
		{0, 100 * one, false, 5 * one},
		{9, 100 * one, false, one},
	}
	for _, c := range cases {
		res, err := l.Read(c.offset, c.maxBytes, c.minOne, l.HighWatermark())
		if err != nil {
			t.Fatal(err)
		}
		if res.Bytes != c.wantBytes {
			t.Errorf("Read(%d, %d, %v) = %d bytes, want %d", c.offset, c.maxBytes, c.minOne, res.Bytes, c.wantBytes)
		}
		chunkBytes(t, res)
		res.Release()
	}
}

func TestIndexLookup(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 200
	l := openTestLog(t, fsys, "/p", cfg, clock)
	for i := 0; i < 50; i++ {
		mustAppend(t, l, plainBatch(fmt.Sprint(i), 1+i%3, int64(1000+i)), OriginClient)
	}
	check := func() {
		t.Helper()
		seg := l.segs[0]
		if len(seg.entries) < 5 {
			t.Fatalf("only %d index entries", len(seg.entries))
		}
		for _, e := range seg.entries {
			hdr := make([]byte, BatchHeaderSize)
			seg.log.ReadAt(hdr, int64(e.pos))
			if h := parseHeader(hdr); h.BaseOffset != int64(e.rel) {
				t.Fatalf("entry %+v points at batch %d", e, h.BaseOffset)
			}
		}
		for off := int64(0); off < l.LogEndOffset(); off++ {
			res, err := l.Read(off, 1, true, l.LogEndOffset())
			if err != nil {
				t.Fatal(err)
			}
			h, _ := ParseBatchHeader(chunkBytes(t, res))
			res.Release()
			if h.BaseOffset > off || h.LastOffset() < off {
				t.Fatalf("Read(%d) returned batch %d..%d", off, h.BaseOffset, h.LastOffset())
			}
		}
	}
	check()
	entries := slices.Clone(l.segs[0].entries)
	l.Close()
	// Reopen trusts the index; a corrupt index is rebuilt.
	l = openTestLog(t, fsys, "/p", cfg, clock)
	if !slices.Equal(entries, l.segs[0].entries) {
		t.Fatal("index changed across clean reopen")
	}
	check()
	l.Close()
	idx := "/p/" + fileName(0, indexSuffix)
	data, _ := fsys.fileData(idx)
	binary.BigEndian.PutUint32(data[len(data)-4:], 1<<30)
	fsys.setFileData(idx, data)
	l = openTestLog(t, fsys, "/p", cfg, clock)
	if !slices.Equal(entries, l.segs[0].entries) {
		t.Fatalf("corrupt index not rebuilt: %v vs %v", l.segs[0].entries, entries)
	}
	check()
	l.Close()
	fsys.Remove(idx)
	fsys.Remove("/p/" + fileName(0, timeIndexSuffix))
	l = openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	if !slices.Equal(entries, l.segs[0].entries) {
		t.Fatal("missing index not rebuilt")
	}
	check()
}

func TestChanged(t *testing.T) {
	l := openTestLog(t, newCrashFS(), "/p", DefaultConfig(), newTestClock())
	ch := l.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any change")
	default:
	}
	mustAppend(t, l, plainBatch("x", 1, 1), OriginClient)
	select {
	case <-ch:
	default:
		t.Fatal("not closed after append")
	}
	ch = l.Changed()
	l.Close()
	select {
	case <-ch:
	default:
		t.Fatal("not closed after Close")
	}
	_, err := l.Append(plainBatch("x", 1, 1), OriginClient, 0)
	wantErr(t, err, ErrClosed)
}

func TestDelete(t *testing.T) {
	fsys := newCrashFS()
	l := openTestLog(t, fsys, "/d/p", DefaultConfig(), newTestClock())
	mustAppend(t, l, plainBatch("x", 1, 1), OriginClient)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.ReadDir("/d/p"); err == nil {
		t.Fatal("dir still exists")
	}
}

func TestParseFsyncPolicy(t *testing.T) {
	for in, want := range map[string]FsyncPolicy{
		"never":          {Mode: FsyncNever},
		"always":         {Mode: FsyncAlways},
		"interval=100ms": {Mode: FsyncInterval, Interval: 100 * time.Millisecond},
	} {
		got, err := ParseFsyncPolicy(in)
		if err != nil || got != want {
			t.Errorf("ParseFsyncPolicy(%q) = %v, %v", in, got, err)
		}
		if again, _ := ParseFsyncPolicy(got.String()); again != got {
			t.Errorf("round trip of %q: %v", in, again)
		}
	}
	for _, bad := range []string{"sometimes", "interval=", "interval=-1s"} {
		if _, err := ParseFsyncPolicy(bad); err == nil {
			t.Errorf("ParseFsyncPolicy(%q) accepted", bad)
		}
	}
}

func TestSyncLoopMovesRecoveryPoint(t *testing.T) {
	fsys := newCrashFS()
	cfg := DefaultConfig()
	cfg.Fsync = FsyncPolicy{Mode: FsyncInterval, Interval: time.Millisecond}
	l := openTestLog(t, fsys, "/p", cfg, newTestClock())
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.SyncLoop(ctx, 0)
	}()
	defer func() { cancel(); <-done }()
	mustAppend(t, l, plainBatch("x", 3, 1), OriginClient)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := fsys.fileData("/p/" + recoveryPointName)
		if off, ok := decodeOffsetFile(b); ok && off == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("recovery point never reached 3")
		}
		time.Sleep(time.Millisecond) // poll interval, not synchronisation
	}
	// Synced data survives a crash.
	fsys.Crash()
	l2 := openTestLog(t, fsys, "/p", cfg, newTestClock())
	defer l2.Close()
	if l2.LogEndOffset() != 3 {
		t.Fatalf("LEO after crash %d", l2.LogEndOffset())
	}
}

// TestConcurrentAppendReadRetention runs appenders, readers and retention
// together (for the race detector) and checks every read sees whole,
// consecutive batches.
func TestConcurrentAppendReadRetention(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncNever, FsyncAlways} {
		t.Run(FsyncPolicy{Mode: mode}.String(), func(t *testing.T) { testConcurrent(t, mode) })
	}
}

func testConcurrent(t *testing.T, mode FsyncMode) {
	cfg := DefaultConfig()
	cfg.Fsync.Mode = mode
	cfg.SegmentBytes = 2000
	cfg.RetentionBytes = 6000
	cfg.IndexIntervalBytes = 200
	l := openTestLog(t, newCrashFS(), "/p", cfg, newTestClock())
	defer l.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				res, err := l.Append(plainBatch("c", 1+i%4, int64(i)), OriginClient, 0)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				if hw := l.HighWatermark(); hw <= res.LastOffset {
					t.Errorf("append of offset %d returned with HW %d", res.LastOffset, hw)
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start, hw := l.LogStartOffset(), l.HighWatermark()
				res, err := l.Read(start, 3000, true, hw)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention moved the start meanwhile
				}
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				var buf bytes.Buffer
				for _, c := range res.Chunks {
					io.Copy(&buf, io.NewSectionReader(c.File, c.Pos, c.Len))
				}
				res.Release()
				batches, err := SplitBatches(buf.Bytes())
				if err != nil {
					t.Errorf("split: %v", err)
					return
				}
				next := int64(-1)
				for _, b := range batches {
					h, _ := ParseBatchHeader(b)
					if batchCRC(b) != h.CRC || (next >= 0 && h.BaseOffset != next) || h.LastOffset() >= hw {
						t.Errorf("bad batch %+v after %d (hw %d)", h, next, hw)
						return
					}
					next = h.LastOffset() + 1
				}
			}
		}()
	}
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := l.EnforceRetention(); err != nil {
				t.Errorf("retention: %v", err)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()
	if l.LogStartOffset() == 0 {
		t.Fatal("retention never ran")
	}
}

func TestCorruptEpochCheckpointRebuilt(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	l := openTestLog(t, fsys, "/p", DefaultConfig(), clock)
	for i, epoch := range []int32{2, 2, 4, 7} {
		if _, err := l.Append(plainBatch(fmt.Sprint(i), 2, 1), OriginClient, epoch); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	fsys.setFileData("/p/"+epochCheckpointName, []byte("garbage"))
	l = openTestLog(t, fsys, "/p", DefaultConfig(), clock)
	defer l.Close()
	for _, c := range []struct {
		req, epoch int32
		end        int64
	}{{2, 2, 4}, {3, 2, 4}, {4, 4, 6}, {7, 7, 8}, {1, 1, 0}} {
		if e, off := l.EndOffsetForEpoch(c.req); e != c.epoch || off != c.end {
			t.Fatalf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", c.req, e, off, c.epoch, c.end)
		}
	}
}

// A failed fsync fails the log: the bytes it did not make durable are never
// reported durable by a later successful fsync, appends and syncs are refused
// until the log is reopened, and recovery keeps only what was fsynced.
func TestFsyncFailureFailsLog(t *testing.T) {
	errIO := errors.New("injected EIO")
	for _, mode := range []FsyncMode{FsyncAlways, FsyncInterval} {
		t.Run(FsyncPolicy{Mode: mode}.String(), func(t *testing.T) {
			fsys := newCrashFS()
			cfg := DefaultConfig()
			cfg.Fsync = FsyncPolicy{Mode: mode, Interval: time.Hour}
			l := openTestLog(t, fsys, "/p", cfg, newTestClock())
			mustAppend(t, l, plainBatch("a", 2, 1), OriginClient) // 0-1
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}

			fsys.FailSyncs(errIO)
			_, err := l.Append(plainBatch("b", 3, 1), OriginClient, 0) // 2-4, never durable
			if mode == FsyncAlways {
				if !errors.Is(err, errIO) {
					t.Fatalf("append with failing fsync: %v, want the fsync error", err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if err := l.Sync(); !errors.Is(err, errIO) {
					t.Fatalf("sync: %v, want the fsync error", err)
				}
			}
			fsys.FailSyncs(nil) // the disk "recovers": a retried fsync would succeed

			if _, err := l.Append(plainBatch("c", 1, 1), OriginClient, 0); !errors.Is(err, ErrLogFailed) {
				t.Fatalf("append after failed fsync: %v, want ErrLogFailed", err)
			}
			if err := l.Sync(); !errors.Is(err, ErrLogFailed) {
				t.Fatalf("sync after failed fsync: %v, want ErrLogFailed", err)
			}
			if mode == FsyncAlways && l.HighWatermark() != 2 {
				t.Fatalf("high watermark %d moved over un-fsynced data, want 2", l.HighWatermark())
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			fsys.Crash()
			l = openTestLog(t, fsys, "/p", cfg, newTestClock())
			defer l.Close()
			if leo := l.LogEndOffset(); leo != 2 {
				t.Fatalf("log end offset after recovery %d, want 2 (only the fsynced batch)", leo)
			}
			mustAppend(t, l, plainBatch("d", 1, 1), OriginClient)
			if err := l.Sync(); err != nil {
				t.Fatalf("sync after reopen: %v", err)
			}
			if got := readAllRecords(t, l, 0, l.LogEndOffset()); len(got) != 3 || string(got[2].Value) != "d-0" {
				t.Fatalf("records after reopen: %d, want 3 ending with d-0", len(got))
			}
		})
	}
}
