package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
)

// pendingOffset is one partition's offset that a commit request
// (OffsetCommit or TxnOffsetCommit) asks to store and that passed the
// checks needing no group state, with where its response error code goes.
type pendingOffset struct {
	tp   topicPartition
	o    committedOffset
	code *int16
}

// checkOffset checks one partition's offset of a commit request before any
// group lock: its metadata fits MaxMetadataBytes and the partition exists.
// On success it returns the offset to store, stamped now (Unix ms), and
// true; otherwise it sets *code to the partition's error and returns false.
// leaderEpoch is -1 for request versions that carry none.
func (c *Coordinator) checkOffset(topic string, partition int32, offset int64, leaderEpoch int32,
	metadata *string, now int64, code *int16) (pendingOffset, bool) {
	md := ""
	if metadata != nil {
		md = *metadata
	}
	switch {
	case len(md) > c.cfg.MaxMetadataBytes:
		*code = kerr.OffsetMetadataTooLarge.Code
		return pendingOffset{}, false
	case c.cfg.TopicPartitionExists != nil && !c.cfg.TopicPartitionExists(topic, partition):
		*code = kerr.UnknownTopicOrPartition.Code
		return pendingOffset{}, false
	}
	return pendingOffset{
		tp:   topicPartition{topic, partition},
		o:    committedOffset{offset: offset, leaderEpoch: leaderEpoch, metadata: md, timestamp: now},
		code: code,
	}, true
}

// failOffsets sets the error code of every pending offset to code.
func failOffsets(offsets []pendingOffset, code errCode) {
	for _, po := range offsets {
		*po.code = code
	}
}

// journalOffsets appends the records of offsets with appendRecs and, once
// it returned nil (the journal made them durable), applies each offset to
// g with apply under g.mu. If the append fails, a group the commit created
// is dropped again and the error is returned for the caller to report.
// g.writeMu held and g.mu not held on entry, so memory follows the log
// order.
func (c *Coordinator) journalOffsets(ctx context.Context, g *group, offsets []pendingOffset,
	appendRecs func(ctx context.Context, recs []Record) error, apply func(po pendingOffset)) error {
	recs := make([]Record, len(offsets))
	for i, po := range offsets {
		recs[i] = offsetRecord(g.id, po.tp, po.o)
	}
	if err := appendRecs(ctx, recs); err != nil {
		g.mu.Lock()
		g.dropIfNeverUsed()
		g.mu.Unlock()
		return err
	}
	g.mu.Lock()
	for _, po := range offsets {
		apply(po)
	}
	g.mu.Unlock()
	return nil
}
