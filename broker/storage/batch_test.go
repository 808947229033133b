package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestEncodeDecodeRecords(t *testing.T) {
	recs := []Record{
		{Timestamp: 100, Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "h", Value: []byte("hv")}, {Key: "n"}}},
		{Timestamp: 90, Key: nil, Value: nil},
		{Timestamp: 150, Key: []byte{}, Value: bytes.Repeat([]byte("x"), 300)},
	}
	b := EncodeBatch(recs, 42, 3, 7)
	h, err := ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Size() != int64(len(b)) || h.NumRecords != 3 || h.LastOffsetDelta != 2 || h.FirstTimestamp != 100 ||
		h.MaxTimestamp != 150 || h.ProducerID != 42 || h.ProducerEpoch != 3 || h.BaseSequence != 7 || h.CRC != batchCRC(b) {
		t.Fatalf("header %+v", h)
	}
	// kmsg agrees with our encoding.
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(b); err != nil {
		t.Fatalf("kmsg: %v", err)
	}
	if kb.NumRecords != 3 || kb.CRC != int32(h.CRC) {
		t.Fatalf("kmsg batch %+v", kb)
	}
	binary.BigEndian.PutUint64(b, 1000)
	got, err := DecodeRecords(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		w := recs[i]
		if r.Offset != 1000+int64(i) || r.Timestamp != w.Timestamp || !bytes.Equal(r.Key, w.Key) || (r.Key == nil) != (w.Key == nil) ||
			!bytes.Equal(r.Value, w.Value) || (r.Value == nil) != (w.Value == nil) || len(r.Headers) != len(w.Headers) {
			t.Fatalf("record %d: %+v, want %+v", i, r, w)
		}
		for j := range r.Headers {
			if r.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(r.Headers[j].Value, w.Headers[j].Value) || (r.Headers[j].Value == nil) != (w.Headers[j].Value == nil) {
				t.Fatalf("header %d.%d: %+v", i, j, r.Headers[j])
			}
		}
	}
}

func TestSplitBatches(t *testing.T) {
	a, b := plainBatch("a", 2, 1), plainBatch("b", 3, 1)
	all := append(append([]byte(nil), a...), b...)
	got, err := SplitBatches(all)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
		t.Fatalf("split: %v, %d batches", err, len(got))
	}
	// Every cut inside the second batch is a partial batch.
	for n := 1; n < len(b); n++ {
		got, err := SplitBatches(all[:len(a)+n])
		wantErr(t, err, ErrCorruptMessage)
		if len(got) != 1 {
			t.Fatalf("cut at %d: %d whole batches", n, len(got))
		}
	}
	if got, err := SplitBatches(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
}

// compressBatch re-encodes an uncompressed batch with codec.
func compressBatch(t testing.TB, b []byte, codec int) []byte {
	t.Helper()
	body := b[BatchHeaderSize:]
	var out bytes.Buffer
	switch codec {
	case CompressionGzip:
		w := gzip.NewWriter(&out)
		w.Write(body)
		w.Close()
	case CompressionSnappy:
		out.Write(snappy.Encode(nil, body))
	case -CompressionSnappy: // xerial framing, two blocks
		out.Write(xerialMagic)
		out.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
		half := len(body) / 2
		for _, part := range [][]byte{body[:half], body[half:]} {
			blk := snappy.Encode(nil, part)
			binary.Write(&out, binary.BigEndian, uint32(len(blk)))
			out.Write(blk)
		}
		codec = CompressionSnappy
	case CompressionLZ4:
		w := lz4.NewWriter(&out)
		w.Write(body)
		w.Close()
	case CompressionZstd:
		enc, _ := zstd.NewWriter(nil)
		out.Write(enc.EncodeAll(body, nil))
		enc.Close()
	}
	nb := append(append([]byte(nil), b[:BatchHeaderSize]...), out.Bytes()...)
	binary.BigEndian.PutUint32(nb[offLength:], uint32(len(nb)-batchLengthOverhead))
	binary.BigEndian.PutUint16(nb[offAttributes:], binary.BigEndian.Uint16(nb[offAttributes:])|uint16(codec))
	binary.BigEndian.PutUint32(nb[offCRC:], batchCRC(nb))
	return nb
}

func TestDecodeCompressed(t *testing.T) {
	recs := records("c", 50, 5000)
	plain := EncodeBatch(recs, -1, -1, -1)
	for _, codec := range []int{CompressionGzip, CompressionSnappy, -CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			got, err := DecodeRecords(compressBatch(t, plain, codec))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(recs) {
				t.Fatalf("%d records", len(got))
			}
			for i := range got {
				if !bytes.Equal(got[i].Value, recs[i].Value) || got[i].Timestamp != recs[i].Timestamp || got[i].Offset != int64(i) {
					t.Fatalf("record %d: %+v", i, got[i])
				}
			}
		})
	}
	bad := compressBatch(t, plain, CompressionZstd)
	bad[len(bad)-3] ^= 0xff
	if _, err := DecodeRecords(bad); err == nil {
		t.Fatal("corrupt zstd body decoded")
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	fsys := newCrashFS()
	clock := newTestClock()
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 100
	cfg.SegmentBytes = 2000
	l := openTestLog(t, fsys, "/p", cfg, clock)
	defer l.Close()
	// Batch i holds 10 records with timestamps 1000*i + 10*j (j = 0..9)
	// and alternates codecs; record timestamps within a batch are not
	// sorted in batch 3.
	codecs := []int{CompressionNone, CompressionGzip, -CompressionSnappy, CompressionNone, CompressionLZ4, CompressionZstd, CompressionSnappy}
	for i := 0; i < 14; i++ {
		recs := records(fmt.Sprint(i), 10, int64(1000*i))
		for j := range recs {
			recs[j].Timestamp = int64(1000*i + 10*j)
		}
		if i == 3 {
			recs[0].Timestamp, recs[5].Timestamp = recs[5].Timestamp, recs[0].Timestamp
		}
		b := EncodeBatch(recs, -1, -1, -1)
		if c := codecs[i%len(codecs)]; c != CompressionNone {
			b = compressBatch(t, b, c)
		}
		mustAppend(t, l, b, OriginClient)
	}
	if len(l.segs) < 2 {
		t.Fatalf("want several segments, have %d", len(l.segs))
	}
	cases := []struct {
		ts, off, gotTS int64
		found          bool
	}{
		{0, 0, 0, true},
		{5, 1, 10, true},
		{1000, 10, 1000, true},
		{1001, 11, 1010, true},
		{2095, 30, 3050, true}, // batch 3 starts with its ts-3050 record
		{3000, 30, 3050, true},
		{3051, 36, 3060, true},
		{6085, 69, 6090, true},
		{13090, 139, 13090, true},
		{13091, -1, -1, false},
	}
	for _, c := range cases {
		off, ts, found, err := l.OffsetForTimestamp(c.ts)
		if err != nil {
			t.Fatal(err)
		}
		if off != c.off || ts != c.gotTS || found != c.found {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", c.ts, off, ts, found, c.off, c.gotTS, c.found)
		}
	}
}
