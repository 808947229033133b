package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary/tributary/mirror"
)

// Sink writes records to a JetStream stream (exactly-once within the
// stream's duplicate window, through Nats-Msg-Id) or to core NATS
// (at-most-once). It implements mirror.Sink.
type Sink struct {
	cfg   Config
	m     Mapping
	log   *slog.Logger
	codec *codec
	nc    *nats.Conn
	js    jetstream.JetStream // nil without JetStream (core sink on a server without it)
	kv    jetstream.KeyValue  // nil when checkpoints cannot be kept

	published, duplicates atomic.Int64

	pub *publisher // nil for a core sink
}

// NewSink connects to the servers of cfg and prepares writing as m says:
// into stream m.Stream (created when missing if m.CreateStream), or, with
// no stream, to core NATS. Checkpoints go to the key-value bucket
// m.CheckpointBucket, created when missing; a core sink on a server
// without JetStream keeps none (every session starts at the job's start
// position).
func NewSink(ctx context.Context, cfg Config, m Mapping) (*Sink, error) {
	m.fill()
	cd, err := newCodec(&m)
	if err != nil {
		return nil, err
	}
	nc, err := connect(&cfg)
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, m: m, log: cfg.logger(), codec: cd, nc: nc}
	fail := func(err error) (*Sink, error) {
		nc.Close()
		return nil, err
	}
	s.js, err = jetstream.New(nc)
	if err != nil {
		return fail(fmt.Errorf("cluster %s: JetStream: %w", cfg.Name, err))
	}
	if m.JetStream() {
		if err := s.ensureStream(ctx); err != nil {
			return fail(err)
		}
		if s.pub, err = newPublisher(nc, cfg.Name, m.Stream, DefaultPublishMaxPending, DefaultPublishTimeout); err != nil {
			return fail(err)
		}
	}
	if err := s.openBucket(ctx); err != nil {
		if m.JetStream() || !noJetStream(err) {
			return fail(err)
		}
		s.log.Warn("no JetStream on this NATS server: the core NATS flow keeps no checkpoint", "err", err)
		s.js = nil
	}
	return s, nil
}

// noJetStream reports whether err says the server has no JetStream.
func noJetStream(err error) bool {
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrNoResponders)
}

// ensureStream finds the stream, creates it when missing and allowed, and
// warns when its duplicate window is shorter than the restart budget.
func (s *Sink) ensureStream(ctx context.Context) error {
	st, err := s.js.Stream(ctx, s.m.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) && s.m.CreateStream {
		if len(s.m.Subjects) == 0 {
			return fmt.Errorf("%w: cluster %s: creating stream %s needs its subjects", ErrConfig, s.cfg.Name, s.m.Stream)
		}
		st, err = s.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        s.m.Stream,
			Description: "created by tributary",
			Subjects:    s.m.Subjects,
			Storage:     jetstream.FileStorage,
			Duplicates:  s.m.DuplicateWindow,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = s.js.Stream(ctx, s.m.Stream)
		} else if err == nil {
			s.log.Info("created stream", "stream", s.m.Stream, "subjects", s.m.Subjects, "duplicate_window", s.m.DuplicateWindow)
		}
	}
	if err != nil {
		return fmt.Errorf("cluster %s: stream %s: %w", s.cfg.Name, s.m.Stream, err)
	}
	if w := st.CachedInfo().Config.Duplicates; w < s.m.RestartBudget {
		s.log.Warn("the stream's duplicate window is shorter than the job's restart budget: a flow down longer than the window may write duplicates",
			"stream", s.m.Stream, "duplicate_window", w, "restart_budget", s.m.RestartBudget)
	}
	return nil
}

func (s *Sink) openBucket(ctx context.Context) error {
	kv, err := s.js.KeyValue(ctx, s.m.CheckpointBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      s.m.CheckpointBucket,
			Description: "tributary flow checkpoints",
			History:     1,
			Storage:     jetstream.FileStorage,
		})
		if err != nil {
			// Another flow may have created it meanwhile.
			if kv2, err2 := s.js.KeyValue(ctx, s.m.CheckpointBucket); err2 == nil {
				kv, err = kv2, nil
			}
		}
	}
	if err != nil {
		return fmt.Errorf("cluster %s: checkpoint bucket %s: %w", s.cfg.Name, s.m.CheckpointBucket, err)
	}
	s.kv = kv
	return nil
}

// ClusterID implements mirror.Sink: the job's cluster name identifies a
// NATS system.
func (s *Sink) ClusterID(context.Context) (string, error) { return "", nil }

// Topics implements mirror.Sink. NATS has no topics: subjects come from the
// subject template, so the flow "creates" every target topic, which
// CreateTopic accepts.
func (s *Sink) Topics(context.Context) ([]mirror.TopicInfo, error) { return nil, nil }

// CreateTopic implements mirror.Sink; it has nothing to do.
func (s *Sink) CreateTopic(context.Context, mirror.TopicInfo) error { return nil }

// AddPartitions implements mirror.Sink; it has nothing to do.
func (s *Sink) AddPartitions(context.Context, string, int32) error { return nil }

// MaxRecordBytes implements mirror.Sink: the server's max_payload. Write
// checks each encoded message against it.
func (s *Sink) MaxRecordBytes(context.Context, string) (int, error) {
	return int(s.nc.MaxPayload()), nil
}

// Duplicates returns how many publishes of this sink JetStream acknowledged
// as duplicates.
func (s *Sink) Duplicates() int64 { return s.duplicates.Load() }

// Write implements mirror.Sink.
func (s *Sink) Write(ctx context.Context, b *mirror.Batch) error {
	var err error
	if s.m.JetStream() {
		err = s.writeStream(ctx, b.Records)
	} else {
		err = s.writeCore(ctx, b.Records)
	}
	if err != nil {
		return err
	}
	if b.Checkpoint == nil || s.kv == nil {
		return nil
	}
	return s.saveCheckpoint(ctx, b.Checkpoint)
}

// textPerMessage estimates the header text and reply subject of one
// message, to size the arena of a batch.
const textPerMessage = 192

// encode builds the message of r with its text in a and checks it against
// the server's max_payload.
func (s *Sink) encode(a *msgArena, r *mirror.OutRecord) (*nats.Msg, error) {
	msg := s.codec.messageIn(a, r)
	if n := msgSize(msg); int64(n) > s.nc.MaxPayload() {
		return nil, fmt.Errorf("cluster %s: %w: record from %s offset %d is %d bytes as a NATS message; the server takes at most %d (max_payload)",
			s.cfg.Name, mirror.ErrRecordTooLarge, r.Source.SourcePartition, r.Source.Offset, n, s.nc.MaxPayload())
	}
	return msg, nil
}

// writeStream publishes asynchronously and waits for every PubAck.
func (s *Sink) writeStream(ctx context.Context, recs []mirror.OutRecord) error {
	var a msgArena
	a.grow(len(recs), textPerMessage)
	t, err := s.pub.publish(ctx, len(recs), func(i int) (*nats.Msg, error) {
		msg, err := s.encode(&a, &recs[i])
		if err != nil {
			return nil, err
		}
		msg.Header[HeaderMsgID] = a.value(a.msgID(&recs[i]))
		return msg, nil
	}, &a)
	s.published.Add(t.stored)
	s.duplicates.Add(t.duplicates)
	if m := s.cfg.Metrics; m != nil {
		m.Published.WithLabelValues(s.cfg.Name, s.m.Stream).Add(float64(t.stored))
		m.Duplicates.WithLabelValues(s.cfg.Name, s.m.Stream).Add(float64(t.duplicates))
	}
	if t.duplicates > 0 {
		s.log.Info("JetStream dropped duplicates", "stream", s.m.Stream, "duplicates", t.duplicates, "stored", t.stored)
	}
	return err
}

// writeCore publishes and flushes: the server has then received every
// message, which is all core NATS can say.
func (s *Sink) writeCore(ctx context.Context, recs []mirror.OutRecord) error {
	var a msgArena
	a.grow(len(recs), textPerMessage)
	for i := range recs {
		msg, err := s.encode(&a, &recs[i])
		if err != nil {
			return err
		}
		if err := s.nc.PublishMsg(msg); err != nil {
			return fmt.Errorf("cluster %s: publish to %s: %w", s.cfg.Name, msg.Subject, err)
		}
	}
	fctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, DefaultPublishTimeout)
		defer cancel()
	}
	if err := s.nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("cluster %s: flush: %w", s.cfg.Name, err)
	}
	return nil
}

// checkpointKey is a flow's key in the bucket: its ID ("job/target"),
// which key-value keys allow.
func checkpointKey(flow string) string { return flow }

func (s *Sink) saveCheckpoint(ctx context.Context, cp *mirror.Checkpoint) error {
	data, err := mirror.EncodeCheckpoint(cp)
	if err != nil {
		return fmt.Errorf("cluster %s: encode checkpoint of %s: %w", s.cfg.Name, cp.Flow, err)
	}
	if _, err := s.kv.Put(ctx, checkpointKey(cp.Flow), data); err != nil {
		return fmt.Errorf("cluster %s: write checkpoint of %s to bucket %s: %w", s.cfg.Name, cp.Flow, s.m.CheckpointBucket, err)
	}
	return nil
}

// LoadCheckpoint implements mirror.Sink.
func (s *Sink) LoadCheckpoint(ctx context.Context, flow string) (*mirror.Checkpoint, error) {
	if s.kv == nil {
		return nil, nil
	}
	e, err := s.kv.Get(ctx, checkpointKey(flow))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster %s: read checkpoint of %s from bucket %s: %w", s.cfg.Name, flow, s.m.CheckpointBucket, err)
	}
	cp, err := mirror.DecodeCheckpoint(e.Value())
	if err != nil {
		return nil, fmt.Errorf("cluster %s: checkpoint of %s: %w", s.cfg.Name, flow, err)
	}
	return cp, nil
}

// Close implements mirror.Sink.
func (s *Sink) Close() error {
	if s.pub != nil {
		s.pub.close()
	}
	s.nc.Close()
	return nil
}
