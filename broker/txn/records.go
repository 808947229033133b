package txn

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record schema versions written to the state topic. Version 0 of both is
// what Kafka 2.x writes and every later Kafka reads.
const (
	stateKeyVersion   int16 = 0
	stateValueVersion int16 = 0
)

// stateRecord encodes the state of transactional ID id.
func stateRecord(id string, d *txnData) Record {
	k := kmsg.NewTxnMetadataKey()
	k.Version = stateKeyVersion
	k.TransactionalID = id
	v := kmsg.NewTxnMetadataValue()
	v.Version = stateValueVersion
	v.ProducerID = d.producerID
	v.ProducerEpoch = d.epoch
	v.TimeoutMillis = int32(d.timeout / time.Millisecond)
	v.State = d.state
	for _, tp := range d.sortedPartitions() {
		if n := len(v.Topics); n == 0 || v.Topics[n-1].Topic != tp.Topic {
			t := kmsg.NewTxnMetadataValueTopic()
			t.Topic = tp.Topic
			v.Topics = append(v.Topics, t)
		}
		last := &v.Topics[len(v.Topics)-1]
		last.Partitions = append(last.Partitions, tp.Partition)
	}
	v.LastUpdateTimestamp = d.updated.UnixMilli()
	v.StartTimestamp = -1
	if !d.start.IsZero() {
		v.StartTimestamp = d.start.UnixMilli()
	}
	return Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

// Load replays records of the state topic, in log order. The broker calls
// it before Recover and before serving requests. A tombstone forgets its
// ID; records of key versions this package does not know are skipped.
func (c *Coordinator) Load(recs []Record) error {
	if c.isClosed() {
		return fmt.Errorf("load transaction state: %w", ErrClosed)
	}
	for i, r := range recs {
		if err := c.loadRecord(r); err != nil {
			return fmt.Errorf("load transaction state record %d: %w", i, err)
		}
	}
	return nil
}

func (c *Coordinator) loadRecord(r Record) error {
	if len(r.Key) < 2 {
		return fmt.Errorf("key of %d bytes: %w", len(r.Key), ErrCorruptRecord)
	}
	if v := int16(binary.BigEndian.Uint16(r.Key)); v != stateKeyVersion {
		return nil
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(r.Key); err != nil {
		return fmt.Errorf("state key: %w: %v", ErrCorruptRecord, err)
	}
	if r.Value == nil {
		c.mu.Lock()
		if e := c.txns[k.TransactionalID]; e != nil {
			if c.byPID[e.data.producerID] == e.id {
				delete(c.byPID, e.data.producerID)
			}
			delete(c.txns, k.TransactionalID)
		}
		c.mu.Unlock()
		return nil
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(r.Value); err != nil {
		return fmt.Errorf("state value of %q: %w: %v", k.TransactionalID, ErrCorruptRecord, err)
	}
	d := txnData{
		producerID: v.ProducerID,
		epoch:      v.ProducerEpoch,
		timeout:    time.Duration(v.TimeoutMillis) * time.Millisecond,
		state:      v.State,
		partitions: map[TopicPartition]struct{}{},
		updated:    time.UnixMilli(v.LastUpdateTimestamp),
	}
	if v.StartTimestamp >= 0 && v.State == kmsg.TransactionStateOngoing {
		d.start = time.UnixMilli(v.StartTimestamp)
	}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			d.partitions[TopicPartition{t.Topic, p}] = struct{}{}
		}
	}
	e := c.entry(k.TransactionalID, true)
	if e == nil {
		return ErrClosed
	}
	e.mu.Lock()
	c.apply(e, d)
	e.mu.Unlock()
	return nil
}
