package storage

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// idemBatch is an idempotent batch of n records.
func idemBatch(pid int64, epoch int16, seq int32, n int) []byte {
	return EncodeBatch(records("i", n, 1000), pid, epoch, seq)
}

// txnBatch is a transactional batch of n records.
func txnBatch(pid int64, epoch int16, seq int32, n int) []byte {
	return setAttributes(idemBatch(pid, epoch, seq, n), attrTransactional)
}

// controlBatch is a transaction marker (commit or abort) for pid.
func controlBatch(pid int64, epoch int16, commit bool) []byte {
	key := []byte{0, 0, 0, 0}
	if commit {
		key[3] = 1
	}
	b := EncodeBatch([]Record{{Key: key, Value: []byte{0, 0, 0, 0, 0, 0}}}, pid, epoch, -1)
	return setAttributes(b, attrTransactional|attrControl)
}

func setAttributes(b []byte, attrs int16) []byte {
	a := int16(binary.BigEndian.Uint16(b[offAttributes:])) | attrs
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(a))
	binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
	return b
}

func TestIdempotentDedup(t *testing.T) {
	for _, reopen := range []string{"none", "close", "crash"} {
		t.Run(reopen, func(t *testing.T) {
			fsys := newCrashFS()
			clock := newTestClock()
			cfg := DefaultConfig()
			cfg.Fsync = FsyncPolicy{Mode: FsyncAlways}
			l := openTestLog(t, fsys, "/p", cfg, clock)
			first := mustAppend(t, l, idemBatch(7, 0, 0, 3), OriginClient)  // 0-2
			second := mustAppend(t, l, idemBatch(7, 0, 3, 2), OriginClient) // 3-4
			mustAppend(t, l, plainBatch("other", 1, 1), OriginClient)       // 5
			switch reopen {
			case "close":
				l.Close()
				l = openTestLog(t, fsys, "/p", cfg, clock)
			case "crash":
				fsys.Crash()
				l = openTestLog(t, fsys, "/p", cfg, clock)
			}
			defer l.Close()
			for _, c := range []struct {
				seq  int32
				n    int
				want AppendResult
			}{{0, 3, first}, {3, 2, second}} {
				res, err := l.Append(idemBatch(7, 0, c.seq, c.n), OriginClient, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !res.Duplicate || res.BaseOffset != c.want.BaseOffset || res.LastOffset != c.want.LastOffset {
					t.Fatalf("retry of seq %d: %+v, want offsets of %+v", c.seq, res, c.want)
				}
			}
			if l.LogEndOffset() != 6 {
				t.Fatalf("duplicates appended: LEO %d", l.LogEndOffset())
			}
			res := mustAppend(t, l, idemBatch(7, 0, 5, 1), OriginClient)
			if res.Duplicate || res.BaseOffset != 6 {
				t.Fatalf("next batch: %+v", res)
			}
		})
	}
}

func TestDedupOnlyLastFive(t *testing.T) {
	l := openTestLog(t, newCrashFS(), "/p", DefaultConfig(), newTestClock())
	defer l.Close()
	for seq := int32(0); seq < 6; seq++ {
		mustAppend(t, l, idemBatch(1, 0, seq, 1), OriginClient)
	}
	// seq 0 fell out of the window: it is out of order now.
	_, err := l.Append(idemBatch(1, 0, 0, 1), OriginClient, 0)
	wantErr(t, err, ErrOutOfOrderSequence)
	if res, err := l.Append(idemBatch(1, 0, 1, 1), OriginClient, 0); err != nil || !res.Duplicate || res.BaseOffset != 1 {
		t.Fatalf("seq 1: %+v %v", res, err)
	}
}

func TestOutOfOrderSequence(t *testing.T) {
	l := openTestLog(t, newCrashFS(), "/p", DefaultConfig(), newTestClock())
	defer l.Close()
	// Unknown producer: any sequence is accepted.
	mustAppend(t, l, idemBatch(3, 0, 10, 2), OriginClient) // seqs 10-11
	_, err := l.Append(idemBatch(3, 0, 13, 1), OriginClient, 0)
	wantErr(t, err, ErrOutOfOrderSequence)
	_, err = l.Append(idemBatch(3, 0, 11, 2), OriginClient, 0) // overlaps, not identical
	wantErr(t, err, ErrOutOfOrderSequence)
	mustAppend(t, l, idemBatch(3, 0, 12, 1), OriginClient)

	// Wrap after MaxInt32.
	mustAppend(t, l, idemBatch(4, 0, math.MaxInt32-1, 2), OriginClient)
	mustAppend(t, l, idemBatch(4, 0, 0, 1), OriginClient)
	if res, err := l.Append(idemBatch(4, 0, math.MaxInt32-1, 2), OriginClient, 0); err != nil || !res.Duplicate {
		t.Fatalf("wrapped duplicate: %+v %v", res, err)
	}
}

func TestProducerEpochFencing(t *testing.T) {
	l := openTestLog(t, newCrashFS(), "/p", DefaultConfig(), newTestClock())
	defer l.Close()
	mustAppend(t, l, idemBatch(9, 2, 0, 1), OriginClient)
	_, err := l.Append(idemBatch(9, 1, 1, 1), OriginClient, 0)
	wantErr(t, err, ErrInvalidProducerEpoch)
	// A new epoch must start at sequence 0.
	_, err = l.Append(idemBatch(9, 3, 5, 1), OriginClient, 0)
	wantErr(t, err, ErrOutOfOrderSequence)
	mustAppend(t, l, idemBatch(9, 3, 0, 1), OriginClient)
	_, err = l.Append(idemBatch(9, 2, 1, 1), OriginClient, 0)
	wantErr(t, err, ErrInvalidProducerEpoch)
	// Markers from an older epoch are fenced too.
	_, err = l.Append(controlBatch(9, 2, false), OriginCoordinator, 0)
	wantErr(t, err, ErrInvalidProducerEpoch)
	// A coordinator bump of the epoch requires the client to restart at 0.
	mustAppend(t, l, controlBatch(9, 4, false), OriginCoordinator)
	_, err = l.Append(idemBatch(9, 4, 2, 1), OriginClient, 0)
	wantErr(t, err, ErrOutOfOrderSequence)
	mustAppend(t, l, idemBatch(9, 4, 0, 1), OriginClient)
}

func TestTransactionsLastStableOffset(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	l := openTestLog(t, fsys, "/p", cfg, clock)
	mustAppend(t, l, plainBatch("a", 2, 1), OriginClient) // 0-1
	mustAppend(t, l, txnBatch(5, 0, 0, 2), OriginClient)  // 2-3 opens txn of 5
	mustAppend(t, l, txnBatch(5, 0, 2, 1), OriginClient)  // 4
	mustAppend(t, l, plainBatch("b", 1, 1), OriginClient) // 5
	mustAppend(t, l, txnBatch(6, 0, 0, 1), OriginClient)  // 6 opens txn of 6
	if l.HighWatermark() != 7 || l.LastStableOffset() != 2 {
		t.Fatalf("HW %d LSO %d", l.HighWatermark(), l.LastStableOffset())
	}
	res, err := l.Read(0, 1<<20, true, l.LastStableOffset())
	if err != nil {
		t.Fatal(err)
	}
	if res.LastStableOffset != 2 || res.HighWatermark != 7 {
		t.Fatalf("read result %+v", res)
	}
	bs, _ := SplitBatches(chunkBytes(t, res))
	res.Release()
	if len(bs) != 1 {
		t.Fatalf("read to LSO returned %d batches", len(bs))
	}
	changed := l.Changed()
	mustAppend(t, l, controlBatch(5, 0, true), OriginCoordinator) // 7 commits 5
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed by marker")
	}
	if l.LastStableOffset() != 6 {
		t.Fatalf("LSO after commit %d, want 6", l.LastStableOffset())
	}
	// Open transaction state survives a clean reopen and a crash.
	l.Close()
	l = openTestLog(t, fsys, "/p", cfg, clock)
	if l.LastStableOffset() != 6 {
		t.Fatalf("LSO after reopen %d", l.LastStableOffset())
	}
	mustAppend(t, l, plainBatch("c", 1, 1), OriginClient) // 8
	l.Sync()
	fsys.Crash()
	l = openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	if l.LastStableOffset() != 6 || l.HighWatermark() != 9 {
		t.Fatalf("after crash HW %d LSO %d", l.HighWatermark(), l.LastStableOffset())
	}
	mustAppend(t, l, controlBatch(6, 0, false), OriginCoordinator) // 9 aborts 6
	if l.LastStableOffset() != 10 {
		t.Fatalf("LSO after abort %d", l.LastStableOffset())
	}
}

func TestProducerStateAfterRetention(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	one := int64(len(idemBatch(1, 0, 0, 1)))
	cfg.SegmentBytes = one
	cfg.RetentionBytes = one
	l := openTestLog(t, fsys, "/p", cfg, clock)
	for seq := int32(0); seq < 4; seq++ {
		mustAppend(t, l, idemBatch(1, 0, seq, 1), OriginClient)
	}
	if n, err := l.EnforceRetention(); err != nil || n != 3 {
		t.Fatalf("retention %d %v", n, err)
	}
	// Snapshot at the log start survives; older ones are gone.
	names := fileNames(t, fsys, "/p")
	for _, off := range []int64{1, 2} {
		if _, ok := fsys.fileData("/p/" + fileName(off, snapshotSuffix)); ok {
			t.Fatalf("snapshot %d survived: %v", off, names)
		}
	}
	if _, ok := fsys.fileData("/p/" + fileName(3, snapshotSuffix)); !ok {
		t.Fatalf("snapshot at log start removed: %v", names)
	}
	fsys.Crash()
	l = openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	if res, err := l.Append(idemBatch(1, 0, 2, 1), OriginClient, 0); err != nil || !res.Duplicate || res.BaseOffset != 2 {
		t.Fatalf("retry after retention and crash: %+v %v", res, err)
	}
	_, err := l.Append(idemBatch(1, 0, 5, 1), OriginClient, 0)
	wantErr(t, err, ErrOutOfOrderSequence)
}

func TestProducerIDAllocator(t *testing.T) {
	fsys := newCrashFS()
	fsys.MkdirAll("/meta", 0o755)
	seen := map[int64]bool{}
	for round := 0; round < 3; round++ {
		a, err := OpenProducerIDAllocator(fsys, "/meta/producer-ids")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < DefaultProducerIDBlockSize+5; i++ {
			id, err := a.Next()
			if err != nil {
				t.Fatal(err)
			}
			if seen[id] || id < 0 {
				t.Fatalf("round %d: id %d reused or negative", round, id)
			}
			seen[id] = true
		}
		a.Close()
		if _, err := a.Next(); err == nil {
			t.Fatal("Next after Close succeeded")
		}
		if round == 1 {
			fsys.Crash()
		}
	}
	// A corrupt file is refused rather than risking reuse.
	f, _ := fsys.OpenFile("/meta/producer-ids", os.O_RDWR, 0)
	f.Write([]byte("x"))
	f.Close()
	if _, err := OpenProducerIDAllocator(fsys, "/meta/producer-ids"); err == nil {
		t.Fatal("corrupt allocator file accepted")
	}
}

func TestAbortedTransactionIndex(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 400
	l := openTestLog(t, fsys, "/p", cfg, clock)
	mustAppend(t, l, txnBatch(1, 0, 0, 2), OriginClient)           // 0-1
	mustAppend(t, l, txnBatch(2, 0, 0, 1), OriginClient)           // 2
	mustAppend(t, l, controlBatch(1, 0, false), OriginCoordinator) // 3 aborts 1
	mustAppend(t, l, controlBatch(2, 0, true), OriginCoordinator)  // 4 commits 2
	mustAppend(t, l, txnBatch(1, 0, 2, 1), OriginClient)           // 5
	mustAppend(t, l, controlBatch(1, 0, false), OriginCoordinator) // 6 aborts 1
	want := []AbortedTxn{
		{ProducerID: 1, FirstOffset: 0, LastOffset: 3, LastStableOffset: 2},
		{ProducerID: 1, FirstOffset: 5, LastOffset: 6, LastStableOffset: 7},
	}
	check := func(stage string, from, upTo int64, want []AbortedTxn) {
		t.Helper()
		got := l.AbortedTransactions(from, upTo)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: AbortedTransactions(%d, %d) = %+v, want %+v", stage, from, upTo, got, want)
		}
	}
	check("live", 0, 7, want)
	check("live", 4, 7, want[1:])
	check("live", 0, 5, want[:1])
	l.Close()
	l = openTestLog(t, fsys, "/p", cfg, clock)
	check("reopen", 0, 7, want)
	fsys.Crash()
	l = openTestLog(t, fsys, "/p", cfg, clock)
	check("crash", 0, 7, want)
	// Cut the last marker: its entry goes with it.
	l.Close()
	var active string
	for _, n := range fileNames(t, fsys, "/p") {
		if strings.HasSuffix(n, logSuffix) {
			active = "/p/" + n
		}
	}
	data, _ := fsys.fileData(active)
	fsys.setFileData(active, data[:len(data)-1])
	fsys.Remove("/p/" + cleanShutdownName)
	l = openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	if l.LogEndOffset() != 6 {
		t.Fatalf("LEO %d", l.LogEndOffset())
	}
	check("truncated", 0, 7, want[:1])
	if l.LastStableOffset() != 5 {
		t.Fatalf("LSO %d with the reopened transaction", l.LastStableOffset())
	}
}

// Producer state expires by the broker's clock at append time, not by the
// records' timestamps: a mirror keeps the source's old CreateTimes, and its
// retries must still be recognised after a retention run.
func TestProducerExpiryUsesBrokerClock(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	l := openTestLog(t, fsys, "/p", cfg, clock)
	defer func() { l.Close() }()
	old := clock.Now().Add(-48 * time.Hour).UnixMilli()
	batch := func(seq int32) []byte { return EncodeBatch(records("m", 1, old), 9, 0, seq) }
	first := mustAppend(t, l, batch(0), OriginClient)
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if res, err := l.Append(batch(0), OriginClient, 0); err != nil || !res.Duplicate || res.BaseOffset != first.BaseOffset {
		t.Fatalf("retry of a batch with old timestamps after retention: %+v %v", res, err)
	}

	// The snapshot keeps the append time: after a restart the state is
	// still there, and it expires once idle past ProducerIDExpiration.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, fsys, "/p", cfg, clock)
	clock.Advance(cfg.ProducerIDExpiration - time.Minute)
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if res, err := l.Append(batch(0), OriginClient, 0); err != nil || !res.Duplicate {
		t.Fatalf("retry after restart, within expiration: %+v %v", res, err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if res, err := l.Append(batch(0), OriginClient, 0); err != nil || res.Duplicate || res.BaseOffset != 1 {
		t.Fatalf("batch after the producer expired: %+v %v, want a new append at 1", res, err)
	}
}

// A version 1 snapshot (last-batch record timestamp in place of the append
// time) still loads; its producers' expiry clock restarts at the load.
func TestProducerSnapshotV1Loads(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	l := openTestLog(t, fsys, "/p", cfg, clock)
	old := clock.Now().Add(-48 * time.Hour).UnixMilli()
	first := mustAppend(t, l, EncodeBatch(records("m", 2, old), 9, 0, 0), OriginClient)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Rewrite the close snapshot as version 1 wrote it.
	path := "/p/" + fileName(2, snapshotSuffix)
	b, ok := fsys.fileData(path)
	if !ok {
		t.Fatalf("no snapshot at 2: %v", fileNames(t, fsys, "/p"))
	}
	binary.BigEndian.PutUint16(b[4:], snapshotVersionV1)
	binary.BigEndian.PutUint64(b[snapshotHeaderSize+18:], uint64(old))
	binary.BigEndian.PutUint32(b[0:], crc32.Checksum(b[4:], castagnoli))
	if err := fsys.setFileData(path, b); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	res, err := l.Append(EncodeBatch(records("m", 2, old), 9, 0, 0), OriginClient, 0)
	if err != nil || !res.Duplicate || res.BaseOffset != first.BaseOffset {
		t.Fatalf("retry after loading a version 1 snapshot: %+v %v", res, err)
	}
}
