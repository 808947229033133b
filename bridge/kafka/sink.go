package kafka

import (
	"time"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/IBM/sarama"

	"github.com/tributary/tributary/mirror"
)

// SinkOptions configures a Sink beyond its cluster.
type SinkOptions struct {
	// CheckpointTopic holds the flows' checkpoints. Default
	// DefaultCheckpointTopic.
	CheckpointTopic string
	// CheckpointPartitions is the partition count the checkpoint topic is
	// created with when missing. Default DefaultCheckpointPartitions.
	CheckpointPartitions int32
	// CheckpointWindow is the first window LoadCheckpoint reads back from
	// the end of the checkpoint partition. Default DefaultCheckpointWindow.
	CheckpointWindow int
	// MaxBatchBytes bounds a produce batch per partition and so the
	// largest record the producer sends (sarama's
	// Producer.MaxMessageBytes). Keep it at most the target's
	// max.message.bytes. Default DefaultMaxBatchBytes.
	MaxBatchBytes int
	// TransactionalID, when set, makes the sink transactional (a flow's
	// exactly-once delivery): each Write commits its records and its
	// checkpoint in one transaction under this ID, and NewSink's
	// InitProducerId fences every older producer with the same ID, aborting
	// its open transaction. Keep it fixed for the flow's life.
	TransactionalID string
	// TransactionTimeout is how long the target lets a transaction stay
	// open before aborting it; keep it longer than DeliveryTimeout, which
	// bounds a transactional Write. Default DeliveryTimeout plus
	// TransactionTimeoutMargin (DefaultTransactionTimeout with the default
	// DeliveryTimeout).
	TransactionTimeout time.Duration
	// DeliveryTimeout bounds one Write. Within it the producer retries
	// retriable errors (an unreachable or restarting broker) for as long
	// as it takes, in order; past it the Write fails, the producer and its
	// in-flight retries are torn down before Write returns, and the flow
	// rewinds. Default DefaultDeliveryTimeout.
	DeliveryTimeout time.Duration
}

// DefaultDeliveryTimeout is SinkOptions.DeliveryTimeout's default (Kafka's
// delivery.timeout.ms).
const DefaultDeliveryTimeout = 2 * time.Minute

// producerRetries is the producer's retry count: at up to a second apart,
// longer than any DeliveryTimeout in use.
const producerRetries = 1000

// TransactionTimeoutMargin is how much longer than DeliveryTimeout the
// default TransactionTimeout is, so that the target never aborts the
// transaction of a Write still within its delivery timeout.
const TransactionTimeoutMargin = time.Minute

// DefaultTransactionTimeout is SinkOptions.TransactionTimeout's default
// with the default DeliveryTimeout (3 minutes: within the 15-minute
// transaction.max.timeout.ms of Apache Kafka and of Tributary's broker).
const DefaultTransactionTimeout = DefaultDeliveryTimeout + TransactionTimeoutMargin

func (o *SinkOptions) fill() {
	if o.CheckpointTopic == "" {
		o.CheckpointTopic = DefaultCheckpointTopic
	}
	if o.CheckpointPartitions <= 0 {
		o.CheckpointPartitions = DefaultCheckpointPartitions
	}
	if o.CheckpointWindow <= 0 {
		o.CheckpointWindow = DefaultCheckpointWindow
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.DeliveryTimeout <= 0 {
		o.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if o.TransactionTimeout <= 0 {
		o.TransactionTimeout = o.DeliveryTimeout + TransactionTimeoutMargin
	}
}

// Sink writes to one Kafka-protocol cluster with sarama's idempotent
// producer. It implements mirror.Sink. Write calls are serialized; the
// other methods are safe for concurrent use.
type Sink struct {
	c    *cluster
	opts SinkOptions
	log  *slog.Logger

	prodClient sarama.Client // the producer's client; nil after discard until the next Write
	prodLimit  int           // its Producer.MaxMessageBytes

	wmu      sync.Mutex // serializes Write; guards the fields below
	producer sarama.AsyncProducer
	msgs     []sarama.ProducerMessage // reused while no producer holds them
	ptrs     []*sarama.ProducerMessage
	hdrs     []sarama.RecordHeader
	closed   bool
	retired  sync.WaitGroup // discarded producers still shutting down

	txn *txnWriter // set when transactional (SinkOptions.TransactionalID)

	ckMu    sync.Mutex // guards ckParts
	ckParts int32      // checkpoint topic's partition count; 0 unknown
}

var _ mirror.Sink = (*Sink)(nil)

// NewSink connects to cfg's cluster. The producer starts with the first
// Write; the checkpoint topic is created with the first Write or
// LoadCheckpoint that needs it.
func NewSink(cfg Config, opts SinkOptions) (*Sink, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	opts.fill()
	c, err := newCluster(cfg)
	if err != nil {
		return nil, err
	}
	s := &Sink{c: c, opts: opts, log: c.log, prodLimit: opts.MaxBatchBytes}
	pc, err := sarama.NewClient(cfg.Bootstrap, s.producerConfig(opts.MaxBatchBytes))
	if err != nil {
		c.close()
		return nil, c.errorf(err, "producer client: connect to %v", cfg.Bootstrap)
	}
	s.prodClient = pc
	if opts.TransactionalID != "" {
		// Fence older instances now, before the flow reads its checkpoint:
		// their open transactions are aborted and they can commit nothing
		// more.
		if s.txn, err = newTxnWriter(s); err != nil {
			s.Close()
			return nil, err
		}
		s.log.Info("transactional producer ready; older instances fenced", "transactional_id", opts.TransactionalID)
	}
	return s, nil
}

// producerConfig is the producers' sarama config with batch limit limit.
func (s *Sink) producerConfig(limit int) *sarama.Config {
	conf := s.c.cfg.saramaConfig()
	conf.Producer.MaxMessageBytes = limit
	// Retry without a count, bounded by DeliveryTimeout instead: a record
	// that gave up while later ones of its partition were still retrying
	// would let those land first, and the rewind would then write it after
	// them. Idempotence keeps retries in order and free of duplicates.
	// (sarama keeps per-partition state sized by Retry.Max, so "no count"
	// is a count that outlasts DeliveryTimeout at the backoff below.)
	conf.Producer.Retry.Max = producerRetries
	conf.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return min(100*time.Millisecond<<min(retries, 4), time.Second)
	}
	// The same for finding a partition's leader: sarama fails a message at
	// once, outside its retry count, when a metadata refresh gives up, and
	// later messages of the partition may then land before it.
	// Metadata.Timeout bounds it (and NewClient against a target that is
	// down) by DeliveryTimeout, by which time the Write gives up anyway.
	prev := conf.Metadata.Retry.BackoffFunc
	conf.Metadata.Retry.Max = producerRetries
	conf.Metadata.Timeout = s.opts.DeliveryTimeout
	conf.Metadata.Retry.BackoffFunc = func(retries, max int) time.Duration {
		if prev != nil && prev(retries, max) == 0 {
			return 0 // refused credentials: fail at once (security.go)
		}
		return min(100*time.Millisecond<<min(retries, 4), time.Second)
	}
	return conf
}

// ClusterID returns the cluster ID from Metadata (v2+), "" if none.
func (s *Sink) ClusterID(ctx context.Context) (string, error) { return s.c.clusterID(ctx) }

// Topics lists every topic with its partition count (no configs).
func (s *Sink) Topics(ctx context.Context) ([]mirror.TopicInfo, error) {
	return s.c.topics(ctx, false)
}

// CreateTopic creates t with t.Partitions partitions, t.Configs, and the
// cluster's default replication factor; ErrTopicExists (wrapped) if it
// exists.
func (s *Sink) CreateTopic(ctx context.Context, t mirror.TopicInfo) error {
	configs := make(map[string]*string, len(t.Configs))
	for k, v := range t.Configs {
		configs[k] = &v
	}
	err := s.c.call(ctx, func() error {
		return s.c.admin.CreateTopic(t.Name, &sarama.TopicDetail{
			NumPartitions: t.Partitions, ReplicationFactor: -1, ConfigEntries: configs,
		}, false)
	})
	if errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return s.c.errorf(mirror.ErrTopicExists, "create topic %s", t.Name)
	}
	if err != nil {
		return s.c.errorf(err, "create topic %s with %d partitions", t.Name, t.Partitions)
	}
	s.log.Info("created topic", "topic", t.Name, "partitions", t.Partitions)
	return nil
}

// AddPartitions grows topic to total partitions.
func (s *Sink) AddPartitions(ctx context.Context, topic string, total int32) error {
	err := s.c.call(ctx, func() error { return s.c.admin.CreatePartitions(topic, total, nil, false) })
	if err != nil {
		return s.c.errorf(err, "grow topic %s to %d partitions", topic, total)
	}
	s.log.Info("added partitions", "topic", topic, "partitions", total)
	return nil
}

// MaxRecordBytes returns the topic's max.message.bytes, capped by
// SinkOptions.MaxBatchBytes, less BatchOverhead; 0 when the cluster does
// not report it. It is cached for Config.MetadataMaxAge.
func (s *Sink) MaxRecordBytes(ctx context.Context, topic string) (int, error) {
	cfgs, err := s.c.topicConfigs(ctx, []string{topic})
	if err != nil {
		return 0, err
	}
	limit := cfgs[topic].maxMsg
	if limit <= 0 {
		return 0, nil
	}
	limit = min(limit, s.opts.MaxBatchBytes) - BatchOverhead
	return max(limit, 0), nil
}

// Write produces b's records, each to its Topic and Partition, waits until
// every one was acknowledged, then produces b.Checkpoint (if any) and waits
// for it. After any error, the producer is discarded and the next Write
// starts another.
func (s *Sink) Write(ctx context.Context, b *mirror.Batch) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return fmt.Errorf("cluster %s: write: %w", s.c.cfg.Name, ErrClosed)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.DeliveryTimeout)
	defer cancel()
	var ckPart int32
	if b.Checkpoint != nil {
		n, err := s.checkpointPartitions(ctx)
		if err != nil {
			return err
		}
		ckPart = checkpointPartition(b.Checkpoint.Flow, n)
	}
	if s.txn != nil {
		return s.txn.write(ctx, b, ckPart)
	}
	if err := s.fitBatchLimit(ctx, b.Records); err != nil {
		return err
	}
	p, err := s.activeProducer()
	if err != nil {
		return err
	}
	if len(b.Records) > 0 {
		if err := s.produce(ctx, p, s.prepare(b.Records)); err != nil {
			return err
		}
	}
	if b.Checkpoint == nil {
		return nil
	}
	val, err := mirror.EncodeCheckpoint(b.Checkpoint)
	if err != nil {
		return s.c.errorf(err, "encode checkpoint of flow %s", b.Checkpoint.Flow)
	}
	ck := []*sarama.ProducerMessage{{
		Topic: s.opts.CheckpointTopic, Partition: ckPart,
		Key: sarama.StringEncoder(b.Checkpoint.Flow), Value: sarama.ByteEncoder(val),
		Timestamp: b.Checkpoint.Time,
	}}
	if err := s.produce(ctx, p, ck); err != nil {
		return fmt.Errorf("checkpoint of flow %s: %w", b.Checkpoint.Flow, err)
	}
	return nil
}

// fitBatchLimit makes the producer's batch limit (sarama's
// Producer.MaxMessageBytes, which bounds a whole batch per partition) no
// larger than the smallest max.message.bytes of the topics written, so a
// batch of small records is never refused as a whole by a topic with a low
// limit. Changing it replaces the producer and its client. s.wmu held.
func (s *Sink) fitBatchLimit(ctx context.Context, recs []mirror.OutRecord) error {
	limit, err := s.batchLimit(ctx, recs)
	if err != nil {
		return err
	}
	if limit == 0 || limit == s.prodLimit {
		return nil
	}
	s.discard() // the next producer is made with the new limit
	s.prodLimit = limit
	s.log.Info("producer batch limit follows the topics' max.message.bytes", "max_bytes", limit)
	return nil
}

// batchLimit is the smallest max.message.bytes of the topics recs are
// written to, at most SinkOptions.MaxBatchBytes; 0 when recs is empty (a
// write of a checkpoint alone keeps the current limit).
func (s *Sink) batchLimit(ctx context.Context, recs []mirror.OutRecord) (int, error) {
	limit := s.opts.MaxBatchBytes
	var topics []string
	seen := make(map[string]bool)
	for i := range recs {
		if t := recs[i].Topic; !seen[t] {
			seen[t] = true
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		return 0, nil
	}
	cfgs, err := s.c.topicConfigs(ctx, topics)
	if err != nil {
		return 0, err
	}
	for _, t := range topics {
		if m := cfgs[t].maxMsg; m > 0 && m < limit {
			limit = m
		}
	}
	return limit, nil
}

// activeProducer returns the current producer, starting one if needed.
// s.wmu held.
func (s *Sink) activeProducer() (sarama.AsyncProducer, error) {
	if s.producer != nil {
		return s.producer, nil
	}
	if s.prodClient == nil {
		pc, err := sarama.NewClient(s.c.cfg.Bootstrap, s.producerConfig(s.prodLimit))
		if err != nil {
			return nil, s.c.errorf(err, "producer client: connect to %v", s.c.cfg.Bootstrap)
		}
		s.prodClient = pc
	}
	p, err := sarama.NewAsyncProducerFromClient(s.prodClient)
	if err != nil {
		return nil, s.c.errorf(fenced(err), "start producer")
	}
	s.producer = p
	return p, nil
}

// discard tears the current producer down: it closes the producer's
// client so that retries in flight fail at once, and waits until the
// producer has drained, so no record of a failed Write can land after
// Write returned (and after the flow's rewind resends it). The next Write
// starts a new client and producer. Its messages may have been in use, so
// the reused buffers are dropped too. s.wmu held.
func (s *Sink) discard() {
	p := s.producer
	s.producer = nil
	s.msgs, s.ptrs, s.hdrs = nil, nil, nil
	if p != nil {
		p.AsyncClose()
	}
	if s.prodClient != nil {
		s.prodClient.Close()
		s.prodClient = nil
	}
	if p == nil {
		return
	}
	drained := make(chan struct{})
	s.retired.Add(1)
	go func() {
		defer s.retired.Done()
		defer close(drained)
		succ, errs := p.Successes(), p.Errors()
		for succ != nil || errs != nil {
			select {
			case _, ok := <-succ:
				if !ok {
					succ = nil
				}
			case _, ok := <-errs:
				if !ok {
					errs = nil
				}
			}
		}
	}()
	select {
	case <-drained:
	case <-time.After(30 * time.Second):
		s.log.Warn("a discarded producer is still draining after 30s")
	}
}

// prepare turns records into producer messages in buffers reused across
// Writes. s.wmu held.
func (s *Sink) prepare(recs []mirror.OutRecord) []*sarama.ProducerMessage {
	nh := 0
	for i := range recs {
		nh += len(recs[i].Headers)
	}
	if cap(s.msgs) < len(recs) {
		s.msgs = make([]sarama.ProducerMessage, len(recs))
		s.ptrs = make([]*sarama.ProducerMessage, len(recs))
	}
	if cap(s.hdrs) < nh {
		s.hdrs = make([]sarama.RecordHeader, nh)
	}
	msgs, ptrs, hdrs := s.msgs[:len(recs)], s.ptrs[:len(recs)], s.hdrs[:nh]
	for i := range recs {
		r := &recs[i]
		m := &msgs[i]
		*m = sarama.ProducerMessage{Topic: r.Topic, Partition: r.Partition, Timestamp: r.Timestamp}
		// A nil Encoder is a null key or value; a ByteEncoder of an empty
		// slice is an empty one.
		if r.Key != nil {
			m.Key = sarama.ByteEncoder(r.Key)
		}
		if r.Value != nil {
			m.Value = sarama.ByteEncoder(r.Value)
		}
		if n := len(r.Headers); n > 0 {
			h := hdrs[:n:n]
			hdrs = hdrs[n:]
			for j, rh := range r.Headers {
				h[j] = sarama.RecordHeader{Key: []byte(rh.Key), Value: rh.Value}
			}
			m.Headers = h
		}
		ptrs[i] = m
	}
	return ptrs
}

// produce sends msgs and waits for as many acknowledgements. On any
// failure it discards the producer and returns the first error. s.wmu held.
func (s *Sink) produce(ctx context.Context, p sarama.AsyncProducer, msgs []*sarama.ProducerMessage) error {
	var (
		sent, acked int
		firstErr    *sarama.ProducerError
		failed      int
	)
	input, succ, errs := p.Input(), p.Successes(), p.Errors()
	for acked < len(msgs) {
		in := input
		var next *sarama.ProducerMessage
		if sent < len(msgs) {
			next = msgs[sent]
		} else {
			in = nil
		}
		select {
		case in <- next:
			sent++
		case <-succ:
			acked++
		case pe := <-errs:
			acked++
			failed++
			if firstErr == nil {
				firstErr = pe
			}
		case <-ctx.Done():
			s.discard()
			return s.c.errorf(ctx.Err(), "write (%d of %d records acknowledged)", acked, len(msgs))
		}
	}
	if firstErr == nil {
		return nil
	}
	s.discard()
	m := firstErr.Msg
	tp := mirror.TopicPartition{Topic: m.Topic, Partition: m.Partition}
	if tooLarge(firstErr.Err) {
		return s.c.errorf(fmt.Errorf("%w: %w", mirror.ErrRecordTooLarge, firstErr.Err),
			"write %s: record of %d bytes (%d of %d records failed)", tp, messageSize(m), failed, len(msgs))
	}
	return s.c.errorf(fenced(firstErr.Err), "write %s (%d of %d records failed)", tp, failed, len(msgs))
}

// fenced marks the errors by which a target says a newer producer with our
// transactional ID exists, so the flow stops instead of retrying.
func fenced(err error) error {
	if errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch) {
		return fmt.Errorf("%w: %w", mirror.ErrFenced, err)
	}
	return err
}

// tooLarge reports whether err refuses a record for its size: the
// target's MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE, or sarama's own
// Producer.MaxMessageBytes check.
func tooLarge(err error) bool {
	var ce sarama.ConfigurationError
	return errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrMessageSetSizeTooLarge) ||
		(errors.As(err, &ce) && len(ce) > 0 && strings.Contains(string(ce), "larger than"))
}

// messageSize is a record's key, value and headers in bytes.
func messageSize(m *sarama.ProducerMessage) int {
	n := 0
	if m.Key != nil {
		n += m.Key.Length()
	}
	if m.Value != nil {
		n += m.Value.Length()
	}
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Close flushes and closes the producer, waits for discarded ones, and
// closes both clients.
func (s *Sink) Close() error {
	s.wmu.Lock()
	if s.closed {
		s.wmu.Unlock()
		return nil
	}
	s.closed = true
	p := s.producer
	s.producer = nil
	s.wmu.Unlock()
	var errs []error
	if p != nil {
		if err := p.Close(); err != nil {
			errs = append(errs, s.c.errorf(err, "close producer"))
		}
	}
	s.retired.Wait()
	if s.txn != nil {
		s.txn.close()
	}
	if s.prodClient != nil {
		if err := s.prodClient.Close(); err != nil {
			errs = append(errs, s.c.errorf(err, "close producer client"))
		}
	}
	if err := s.c.close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
