package kafka

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"sort"
	"time"

	"github.com/IBM/sarama"

	"github.com/tributary/tributary/mirror"
)

// checkpointPartition is the partition of flow's checkpoints: FNV-1a
// (32-bit) of the flow ID, unsigned, modulo the partition count.
func checkpointPartition(flow string, partitions int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(flow))
	return int32(h.Sum32() % uint32(partitions))
}

// checkpointPartitions makes sure the checkpoint topic exists and returns
// its partition count.
func (s *Sink) checkpointPartitions(ctx context.Context) (int32, error) {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	if s.ckParts > 0 {
		return s.ckParts, nil
	}
	topic := s.opts.CheckpointTopic
	n, err := s.partitionCount(ctx, topic)
	if err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return 0, err
	}
	if err != nil {
		if err := s.createCheckpointTopic(ctx); err != nil {
			return 0, err
		}
		// A new topic may take a moment to show in every broker's metadata.
		for attempt := 0; ; attempt++ {
			if n, err = s.partitionCount(ctx, topic); err == nil {
				break
			}
			if attempt == 50 {
				return 0, err
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return 0, s.c.errorf(ctx.Err(), "wait for checkpoint topic %s", topic)
			}
		}
	}
	s.ckParts = n
	return n, nil
}

// partitionCount returns topic's partition count from fresh metadata;
// sarama.ErrUnknownTopicOrPartition (wrapped) if it does not exist.
func (s *Sink) partitionCount(ctx context.Context, topic string) (int32, error) {
	resp, err := s.c.metadata(ctx, topic)
	if err != nil {
		return 0, err
	}
	for _, t := range resp.Topics {
		if t.Name != topic {
			continue
		}
		if !errors.Is(t.Err, sarama.ErrNoError) {
			return 0, s.c.errorf(t.Err, "partitions of %s", topic)
		}
		if len(t.Partitions) > 0 {
			return int32(len(t.Partitions)), nil
		}
	}
	return 0, s.c.errorf(sarama.ErrUnknownTopicOrPartition, "partitions of %s", topic)
}

func (s *Sink) createCheckpointTopic(ctx context.Context) error {
	topic := s.opts.CheckpointTopic
	compact, del, forever := "compact", "delete", "-1"
	create := func(configs map[string]*string) error {
		return s.c.call(ctx, func() error {
			return s.c.admin.CreateTopic(topic, &sarama.TopicDetail{
				NumPartitions: s.opts.CheckpointPartitions, ReplicationFactor: -1, ConfigEntries: configs,
			}, false)
		})
	}
	err := create(map[string]*string{"cleanup.policy": &compact})
	if errors.Is(err, sarama.ErrInvalidConfig) || errors.Is(err, sarama.ErrPolicyViolation) {
		s.log.Info("cluster refuses a compacted checkpoint topic; creating it with cleanup.policy=delete and retention.ms=-1",
			"topic", topic, "err", err)
		err = create(map[string]*string{"cleanup.policy": &del, "retention.ms": &forever})
	}
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return s.c.errorf(err, "create checkpoint topic %s", topic)
	}
	if err == nil {
		s.log.Info("created checkpoint topic", "topic", topic, "partitions", s.opts.CheckpointPartitions)
	}
	return nil
}

// LoadCheckpoint returns flow's latest committed checkpoint, or nil if it
// has none. It reads the flow's checkpoint partition backwards from its end
// (the last stable offset, once settled: see settledEnd) in windows that
// double in size, and stops at the first window holding a committed record
// keyed by the flow ID.
func (s *Sink) LoadCheckpoint(ctx context.Context, flow string) (*mirror.Checkpoint, error) {
	n, err := s.checkpointPartitions(ctx)
	if err != nil {
		return nil, err
	}
	tp := mirror.TopicPartition{Topic: s.opts.CheckpointTopic, Partition: checkpointPartition(flow, n)}
	start, err := s.c.listOffsets(ctx, []mirror.TopicPartition{tp}, -2)
	if err != nil {
		return nil, err
	}
	lo := start[tp]
	hi, err := s.settledEnd(ctx, tp, lo)
	if err != nil {
		return nil, err
	}
	key := []byte(flow)
	for window := int64(s.opts.CheckpointWindow); hi > lo; window *= 2 {
		from := max(hi-window, lo)
		val, err := s.lastWithKey(ctx, tp, key, from, hi)
		if err != nil {
			return nil, err
		}
		if val != nil {
			cp, err := mirror.DecodeCheckpoint(val)
			if err != nil {
				return nil, s.c.errorf(err, "decode checkpoint of flow %s in %s", flow, tp)
			}
			return cp, nil
		}
		hi = from
	}
	return nil, nil
}

// settledEnd returns tp's last stable offset once it has reached the high
// watermark as of the call: every transaction open at the call has then
// ended, committed or aborted, so a read_committed read up to it sees every
// committed checkpoint written before the call.
//
// Reading up to the last stable offset as first reported would not do: the
// checkpoint topic is shared by flows, and another flow's open transaction
// holds the last stable offset below this flow's newest committed
// checkpoint, which would then be missed (a transactional flow would resume
// from an older one and write records twice). A transactional Sink has
// already fenced its own older instances when this is called, so only
// other flows' transactions are waited for: each ends within a write or,
// abandoned, within its transaction timeout. lo is the partition's log
// start offset. It returns an error only when ctx ends or the fetch fails.
func (s *Sink) settledEnd(ctx context.Context, tp mirror.TopicPartition, lo int64) (int64, error) {
	hw, lso, err := s.fetchEnds(ctx, tp, lo)
	if err != nil {
		return 0, err
	}
	want := hw
	wait, logged := 10*time.Millisecond, false
	for lso < want {
		if !logged && wait >= 640*time.Millisecond {
			s.log.Info("waiting for open transactions on the checkpoint partition to end",
				"topic", tp.Topic, "partition", tp.Partition, "last_stable_offset", lso, "high_watermark", want)
			logged = true
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return 0, s.c.errorf(ctx.Err(), "wait for the last stable offset of %s to reach %d (at %d)", tp, want, lso)
		}
		wait = min(2*wait, time.Second)
		if _, lso, err = s.fetchEnds(ctx, tp, lo); err != nil {
			return 0, err
		}
	}
	return lso, nil
}

// fetchEnds returns tp's high watermark and last stable offset, as an
// empty-handed read_committed Fetch at offset from reports them.
func (s *Sink) fetchEnds(ctx context.Context, tp mirror.TopicPartition, from int64) (hw, lso int64, err error) {
	var resp *sarama.FetchResponse
	err = s.c.call(ctx, func() error {
		leader, err := s.c.cl.Leader(tp.Topic, tp.Partition)
		if err != nil {
			return err
		}
		req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 0, MinBytes: 0, MaxBytes: 1, Isolation: sarama.ReadCommitted}
		req.AddBlock(tp.Topic, tp.Partition, from, 1, -1)
		resp, err = leader.Fetch(req)
		return err
	})
	if err != nil {
		return 0, 0, s.c.errorf(err, "fetch ends of %s", tp)
	}
	blk := resp.GetBlock(tp.Topic, tp.Partition)
	if blk == nil {
		return 0, 0, s.c.errorf(sarama.ErrIncompleteResponse, "fetch ends of %s", tp)
	}
	if !errors.Is(blk.Err, sarama.ErrNoError) {
		return 0, 0, s.c.errorf(blk.Err, "fetch ends of %s", tp)
	}
	return blk.HighWaterMarkOffset, blk.LastStableOffset, nil
}

// lastWithKey returns the value of the last committed record in [from, to)
// of tp whose key is key, or nil. It fetches directly from the leader,
// read_committed: records of aborted transactions and control batches are
// skipped.
func (s *Sink) lastWithKey(ctx context.Context, tp mirror.TopicPartition, key []byte, from, to int64) ([]byte, error) {
	var found []byte
	maxBytes := int32(1 << 20)
	for off := from; off < to; {
		var resp *sarama.FetchResponse
		err := s.c.call(ctx, func() error {
			leader, err := s.c.cl.Leader(tp.Topic, tp.Partition)
			if err != nil {
				return err
			}
			req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 0, MinBytes: 1, MaxBytes: maxBytes, Isolation: sarama.ReadCommitted}
			req.AddBlock(tp.Topic, tp.Partition, off, maxBytes, -1)
			resp, err = leader.Fetch(req)
			return err
		})
		if err != nil {
			return nil, s.c.errorf(err, "fetch %s at %d", tp, off)
		}
		blk := resp.GetBlock(tp.Topic, tp.Partition)
		if blk == nil {
			return nil, s.c.errorf(sarama.ErrIncompleteResponse, "fetch %s at %d", tp, off)
		}
		if !errors.Is(blk.Err, sarama.ErrNoError) {
			return nil, s.c.errorf(blk.Err, "fetch %s at %d", tp, off)
		}
		next, val, partial := scanBatches(blk, key, off, to)
		if val != nil {
			found = val
		}
		if next == off {
			if !partial || maxBytes >= 64<<20 {
				break // nothing more below the last stable offset
			}
			maxBytes *= 4 // one batch larger than we asked for
			continue
		}
		off = next
	}
	return found, nil
}

// scanBatches walks a fetched block's record batches in order and returns
// the offset after the last complete batch, the value of the last
// committed record keyed key with an offset in [from, to), and whether an
// incomplete trailing batch was cut off.
func scanBatches(blk *sarama.FetchResponseBlock, key []byte, from, to int64) (next int64, val []byte, partial bool) {
	next = from
	aborted := make([]*sarama.AbortedTransaction, len(blk.AbortedTransactions))
	copy(aborted, blk.AbortedTransactions)
	sort.Slice(aborted, func(i, j int) bool { return aborted[i].FirstOffset < aborted[j].FirstOffset })
	open := make(map[int64]bool) // producer IDs inside an aborted transaction
	for _, rs := range blk.RecordsSet {
		b := rs.RecordBatch
		if b == nil {
			continue // pre-0.11 message sets are never written by a Sink
		}
		if b.PartialTrailingRecord {
			partial = true
			break
		}
		last := b.FirstOffset + int64(b.LastOffsetDelta)
		for len(aborted) > 0 && aborted[0].FirstOffset <= last {
			open[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		if last >= next {
			next = last + 1
		}
		if b.Control {
			if len(b.Records) > 0 && isAbortMarker(b.Records[0].Key) {
				delete(open, b.ProducerID)
			}
			continue
		}
		if b.IsTransactional && open[b.ProducerID] {
			continue
		}
		for _, r := range b.Records {
			o := b.FirstOffset + r.OffsetDelta
			if o >= from && o < to && r.Value != nil && bytes.Equal(r.Key, key) {
				val = r.Value
			}
		}
	}
	return next, val, partial
}

// isAbortMarker reports whether a control record key is an ABORT marker
// (version int16, type int16: 0 abort, 1 commit).
func isAbortMarker(key []byte) bool {
	return len(key) >= 4 && key[2] == 0 && key[3] == 0
}
