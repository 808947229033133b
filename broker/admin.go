package broker

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics: v0–v7.
//
// NumPartitions and ReplicationFactor of -1 (v4+) take the broker defaults.
// On one node the replication factor must be 1 (else
// INVALID_REPLICATION_FACTOR); a manual replica assignment must place every
// partition on this node alone. Configs are the topic configs listed in
// topicconfig.go; any other key, or a bad value, fails the topic with
// INVALID_CONFIG and a message naming every bad entry. ValidateOnly (v1+)
// checks without creating. v5+ answers with the topic's partitions,
// replication factor and configs; v7 with its ID.
func (b *Broker) handleCreateTopics(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.CreateTopicsRequest)
	resp := kmsg.NewPtrCreateTopicsResponse()
	seen := make(map[string]int)
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		fail := func(code int16, msg string) {
			st.ErrorCode = code
			st.ErrorMessage = &msg
		}
		partitions := rt.NumPartitions
		if partitions == -1 {
			partitions = b.cfg.DefaultPartitions
		}
		configs := make(map[string]string)
		for _, cfg := range rt.Configs {
			if cfg.Value != nil {
				configs[cfg.Name] = *cfg.Value
			}
		}
		switch {
		case seen[rt.Topic] > 1:
			fail(kerr.InvalidRequest.Code, "topic named more than once in the request")
		case rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 && len(rt.ReplicaAssignment) == 0:
			fail(kerr.InvalidReplicationFactor.Code, fmt.Sprintf("replication factor %d: this cluster has 1 broker", rt.ReplicationFactor))
		case len(rt.ReplicaAssignment) > 0:
			if msg := b.checkAssignment(rt.ReplicaAssignment); msg != "" {
				fail(kerr.InvalidReplicaAssignment.Code, msg)
				break
			}
			partitions = int32(len(rt.ReplicaAssignment))
			fallthrough
		default:
			if _, err := b.topics.create(rt.Topic, partitions, configs, req.ValidateOnly); err != nil {
				fail(topicErrorCode(err), err.Error())
			}
		}
		if st.ErrorCode == 0 {
			st.NumPartitions = partitions
			st.ReplicationFactor = 1
			if t := b.topics.view(rt.Topic); t != nil {
				st.TopicID = t.id
			}
			for _, d := range b.describeTopicConfigs(configs, nil, false) {
				cc := kmsg.NewCreateTopicsResponseTopicConfig()
				cc.Name, cc.Value, cc.ReadOnly, cc.Source, cc.IsSensitive = d.Name, d.Value, d.ReadOnly, int8(d.Source), false
				st.Configs = append(st.Configs, cc)
			}
		} else {
			st.NumPartitions, st.ReplicationFactor = -1, -1
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) checkAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) string {
	for i, a := range as {
		if a.Partition != int32(i) {
			return "replica assignment must list partitions 0..n-1 in order"
		}
		if len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
			return fmt.Sprintf("partition %d: the only broker is node %d", a.Partition, b.cfg.NodeID)
		}
	}
	return ""
}

// DeleteTopics: v0–v6 (v6 may name topics by ID).
//
// Internal topics cannot be deleted: INVALID_TOPIC_EXCEPTION, as Kafka
// answers.
// Deletion is durable when answered: the topic file is removed first, then
// the partition directories.
func (b *Broker) handleDeleteTopics(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DeleteTopicsRequest)
	resp := kmsg.NewPtrDeleteTopicsResponse()
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if r.version < 6 {
		for _, n := range req.TopicNames {
			n := n
			targets = append(targets, target{name: &n})
		}
	} else {
		for _, t := range req.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		name := ""
		if tg.name != nil {
			name = *tg.name
		} else if t := b.topics.getByID(uuid.UUID(tg.id)); t != nil {
			name = t.name
			st.Topic = &name
		} else {
			st.ErrorCode = kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if t := b.topics.view(name); t != nil {
			st.TopicID = t.id
		}
		if err := b.topics.delete(name); err != nil {
			st.ErrorCode = topicErrorCode(err)
			if errors.Is(err, errPolicyViolation) {
				st.ErrorCode = kerr.InvalidTopicException.Code
			}
			msg := err.Error()
			st.ErrorMessage = &msg
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// CreatePartitions: v0–v3.
//
// Grows a topic to Count partitions (never shrinks: INVALID_PARTITIONS). A
// manual assignment must place each new partition on this node alone.
// ValidateOnly checks without creating. Keys then hash to other partitions,
// as in Kafka.
func (b *Broker) handleCreatePartitions(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.CreatePartitionsRequest)
	resp := kmsg.NewPtrCreatePartitionsResponse()
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		for _, a := range rt.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
				err = fmt.Errorf("%w: the only broker is node %d", errInvalidPartitions, b.cfg.NodeID)
			}
		}
		if err == nil {
			err = b.topics.addPartitions(rt.Topic, rt.Count, req.ValidateOnly)
		}
		if err != nil {
			st.ErrorCode = topicErrorCode(err)
			msg := err.Error()
			st.ErrorMessage = &msg
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
