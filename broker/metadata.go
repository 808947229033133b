package broker

import (
	"errors"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata: v0–v12.
//
// A null topic list (v1+; an empty one in v0) asks for every topic. Topics
// have stable UUIDs, returned from v10 and accepted as the lookup key when
// the name is null. With Config.AutoCreateTopics a missing topic is created
// before answering (with DefaultPartitions partitions) when the request
// allows it (always before v4, AllowAutoTopicCreation from v4), so the first
// answer already has its partitions. This one node is the controller, the
// leader and the only replica of every partition.
func (b *Broker) handleMetadata(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.MetadataRequest)
	resp := kmsg.NewPtrMetadataResponse()
	host, port := b.advertised()
	br := kmsg.NewMetadataResponseBroker()
	br.NodeID, br.Host, br.Port = b.cfg.NodeID, host, port
	resp.Brokers = []kmsg.MetadataResponseBroker{br}
	resp.ClusterID = &b.clusterID
	resp.ControllerID = b.cfg.NodeID

	all := req.Topics == nil || (r.version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range b.topics.snapshot() {
			resp.Topics = append(resp.Topics, b.metadataTopic(t))
		}
		return resp, nil
	}
	allowCreate := b.cfg.AutoCreateTopics && (r.version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t *topicView
		switch {
		case rt.Topic != nil:
			t = b.topics.view(*rt.Topic)
			if t == nil && allowCreate {
				var err error
				t, err = b.topics.create(*rt.Topic, b.cfg.DefaultPartitions, nil, false)
				if errors.Is(err, errTopicExists) {
					t = b.topics.view(*rt.Topic)
				} else if err != nil {
					mt := kmsg.NewMetadataResponseTopic()
					mt.Topic = rt.Topic
					mt.ErrorCode = topicErrorCode(err)
					resp.Topics = append(resp.Topics, mt)
					continue
				}
			}
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = rt.Topic
				mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if validateTopicName(*rt.Topic) != nil {
					mt.ErrorCode = kerr.InvalidTopicException.Code
				}
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		default:
			if tt := b.topics.getByID(uuid.UUID(rt.TopicID)); tt != nil {
				t = b.topics.view(tt.name)
			}
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		resp.Topics = append(resp.Topics, b.metadataTopic(t))
	}
	return resp, nil
}

func (b *Broker) metadataTopic(t *topicView) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic = &name
	mt.TopicID = t.id
	mt.IsInternal = t.internal
	for _, p := range t.partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.index
		mp.Leader = b.cfg.NodeID
		mp.LeaderEpoch = p.log.LeaderEpoch()
		mp.Replicas = []int32{b.cfg.NodeID}
		mp.ISR = []int32{b.cfg.NodeID}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
