package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/tributary/tributary/mirror"
)

// txnWriter is the transactional half of a Sink (exactly-once delivery):
// each Write's records and checkpoint commit in one transaction.
//
// It uses franz-go's transactional producer rather than sarama's: sarama's
// transaction manager races with its own retry path when a producer is
// fenced (go test -race shows it), and fencing is exactly the path
// exactly-once depends on. Everything else in this package is sarama.
type txnWriter struct {
	s     *Sink
	cl    *kgo.Client
	limit int // cl's ProducerBatchMaxBytes

	// begun is when the open (or last) transaction began; a fencing error
	// for a transaction older than the transaction timeout is the target
	// aborting it, not a newer instance (see fencedOrExpired).
	begun time.Time

	// beforeCommit, when set (by tests), runs after the transaction's
	// records are flushed and before it commits.
	beforeCommit func(context.Context)
}

// newTxnWriter starts the transactional producer and loads its producer ID
// at once: InitProducerId bumps the epoch, which fences every older
// producer with the same transactional ID and aborts its open transaction.
func newTxnWriter(s *Sink) (*txnWriter, error) {
	if s.opts.TransactionTimeout <= s.opts.DeliveryTimeout {
		s.log.Warn("the transaction timeout is not longer than the delivery timeout: a slow write may outlive its transaction",
			"transaction_timeout", s.opts.TransactionTimeout, "delivery_timeout", s.opts.DeliveryTimeout)
	}
	limit := s.opts.MaxBatchBytes
	cl, err := s.txnClient(limit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, s.c.errorf(s.c.cfg.kgoAuthFailure(fencedKgo(err)), "init transactional producer %s", s.opts.TransactionalID)
	}
	return &txnWriter{s: s, cl: cl, limit: limit}, nil
}

// txnClient makes a transactional client whose batches per partition are
// at most limit bytes.
func (s *Sink) txnClient(limit int) (*kgo.Client, error) {
	cfg := s.c.cfg
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Bootstrap...),
		kgo.ClientID(cfg.ClientID),
		kgo.TransactionalID(s.opts.TransactionalID),
		kgo.TransactionTimeout(s.opts.TransactionTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(int32(limit)),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordRetries(0), // a failed record fails the transaction; the flow rewinds
	}
	opts = append(opts, cfg.kgoSecurityOpts()...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, s.c.errorf(err, "transactional client")
	}
	return cl, nil
}

// fitBatchLimit makes the client's batch limit the smallest
// max.message.bytes of the topics b writes to (at most
// SinkOptions.MaxBatchBytes), as Sink.fitBatchLimit does for the sarama
// producer: a topic with a low limit must not refuse a whole batch of
// small records. Changing the limit replaces the client; no transaction
// is open. s.wmu held.
func (w *txnWriter) fitBatchLimit(ctx context.Context, b *mirror.Batch) error {
	s := w.s
	limit, err := s.batchLimit(ctx, b.Records)
	if err != nil {
		return err
	}
	if limit == 0 || limit == w.limit {
		return nil
	}
	cl, err := s.txnClient(limit)
	if err != nil {
		return err
	}
	// The old client has no open transaction between writes; closing it
	// leaves its producer ID to the new one, whose InitProducerId bumps
	// the epoch with its first produce.
	w.cl.Close()
	w.cl, w.limit = cl, limit
	s.log.Info("transactional batch limit follows the topics' max.message.bytes", "max_bytes", limit)
	return nil
}

// write commits b's records and checkpoint in one transaction. On any
// error it aborts what it can and replaces the client: the new client's
// InitProducerId aborts whatever of the transaction is still open.
// s.wmu held.
func (w *txnWriter) write(ctx context.Context, b *mirror.Batch, ckPart int32) error {
	s := w.s
	if err := w.fitBatchLimit(ctx, b); err != nil {
		return err
	}
	w.begun = time.Now()
	if err := w.cl.BeginTransaction(); err != nil {
		return w.fail(ctx, w.fencedOrExpired(err), "begin transaction")
	}
	var failed error
	done := make(chan error, len(b.Records)+1)
	for i := range b.Records {
		r := &b.Records[i]
		rec := &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
		if n := len(r.Headers); n > 0 {
			rec.Headers = make([]kgo.RecordHeader, n)
			for j, h := range r.Headers {
				rec.Headers[j] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
			}
		}
		w.cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			if err != nil {
				done <- fmt.Errorf("%s-%d: %w", r.Topic, r.Partition, err)
				return
			}
			done <- nil
		})
	}
	if b.Checkpoint != nil {
		val, err := mirror.EncodeCheckpoint(b.Checkpoint)
		if err != nil {
			return w.fail(ctx, err, "encode checkpoint of flow "+b.Checkpoint.Flow)
		}
		w.cl.Produce(ctx, &kgo.Record{Topic: s.opts.CheckpointTopic, Partition: ckPart, Key: []byte(b.Checkpoint.Flow),
			Value: val, Timestamp: b.Checkpoint.Time}, func(r *kgo.Record, err error) {
			if err != nil {
				done <- fmt.Errorf("checkpoint %s-%d: %w", r.Topic, r.Partition, err)
				return
			}
			done <- nil
		})
	}
	n := len(b.Records)
	if b.Checkpoint != nil {
		n++
	}
	if err := w.cl.Flush(ctx); err != nil {
		return w.fail(ctx, err, "flush transaction")
	}
	if w.beforeCommit != nil {
		w.beforeCommit(ctx)
	}
	for i := 0; i < n; i++ {
		if err := <-done; err != nil && failed == nil {
			failed = err
		}
	}
	if failed != nil {
		if isTooLarge(failed) {
			failed = fmt.Errorf("%w: %w", mirror.ErrRecordTooLarge, failed)
		}
		return w.fail(ctx, w.fencedOrExpired(failed), "produce in transaction")
	}
	if err := w.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return w.fail(ctx, w.fencedOrExpired(err), fmt.Sprintf("commit transaction of %d records", len(b.Records)))
	}
	return nil
}

// fail aborts the open transaction if it can, replaces the client, and
// returns err with context.
func (w *txnWriter) fail(ctx context.Context, err error, what string) error {
	s := w.s
	actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w.cl.AbortBufferedRecords(actx)
	if aerr := w.cl.EndTransaction(actx, kgo.TryAbort); aerr != nil {
		s.log.Debug("abort after a failed transactional write", "err", aerr)
	}
	w.cl.Close()
	// A fresh client for the next write; its producer ID loads (and its
	// InitProducerId aborts anything left open) with its first produce. A
	// fenced flow stops, and the fresh client is only closed.
	if cl, cerr := s.txnClient(w.limit); cerr == nil {
		w.cl = cl
	} else {
		s.log.Warn("restarting the transactional producer failed", "err", cerr)
	}
	return s.c.errorf(s.c.cfg.kgoAuthFailure(err), "%s", what)
}

// fencedOrExpired classifies err, an error of the open transaction. A
// fencing error (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH) means a newer
// instance took over — mirror.ErrFenced, the flow stops — unless the
// transaction is older than the transaction timeout: then the target
// aborted it and bumped the epoch itself, and the error is a plain,
// retriable one (fail replaces the client and the flow rewinds).
func (w *txnWriter) fencedOrExpired(err error) error {
	if !isFencedKgo(err) {
		return err
	}
	open := time.Since(w.begun)
	if open <= w.s.opts.TransactionTimeout {
		return fencedKgo(err)
	}
	w.s.log.Warn("the target aborted a transaction open longer than its timeout; retrying with a new producer",
		"transactional_id", w.s.opts.TransactionalID, "open_for", open.Round(time.Millisecond),
		"transaction_timeout", w.s.opts.TransactionTimeout)
	return fmt.Errorf("%w: transaction open for %v, past the transaction timeout %v: %w",
		ErrTransactionExpired, open.Round(time.Millisecond), w.s.opts.TransactionTimeout, err)
}

func (w *txnWriter) close() { w.cl.Close() }

// ErrTransactionExpired is returned (wrapped) by an exactly-once Write
// whose transaction the target aborted for staying open longer than
// SinkOptions.TransactionTimeout. It is retriable: the next Write uses a
// new producer.
var ErrTransactionExpired = errors.New("transaction expired on the target")

// kgoSecurityOpts are the franz-go options for the cluster's TLS and SASL
// settings, mirroring what applySecurity sets on sarama: connections go
// through the same dialer (TLS handshake with c's tls.Config, refused
// certificates and credentials recorded as *AuthError), and franz-go runs
// the SASL exchange. c has been filled.
func (c *Config) kgoSecurityOpts() []kgo.Opt {
	if c.TLS == nil && c.SASL == nil {
		return nil
	}
	d := &dialer{cfg: c, net: net.Dialer{Timeout: kgoDialTimeout, KeepAlive: kgoKeepAlive}}
	opts := []kgo.Opt{kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		return d.Dial(network, host)
	})}
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case SASLPlain:
			opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()))
		case SASLScramSHA256:
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()))
		case SASLScramSHA512:
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()))
		}
	}
	return opts
}

// Dial settings of the transactional client (franz-go's defaults).
const (
	kgoDialTimeout = 10 * time.Second
	kgoKeepAlive   = 30 * time.Second
)

// kgoAuthFailure returns the *AuthError that err, an error of a franz-go
// client of c, stands for, or err itself. The dialer records refusals it
// sees on the wire (TLS, a connection closed in answer to
// SaslAuthenticate); franz-go itself reports a SaslAuthenticate error code
// and a SCRAM server signature that does not verify. No password is
// involved in any of these errors.
func (c *Config) kgoAuthFailure(err error) error {
	if err == nil || c.sec == nil {
		return err
	}
	if ae := c.authFailure(err); ae != nil {
		return ae
	}
	if ae := c.sec.refused.Load(); ae != nil {
		return ae
	}
	if c.SASL == nil {
		return err
	}
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		// franz-go words it "<kerr.Error>: <broker's message>".
		reason := "wrong credentials"
		msg, code := err.Error(), kerr.SaslAuthenticationFailed.Error()+": "
		if i := strings.Index(msg, code); i >= 0 {
			reason += " (broker: " + msg[i+len(code):] + ")"
		}
		return c.sec.refuse(&AuthError{Cluster: c.Name, Stage: c.saslStage(), Reason: reason, Err: kerr.SaslAuthenticationFailed})
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return c.sec.refuse(&AuthError{Cluster: c.Name, Stage: c.saslStage(),
			Reason: fmt.Sprintf("the broker does not enable mechanism %s", c.SASL.Mechanism), Err: kerr.UnsupportedSaslMechanism})
	}
	return err
}

// isFencedKgo reports whether err is one of franz-go's fencing errors.
func isFencedKgo(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

// fencedKgo marks franz-go's fencing errors as mirror.ErrFenced.
func fencedKgo(err error) error {
	if isFencedKgo(err) {
		return fmt.Errorf("%w: %w", mirror.ErrFenced, err)
	}
	return err
}

func isTooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}
