package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/broker/txn"
)

// Record-batch attribute bits.
const (
	attrTransactional = 1 << 4
	attrControl       = 1 << 5
)

// Produce: v3–v12 (record batch v2 only; v0–v2 carried the old message
// formats).
//
// acks 0, 1 and -1 are accepted (any other value gets INVALID_REQUIRED_ACKS);
// on one node 1 and -1 are the same. Each partition's records are split into
// batches, each checked (CRC-32C, size against max.message.bytes, sequence
// numbers of idempotent producers) and appended by broker/storage. Errors are
// per partition: UNKNOWN_TOPIC_OR_PARTITION, CORRUPT_MESSAGE,
// MESSAGE_TOO_LARGE, UNSUPPORTED_FOR_MESSAGE_FORMAT, OUT_OF_ORDER_SEQUENCE_NUMBER,
// INVALID_PRODUCER_EPOCH, INVALID_TOPIC_EXCEPTION for internal topics. A
// retried batch among its producer's last five is answered with its original
// offset and no error. With acks=0 nothing is answered; an error then
// closes the connection so the client notices, as Kafka does.
//
// Transactional produce (a transactional ID in the request, batches with the
// transactional bit): the producer ID and epoch of the first batch are
// checked against the transaction coordinator (INVALID_PRODUCER_ID_MAPPING,
// INVALID_PRODUCER_EPOCH for a fenced epoch), which holds the transaction
// while the request is appended, and every partition must have been added
// to the open transaction (INVALID_TXN_STATE otherwise). Every batch must be
// transactional and of that producer, and a transactional batch needs a
// transactional ID (INVALID_TXN_STATE). The partition log checks the epoch
// again (INVALID_PRODUCER_EPOCH).
func (b *Broker) handleProduce(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ProduceRequest)
	resp := kmsg.NewPtrProduceResponse()
	badAcks := req.Acks != 0 && req.Acks != 1 && req.Acks != -1
	failed := ""
	var guard *txn.Guard
	var txnCode int16
	var txnProducer storage.BatchHeader
	if req.TransactionID != nil && !badAcks {
		txnProducer, txnCode = firstProducer(req)
		if txnCode == 0 {
			guard, txnCode = b.txns.BeginProduce(*req.TransactionID, txnProducer.ProducerID, txnProducer.ProducerEpoch)
			defer guard.Release()
		}
		if txnCode != 0 {
			c.log.Debug("transactional produce refused", "transactional_id", *req.TransactionID,
				"producer_id", txnProducer.ProducerID, "epoch", txnProducer.ProducerEpoch, "err", kerr.ErrorForCode(txnCode))
		}
	}
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case badAcks:
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
			case txnCode != 0:
				sp.ErrorCode = txnCode
			case guard != nil:
				if sp.ErrorCode = guard.Partition(txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}); sp.ErrorCode == 0 {
					b.producePartition(c, rt.Topic, rp.Partition, rp.Records, &txnProducer, &sp)
				}
			default:
				b.producePartition(c, rt.Topic, rp.Partition, rp.Records, nil, &sp)
			}
			if sp.ErrorCode != 0 && failed == "" {
				failed = fmt.Sprintf("%s-%d: %s", rt.Topic, rp.Partition, kerr.ErrorForCode(sp.ErrorCode))
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		if failed != "" {
			return nil, errCloseConn{"acks=0 produce failed: " + failed}
		}
		return nil, nil
	}
	return resp, nil
}

// firstProducer returns the header of the request's first batch, whose
// producer a transactional request is checked for.
func firstProducer(req *kmsg.ProduceRequest) (storage.BatchHeader, int16) {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			h, err := storage.ParseBatchHeader(rp.Records)
			if err != nil {
				return h, logErrorCode(err)
			}
			if h.Attributes&attrTransactional == 0 || h.ProducerID < 0 {
				return h, kerr.InvalidTxnState.Code
			}
			return h, 0
		}
	}
	return storage.BatchHeader{}, kerr.InvalidRequest.Code
}

// batchAttributesCode checks a batch's control and transactional bits
// against the request: INVALID_RECORD for a control batch from a client,
// INVALID_TXN_STATE for a transactional bit or producer that does not
// match the request's transactional ID.
func batchAttributesCode(h storage.BatchHeader, txnProducer *storage.BatchHeader) int16 {
	switch {
	case h.Attributes&attrControl != 0:
		return kerr.InvalidRecord.Code
	case txnProducer == nil && h.Attributes&attrTransactional != 0,
		txnProducer != nil && (h.Attributes&attrTransactional == 0 || h.ProducerID != txnProducer.ProducerID || h.ProducerEpoch != txnProducer.ProducerEpoch):
		return kerr.InvalidTxnState.Code
	}
	return 0
}

// producePartition appends one partition's records. txnProducer is the
// producer of a transactional request (whose every batch must be
// transactional and of that producer), nil otherwise (no batch may be).
func (b *Broker) producePartition(c *conn, topic string, index int32, records []byte, txnProducer *storage.BatchHeader, sp *kmsg.ProduceResponseTopicPartition) {
	p := b.topics.partition(topic, index)
	if p == nil {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	}
	if p.topic.internal {
		sp.ErrorCode = kerr.InvalidTopicException.Code
		return
	}
	batches, err := storage.SplitBatches(records)
	if err == nil && len(batches) == 0 {
		err = fmt.Errorf("%w: no record batch", storage.ErrCorruptMessage)
	}
	if err != nil {
		sp.ErrorCode = logErrorCode(err)
		c.log.Warn("produce rejected", "topic", topic, "partition", index, "err", err)
		return
	}
	// Check every batch before appending any, so that a request is not
	// half-appended (its client would retry all of it).
	if len(batches) > 1 {
		for _, batch := range batches {
			h, err := storage.ParseBatchHeader(batch)
			if err == nil {
				if code := batchAttributesCode(h, txnProducer); code != 0 {
					sp.ErrorCode = code
					return
				}
				err = p.log.Check(batch)
			}
			if err != nil {
				sp.ErrorCode = logErrorCode(err)
				c.log.Warn("produce rejected", "topic", topic, "partition", index, "err", err)
				return
			}
		}
	}
	epoch := p.log.LeaderEpoch()
	for i, batch := range batches {
		h, err := storage.ParseBatchHeader(batch)
		if err == nil {
			switch batchAttributesCode(h, txnProducer) {
			case kerr.InvalidRecord.Code:
				err = fmt.Errorf("%w: control batches are written by the coordinator only", storage.ErrInvalidRecord)
			case kerr.InvalidTxnState.Code:
				sp.ErrorCode = kerr.InvalidTxnState.Code
				c.log.Warn("produce rejected: transactional bit or producer does not match the request's transactional ID",
					"topic", topic, "partition", index, "producer_id", h.ProducerID, "transactional", h.Attributes&attrTransactional != 0)
				return
			}
		}
		var res storage.AppendResult
		if err == nil {
			res, err = p.log.Append(batch, storage.OriginClient, epoch)
		}
		if err != nil {
			sp.ErrorCode = logErrorCode(err)
			if sp.ErrorCode == kerr.CorruptMessage.Code || sp.ErrorCode == kerr.KafkaStorageError.Code || sp.ErrorCode == kerr.MessageTooLarge.Code {
				c.log.Warn("produce rejected", "topic", topic, "partition", index, "err", err)
			}
			return
		}
		if i == 0 {
			sp.BaseOffset = res.BaseOffset
			sp.LogAppendTime = res.LogAppendTime
		}
		sp.LogStartOffset = res.LogStartOffset
	}
}
