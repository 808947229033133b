package broker

import (
	"encoding/binary"
	"io"

	"github.com/tributary/tributary/broker/storage"
)

// The Fetch response is the one response not encoded by kmsg: it is framed
// here around the partition logs' file chunks, so that the records go from
// the page cache to the socket with sendfile(2) instead of being copied
// through user space. fetchframe_test.go checks the framing byte for byte
// against kmsg's encoding of the same response for every version served.
//
// Layout (v4–v12; fields by version as in the Kafka protocol):
//
//	throttle_time_ms int32
//	error_code int16, session_id int32                          v7+
//	topics [ topic string | topic_id uuid (v13+, not served)
//	         partitions [ partition int32, error_code int16,
//	                      high_watermark int64, last_stable_offset int64,
//	                      log_start_offset int64                   v5+
//	                      aborted_transactions nullable [producer_id int64, first_offset int64]
//	                      preferred_read_replica int32              v11+
//	                      records nullable bytes ] ]
//
// From v12 (flexible) arrays, strings and bytes are compact (uvarint length
// plus one) and every structure ends with an empty tagged-field section.

// fetchResponse is a Fetch response whose records are file chunks.
type fetchResponse struct {
	version   int16
	throttle  int32
	errorCode int16
	sessionID int32
	topics    []fetchTopic
}

type fetchTopic struct {
	name       string
	partitions []fetchPartition
}

type fetchPartition struct {
	index            int32
	errorCode        int16
	highWatermark    int64
	lastStableOffset int64
	logStartOffset   int64
	aborted          []abortedTxn // nil encodes as a null array
	preferredReplica int32
	read             storage.ReadResult
}

type abortedTxn struct{ producerID, firstOffset int64 }

// splice is a place in a framed response where file chunks go.
type splice struct {
	at     int // offset into the framed buffer
	chunks []storage.Chunk
}

// frameFetch appends the complete response frame — size, correlation ID,
// header tags for flexible versions, body — to dst, leaving the records out:
// they go at the returned splices, in order.
func frameFetch(dst []byte, corrID int32, resp *fetchResponse) ([]byte, []splice) {
	flex := resp.version >= 12
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corrID))
	if flex {
		dst = append(dst, 0) // response header tags
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(resp.throttle))
	if resp.version >= 7 {
		dst = binary.BigEndian.AppendUint16(dst, uint16(resp.errorCode))
		dst = binary.BigEndian.AppendUint32(dst, uint32(resp.sessionID))
	}
	var splices []splice
	var spliced int64
	dst = appendArrayLen(dst, len(resp.topics), flex)
	for i := range resp.topics {
		t := &resp.topics[i]
		dst = appendString(dst, t.name, flex)
		dst = appendArrayLen(dst, len(t.partitions), flex)
		for j := range t.partitions {
			p := &t.partitions[j]
			dst = binary.BigEndian.AppendUint32(dst, uint32(p.index))
			dst = binary.BigEndian.AppendUint16(dst, uint16(p.errorCode))
			dst = binary.BigEndian.AppendUint64(dst, uint64(p.highWatermark))
			dst = binary.BigEndian.AppendUint64(dst, uint64(p.lastStableOffset))
			if resp.version >= 5 {
				dst = binary.BigEndian.AppendUint64(dst, uint64(p.logStartOffset))
			}
			if p.aborted == nil {
				dst = appendNullArrayLen(dst, flex)
			} else {
				dst = appendArrayLen(dst, len(p.aborted), flex)
				for _, a := range p.aborted {
					dst = binary.BigEndian.AppendUint64(dst, uint64(a.producerID))
					dst = binary.BigEndian.AppendUint64(dst, uint64(a.firstOffset))
					if flex {
						dst = append(dst, 0)
					}
				}
			}
			if resp.version >= 11 {
				dst = binary.BigEndian.AppendUint32(dst, uint32(p.preferredReplica))
			}
			n := p.read.Bytes
			if flex {
				dst = binary.AppendUvarint(dst, uint64(n)+1)
			} else {
				dst = binary.BigEndian.AppendUint32(dst, uint32(n))
			}
			if n > 0 {
				splices = append(splices, splice{at: len(dst) - start, chunks: p.read.Chunks})
				spliced += n
			}
			if flex {
				dst = append(dst, 0) // partition tags
			}
		}
		if flex {
			dst = append(dst, 0) // topic tags
		}
	}
	if flex {
		dst = append(dst, 0) // response tags
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(int64(len(dst)-start-4)+spliced))
	return dst, splices
}

func appendArrayLen(dst []byte, n int, flex bool) []byte {
	if flex {
		return binary.AppendUvarint(dst, uint64(n)+1)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

func appendNullArrayLen(dst []byte, flex bool) []byte {
	if flex {
		return append(dst, 0)
	}
	return binary.BigEndian.AppendUint32(dst, 0xffffffff)
}

func appendString(dst []byte, s string, flex bool) []byte {
	if flex {
		dst = binary.AppendUvarint(dst, uint64(len(s))+1)
	} else {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	}
	return append(dst, s...)
}

// writeFramed writes a framed response, copying file chunks in at their
// splices with sendfile when w is a plain TCP connection.
func writeFramed(w io.Writer, buf []byte, splices []splice) error {
	prev := 0
	for _, s := range splices {
		if _, err := w.Write(buf[prev:s.at]); err != nil {
			return err
		}
		prev = s.at
		for _, ch := range s.chunks {
			if err := copyChunk(w, ch); err != nil {
				return err
			}
		}
	}
	_, err := w.Write(buf[prev:])
	return err
}
