package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// BatchHeaderSize is the size of the fixed header of a v2 record batch.
const BatchHeaderSize = 61

// Byte positions inside a v2 record batch header.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// batchLengthOverhead is the size of the base offset and length
	// fields, which the length field does not count.
	batchLengthOverhead = 12
)

// Attribute bits of a record batch.
const (
	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

// Compression codecs (attributes bits 0-2).
const (
	CompressionNone   = 0
	CompressionGzip   = 1
	CompressionSnappy = 2
	CompressionLZ4    = 3
	CompressionZstd   = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded fixed header of a v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the total size of the batch in bytes.
func (h *BatchHeader) Size() int64 { return int64(h.Length) + batchLengthOverhead }

// LastOffset is the offset of the last record of the batch.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression returns the compression codec (CompressionNone...).
func (h *BatchHeader) Compression() int { return int(h.Attributes & attrCompressionMask) }

// IsTransactional reports the transactional attribute bit.
func (h *BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports the control attribute bit.
func (h *BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// LastSequence is the sequence of the last record, wrapping after MaxInt32.
func (h *BatchHeader) LastSequence() int32 {
	if h.BaseSequence < 0 {
		return -1
	}
	return addSequence(h.BaseSequence, h.LastOffsetDelta)
}

// ParseBatchHeader decodes the first BatchHeaderSize bytes of b. It checks
// only that enough bytes are present and that the magic is 2; it does not
// check the CRC.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("batch header of %d bytes, need %d: %w", len(b), BatchHeaderSize, ErrCorruptMessage)
	}
	h := parseHeader(b)
	if h.Magic != 2 {
		return h, fmt.Errorf("batch magic %d: %w", h.Magic, ErrUnsupportedMagic)
	}
	return h, nil
}

// parseHeader decodes b[:BatchHeaderSize] without checks.
func parseHeader(b []byte) BatchHeader {
	_ = b[BatchHeaderSize-1]
	return BatchHeader{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(binary.BigEndian.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[offNumRecords:])),
	}
}

// batchCRC computes the CRC-32C a v2 batch must carry.
func batchCRC(b []byte) uint32 { return crc32.Checksum(b[offAttributes:], castagnoli) }

// SplitBatches splits b, a concatenation of whole record batches (as in a
// produce request or a fetch response), into its batches. The returned slices
// alias b. A partial batch at the end, or a length field below the minimum,
// is ErrCorruptMessage. It does not check magic or CRC.
func SplitBatches(b []byte) ([][]byte, error) {
	var out [][]byte
	for pos := 0; pos < len(b); {
		rest := b[pos:]
		if len(rest) < batchLengthOverhead {
			return out, fmt.Errorf("partial batch header at byte %d: %w", pos, ErrCorruptMessage)
		}
		length := int32(binary.BigEndian.Uint32(rest[offLength:]))
		if length < BatchHeaderSize-batchLengthOverhead {
			return out, fmt.Errorf("batch length %d at byte %d: %w", length, pos, ErrCorruptMessage)
		}
		size := int(length) + batchLengthOverhead
		if size > len(rest) {
			return out, fmt.Errorf("batch of %d bytes at byte %d, only %d left: %w", size, pos, len(rest), ErrCorruptMessage)
		}
		out = append(out, rest[:size:size])
		pos += size
	}
	return out, nil
}

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record of a batch. A nil Key or Value is null.
type Record struct {
	Offset, Timestamp int64
	Key, Value        []byte
	Headers           []Header
}

// EncodeBatch builds an uncompressed v2 batch of records with CreateTime
// timestamps, base offset 0 and a valid CRC. Record offsets are ignored
// (records get consecutive offset deltas); timestamps are kept. Pass
// producerID -1, producerEpoch -1 and baseSequence -1 for a non-idempotent
// batch.
func EncodeBatch(records []Record, producerID int64, producerEpoch int16, baseSequence int32) []byte {
	var firstTS, maxTS int64 = -1, -1
	if len(records) > 0 {
		firstTS = records[0].Timestamp
		maxTS = firstTS
		for _, r := range records {
			maxTS = max(maxTS, r.Timestamp)
		}
	}
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(records)*32)
	var body []byte
	for i, r := range records {
		b, body = appendRecord(b, body, &r, r.Timestamp-firstTS, int64(i))
	}
	binary.BigEndian.PutUint64(b[offBaseOffset:], 0)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-batchLengthOverhead))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], 0xffffffff)
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], 0)
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(int32(len(records)-1)))
	binary.BigEndian.PutUint64(b[offFirstTimestamp:], uint64(firstTS))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTS))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(producerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(producerEpoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(baseSequence))
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(len(records)))
	binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
	return b
}

// appendRecord appends r to dst in the v2 record format, with its
// timestamp and offset as deltas from the batch's, and returns dst and
// scratch (a buffer reused across calls for the record's body).
func appendRecord(dst, scratch []byte, r *Record, tsDelta, offsetDelta int64) ([]byte, []byte) {
	body := scratch[:0]
	body = append(body, 0) // record attributes
	body = binary.AppendVarint(body, tsDelta)
	body = binary.AppendVarint(body, offsetDelta)
	body = appendVarBytes(body, r.Key)
	body = appendVarBytes(body, r.Value)
	body = binary.AppendVarint(body, int64(len(r.Headers)))
	for _, h := range r.Headers {
		body = binary.AppendVarint(body, int64(len(h.Key)))
		body = append(body, h.Key...)
		body = appendVarBytes(body, h.Value)
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...), body
}

func appendVarBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}

// DecodeRecords decodes every record of a v2 batch, decompressing it if
// needed. Offsets and timestamps are absolute; with the LogAppendTime
// attribute every record carries the batch's MaxTimestamp. Keys, values and
// headers alias batch when it is uncompressed. It checks magic and length but
// not the CRC.
func DecodeRecords(batch []byte) ([]Record, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return nil, err
	}
	if h.Size() != int64(len(batch)) {
		return nil, fmt.Errorf("batch length field %d for %d bytes: %w", h.Length, len(batch), ErrCorruptMessage)
	}
	body, err := decompress(h.Compression(), batch[BatchHeaderSize:])
	if err != nil {
		return nil, fmt.Errorf("decompress batch at offset %d: %w", h.BaseOffset, err)
	}
	n := max(h.NumRecords, 0)
	recs := make([]Record, 0, min(int(n), len(body)/7+1))
	d := recordDecoder{b: body}
	for i := int32(0); i < n; i++ {
		r, err := d.next(&h)
		if err != nil {
			return nil, fmt.Errorf("record %d of batch at offset %d: %w", i, h.BaseOffset, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// recordDecoder walks the records of an uncompressed batch body.
type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("bad varint: %w", ErrCorruptMessage)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) bytes(n int64) []byte {
	if d.err != nil || n < 0 {
		return nil
	}
	if n > int64(len(d.b)) {
		d.err = fmt.Errorf("field of %d bytes past end of record: %w", n, ErrCorruptMessage)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// next decodes one record of the batch described by h.
func (d *recordDecoder) next(h *BatchHeader) (Record, error) {
	length := d.varint()
	if d.err != nil {
		return Record{}, d.err
	}
	if length < 0 || length > int64(len(d.b)) {
		return Record{}, fmt.Errorf("record length %d with %d bytes left: %w", length, len(d.b), ErrCorruptMessage)
	}
	rest := d.b[length:]
	d.b = d.b[:length]
	d.bytes(1) // record attributes, unused
	tsDelta := d.varint()
	offDelta := d.varint()
	r := Record{Offset: h.BaseOffset + offDelta, Timestamp: h.FirstTimestamp + tsDelta}
	if h.Attributes&attrLogAppendTime != 0 {
		r.Timestamp = h.MaxTimestamp
	}
	r.Key = d.bytes(d.varint())
	r.Value = d.bytes(d.varint())
	if nh := d.varint(); nh > 0 && d.err == nil {
		if nh > int64(len(d.b)) {
			return Record{}, fmt.Errorf("%d headers in %d bytes: %w", nh, len(d.b), ErrCorruptMessage)
		}
		r.Headers = make([]Header, 0, nh)
		for j := int64(0); j < nh && d.err == nil; j++ {
			k := d.bytes(d.varint())
			v := d.bytes(d.varint())
			r.Headers = append(r.Headers, Header{Key: string(k), Value: v})
		}
	}
	if d.err != nil {
		return Record{}, d.err
	}
	d.b = rest
	return r, nil
}

// xerialMagic starts a snappy stream in the xerial (snappy-java) framing.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// decompress returns the uncompressed records of a batch body.
func decompress(codec int, b []byte) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return b, nil
	case CompressionGzip:
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w: %w", ErrCorruptMessage, err)
		}
		defer r.Close()
		out, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w: %w", ErrCorruptMessage, err)
		}
		return out, nil
	case CompressionSnappy:
		if !bytes.HasPrefix(b, xerialMagic) {
			out, err := snappy.Decode(nil, b)
			if err != nil {
				return nil, fmt.Errorf("snappy: %w: %w", ErrCorruptMessage, err)
			}
			return out, nil
		}
		// xerial framing: 8-byte magic, 4-byte version, 4-byte compatible
		// version, then blocks of (uint32 length, snappy block).
		if len(b) < 16 {
			return nil, fmt.Errorf("snappy: short xerial header: %w", ErrCorruptMessage)
		}
		var out []byte
		for rest := b[16:]; len(rest) > 0; {
			if len(rest) < 4 {
				return nil, fmt.Errorf("snappy: short xerial block header: %w", ErrCorruptMessage)
			}
			n := binary.BigEndian.Uint32(rest)
			rest = rest[4:]
			if uint64(n) > uint64(len(rest)) {
				return nil, fmt.Errorf("snappy: xerial block of %d bytes, %d left: %w", n, len(rest), ErrCorruptMessage)
			}
			block, err := snappy.Decode(nil, rest[:n])
			if err != nil {
				return nil, fmt.Errorf("snappy: %w: %w", ErrCorruptMessage, err)
			}
			out = append(out, block...)
			rest = rest[n:]
		}
		return out, nil
	case CompressionLZ4:
		out, err := io.ReadAll(lz4.NewReader(bytes.NewReader(b)))
		if err != nil {
			return nil, fmt.Errorf("lz4: %w: %w", ErrCorruptMessage, err)
		}
		return out, nil
	case CompressionZstd:
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer dec.Close()
		out, err := dec.DecodeAll(b, nil)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w: %w", ErrCorruptMessage, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("compression codec %d: %w", codec, ErrCorruptMessage)
}

// addSequence adds delta to a producer sequence, wrapping to 0 after
// MaxInt32 like Kafka.
func addSequence(seq, delta int32) int32 {
	v := int64(seq) + int64(delta)
	if v > 1<<31-1 {
		v -= 1 << 31
	}
	return int32(v)
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
