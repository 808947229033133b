package group

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit handles OffsetCommit v2–v9. Commits with a negative
// generation are "simple" commits, accepted for groups without members
// (creating the group if needed); commits to a live group must come from a
// member of its current generation. Every offset is acknowledged only after
// the Journal made it durable; if the append fails, the commit's partitions
// carry the journal's error code and the offsets are not visible.
func (c *Coordinator) OffsetCommit(ctx context.Context, r *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.Version = r.Version
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(code errCode) *kmsg.OffsetCommitResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		return resp
	}

	// Per-partition checks that need no group state, before any lock.
	var commits []pendingOffset
	now := c.cfg.Now().UnixMilli()
	for i, t := range r.Topics {
		for j, p := range t.Partitions {
			epoch := p.LeaderEpoch
			if r.Version < 6 {
				epoch = -1
			}
			if po, ok := c.checkOffset(t.Topic, p.Partition, p.Offset, epoch, p.Metadata, now,
				&resp.Topics[i].Partitions[j].ErrorCode); ok {
				commits = append(commits, po)
			}
		}
	}

	instanceID := r.InstanceID
	if r.Version < 7 {
		instanceID = nil
	}
	simple := r.Generation < 0
	g := c.lockGroupForWrite(r.Group, simple)
	if g == nil {
		if c.isClosed() {
			return setAll(errCoordinatorNotAvail)
		}
		// A commit for a group we do not know from a generation we never
		// handed out: a member of an older incarnation of the group.
		return setAll(errIllegalGeneration)
	}
	defer g.writeMu.Unlock()

	if code := g.checkCommit(r.MemberID, instanceID, r.Generation); code != errNone {
		g.mu.Unlock()
		return setAll(code)
	}
	if len(commits) == 0 {
		g.dropIfNeverUsed()
		g.mu.Unlock()
		return resp
	}
	g.mu.Unlock()

	err := c.journalOffsets(ctx, g, commits, func(ctx context.Context, recs []Record) error {
		return c.append(ctx, g.id, recs)
	}, func(po pendingOffset) {
		g.offsets[po.tp] = po.o
		g.plain[po.tp]++
	})
	if err != nil {
		c.log.Warn("offset commit failed", "group", g.id, "partitions", len(commits), "err", err)
		failOffsets(commits, journalErrCode(err))
	}
	return resp
}

// checkCommit decides whether a commit may be stored. g.mu held.
func (g *group) checkCommit(memberID string, instanceID *string, generation int32) errCode {
	if generation < 0 && g.state == stateEmpty {
		return errNone
	}
	m, code := g.checkMember(memberID, instanceID, generation)
	if code != errNone {
		return code
	}
	if g.state == stateCompletingRebalance {
		return errRebalanceInProgress
	}
	g.resetSession(m) // a commit is as good as a heartbeat
	return errNone
}

// OffsetFetch handles OffsetFetch v1–v9: one group (v1–v7) or many (v8+),
// the given topics or, with a null topic list (v2+), every committed
// partition. Partitions without a committed offset get offset -1. With
// RequireStable (v7+), a partition for which an open transaction holds a
// pending offset gets UNSTABLE_OFFSET_COMMIT (retriable) instead.
func (c *Coordinator) OffsetFetch(r *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.Version = r.Version
	closed := c.isClosed()

	if r.Version >= 8 {
		for _, rg := range r.Groups {
			out := kmsg.NewOffsetFetchResponseGroup()
			out.Group = rg.Group
			if closed {
				out.ErrorCode = errCoordinatorNotAvail
				resp.Groups = append(resp.Groups, out)
				continue
			}
			var want []fetchTopic
			if rg.Topics != nil {
				want = make([]fetchTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					want = append(want, fetchTopic{t.Topic, t.Partitions})
				}
			}
			for _, ft := range c.fetchOffsets(rg.Group, want, rg.Topics == nil) {
				ot := kmsg.NewOffsetFetchResponseGroupTopic()
				ot.Topic = ft.topic
				for _, fp := range ft.partitions {
					op := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					op.Partition = fp.partition
					op.Offset = fp.offset
					op.LeaderEpoch = fp.leaderEpoch
					md := fp.metadata
					op.Metadata = &md
					if fp.unstable && r.RequireStable {
						op.ErrorCode = kerr.UnstableOffsetCommit.Code
					}
					ot.Partitions = append(ot.Partitions, op)
				}
				out.Topics = append(out.Topics, ot)
			}
			resp.Groups = append(resp.Groups, out)
		}
		return resp
	}

	all := r.Topics == nil && r.Version >= 2
	var want []fetchTopic
	for _, t := range r.Topics {
		want = append(want, fetchTopic{t.Topic, t.Partitions})
	}
	var results []fetchedTopic
	if closed {
		if r.Version >= 2 {
			resp.ErrorCode = errCoordinatorNotAvail
			return resp
		}
		results = unknownOffsets(want)
	} else {
		results = c.fetchOffsets(r.Group, want, all)
	}
	for _, ft := range results {
		ot := kmsg.NewOffsetFetchResponseTopic()
		ot.Topic = ft.topic
		for _, fp := range ft.partitions {
			op := kmsg.NewOffsetFetchResponseTopicPartition()
			op.Partition = fp.partition
			op.Offset = fp.offset
			op.LeaderEpoch = fp.leaderEpoch
			md := fp.metadata
			op.Metadata = &md
			if closed {
				op.ErrorCode = errCoordinatorNotAvail
			} else if fp.unstable && r.RequireStable && r.Version >= 7 {
				op.ErrorCode = kerr.UnstableOffsetCommit.Code
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

type fetchTopic struct {
	topic      string
	partitions []int32
}

type fetchedPartition struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    string
	// unstable: a transaction holds a pending offset for the partition.
	unstable bool
}

type fetchedTopic struct {
	topic      string
	partitions []fetchedPartition
}

func unknownOffsets(want []fetchTopic) []fetchedTopic {
	out := make([]fetchedTopic, 0, len(want))
	for _, t := range want {
		ft := fetchedTopic{topic: t.topic}
		for _, p := range t.partitions {
			ft.partitions = append(ft.partitions, fetchedPartition{partition: p, offset: -1, leaderEpoch: -1})
		}
		out = append(out, ft)
	}
	return out
}

// fetchOffsets returns the committed offsets of group: those asked for in
// want, or every one if all is set (sorted by topic and partition).
func (c *Coordinator) fetchOffsets(groupID string, want []fetchTopic, all bool) []fetchedTopic {
	g := c.lockGroup(groupID, false)
	if g == nil {
		return unknownOffsets(want)
	}
	defer g.mu.Unlock()

	if !all {
		out := unknownOffsets(want)
		for i := range out {
			for j := range out[i].partitions {
				fp := &out[i].partitions[j]
				if o, ok := g.offsets[topicPartition{out[i].topic, fp.partition}]; ok {
					fp.offset, fp.leaderEpoch, fp.metadata = o.offset, o.leaderEpoch, o.metadata
				}
				fp.unstable = g.hasTxnOffset(topicPartition{out[i].topic, fp.partition})
			}
		}
		return out
	}

	tps := make([]topicPartition, 0, len(g.offsets))
	for tp := range g.offsets {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b topicPartition) int {
		if n := strings.Compare(a.topic, b.topic); n != 0 {
			return n
		}
		return int(a.partition) - int(b.partition)
	})
	var out []fetchedTopic
	for _, tp := range tps {
		if len(out) == 0 || out[len(out)-1].topic != tp.topic {
			out = append(out, fetchedTopic{topic: tp.topic})
		}
		o := g.offsets[tp]
		last := &out[len(out)-1]
		last.partitions = append(last.partitions, fetchedPartition{
			partition: tp.partition, offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata,
			unstable: g.hasTxnOffset(tp),
		})
	}
	return out
}
