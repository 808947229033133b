package kafka

import (
	"context"
	"fmt"

	"github.com/tributary/tributary/mirror"
)

// Source reads the topics of one Kafka-protocol cluster. It implements
// mirror.Source; its methods are safe for concurrent use.
type Source struct {
	c *cluster
}

var _ mirror.Source = (*Source)(nil)

// NewSource connects to cfg's cluster.
func NewSource(cfg Config) (*Source, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	c, err := newCluster(cfg)
	if err != nil {
		return nil, err
	}
	return &Source{c: c}, nil
}

// ClusterID returns the cluster ID from Metadata (v2+), "" if none.
func (s *Source) ClusterID(ctx context.Context) (string, error) { return s.c.clusterID(ctx) }

// Topics lists every topic, internal ones included, with partition counts
// and non-default configs (configs are cached for Config.MetadataMaxAge).
func (s *Source) Topics(ctx context.Context) ([]mirror.TopicInfo, error) {
	return s.c.topics(ctx, true)
}

// Offsets resolves start for tps through ListOffsets (read_committed):
// earliest is the log start, latest the last stable offset, and a timestamp
// the first offset whose record's timestamp is at or after it — or the
// partition's end when there is none.
func (s *Source) Offsets(ctx context.Context, tps []mirror.TopicPartition, start mirror.StartPosition) (map[mirror.TopicPartition]int64, error) {
	var ts int64
	switch start.Kind {
	case mirror.StartEarliest:
		ts = -2
	case mirror.StartLatest:
		ts = -1
	case mirror.StartTimestamp:
		ts = start.Time.UnixMilli()
	default:
		return nil, fmt.Errorf("cluster %s: offsets: unknown start kind %d", s.c.cfg.Name, start.Kind)
	}
	out, err := s.c.listOffsets(ctx, tps, ts)
	if err != nil {
		return nil, err
	}
	var past []mirror.TopicPartition
	for tp, off := range out {
		if off < 0 {
			past = append(past, tp)
		}
	}
	if len(past) > 0 {
		ends, err := s.c.listOffsets(ctx, past, -1)
		if err != nil {
			return nil, err
		}
		for tp, off := range ends {
			out[tp] = off
		}
	}
	return out, nil
}

// EndOffsets returns each partition's last stable offset, which is the high
// watermark when no transaction is open: the end a read_committed reader
// can reach.
func (s *Source) EndOffsets(ctx context.Context, tps []mirror.TopicPartition) (map[mirror.TopicPartition]int64, error) {
	return s.c.listOffsets(ctx, tps, -1)
}

// Consume starts one sarama partition consumer per partition of from, on a
// client of its own (so that its long-polling fetches do not delay this
// Source's metadata and offset requests).
func (s *Source) Consume(ctx context.Context, from map[mirror.TopicPartition]int64) (mirror.Consumer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return newConsumer(s.c.cfg, s.c.log, from)
}

// Close releases the Source's client. Consumers it started stay usable
// until closed themselves.
func (s *Source) Close() error { return s.c.close() }
