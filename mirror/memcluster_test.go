package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// memCluster is an in-memory cluster for this package's unit tests: topics
// of partitions of records, and checkpoints. It is a fake for testing the
// pipeline's logic only; bridge/kafka and the e2e tests prove it against
// real brokers.
type memCluster struct {
	id string

	mu          sync.Mutex
	cond        *sync.Cond
	topics      map[string][][]Record
	checkpoints map[string][]*Checkpoint
	maxBytes    int

	// failWrite, when set, is called before each Write; a non-nil error
	// fails the write after writing the first `keep` records.
	failWrite func(n int) (keep int, err error)
	writes    int
	// blockWrites, when non-nil, makes Write wait until it is closed.
	blockWrites chan struct{}
	// polled counts records handed out by consumers.
	polled int
}

func newMemCluster(id string) *memCluster {
	c := &memCluster{id: id, topics: make(map[string][][]Record), checkpoints: make(map[string][]*Checkpoint)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *memCluster) createTopic(name string, partitions int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.topics[name]; !ok {
		c.topics[name] = make([][]Record, partitions)
	}
}

// produce appends records to a partition as a client would.
func (c *memCluster) produce(topic string, partition int32, recs ...Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	parts := c.topics[topic]
	for _, r := range recs {
		r.Source = SourcePosition{SourcePartition: SourcePartition{Topic: topic, Partition: partition}, Offset: int64(len(parts[partition]))}
		parts[partition] = append(parts[partition], r)
	}
	c.cond.Broadcast()
}

func (c *memCluster) records(topic string, partition int32) []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int(partition) >= len(c.topics[topic]) {
		return nil
	}
	return append([]Record(nil), c.topics[topic][partition]...)
}

func (c *memCluster) count(topic string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.topics[topic] {
		n += len(p)
	}
	return n
}

// memEndpoints opens memClusters by name.
type memEndpoints map[string]*memCluster

func (e memEndpoints) OpenSource(ctx context.Context, name string, _ Use) (Source, error) {
	c, ok := e[name]
	if !ok {
		return nil, fmt.Errorf("no cluster %s", name)
	}
	return c, nil
}

func (e memEndpoints) OpenSink(ctx context.Context, name string, _ Use) (Sink, error) {
	c, ok := e[name]
	if !ok {
		return nil, fmt.Errorf("no cluster %s", name)
	}
	return c, nil
}

func (c *memCluster) ClusterID(ctx context.Context) (string, error) { return c.id, nil }

func (c *memCluster) Topics(ctx context.Context) ([]TopicInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []TopicInfo
	for n, p := range c.topics {
		out = append(out, TopicInfo{Name: n, Partitions: int32(len(p))})
	}
	return out, nil
}

func (c *memCluster) Offsets(ctx context.Context, tps []TopicPartition, start StartPosition) (map[TopicPartition]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[TopicPartition]int64)
	for _, tp := range tps {
		if start.Kind == StartLatest {
			out[tp] = int64(len(c.topics[tp.Topic][tp.Partition]))
		} else {
			out[tp] = 0
		}
	}
	return out, nil
}

func (c *memCluster) EndOffsets(ctx context.Context, tps []TopicPartition) (map[TopicPartition]int64, error) {
	return c.Offsets(ctx, tps, StartPosition{Kind: StartLatest})
}

func (c *memCluster) Consume(ctx context.Context, from map[TopicPartition]int64) (Consumer, error) {
	pos := make(map[TopicPartition]int64, len(from))
	for tp, off := range from {
		pos[tp] = off
	}
	return &memConsumer{c: c, pos: pos}, nil
}

func (c *memCluster) Close() error { return nil }

type memConsumer struct {
	c   *memCluster
	pos map[TopicPartition]int64
}

func (m *memConsumer) Poll(ctx context.Context) ([]Record, error) {
	stop := context.AfterFunc(ctx, func() {
		m.c.mu.Lock()
		m.c.cond.Broadcast()
		m.c.mu.Unlock()
	})
	defer stop()
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	for {
		var out []Record
		for tp, off := range m.pos {
			part := m.c.topics[tp.Topic][tp.Partition]
			for off < int64(len(part)) && len(out) < 100 {
				out = append(out, part[off])
				off++
			}
			m.pos[tp] = off
		}
		if len(out) > 0 {
			m.c.polled += len(out)
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m.c.cond.Wait()
	}
}

func (m *memConsumer) Acknowledge(ctx context.Context, upTo map[TopicPartition]int64) error {
	return nil
}
func (m *memConsumer) Close() error { return nil }

func (c *memCluster) CreateTopic(ctx context.Context, t TopicInfo) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.topics[t.Name]; ok {
		return ErrTopicExists
	}
	c.topics[t.Name] = make([][]Record, t.Partitions)
	return nil
}

func (c *memCluster) AddPartitions(ctx context.Context, topic string, total int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for int32(len(c.topics[topic])) < total {
		c.topics[topic] = append(c.topics[topic], nil)
	}
	return nil
}

func (c *memCluster) MaxRecordBytes(ctx context.Context, topic string) (int, error) {
	return c.maxBytes, nil
}

func (c *memCluster) LoadCheckpoint(ctx context.Context, flow string) (*Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cps := c.checkpoints[flow]
	if len(cps) == 0 {
		return nil, nil
	}
	return cps[len(cps)-1].Clone(), nil
}

var errInjected = errors.New("injected write failure")

func (c *memCluster) Write(ctx context.Context, b *Batch) error {
	c.mu.Lock()
	block := c.blockWrites
	c.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	keep := len(b.Records)
	var ferr error
	if c.failWrite != nil {
		if k, err := c.failWrite(c.writes); err != nil {
			keep, ferr = min(k, len(b.Records)), err
		}
	}
	for _, r := range b.Records[:keep] {
		parts := c.topics[r.Topic]
		if parts == nil || int(r.Partition) >= len(parts) {
			return fmt.Errorf("no partition %s-%d", r.Topic, r.Partition)
		}
		rec := r.Record
		rec.Source = SourcePosition{SourcePartition: SourcePartition{Topic: r.Topic, Partition: r.Partition}, Offset: int64(len(parts[r.Partition]))}
		parts[r.Partition] = append(parts[r.Partition], rec)
	}
	c.cond.Broadcast()
	if ferr != nil {
		return ferr
	}
	c.checkpoints[b.Checkpoint.Flow] = append(c.checkpoints[b.Checkpoint.Flow], b.Checkpoint.Clone())
	return nil
}

// waitFor polls cond until true or the deadline.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}
