package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerID: v0–v4.
//
// Without a transactional ID: a new producer ID, epoch 0, from the broker's
// fsynced counter (storage.ProducerIDAllocator), so IDs are never reissued,
// even after a restart. With one: broker/txn's coordinator, which keeps one
// producer ID per transactional ID and bumps its epoch on every call,
// fencing the previous instance.
func (b *Broker) handleInitProducerID(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.InitProducerIDRequest)
	if req.TransactionalID != nil {
		return b.txns.InitProducerID(c.ctx(), req), nil
	}
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	id, err := b.pids.Next()
	if err != nil {
		b.log.Error("allocating a producer ID failed", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

// OffsetForLeaderEpoch: v0–v4.
//
// For each partition, the largest leader epoch not above the one asked and
// the offset where it ended (the next epoch's start, or the log end offset
// for the current one). CurrentLeaderEpoch (v2+) is checked like Fetch's.
func (b *Broker) handleOffsetForLeaderEpoch(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.OffsetForLeaderEpochRequest)
	resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p := b.topics.partition(rt.Topic, rp.Partition)
			switch {
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, p.log.LeaderEpoch()); code != 0 {
					sp.ErrorCode = code
					break
				}
				sp.LeaderEpoch, sp.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
