package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary/tributary/mirror"
)

// Source reads a JetStream stream, or core NATS subjects, as one topic
// with one partition. It implements mirror.Source.
type Source struct {
	cfg   Config
	m     Mapping
	log   *slog.Logger
	codec *codec
	nc    *nats.Conn
	js    jetstream.JetStream // nil for core NATS

	mu   sync.Mutex // guards core
	core *coreConsumer
}

// NewSource connects to the servers of cfg and reads them as m says: the
// stream m.Stream through a durable pull consumer, or (without a stream)
// the core NATS subjects m.Subjects.
func NewSource(ctx context.Context, cfg Config, m Mapping) (*Source, error) {
	m.fill()
	if m.Topic == "" {
		return nil, fmt.Errorf("%w: cluster %s: a NATS source needs a topic name", ErrConfig, cfg.Name)
	}
	if m.JetStream() && m.Durable == "" {
		return nil, fmt.Errorf("%w: cluster %s: a JetStream source needs a durable consumer name", ErrConfig, cfg.Name)
	}
	if !m.JetStream() && len(m.Subjects) == 0 {
		return nil, fmt.Errorf("%w: cluster %s: a core NATS source needs subjects", ErrConfig, cfg.Name)
	}
	cd, err := newCodec(&m)
	if err != nil {
		return nil, err
	}
	nc, err := connect(&cfg)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, m: m, log: cfg.logger(), codec: cd, nc: nc}
	if m.JetStream() {
		if s.js, err = jetstream.New(nc); err != nil {
			nc.Close()
			return nil, fmt.Errorf("cluster %s: JetStream: %w", cfg.Name, err)
		}
		if _, err := s.js.Stream(ctx, m.Stream); err != nil {
			nc.Close()
			return nil, fmt.Errorf("cluster %s: stream %s: %w", cfg.Name, m.Stream, err)
		}
	}
	return s, nil
}

// ClusterID implements mirror.Source: NATS has no cluster ID Tributary
// uses, so the job's cluster name identifies it.
func (s *Source) ClusterID(context.Context) (string, error) { return "", nil }

// Topics implements mirror.Source: the one topic the source presents.
func (s *Source) Topics(context.Context) ([]mirror.TopicInfo, error) {
	return []mirror.TopicInfo{{Name: s.m.Topic, Partitions: 1}}, nil
}

func (s *Source) checkTP(tp mirror.TopicPartition) error {
	if tp.Topic != s.m.Topic || tp.Partition != 0 {
		return fmt.Errorf("cluster %s: no partition %s (the source presents %s-0 only)", s.cfg.Name, tp, s.m.Topic)
	}
	return nil
}

// Offsets implements mirror.Source. JetStream offsets are stream sequence
// numbers; core NATS offsets count messages from 0.
func (s *Source) Offsets(ctx context.Context, tps []mirror.TopicPartition, start mirror.StartPosition) (map[mirror.TopicPartition]int64, error) {
	out := make(map[mirror.TopicPartition]int64, len(tps))
	for _, tp := range tps {
		if err := s.checkTP(tp); err != nil {
			return nil, err
		}
		if s.js == nil {
			out[tp] = 0
			continue
		}
		off, err := s.streamOffset(ctx, start)
		if err != nil {
			return nil, err
		}
		out[tp] = off
	}
	return out, nil
}

func (s *Source) streamOffset(ctx context.Context, start mirror.StartPosition) (int64, error) {
	st, err := s.js.Stream(ctx, s.m.Stream)
	if err != nil {
		return 0, fmt.Errorf("cluster %s: stream %s: %w", s.cfg.Name, s.m.Stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("cluster %s: stream %s info: %w", s.cfg.Name, s.m.Stream, err)
	}
	end := int64(info.State.LastSeq) + 1
	switch start.Kind {
	case mirror.StartLatest:
		return end, nil
	case mirror.StartTimestamp:
		// An ordered consumer from the time finds the first sequence at
		// or after it.
		oc, err := s.js.OrderedConsumer(ctx, s.m.Stream, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start.Time})
		if err != nil {
			return 0, fmt.Errorf("cluster %s: stream %s: find time %v: %w", s.cfg.Name, s.m.Stream, start.Time, err)
		}
		msg, err := oc.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				return end, nil
			}
			return 0, fmt.Errorf("cluster %s: stream %s: find time %v: %w", s.cfg.Name, s.m.Stream, start.Time, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return 0, fmt.Errorf("cluster %s: stream %s: %w", s.cfg.Name, s.m.Stream, err)
		}
		return int64(md.Sequence.Stream), nil
	default:
		return max(int64(info.State.FirstSeq), 1), nil
	}
}

// EndOffsets implements mirror.Source: the stream's last sequence plus
// one, or a core source's count of messages received.
func (s *Source) EndOffsets(ctx context.Context, tps []mirror.TopicPartition) (map[mirror.TopicPartition]int64, error) {
	out := make(map[mirror.TopicPartition]int64, len(tps))
	for _, tp := range tps {
		if err := s.checkTP(tp); err != nil {
			return nil, err
		}
		if s.js == nil {
			s.mu.Lock()
			if s.core != nil {
				out[tp] = s.core.received()
			}
			s.mu.Unlock()
			continue
		}
		st, err := s.js.Stream(ctx, s.m.Stream)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: stream %s: %w", s.cfg.Name, s.m.Stream, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: stream %s info: %w", s.cfg.Name, s.m.Stream, err)
		}
		out[tp] = int64(info.State.LastSeq) + 1
	}
	return out, nil
}

// Consume implements mirror.Source.
func (s *Source) Consume(ctx context.Context, from map[mirror.TopicPartition]int64) (mirror.Consumer, error) {
	tp := mirror.TopicPartition{Topic: s.m.Topic}
	next, ok := from[tp]
	if !ok || len(from) != 1 {
		return nil, fmt.Errorf("cluster %s: consume: want exactly partition %s", s.cfg.Name, tp)
	}
	if s.js == nil {
		c, err := s.consumeCore(tp, next)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.core = c
		s.mu.Unlock()
		return c, nil
	}
	return s.consumeStream(ctx, tp, next)
}

// Close implements mirror.Source.
func (s *Source) Close() error {
	s.nc.Close()
	return nil
}

// streamConsumer reads a stream through the durable pull consumer.
type streamConsumer struct {
	s    *Source
	tp   mirror.TopicPartition
	iter jetstream.MessagesContext

	msgs chan jetstream.Msg
	errc chan error // the iterator's fatal error, once
	done chan struct{}
	wg   sync.WaitGroup

	// Owned by Poll and Acknowledge (the flow calls them from different
	// goroutines).
	mu      sync.Mutex
	next    uint64          // sequence of the next message to hand over
	pending []jetstream.Msg // handed over, not yet acknowledged, in order
}

// consumeStream recreates the durable consumer at sequence next: the
// target's checkpoint is the position, and anything the consumer held
// from an earlier session (unacked messages of a crashed run) would
// otherwise come back only after AckWait, out of order.
func (s *Source) consumeStream(ctx context.Context, tp mirror.TopicPartition, next int64) (mirror.Consumer, error) {
	if next < 1 {
		next = 1
	}
	if err := s.js.DeleteConsumer(ctx, s.m.Stream, s.m.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("cluster %s: stream %s: reset durable consumer %s: %w", s.cfg.Name, s.m.Stream, s.m.Durable, err)
	}
	cons, err := s.js.CreateConsumer(ctx, s.m.Stream, jetstream.ConsumerConfig{
		Durable:       s.m.Durable,
		Description:   "tributary mirror source",
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   uint64(next),
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       s.m.AckWait,
		MaxAckPending: s.m.MaxAckPending,
		MaxDeliver:    -1,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: stream %s: create durable consumer %s at sequence %d: %w", s.cfg.Name, s.m.Stream, s.m.Durable, next, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(s.m.FetchBatch))
	if err != nil {
		return nil, fmt.Errorf("cluster %s: stream %s: pull from %s: %w", s.cfg.Name, s.m.Stream, s.m.Durable, err)
	}
	c := &streamConsumer{s: s, tp: tp, iter: iter, next: uint64(next),
		msgs: make(chan jetstream.Msg, s.m.FetchBatch), errc: make(chan error, 1), done: make(chan struct{})}
	s.log.Info("reading stream", "stream", s.m.Stream, "durable", s.m.Durable, "from_sequence", next)
	c.wg.Add(1)
	go c.pump()
	return c, nil
}

// pump moves messages from the iterator to the channel Poll reads.
func (c *streamConsumer) pump() {
	defer c.wg.Done()
	for {
		msg, err := c.iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			select {
			case c.errc <- fmt.Errorf("cluster %s: stream %s: %w", c.s.cfg.Name, c.s.m.Stream, err):
			default:
			}
			return
		}
		select {
		case c.msgs <- msg:
		case <-c.done:
			return
		}
	}
}

// Poll implements mirror.Consumer. Messages come in stream order; one
// redelivered (sequence already handed over) is dropped, so order holds.
func (c *streamConsumer) Poll(ctx context.Context) ([]mirror.Record, error) {
	var first jetstream.Msg
	select {
	case first = <-c.msgs:
	case err := <-c.errc:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	recs := make([]mirror.Record, 0, 64)
	c.mu.Lock()
	defer c.mu.Unlock()
	add := func(msg jetstream.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("cluster %s: stream %s: %w", c.s.cfg.Name, c.s.m.Stream, err)
		}
		seq := md.Sequence.Stream
		if seq < c.next {
			return nil // a redelivery of a message already handed over
		}
		c.next = seq + 1
		r := c.s.codec.record(msg.Subject(), msg.Headers(), msg.Data(), md.Timestamp)
		r.Source = mirror.SourcePosition{SourcePartition: mirror.SourcePartition{Topic: c.tp.Topic, Partition: 0}, Offset: int64(seq)}
		recs = append(recs, r)
		c.pending = append(c.pending, msg)
		return nil
	}
	if err := add(first); err != nil {
		return nil, err
	}
	for len(recs) < c.s.m.PollMaxRecords {
		select {
		case msg := <-c.msgs:
			if err := add(msg); err != nil {
				return nil, err
			}
			continue
		default:
		}
		break
	}
	return recs, nil
}

// Acknowledge implements mirror.Consumer: it acks the last message before
// upTo, which (AckAll) acknowledges every message before it.
func (c *streamConsumer) Acknowledge(ctx context.Context, upTo map[mirror.TopicPartition]int64) error {
	end, ok := upTo[c.tp]
	if !ok {
		return nil
	}
	c.mu.Lock()
	var last jetstream.Msg
	n := 0
	for n < len(c.pending) {
		md, err := c.pending[n].Metadata()
		if err != nil || int64(md.Sequence.Stream) >= end {
			break
		}
		last = c.pending[n]
		n++
	}
	c.pending = append(c.pending[:0:0], c.pending[n:]...)
	c.mu.Unlock()
	if last == nil {
		return nil
	}
	if err := last.Ack(); err != nil {
		return fmt.Errorf("cluster %s: stream %s: ack: %w", c.s.cfg.Name, c.s.m.Stream, err)
	}
	return nil
}

// Close implements mirror.Consumer. The durable consumer stays; its
// unacknowledged messages are redelivered to the next session.
func (c *streamConsumer) Close() error {
	c.iter.Stop()
	close(c.done)
	c.wg.Wait()
	return nil
}

// coreConsumer reads core NATS subjects: at-most-once, since whatever is
// published while it is not subscribed, or more than its buffer holds, is
// lost.
type coreConsumer struct {
	s    *Source
	tp   mirror.TopicPartition
	subs []*nats.Subscription
	msgs chan *nats.Msg

	mu   sync.Mutex
	next int64 // synthetic offset of the next message
}

func (s *Source) consumeCore(tp mirror.TopicPartition, next int64) (*coreConsumer, error) {
	c := &coreConsumer{s: s, tp: tp, next: next, msgs: make(chan *nats.Msg, DefaultCoreBuffer)}
	for _, subj := range s.m.Subjects {
		sub, err := s.nc.ChanSubscribe(subj, c.msgs)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("cluster %s: subscribe to %s: %w", s.cfg.Name, subj, err)
		}
		c.subs = append(c.subs, sub)
	}
	if err := s.nc.Flush(); err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster %s: subscribe: %w", s.cfg.Name, err)
	}
	s.log.Info("subscribed to core NATS (at-most-once)", "subjects", s.m.Subjects, "from_offset", next)
	return c, nil
}

func (c *coreConsumer) received() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

// Poll implements mirror.Consumer.
func (c *coreConsumer) Poll(ctx context.Context) ([]mirror.Record, error) {
	var first *nats.Msg
	select {
	case first = <-c.msgs:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	now := time.Now()
	recs := make([]mirror.Record, 0, 64)
	c.mu.Lock()
	defer c.mu.Unlock()
	add := func(msg *nats.Msg) {
		r := c.s.codec.record(msg.Subject, msg.Header, msg.Data, now)
		r.Source = mirror.SourcePosition{SourcePartition: mirror.SourcePartition{Topic: c.tp.Topic}, Offset: c.next}
		c.next++
		recs = append(recs, r)
	}
	add(first)
	for len(recs) < c.s.m.PollMaxRecords {
		select {
		case msg := <-c.msgs:
			add(msg)
			continue
		default:
		}
		break
	}
	return recs, nil
}

// Acknowledge implements mirror.Consumer; core NATS has nothing to ack.
func (c *coreConsumer) Acknowledge(context.Context, map[mirror.TopicPartition]int64) error {
	return nil
}

// Close implements mirror.Consumer.
func (c *coreConsumer) Close() error {
	for _, sub := range c.subs {
		sub.Unsubscribe()
	}
	return nil
}
