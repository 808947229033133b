package group

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnJournal is a Journal that can also append records inside a producer's
// transaction: a transactional batch of producerID and epoch, which the
// transaction's marker later commits or aborts. The Journal given to
// NewCoordinator must implement it for TxnOffsetCommit to be served.
type TxnJournal interface {
	Journal
	AppendTxn(ctx context.Context, partition int32, producerID int64, epoch int16, recs []Record) error
}

// TxnOffsetCommit handles TxnOffsetCommit v0–v3. The offsets are written to
// the journal inside the producer's transaction and stay pending — invisible
// to OffsetFetch, which reports UNSTABLE_OFFSET_COMMIT for them under
// RequireStable — until CompleteTxn commits or drops them. The caller (the
// broker) has checked the producer against its transaction coordinator. With
// a generation (v3+, not -1) the member must belong to the group's current
// generation, as for OffsetCommit; otherwise the commit is accepted for any
// group, created if needed.
func (c *Coordinator) TxnOffsetCommit(ctx context.Context, r *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, t := range r.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	var commits []pendingOffset
	now := c.cfg.Now().UnixMilli()
	for i, t := range r.Topics {
		for j, p := range t.Partitions {
			epoch := p.LeaderEpoch
			if r.Version < 2 {
				epoch = -1
			}
			if po, ok := c.checkOffset(t.Topic, p.Partition, p.Offset, epoch, p.Metadata, now,
				&resp.Topics[i].Partitions[j].ErrorCode); ok {
				commits = append(commits, po)
			}
		}
	}
	fail := func(code errCode) *kmsg.TxnOffsetCommitResponse {
		failOffsets(commits, code)
		return resp
	}
	tj, ok := c.journal.(TxnJournal)
	if !ok {
		return fail(kerr.UnsupportedVersion.Code)
	}

	g := c.lockGroupForWrite(r.Group, true)
	if g == nil {
		return fail(errCoordinatorNotAvail)
	}
	defer g.writeMu.Unlock()
	if r.Version >= 3 && r.Generation >= 0 {
		instanceID := r.InstanceID
		if code := g.checkCommit(r.MemberID, instanceID, r.Generation); code != errNone {
			g.dropIfNeverUsed()
			g.mu.Unlock()
			return fail(code)
		}
	}
	if len(commits) == 0 {
		g.dropIfNeverUsed()
		g.mu.Unlock()
		return resp
	}
	g.mu.Unlock()

	p := c.Partition(g.id)
	err := c.journalOffsets(ctx, g, commits, func(ctx context.Context, recs []Record) error {
		return tj.AppendTxn(ctx, p, r.ProducerID, r.ProducerEpoch, recs)
	}, func(po pendingOffset) { g.addTxnOffset(r.ProducerID, po.tp, po.o) })
	if err != nil {
		c.log.Warn("transactional offset commit failed", "group", g.id, "producer_id", r.ProducerID, "err", err)
		return fail(journalErrCode(err))
	}
	return resp
}

// addTxnOffset records a pending transactional offset. g.mu held.
func (g *group) addTxnOffset(producerID int64, tp topicPartition, o committedOffset) {
	m := g.txnOffsets[producerID]
	if m == nil {
		m = make(map[topicPartition]committedOffset)
		g.txnOffsets[producerID] = m
	}
	o.plainBefore = g.plain[tp]
	m[tp] = o
}

// hasTxnOffset tells whether a transaction holds a pending offset for tp.
// g.mu held.
func (g *group) hasTxnOffset(tp topicPartition) bool {
	for _, m := range g.txnOffsets {
		if _, ok := m[tp]; ok {
			return true
		}
	}
	return false
}

// CompleteTxn applies the marker of producerID's transaction written to
// offsets partition `partition`: with commit, the transaction's pending
// offsets of every group in that partition become the committed ones;
// without, they are dropped. The broker calls it once the marker is in the
// log, and while replaying the log for each marker it meets.
func (c *Coordinator) CompleteTxn(partition int32, producerID int64, commit bool) {
	c.mu.Lock()
	var groups []*group
	for id, g := range c.groups {
		if c.Partition(id) == partition {
			groups = append(groups, g)
		}
	}
	c.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		if m, ok := g.txnOffsets[producerID]; ok && g.state != stateDead {
			delete(g.txnOffsets, producerID)
			if commit {
				for tp, o := range m {
					// A plain commit after the transactional one wins,
					// as in the log's order.
					if g.plain[tp] == o.plainBefore {
						g.offsets[tp] = o
					}
				}
			}
			if len(g.members) == 0 && g.state == stateEmpty && g.generation == 0 {
				c.dropIfUnused(g)
			}
		}
		g.mu.Unlock()
	}
}

// LoadTxn replays transactional records of producerID from offsets
// partition `partition` (their batch had the transactional bit): they become
// pending offsets, resolved by the CompleteTxn of the marker that follows
// them in the log, or by the transaction coordinator after the replay.
func (c *Coordinator) LoadTxn(partition int32, producerID int64, recs []Record) error {
	if c.isClosed() {
		return fmt.Errorf("load offsets partition %d: %w", partition, ErrClosed)
	}
	for i, r := range recs {
		if len(r.Key) < 2 || r.Value == nil {
			continue
		}
		if v := int16(binary.BigEndian.Uint16(r.Key)); v != 0 && v != 1 {
			continue
		}
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("load offsets partition %d transactional record %d: offset commit key: %w: %v", partition, i, ErrCorruptRecord, err)
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("load offsets partition %d transactional record %d: offset commit value: %w: %v", partition, i, ErrCorruptRecord, err)
		}
		epoch := v.LeaderEpoch
		if v.Version < 3 {
			epoch = -1
		}
		g := c.lockGroup(k.Group, true)
		if g == nil {
			return ErrClosed
		}
		g.addTxnOffset(producerID, topicPartition{k.Topic, k.Partition},
			committedOffset{offset: v.Offset, leaderEpoch: epoch, metadata: v.Metadata, timestamp: v.CommitTimestamp})
		g.mu.Unlock()
	}
	return nil
}
