package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Special ListOffsets timestamps.
const (
	listLatest   = -1
	listEarliest = -2
)

// ListOffsets: v0–v6 (v7 adds the max-timestamp query, not served).
//
// Timestamp -2 is the log start offset, -1 the end: the high watermark, or
// the last stable offset for read_committed (v2+). Any other timestamp finds
// the earliest offset whose record timestamp is at least it, through the
// partitions' time indexes; none gives offset -1 and timestamp -1. v0
// answers in the old style (a list of at most MaxNumOffsets offsets).
func (b *Broker) handleListOffsets(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ListOffsetsRequest)
	resp := kmsg.NewPtrListOffsetsResponse()
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			b.listOffsets(rt.Topic, req.IsolationLevel == 1, rp, &sp)
			if r.version == 0 && sp.ErrorCode == 0 {
				if rp.MaxNumOffsets > 0 && sp.Offset >= 0 {
					sp.OldStyleOffsets = []int64{sp.Offset}
				} else {
					sp.OldStyleOffsets = []int64{}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) listOffsets(topic string, committed bool, rp kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) {
	p := b.topics.partition(topic, rp.Partition)
	if p == nil {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	}
	l := p.log
	if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, l.LeaderEpoch()); code != 0 {
		sp.ErrorCode = code
		return
	}
	sp.LeaderEpoch = l.LeaderEpoch()
	sp.Timestamp = -1
	switch rp.Timestamp {
	case listEarliest:
		sp.Offset = l.LogStartOffset()
	case listLatest:
		sp.Offset = l.HighWatermark()
		if committed {
			sp.Offset = l.LastStableOffset()
		}
	default:
		if rp.Timestamp < 0 {
			sp.ErrorCode = kerr.UnsupportedVersion.Code
			return
		}
		off, ts, found, err := l.OffsetForTimestamp(rp.Timestamp)
		switch {
		case err != nil:
			sp.ErrorCode = logErrorCode(err)
			b.log.Error("list offsets by timestamp failed", "topic", topic, "partition", rp.Partition, "timestamp", rp.Timestamp, "err", err)
		case !found:
			sp.Offset = -1
		default:
			sp.Offset, sp.Timestamp = off, ts
		}
	}
}
