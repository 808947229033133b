package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/storage"
)

// memFile is a read-only storage.File over a byte slice.
type memFile struct{ b []byte }

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(f.b)) {
		return 0, io.EOF
	}
	n := copy(p, f.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (f *memFile) Write(p []byte) (int, error) { return 0, fmt.Errorf("read-only") }
func (f *memFile) Sync() error                 { return nil }
func (f *memFile) Truncate(int64) error        { return fmt.Errorf("read-only") }
func (f *memFile) Size() (int64, error)        { return int64(len(f.b)), nil }
func (f *memFile) Close() error                { return nil }

// TestFetchFrameMatchesKmsg frames a Fetch response by hand for every served
// version and compares it byte for byte with kmsg's encoding of the same
// response: error and success partitions, several topics, records split
// across chunks, a read_committed partition with records and a non-empty
// aborted-transaction list (as readFetch builds it), null and empty lists,
// empty records.
func TestFetchFrameMatchesKmsg(t *testing.T) {
	file := &memFile{b: bytes.Repeat([]byte("0123456789abcdef"), 300)}
	chunks := []storage.Chunk{{File: file, Pos: 5, Len: 1000}, {File: file, Pos: 2000, Len: 777}}
	var records []byte
	for _, ch := range chunks {
		records = append(records, file.b[ch.Pos:ch.Pos+ch.Len]...)
	}
	b := &Broker{apis: (&Broker{}).servedAPIs()}
	fetch := b.apis[kmsg.Fetch.Int16()]
	for v := fetch.min; v <= fetch.max; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			ours := &fetchResponse{version: v, throttle: 7, errorCode: 0, sessionID: 0, topics: []fetchTopic{
				{name: "orders", partitions: []fetchPartition{
					{index: 0, highWatermark: 100, lastStableOffset: 90, logStartOffset: 3, preferredReplica: -1,
						aborted: []abortedTxn{{producerID: 7, firstOffset: 40}, {producerID: 1 << 40, firstOffset: 95}},
						read:    storage.ReadResult{Chunks: chunks, Bytes: int64(len(records))}},
					{index: 1, errorCode: 1, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, preferredReplica: -1},
				}},
				{name: "t2", partitions: []fetchPartition{
					{index: 4, highWatermark: 5, lastStableOffset: 5, logStartOffset: 0, preferredReplica: -1,
						aborted: []abortedTxn{}},
				}},
			}}
			framed, splices := frameFetch(nil, 42, ours)
			var got bytes.Buffer
			if err := writeFramed(&got, framed, splices); err != nil {
				t.Fatal(err)
			}

			want := kmsg.NewPtrFetchResponse()
			want.Version = v
			want.ThrottleMillis = 7
			t1 := kmsg.NewFetchResponseTopic()
			t1.Topic = "orders"
			p0 := kmsg.NewFetchResponseTopicPartition()
			p0.Partition, p0.HighWatermark, p0.LastStableOffset, p0.LogStartOffset = 0, 100, 90, 3
			for _, a := range []abortedTxn{{7, 40}, {1 << 40, 95}} {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.producerID, a.firstOffset
				p0.AbortedTransactions = append(p0.AbortedTransactions, at)
			}
			p0.RecordBatches = records
			p1 := kmsg.NewFetchResponseTopicPartition()
			p1.Partition, p1.ErrorCode, p1.HighWatermark, p1.LastStableOffset, p1.LogStartOffset = 1, 1, -1, -1, -1
			p1.AbortedTransactions = nil
			p1.RecordBatches = []byte{}
			t1.Partitions = []kmsg.FetchResponseTopicPartition{p0, p1}
			t2 := kmsg.NewFetchResponseTopic()
			t2.Topic = "t2"
			p4 := kmsg.NewFetchResponseTopicPartition()
			p4.Partition, p4.HighWatermark, p4.LastStableOffset, p4.LogStartOffset = 4, 5, 5, 0
			p4.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			p4.RecordBatches = []byte{}
			t2.Partitions = []kmsg.FetchResponseTopicPartition{p4}
			want.Topics = []kmsg.FetchResponseTopic{t1, t2}

			exp := []byte{0, 0, 0, 0}
			exp = binary.BigEndian.AppendUint32(exp, 42)
			if want.IsFlexible() {
				exp = append(exp, 0)
			}
			exp = want.AppendTo(exp)
			binary.BigEndian.PutUint32(exp, uint32(len(exp)-4))
			if !bytes.Equal(got.Bytes(), exp) {
				t.Fatalf("v%d: hand-framed response differs from kmsg's\n got %x\nwant %x", v, got.Bytes(), exp)
			}
			// And kmsg reads ours back.
			back := kmsg.NewPtrFetchResponse()
			back.Version = v
			body := got.Bytes()[8:]
			if want.IsFlexible() {
				body = body[1:]
			}
			if err := back.ReadFrom(body); err != nil {
				t.Fatalf("kmsg cannot read our v%d response: %v", v, err)
			}
			if !bytes.Equal(back.Topics[0].Partitions[0].RecordBatches, records) {
				t.Fatalf("records differ after decoding")
			}
			if at := back.Topics[0].Partitions[0].AbortedTransactions; len(at) != 2 || at[1].ProducerID != 1<<40 || at[1].FirstOffset != 95 {
				t.Fatalf("aborted transactions after decoding: %+v", at)
			}
		})
	}
}
