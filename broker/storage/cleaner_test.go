package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// compactConfig is a compacted log with small segments that cleans whenever
// anything is dirty.
func compactConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 250
	cfg.Cleanup = CleanupCompact
	cfg.MinCleanableDirtyRatio = 1e-9
	cfg.DeleteRetention = time.Hour
	return cfg
}

// logModel remembers what was appended at each offset.
type logModel struct {
	byOffset map[int64]Record
	latest   map[string]int64 // key -> offset of its latest record
}

func newLogModel() *logModel {
	return &logModel{byOffset: map[int64]Record{}, latest: map[string]int64{}}
}

// appendKV appends one batch of records (key, value pairs; a "" value is a
// tombstone) with codec and records them in the model. The caller's clock
// gives the timestamps.
func (m *logModel) appendKV(t testing.TB, l *Log, clock *testClock, codec int, kv ...string) AppendResult {
	t.Helper()
	ts := clock.Now().UnixMilli()
	var recs []Record
	for i := 0; i < len(kv); i += 2 {
		r := Record{Timestamp: ts + int64(i), Key: []byte(kv[i]), Headers: []Header{{Key: "h", Value: []byte(kv[i])}}}
		if kv[i+1] != "" {
			r.Value = []byte(kv[i+1])
		}
		recs = append(recs, r)
	}
	b := EncodeBatch(recs, -1, -1, -1)
	if codec != CompressionNone {
		b = compressBatch(t, b, codec)
	}
	res := mustAppend(t, l, b, OriginClient)
	for i, r := range recs {
		r.Offset = res.BaseOffset + int64(i)
		m.byOffset[r.Offset] = r
		m.latest[string(r.Key)] = r.Offset
	}
	return res
}

// readRecords reads and decodes the log from its start to its high
// watermark, checking every batch's CRC. Unlike readAllRecords it does not
// need the test goroutine.
func readRecords(l *Log) ([]Record, error) {
	from, upTo := l.LogStartOffset(), l.HighWatermark()
	var out []Record
	for from < upTo {
		res, err := l.Read(from, 1<<20, true, upTo)
		if err != nil {
			return nil, fmt.Errorf("read %d: %w", from, err)
		}
		var buf bytes.Buffer
		for _, c := range res.Chunks {
			if _, err := io.Copy(&buf, io.NewSectionReader(c.File, c.Pos, c.Len)); err != nil {
				res.Release()
				return nil, fmt.Errorf("read chunk: %w", err)
			}
		}
		res.Release()
		if buf.Len() == 0 {
			return nil, fmt.Errorf("read %d up to %d returned nothing", from, upTo)
		}
		batches, err := SplitBatches(buf.Bytes())
		if err != nil {
			return nil, err
		}
		for _, b := range batches {
			h, err := ParseBatchHeader(b)
			if err != nil {
				return nil, err
			}
			if batchCRC(b) != h.CRC {
				return nil, fmt.Errorf("batch at %d: bad CRC", h.BaseOffset)
			}
			if h.LastOffset() < from {
				return nil, fmt.Errorf("batch %d..%d before %d", h.BaseOffset, h.LastOffset(), from)
			}
			if h.IsControl() {
				from = h.LastOffset() + 1
				continue
			}
			rs, err := DecodeRecords(b)
			if err != nil {
				return nil, err
			}
			for _, r := range rs {
				if r.Offset < from || r.Offset > h.LastOffset() {
					return nil, fmt.Errorf("record offset %d outside batch %d..%d after %d", r.Offset, h.BaseOffset, h.LastOffset(), from)
				}
				out = append(out, r)
			}
			from = h.LastOffset() + 1
		}
	}
	return out, nil
}

// check verifies that recs are records of the model at their offsets, in
// offset order, and that every key's latest record is among them.
func (m *logModel) check(recs []Record) error {
	seen := map[int64]bool{}
	prev := int64(-1)
	for _, r := range recs {
		want, ok := m.byOffset[r.Offset]
		switch {
		case r.Offset <= prev:
			return fmt.Errorf("offset %d after %d", r.Offset, prev)
		case !ok:
			return fmt.Errorf("record at offset %d was never appended", r.Offset)
		case !bytes.Equal(r.Key, want.Key) || !bytes.Equal(r.Value, want.Value) || (r.Value == nil) != (want.Value == nil):
			return fmt.Errorf("offset %d holds %q=%q, appended %q=%q", r.Offset, r.Key, r.Value, want.Key, want.Value)
		case r.Timestamp != want.Timestamp:
			return fmt.Errorf("offset %d has timestamp %d, appended %d", r.Offset, r.Timestamp, want.Timestamp)
		case len(r.Headers) != 1 || !bytes.Equal(r.Headers[0].Value, want.Key):
			return fmt.Errorf("offset %d headers %+v", r.Offset, r.Headers)
		}
		prev = r.Offset
		seen[r.Offset] = true
	}
	for k, off := range m.latest {
		if !seen[off] {
			return fmt.Errorf("latest record of key %q (offset %d) is missing", k, off)
		}
	}
	return nil
}

// checkCompacted verifies that below end every key appears at most once.
func checkCompacted(recs []Record, end int64) error {
	keys := map[string]int64{}
	for _, r := range recs {
		if r.Offset >= end {
			break
		}
		if prev, dup := keys[string(r.Key)]; dup {
			return fmt.Errorf("key %q at offsets %d and %d, both below %d", r.Key, prev, r.Offset, end)
		}
		keys[string(r.Key)] = r.Offset
	}
	return nil
}

func mustClean(t testing.TB, l *Log) CleanStats {
	t.Helper()
	st, err := l.Clean(context.Background())
	if err != nil {
		t.Fatalf("Clean: %v", err)
	}
	return st
}

func mustRead(t testing.TB, l *Log) []Record {
	t.Helper()
	recs, err := readRecords(l)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// fillVersions appends versions of keys k0..k<keys-1>, cycling through the
// codecs, some batches holding several records.
func fillVersions(t testing.TB, m *logModel, l *Log, clock *testClock, keys, versions int) {
	codecs := []int{CompressionNone, CompressionGzip, CompressionNone, CompressionSnappy, CompressionLZ4, CompressionZstd}
	n := 0
	for v := 0; v < versions; v++ {
		for k := 0; k < keys; k++ {
			kv := []string{fmt.Sprintf("k%d", k), fmt.Sprintf("v%d", v)}
			if n%4 == 3 && k+1 < keys {
				k++
				kv = append(kv, fmt.Sprintf("k%d", k), fmt.Sprintf("v%d", v))
			}
			m.appendKV(t, l, clock, codecs[n%len(codecs)], kv...)
			clock.Advance(time.Millisecond)
			n++
		}
	}
}

func activeBase(l *Log) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.segs[len(l.segs)-1].base
}

func TestCleanKeepsLatestValuePerKey(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := compactConfig()
	l := openTestLog(t, fsys, "/p", cfg, clock)
	m := newLogModel()
	fillVersions(t, m, l, clock, 10, 20)
	start, leo, sizeBefore := l.LogStartOffset(), l.LogEndOffset(), l.Size()
	st := mustClean(t, l)
	if st.SegmentsRewritten == 0 || st.RecordsRemoved == 0 || st.CleanedUpTo != activeBase(l) {
		t.Fatalf("stats %+v, active segment at %d", st, activeBase(l))
	}
	verify := func(stage string) {
		t.Helper()
		recs := mustRead(t, l)
		if err := m.check(recs); err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if err := checkCompacted(recs, st.CleanedUpTo); err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if l.LogStartOffset() != start || l.LogEndOffset() != leo {
			t.Fatalf("%s: offsets [%d, %d), want [%d, %d)", stage, l.LogStartOffset(), l.LogEndOffset(), start, leo)
		}
	}
	verify("cleaned")
	if l.Size() >= sizeBefore {
		t.Fatalf("size %d after cleaning, %d before", l.Size(), sizeBefore)
	}
	// Nothing new: the next run does nothing.
	if st := mustClean(t, l); st.SegmentsRewritten != 0 || st.CleanedUpTo != -1 {
		t.Fatalf("second run %+v", st)
	}
	l.Close()
	l = openTestLog(t, fsys, "/p", cfg, clock)
	verify("reopened")
	fsys.Crash()
	l = openTestLog(t, fsys, "/p", cfg, clock)
	verify("crashed")
	if names := strings.Join(fileNames(t, fsys, "/p"), " "); strings.Contains(names, swapSuffix) || strings.Contains(names, cleanedSuffix) {
		t.Fatalf("leftover files: %s", names)
	}

	// More versions, clean again: still one record per key below the
	// active segment, and the timestamps, headers and offsets kept.
	fillVersions(t, m, l, clock, 10, 5)
	leo = l.LogEndOffset()
	st = mustClean(t, l)
	verify("cleaned twice")
	mustAppend(t, l, EncodeBatch([]Record{{Key: []byte("k1"), Value: []byte("x")}}, -1, -1, -1), OriginClient)
	l.Close()
}

func TestCleanRefusesNullKeys(t *testing.T) {
	clock := newTestClock()
	l := openTestLog(t, newCrashFS(), "/p", compactConfig(), clock)
	defer l.Close()
	b := EncodeBatch([]Record{{Key: []byte("a"), Value: []byte("1")}, {Value: []byte("no key")}}, -1, -1, -1)
	_, err := l.Append(b, OriginClient, 0)
	wantErr(t, err, ErrInvalidRecord)
	_, err = l.Append(compressBatch(t, b, CompressionGzip), OriginClient, 0)
	wantErr(t, err, ErrInvalidRecord)
	// Not compacted: accepted.
	cfg := compactConfig()
	cfg.Cleanup = CleanupDelete
	l.SetConfig(cfg)
	mustAppend(t, l, b, OriginClient)
}

func TestCleanTombstones(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := compactConfig()
	l := openTestLog(t, fsys, "/p", cfg, clock)
	m := newLogModel()
	m.appendKV(t, l, clock, CompressionNone, "a", "1", "b", "1")
	m.appendKV(t, l, clock, CompressionNone, "a", "", "c", "1") // tombstone of a
	m.appendKV(t, l, clock, CompressionGzip, "b", "")           // tombstone of b, compressed
	for i := 0; i < 8; i++ {
		m.appendKV(t, l, clock, CompressionNone, "filler", fmt.Sprint(i))
	}
	tombA, tombB := m.latest["a"], m.latest["b"]
	keysAt := func() map[string]int64 {
		out := map[string]int64{}
		for _, r := range mustRead(t, l) {
			if r.Offset < activeBase(l) {
				if r.Value == nil {
					out[string(r.Key)+"-"] = r.Offset
				} else {
					out[string(r.Key)] = r.Offset
				}
			}
		}
		return out
	}
	mustClean(t, l)
	got := keysAt()
	if got["a-"] != tombA || got["b-"] != tombB || got["c"] == 0 {
		t.Fatalf("after first clean: %v, want tombstones of a at %d, b at %d and c", got, tombA, tombB)
	}
	if _, ok := got["a"]; ok {
		t.Fatalf("old value of a kept: %v", got)
	}
	if err := m.check(mustRead(t, l)); err != nil {
		t.Fatal(err)
	}
	// Not due yet, also after a restart (the horizon is in the batch).
	clock.Advance(cfg.DeleteRetention - time.Second)
	mustClean(t, l)
	l.Close()
	l = openTestLog(t, fsys, "/p", cfg, clock)
	mustClean(t, l)
	if got := keysAt(); got["a-"] != tombA || got["b-"] != tombB {
		t.Fatalf("tombstones removed before delete.retention.ms: %v", got)
	}
	clock.Advance(2 * time.Second)
	st := mustClean(t, l)
	got = keysAt()
	if _, ok := got["a-"]; ok {
		t.Fatalf("tombstone of a kept after delete.retention.ms: %v (stats %+v)", got, st)
	}
	if _, ok := got["b-"]; ok {
		t.Fatalf("tombstone of b kept after delete.retention.ms: %v", got)
	}
	if got["c"] == 0 {
		t.Fatalf("c lost: %v", got)
	}
	delete(m.latest, "a")
	delete(m.latest, "b")
	if err := m.check(mustRead(t, l)); err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// txnKV is a transactional batch of one keyed record.
func txnKV(pid int64, seq int32, key, value string, ts int64) []byte {
	b := EncodeBatch([]Record{{Timestamp: ts, Key: []byte(key), Value: []byte(value), Headers: []Header{{Key: "h", Value: []byte(key)}}}}, pid, 0, seq)
	return setAttributes(b, attrTransactional)
}

func TestCleanAbortedTransactions(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := compactConfig()
	l := openTestLog(t, fsys, "/p", cfg, clock)
	m := newLogModel()
	ts := clock.Now().UnixMilli()
	m.appendKV(t, l, clock, CompressionNone, "x", "old")
	aborted := mustAppend(t, l, txnKV(1, 0, "x", "aborted", ts), OriginClient).BaseOffset
	committed := mustAppend(t, l, txnKV(2, 0, "y", "committed", ts), OriginClient).BaseOffset
	abortMarker := mustAppend(t, l, controlBatch(1, 0, false), OriginCoordinator).BaseOffset
	commitMarker := mustAppend(t, l, controlBatch(2, 0, true), OriginCoordinator).BaseOffset
	// Producer 1 goes on, so its aborted batch is not its last one.
	z := mustAppend(t, l, txnKV(1, 1, "z", "later", ts), OriginClient).BaseOffset
	mustAppend(t, l, controlBatch(1, 0, true), OriginCoordinator)
	for i := 0; i < 8; i++ {
		m.appendKV(t, l, clock, CompressionNone, "filler", fmt.Sprint(i))
	}
	m.byOffset[committed] = Record{Offset: committed, Timestamp: ts, Key: []byte("y"), Value: []byte("committed")}
	m.latest["y"] = committed
	m.byOffset[z] = Record{Offset: z, Timestamp: ts, Key: []byte("z"), Value: []byte("later")}
	m.latest["z"] = z
	if l.LastStableOffset() != l.LogEndOffset() {
		t.Fatalf("LSO %d, LEO %d", l.LastStableOffset(), l.LogEndOffset())
	}
	batchesAt := func() map[int64]BatchHeader {
		out := map[int64]BatchHeader{}
		res, err := l.Read(l.LogStartOffset(), 1<<20, true, l.HighWatermark())
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		bs, err := SplitBatches(chunkBytes(t, res))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			h, _ := ParseBatchHeader(b)
			out[h.BaseOffset] = h
		}
		return out
	}
	mustClean(t, l)
	recs := mustRead(t, l)
	if err := m.check(recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Offset == aborted || string(r.Value) == "aborted" {
			t.Fatalf("aborted record still there: %+v", r)
		}
	}
	b := batchesAt()
	if _, ok := b[abortMarker]; !ok {
		t.Fatalf("abort marker removed at once")
	}
	if _, ok := b[commitMarker]; !ok {
		t.Fatalf("commit marker removed")
	}
	if got := l.AbortedTransactions(0, l.LogEndOffset()); len(got) != 1 || got[0].FirstOffset != aborted {
		t.Fatalf("aborted transactions %+v", got)
	}
	clock.Advance(cfg.DeleteRetention + time.Second)
	mustClean(t, l)
	b = batchesAt()
	// Removed, or reduced to an empty header if it ends its segment.
	if h, ok := b[abortMarker]; ok && h.NumRecords != 0 {
		t.Fatalf("abort marker of an emptied transaction kept after delete.retention.ms: %+v", h)
	}
	if _, ok := b[commitMarker]; !ok {
		t.Fatalf("commit marker of a transaction with data removed")
	}
	if err := m.check(mustRead(t, l)); err != nil {
		t.Fatal(err)
	}
	// Recovery replays producer state over the cleaned log.
	l.Close()
	for _, n := range fileNames(t, fsys, "/p") {
		if strings.HasSuffix(n, snapshotSuffix) {
			fsys.Remove("/p/" + n)
		}
	}
	l = openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	if l.LastStableOffset() != l.LogEndOffset() {
		t.Fatalf("after replay: LSO %d, LEO %d", l.LastStableOffset(), l.LogEndOffset())
	}
}

func TestCleanKeepsProducerState(t *testing.T) {
	for _, reopen := range []string{"none", "replay"} {
		t.Run(reopen, func(t *testing.T) {
			fsys := newCrashFS()
			clock := newTestClock()
			cfg := compactConfig()
			l := openTestLog(t, fsys, "/p", cfg, clock)
			ts := clock.Now().UnixMilli()
			kv := func(seq int32, v string) []byte {
				return EncodeBatch([]Record{{Timestamp: ts, Key: []byte("k"), Value: []byte(v)}}, 7, 0, seq)
			}
			var last AppendResult
			for seq := int32(0); seq < 5; seq++ {
				last = mustAppend(t, l, kv(seq, fmt.Sprint(seq)), OriginClient)
			}
			// Another producer supersedes every record of producer 7.
			for i := 0; i < 10; i++ {
				mustAppend(t, l, EncodeBatch([]Record{{Timestamp: ts, Key: []byte("k"), Value: []byte("other")}}, -1, -1, -1), OriginClient)
			}
			mustClean(t, l)
			for _, r := range mustRead(t, l) {
				if r.Offset <= last.LastOffset {
					t.Fatalf("superseded record of producer 7 kept: %+v", r)
				}
			}
			if reopen == "replay" {
				l.Close()
				for _, n := range fileNames(t, fsys, "/p") {
					if strings.HasSuffix(n, snapshotSuffix) {
						fsys.Remove("/p/" + n)
					}
				}
				l = openTestLog(t, fsys, "/p", cfg, clock)
			}
			defer l.Close()
			res, err := l.Append(kv(4, "retry"), OriginClient, 0)
			if err != nil || !res.Duplicate || res.BaseOffset != last.BaseOffset {
				t.Fatalf("retry of the last batch: %+v, %v; want duplicate at %d", res, err, last.BaseOffset)
			}
			_, err = l.Append(kv(9, "gap"), OriginClient, 0)
			wantErr(t, err, ErrOutOfOrderSequence)
			mustAppend(t, l, kv(5, "next"), OriginClient)
		})
	}
}

func TestCleanRetentionPolicies(t *testing.T) {
	clock := newTestClock()
	cfg := compactConfig()
	cfg.RetentionMs = time.Minute
	l := openTestLog(t, newCrashFS(), "/p", cfg, clock)
	defer l.Close()
	m := newLogModel()
	fillVersions(t, m, l, clock, 3, 5)
	clock.Advance(time.Hour)
	if n, err := l.EnforceRetention(); err != nil || n != 0 {
		t.Fatalf("compact only: retention deleted %d segments (%v)", n, err)
	}
	cfg.Cleanup = CleanupCompact | CleanupDelete
	l.SetConfig(cfg)
	if n, err := l.EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("compact,delete: retention deleted %d segments (%v)", n, err)
	}
	mustClean(t, l)
	// Not compacted: Clean does nothing.
	cfg.Cleanup = CleanupDelete
	l.SetConfig(cfg)
	fillVersions(t, m, l, clock, 3, 5)
	if st := mustClean(t, l); st.CleanedUpTo != -1 {
		t.Fatalf("delete policy cleaned: %+v", st)
	}
}

func TestCleanDirtyRatioAndLag(t *testing.T) {
	clock := newTestClock()
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.9
	cfg.MinCompactionLag = time.Hour
	l := openTestLog(t, newCrashFS(), "/p", cfg, clock)
	defer l.Close()
	m := newLogModel()
	fillVersions(t, m, l, clock, 5, 10)
	if st := mustClean(t, l); st.CleanedUpTo != -1 {
		t.Fatalf("cleaned records younger than min.compaction.lag.ms: %+v", st)
	}
	clock.Advance(2 * time.Hour)
	if st := mustClean(t, l); st.SegmentsRewritten == 0 {
		t.Fatalf("nothing cleaned once old enough: %+v", st)
	}
	// A little more dirt is below the 0.9 ratio.
	fillVersions(t, m, l, clock, 5, 1)
	clock.Advance(2 * time.Hour)
	if st := mustClean(t, l); st.CleanedUpTo != -1 {
		t.Fatalf("cleaned below min.cleanable.dirty.ratio: %+v", st)
	}
	if err := m.check(mustRead(t, l)); err != nil {
		t.Fatal(err)
	}
}

// faultFS wraps a crashFS and fails every mutating operation from the
// failAt-th one on, as if the process had died there.
type faultFS struct {
	*crashFS
	mu          sync.Mutex
	ops, failAt int
}

var errInjected = errors.New("injected failure")

func (f *faultFS) step() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops++
	if f.failAt > 0 && f.ops >= f.failAt {
		return errInjected
	}
	return nil
}

func (f *faultFS) failAfter(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAt = f.ops + n
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if flag&(os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_RDWR) != 0 {
		if err := f.step(); err != nil {
			return nil, err
		}
	}
	file, err := f.crashFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) Remove(name string) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.crashFS.Remove(name)
}

func (f *faultFS) Rename(o, n string) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.crashFS.Rename(o, n)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.crashFS.SyncDir(dir)
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.step(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	if err := f.fs.step(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(n int64) error {
	if err := f.fs.step(); err != nil {
		return err
	}
	return f.File.Truncate(n)
}

// TestCleanCrashAtEveryStep kills the cleaner at every mutating file
// operation of a run, then simulates power loss and recovers: the log must
// hold either the old or the cleaned content of each segment (every latest
// value, nothing that was never written, offsets unchanged), and a new run
// must reach exactly the result of an uninterrupted one.
func TestCleanCrashAtEveryStep(t *testing.T) {
	cfg := compactConfig()
	setup := func(fsys FS) (*Log, *logModel, *testClock) {
		clock := newTestClock()
		l := openTestLog(t, fsys, "/p", cfg, clock)
		m := newLogModel()
		fillVersions(t, m, l, clock, 4, 4)
		// A transaction aborted and a tombstone, so every kind of rewrite
		// happens.
		ts := clock.Now().UnixMilli()
		off := mustAppend(t, l, txnKV(3, 0, "k1", "aborted", ts), OriginClient).BaseOffset
		m.byOffset[off] = Record{Offset: off, Timestamp: ts, Key: []byte("k1"), Value: []byte("aborted")}
		mustAppend(t, l, controlBatch(3, 0, false), OriginCoordinator)
		m.appendKV(t, l, clock, CompressionNone, "k2", "")
		fillVersions(t, m, l, clock, 4, 2)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		return l, m, clock
	}
	ref, refModel, _ := setup(newCrashFS())
	mustClean(t, ref)
	want := mustRead(t, ref)
	if err := refModel.check(want); err != nil {
		t.Fatal(err)
	}
	ref.Close()

	for n := 1; ; n++ {
		base := newCrashFS()
		ffs := &faultFS{crashFS: base}
		l, m, clock := setup(ffs)
		leo := l.LogEndOffset()
		ffs.failAfter(n)
		_, err := l.Clean(context.Background())
		if err == nil {
			if n == 1 {
				t.Fatal("no mutating operation in a cleaning run")
			}
			t.Logf("cleaning run has %d mutating operations", n-1)
			return
		}
		if !errors.Is(err, errInjected) {
			t.Fatalf("step %d: %v", n, err)
		}
		base.Crash()
		l2 := openTestLog(t, base, "/p", cfg, clock)
		for _, name := range fileNames(t, base, "/p") {
			if strings.HasSuffix(name, swapSuffix) || strings.HasSuffix(name, cleanedSuffix) {
				t.Fatalf("step %d: leftover %s after recovery", n, name)
			}
		}
		recs, err := readRecords(l2)
		if err != nil {
			t.Fatalf("step %d: %v", n, err)
		}
		if err := m.check(recs); err != nil {
			t.Fatalf("step %d: %v", n, err)
		}
		if l2.LogEndOffset() != leo || l2.LogStartOffset() != 0 {
			t.Fatalf("step %d: offsets [%d, %d), want [0, %d)", n, l2.LogStartOffset(), l2.LogEndOffset(), leo)
		}
		mustClean(t, l2)
		got := mustRead(t, l2)
		if len(got) != len(want) {
			t.Fatalf("step %d: %d records after a new run, want %d", n, len(got), len(want))
		}
		for i := range got {
			if got[i].Offset != want[i].Offset || !bytes.Equal(got[i].Value, want[i].Value) {
				t.Fatalf("step %d: record %d is %d=%q, want %d=%q", n, i, got[i].Offset, got[i].Value, want[i].Offset, want[i].Value)
			}
		}
		l2.Close()
	}
}

func TestCleanerSwapOfDeletedSegmentDropped(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	l := openTestLog(t, fsys, "/p", compactConfig(), clock)
	m := newLogModel()
	fillVersions(t, m, l, clock, 3, 6)
	l.Close()
	// A swap staged for a segment retention deleted meanwhile, and a
	// cleaned file of a run that never committed.
	fsys.setFileData("/p/"+fileName(1_000_000, logSuffix)+swapSuffix, []byte("junk"))
	fsys.setFileData("/p/"+fileName(1_000_000, indexSuffix)+swapSuffix, []byte("junk"))
	fsys.setFileData("/p/"+fileName(0, logSuffix)+cleanedSuffix, []byte("junk"))
	l = openTestLog(t, fsys, "/p", compactConfig(), clock)
	defer l.Close()
	for _, name := range fileNames(t, fsys, "/p") {
		if strings.HasSuffix(name, swapSuffix) || strings.HasSuffix(name, cleanedSuffix) || strings.HasPrefix(name, fileName(1_000_000, "")) {
			t.Fatalf("leftover %s", name)
		}
	}
	if err := m.check(mustRead(t, l)); err != nil {
		t.Fatal(err)
	}
}

// TestCleanConcurrentReads reads the whole log over and over while records
// are appended and the log is cleaned: every read must be consistent.
func TestCleanConcurrentReads(t *testing.T) {
	clock := newTestClock()
	l := openTestLog(t, newCrashFS(), "/p", compactConfig(), clock)
	defer l.Close()
	m := newLogModel()
	fillVersions(t, m, l, clock, 5, 4)

	// The reader checks against a snapshot of the model taken under mu.
	var mu sync.Mutex
	snapshot := func() map[int64]Record {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[int64]Record, len(m.byOffset))
		for k, v := range m.byOffset {
			out[k] = v
		}
		return out
	}
	done := make(chan struct{})
	errc := make(chan error, 2)
	var reads sync.WaitGroup
	for r := 0; r < 2; r++ {
		reads.Add(1)
		go func() {
			defer reads.Done()
			for n := 0; ; n++ {
				select {
				case <-done:
					errc <- nil
					return
				default:
				}
				appended := snapshot()
				recs, err := readRecords(l)
				if err != nil {
					errc <- err
					return
				}
				prev := int64(-1)
				for _, rec := range recs {
					want, ok := appended[rec.Offset]
					if rec.Offset <= prev || (ok && !bytes.Equal(rec.Value, want.Value)) {
						errc <- fmt.Errorf("read %d: offset %d value %q after %d", n, rec.Offset, rec.Value, prev)
						return
					}
					prev = rec.Offset
				}
			}
		}()
	}
	for round := 0; round < 20; round++ {
		mu.Lock()
		fillVersions(t, m, l, clock, 5, 2)
		mu.Unlock()
		mustClean(t, l)
	}
	close(done)
	reads.Wait()
	for i := 0; i < 2; i++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if err := m.check(mustRead(t, l)); err != nil {
		t.Fatal(err)
	}
}

// TestCleanBoundedKeyMap caps the cleaner's key map far below the log's
// distinct keys: each run cleans only the segments it could map, the runs
// together compact the whole log, and no record a later one supersedes
// outside the mapped part is lost.
func TestCleanBoundedKeyMap(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := compactConfig()
	cfg.CleanerMaxKeys = 8
	l := openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	m := newLogModel()
	fillVersions(t, m, l, clock, 40, 4)
	end := activeBase(l)
	first := mustClean(t, l)
	if first.CleanedUpTo < 0 || first.CleanedUpTo >= end {
		t.Fatalf("a run with a full key map cleaned up to %d; want a part below the active segment at %d", first.CleanedUpTo, end)
	}
	if err := m.check(mustRead(t, l)); err != nil {
		t.Fatalf("after the first run: %v", err)
	}
	for runs := 1; ; runs++ {
		st := mustClean(t, l)
		if err := m.check(mustRead(t, l)); err != nil {
			t.Fatalf("after run %d: %v", runs+1, err)
		}
		if st.CleanedUpTo == -1 || st.CleanedUpTo >= end {
			break
		}
		if runs > 100 {
			t.Fatal("the runs never reached the active segment")
		}
	}
}
