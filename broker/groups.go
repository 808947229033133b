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
// This node coordinates every group and every transactional ID; other key
// types get INVALID_REQUEST.
func (b *Broker) handleFindCoordinator(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.FindCoordinatorRequest)
	resp := kmsg.NewPtrFindCoordinatorResponse()
	host, port := b.advertised()
	answer := func(key string) (node int32, code int16, msg *string) {
		switch req.CoordinatorType {
		case coordinatorGroup, coordinatorTransaction:
			return b.cfg.NodeID, 0, nil
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

// loadGroups replays the offsets topic into the coordinator. Records of
// transactional batches become pending offsets of their producer, resolved
// by the marker that follows them (or, after the replay, by the transaction
// coordinator's recovery).
func (b *Broker) loadGroups() error {
	t := b.topics.view(OffsetsTopic)
	if t == nil {
		return fmt.Errorf("%s is missing", OffsetsTopic)
	}
	for _, p := range t.partitions {
		err := replayLog(p.log, func(h *storage.BatchHeader, batch []byte) error {
			if h.IsControl() {
				if h.IsTransactional() {
					b.groups.CompleteTxn(p.index, h.ProducerID, isCommitMarker(batch))
				}
				return nil
			}
			recs, err := storage.DecodeRecords(batch)
			if err != nil {
				return err
			}
			grecs := make([]group.Record, len(recs))
			for i, r := range recs {
				grecs[i] = group.Record{Key: r.Key, Value: r.Value}
			}
			if h.IsTransactional() {
				return b.groups.LoadTxn(p.index, h.ProducerID, grecs)
			}
			return b.groups.Load(p.index, grecs)
		})
		if err != nil {
			return fmt.Errorf("load groups from %s-%d: %w", OffsetsTopic, p.index, err)
		}
	}
	return nil
}
