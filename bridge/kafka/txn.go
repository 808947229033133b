package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

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
	s  *Sink
	cl *kgo.Client
}

// newTxnWriter starts the transactional producer and loads its producer ID
// at once: InitProducerId bumps the epoch, which fences every older
// producer with the same transactional ID and aborts its open transaction.
func newTxnWriter(s *Sink) (*txnWriter, error) {
	cl, err := s.txnClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, s.c.errorf(fencedKgo(err), "init transactional producer %s", s.opts.TransactionalID)
	}
	return &txnWriter{s: s, cl: cl}, nil
}

func (s *Sink) txnClient() (*kgo.Client, error) {
	cfg := s.c.cfg
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Bootstrap...),
		kgo.ClientID(cfg.ClientID),
		kgo.TransactionalID(s.opts.TransactionalID),
		kgo.TransactionTimeout(s.opts.TransactionTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(int32(s.opts.MaxBatchBytes)),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordRetries(0), // a failed record fails the transaction; the flow rewinds
	}
	opts = append(opts, s.c.cfg.kgoSecurityOpts()...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, s.c.errorf(err, "transactional client")
	}
	return cl, nil
}

// write commits b's records and checkpoint in one transaction. On any
// error it aborts what it can and replaces the client: the new client's
// InitProducerId aborts whatever of the transaction is still open.
// s.wmu held.
func (w *txnWriter) write(ctx context.Context, b *mirror.Batch, ckPart int32) error {
	s := w.s
	if err := w.cl.BeginTransaction(); err != nil {
		return w.fail(ctx, fencedKgo(err), "begin transaction")
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
	for i := 0; i < n; i++ {
		if err := <-done; err != nil && failed == nil {
			failed = err
		}
	}
	if failed != nil {
		if isTooLarge(failed) {
			failed = fmt.Errorf("%w: %w", mirror.ErrRecordTooLarge, failed)
		}
		return w.fail(ctx, fencedKgo(failed), "produce in transaction")
	}
	if err := w.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return w.fail(ctx, fencedKgo(err), fmt.Sprintf("commit transaction of %d records", len(b.Records)))
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
	if cl, cerr := s.txnClient(); cerr == nil {
		w.cl = cl
	} else {
		s.log.Warn("restarting the transactional producer failed", "err", cerr)
	}
	return s.c.errorf(err, "%s", what)
}

func (w *txnWriter) close() { w.cl.Close() }

// kgoSecurityOpts are the franz-go options for the cluster's TLS and SASL
// settings, mirroring what saramaConfig applies to sarama.
func (c *Config) kgoSecurityOpts() []kgo.Opt { return nil }

// fencedKgo marks franz-go's fencing errors as mirror.ErrFenced.
func fencedKgo(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		return fmt.Errorf("%w: %w", mirror.ErrFenced, err)
	}
	return err
}

func isTooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}
