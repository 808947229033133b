package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/group"
	"github.com/tributary/tributary/broker/storage"
)

// Coordinator key types of FindCoordinator.
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

// FindCoordinator: v0–v4 (v4 batches keys).
//
// This node coordinates every group. Transaction coordinators get
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED with a message until transactions are
// built; other key types INVALID_REQUEST.
func (b *Broker) handleFindCoordinator(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.FindCoordinatorRequest)
	resp := kmsg.NewPtrFindCoordinatorResponse()
	host, port := b.advertised()
	answer := func(key string) (node int32, code int16, msg *string) {
		switch req.CoordinatorType {
		case coordinatorGroup:
			return b.cfg.NodeID, 0, nil
		case coordinatorTransaction:
			m := transactionsUnsupportedMsg
			c.log.Warn("transaction coordinator lookup refused: "+m, "transactional_id", key, "client_id", r.clientID)
			return -1, errTransactionsUnsupported.Code, &m
		default:
			m := fmt.Sprintf("unknown coordinator type %d", req.CoordinatorType)
			return -1, kerr.InvalidRequest.Code, &m
		}
	}
	if r.version < 4 {
		node, code, msg := answer(req.CoordinatorKey)
		resp.NodeID, resp.ErrorCode, resp.ErrorMessage = node, code, msg
		if code == 0 {
			resp.Host, resp.Port = host, port
		}
		return resp, nil
	}
	for _, key := range req.CoordinatorKeys {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key = key
		rc.NodeID, rc.ErrorCode, rc.ErrorMessage = answer(key)
		if rc.ErrorCode == 0 {
			rc.Host, rc.Port = host, port
		}
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return resp, nil
}

// The group APIs are served by broker/group; see its doc for versions and
// behaviour. JoinGroup and SyncGroup block until the rebalance phase ends
// or the broker shuts down.

func (b *Broker) handleJoinGroup(c *conn, r *request) (kmsg.Response, error) {
	return b.groups.JoinGroup(c.ctx(), r.clientID, c.clientHost, r.body.(*kmsg.JoinGroupRequest)), nil
}

func (b *Broker) handleSyncGroup(c *conn, r *request) (kmsg.Response, error) {
	return b.groups.SyncGroup(c.ctx(), r.body.(*kmsg.SyncGroupRequest)), nil
}

func (b *Broker) handleHeartbeat(c *conn, r *request) (kmsg.Response, error) {
	return b.groups.Heartbeat(r.body.(*kmsg.HeartbeatRequest)), nil
}

func (b *Broker) handleLeaveGroup(c *conn, r *request) (kmsg.Response, error) {
	return b.groups.LeaveGroup(c.ctx(), r.body.(*kmsg.LeaveGroupRequest)), nil
}

func (b *Broker) handleOffsetCommit(c *conn, r *request) (kmsg.Response, error) {
	return b.groups.OffsetCommit(c.ctx(), r.body.(*kmsg.OffsetCommitRequest)), nil
}

func (b *Broker) handleOffsetFetch(c *conn, r *request) (kmsg.Response, error) {
	return b.groups.OffsetFetch(r.body.(*kmsg.OffsetFetchRequest)), nil
}

func (b *Broker) handleListGroups(c *conn, r *request) (kmsg.Response, error) {
	return b.groups.ListGroups(r.body.(*kmsg.ListGroupsRequest)), nil
}

func (b *Broker) handleDescribeGroups(c *conn, r *request) (kmsg.Response, error) {
	return b.groups.DescribeGroups(r.body.(*kmsg.DescribeGroupsRequest)), nil
}

func (b *Broker) handleDeleteGroups(c *conn, r *request) (kmsg.Response, error) {
	return b.groups.DeleteGroups(c.ctx(), r.body.(*kmsg.DeleteGroupsRequest)), nil
}

// offsetsJournal persists the coordinator's records in the offsets topic.
type offsetsJournal struct{ b *Broker }

func (j offsetsJournal) Append(ctx context.Context, partition int32, recs []group.Record) error {
	p := j.b.topics.partition(OffsetsTopic, partition)
	if p == nil {
		return fmt.Errorf("append to %s-%d: no such partition", OffsetsTopic, partition)
	}
	now := time.Now().UnixMilli()
	srecs := make([]storage.Record, len(recs))
	for i, rec := range recs {
		srecs[i] = storage.Record{Offset: int64(i), Timestamp: now, Key: rec.Key, Value: rec.Value}
	}
	batch := storage.EncodeBatch(srecs, -1, -1, -1)
	if _, err := p.log.Append(batch, storage.OriginCoordinator, p.log.LeaderEpoch()); err != nil {
		return fmt.Errorf("append to %s-%d: %w", OffsetsTopic, partition, err)
	}
	return nil
}

// openOffsetsTopic creates the offsets topic on first start and returns its
// partition count, which is fixed from then on (as Kafka's
// offsets.topic.num.partitions is).
func (b *Broker) openOffsetsTopic(want int32) (int32, error) {
	if t := b.topics.view(OffsetsTopic); t != nil {
		if int32(len(t.partitions)) != want {
			b.log.Info("offsets topic keeps the partition count it was created with", "partitions", len(t.partitions), "configured", want)
		}
		return int32(len(t.partitions)), nil
	}
	if _, err := b.topics.create(OffsetsTopic, want, nil, false); err != nil && !errors.Is(err, errTopicExists) {
		return 0, fmt.Errorf("create %s: %w", OffsetsTopic, err)
	}
	return want, nil
}

// loadGroups replays the offsets topic into the coordinator.
func (b *Broker) loadGroups() error {
	t := b.topics.view(OffsetsTopic)
	if t == nil {
		return fmt.Errorf("%s is missing", OffsetsTopic)
	}
	for _, p := range t.partitions {
		recs, err := readAllRecords(p.log)
		if err != nil {
			return fmt.Errorf("replay %s-%d: %w", OffsetsTopic, p.index, err)
		}
		grecs := make([]group.Record, len(recs))
		for i, r := range recs {
			grecs[i] = group.Record{Key: r.Key, Value: r.Value}
		}
		if err := b.groups.Load(p.index, grecs); err != nil {
			return fmt.Errorf("load groups from %s-%d: %w", OffsetsTopic, p.index, err)
		}
	}
	return nil
}

// readAllRecords decodes every record of a log up to its high watermark.
func readAllRecords(l *storage.Log) ([]storage.Record, error) {
	var out []storage.Record
	off, hw := l.LogStartOffset(), l.HighWatermark()
	for off < hw {
		rr, err := l.Read(off, 4<<20, true, hw)
		if err != nil {
			return nil, err
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
				return nil, err
			}
			buf = append(buf, part...)
		}
		rr.Release()
		batches, err := storage.SplitBatches(buf)
		if err != nil {
			return nil, err
		}
		for _, batch := range batches {
			h, err := storage.ParseBatchHeader(batch)
			if err != nil {
				return nil, err
			}
			next := h.BaseOffset + int64(h.LastOffsetDelta) + 1
			if h.Attributes&attrControl == 0 {
				recs, err := storage.DecodeRecords(batch)
				if err != nil {
					return nil, err
				}
				for _, r := range recs {
					if r.Offset >= off {
						out = append(out, r)
					}
				}
			}
			off = next
		}
	}
	return out, nil
}
