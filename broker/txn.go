package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/group"
	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/broker/txn"
)

// TransactionStateTopic is the internal topic holding the transaction
// coordinator's state, named and laid out like Kafka's (one partition: this
// node coordinates every transactional ID).
const TransactionStateTopic = "__transaction_state"

// coordinatorEpoch is the coordinator epoch written in markers: a single
// node never hands coordination over, so it stays 0.
const coordinatorEpoch = 0

// Control record key types.
const (
	controlTypeAbort  = 0
	controlTypeCommit = 1
)

// The transaction APIs are served by broker/txn; see its doc for behaviour.
//
//	AddPartitionsToTxn v0–v3, AddOffsetsToTxn v0–v3, EndTxn v0–v3,
//	TxnOffsetCommit v0–v3 (checked by broker/txn, stored by broker/group),
//	ListTransactions v0–v1, DescribeTransactions v0.

func (b *Broker) handleAddPartitionsToTxn(c *conn, r *request) (kmsg.Response, error) {
	return b.txns.AddPartitionsToTxn(c.ctx(), r.body.(*kmsg.AddPartitionsToTxnRequest)), nil
}

func (b *Broker) handleAddOffsetsToTxn(c *conn, r *request) (kmsg.Response, error) {
	return b.txns.AddOffsetsToTxn(c.ctx(), r.body.(*kmsg.AddOffsetsToTxnRequest)), nil
}

func (b *Broker) handleEndTxn(c *conn, r *request) (kmsg.Response, error) {
	return b.txns.EndTxn(c.ctx(), r.body.(*kmsg.EndTxnRequest)), nil
}

func (b *Broker) handleListTransactions(c *conn, r *request) (kmsg.Response, error) {
	return b.txns.ListTransactions(r.body.(*kmsg.ListTransactionsRequest)), nil
}

func (b *Broker) handleDescribeTransactions(c *conn, r *request) (kmsg.Response, error) {
	return b.txns.DescribeTransactions(r.body.(*kmsg.DescribeTransactionsRequest)), nil
}

// TxnOffsetCommit: the producer is checked against its transaction (known
// producer, current epoch, the group's offsets partition added by
// AddOffsetsToTxn) and held there while broker/group writes the offsets in
// the transaction.
func (b *Broker) handleTxnOffsetCommit(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.TxnOffsetCommitRequest)
	guard, code := b.txns.BeginTxnOffsetCommit(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, r.version)
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	defer guard.Release()
	return b.groups.TxnOffsetCommit(c.ctx(), req), nil
}

// encodeTxnBatch builds a batch of producerID and epoch with the
// transactional bit, and the control bit if control is set. Such batches
// carry no sequence numbers: they are appended with OriginCoordinator.
func encodeTxnBatch(recs []storage.Record, producerID int64, epoch int16, control bool) []byte {
	batch := storage.EncodeBatch(recs, producerID, epoch, -1)
	attrs := uint16(attrTransactional)
	if control {
		attrs |= attrControl
	}
	binary.BigEndian.PutUint16(batch[21:], attrs)
	binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], crc32.MakeTable(crc32.Castagnoli)))
	return batch
}

// markerBatch is a commit or abort marker: one control record whose key is
// version 0 and the type, whose value is version 0 and the coordinator
// epoch.
func markerBatch(producerID int64, epoch int16, commit bool, now time.Time) []byte {
	key := binary.BigEndian.AppendUint16(nil, 0)
	typ := uint16(controlTypeAbort)
	if commit {
		typ = controlTypeCommit
	}
	key = binary.BigEndian.AppendUint16(key, typ)
	value := binary.BigEndian.AppendUint16(nil, 0)
	value = binary.BigEndian.AppendUint32(value, coordinatorEpoch)
	return encodeTxnBatch([]storage.Record{{Timestamp: now.UnixMilli(), Key: key, Value: value}}, producerID, epoch, true)
}

// txnBackend is what broker/txn sees of the broker.
type txnBackend struct{ b *Broker }

func (tb txnBackend) AppendState(ctx context.Context, rec txn.Record) error {
	p := tb.b.topics.partition(TransactionStateTopic, 0)
	if p == nil {
		return fmt.Errorf("append to %s-0: no such partition", TransactionStateTopic)
	}
	batch := storage.EncodeBatch([]storage.Record{{Timestamp: time.Now().UnixMilli(), Key: rec.Key, Value: rec.Value}}, -1, -1, -1)
	if _, err := p.log.Append(batch, storage.OriginCoordinator, p.log.LeaderEpoch()); err != nil {
		return fmt.Errorf("append to %s-0: %w", TransactionStateTopic, err)
	}
	return nil
}

func (tb txnBackend) WriteMarker(ctx context.Context, tp txn.TopicPartition, producerID int64, epoch int16, commit bool) error {
	p := tb.b.topics.partition(tp.Topic, tp.Partition)
	if p == nil {
		return fmt.Errorf("marker for %s-%d: %w", tp.Topic, tp.Partition, txn.ErrUnknownPartition)
	}
	if _, err := p.log.Append(markerBatch(producerID, epoch, commit, time.Now()), storage.OriginCoordinator, p.log.LeaderEpoch()); err != nil {
		return fmt.Errorf("marker for %s-%d: %w", tp.Topic, tp.Partition, err)
	}
	if tp.Topic == OffsetsTopic {
		tb.b.groups.CompleteTxn(tp.Partition, producerID, commit)
	}
	return nil
}

func (tb txnBackend) NextProducerID() (int64, error) { return tb.b.pids.Next() }

func (tb txnBackend) PartitionExists(topic string, partition int32) bool {
	return tb.b.topics.partitionExists(topic, partition)
}

func (tb txnBackend) OffsetsPartition(g string) txn.TopicPartition {
	return txn.TopicPartition{Topic: OffsetsTopic, Partition: tb.b.groups.Partition(g)}
}

// AppendTxn makes offsetsJournal a group.TxnJournal: the offsets go in a
// transactional batch of the producer, checked against the partition's
// producer state (a fenced epoch gets INVALID_PRODUCER_EPOCH).
func (j offsetsJournal) AppendTxn(ctx context.Context, partition int32, producerID int64, epoch int16, recs []group.Record) error {
	p := j.b.topics.partition(OffsetsTopic, partition)
	if p == nil {
		return fmt.Errorf("append to %s-%d: no such partition", OffsetsTopic, partition)
	}
	now := time.Now().UnixMilli()
	srecs := make([]storage.Record, len(recs))
	for i, rec := range recs {
		srecs[i] = storage.Record{Timestamp: now, Key: rec.Key, Value: rec.Value}
	}
	if _, err := p.log.Append(encodeTxnBatch(srecs, producerID, epoch, false), storage.OriginCoordinator, p.log.LeaderEpoch()); err != nil {
		if errors.Is(err, storage.ErrInvalidProducerEpoch) {
			return fmt.Errorf("append to %s-%d: %w (%w)", OffsetsTopic, partition, kerr.InvalidProducerEpoch, err)
		}
		return fmt.Errorf("append to %s-%d: %w", OffsetsTopic, partition, err)
	}
	return nil
}

// openTxnStateTopic creates the transaction state topic on first start.
func (b *Broker) openTxnStateTopic() error {
	if b.topics.view(TransactionStateTopic) != nil {
		return nil
	}
	if _, err := b.topics.create(TransactionStateTopic, 1, nil, false); err != nil && !errors.Is(err, errTopicExists) {
		return fmt.Errorf("create %s: %w", TransactionStateTopic, err)
	}
	return nil
}

// loadTransactions replays the state topic into the transaction coordinator
// and completes what was prepared before the restart.
func (b *Broker) loadTransactions() error {
	p := b.topics.partition(TransactionStateTopic, 0)
	if p == nil {
		return fmt.Errorf("%s is missing", TransactionStateTopic)
	}
	var recs []txn.Record
	err := replayLog(p.log, func(h *storage.BatchHeader, batch []byte) error {
		if h.IsControl() {
			return nil
		}
		rs, err := storage.DecodeRecords(batch)
		if err != nil {
			return err
		}
		for _, r := range rs {
			recs = append(recs, txn.Record{Key: r.Key, Value: r.Value})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay %s-0: %w", TransactionStateTopic, err)
	}
	if err := b.txns.Load(recs); err != nil {
		return err
	}
	if err := b.txns.Recover(b.ctx); err != nil {
		// Left prepared: the background scan retries.
		b.log.Warn("completing prepared transactions failed; will retry", "err", err)
	}
	return nil
}

// replayLog calls fn for every batch of l below its high watermark, in
// order. The batch is a private copy.
func replayLog(l *storage.Log, fn func(h *storage.BatchHeader, batch []byte) error) error {
	off, hw := l.LogStartOffset(), l.HighWatermark()
	for off < hw {
		rr, err := l.Read(off, 4<<20, true, hw)
		if err != nil {
			return err
		}
		if rr.Bytes == 0 {
			rr.Release()
			break
		}
		buf := make([]byte, 0, rr.Bytes)
		for _, ch := range rr.Chunks {
			part := make([]byte, ch.Len)
			if _, err := ch.File.ReadAt(part, ch.Pos); err != nil {
				rr.Release()
				return err
			}
			buf = append(buf, part...)
		}
		rr.Release()
		batches, err := storage.SplitBatches(buf)
		if err != nil {
			return err
		}
		for _, batch := range batches {
			h, err := storage.ParseBatchHeader(batch)
			if err != nil {
				return err
			}
			next := h.BaseOffset + int64(h.LastOffsetDelta) + 1
			if next > off {
				if err := fn(&h, batch); err != nil {
					return err
				}
			}
			off = next
		}
	}
	return nil
}

// isCommitMarker reports whether a control batch is a commit marker.
func isCommitMarker(batch []byte) bool {
	recs, err := storage.DecodeRecords(batch)
	return err == nil && len(recs) > 0 && len(recs[0].Key) >= 4 && binary.BigEndian.Uint16(recs[0].Key[2:]) == controlTypeCommit
}
