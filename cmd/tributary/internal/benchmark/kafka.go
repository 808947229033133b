package benchmark

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kafka client tuning for throughput.
const (
	// DefaultLinger is how long a kgo producer waits to fill a batch.
	DefaultLinger = 5 * time.Millisecond
	// DefaultBatchMaxBytes is the largest record batch a producer builds.
	DefaultBatchMaxBytes = 1 << 20
	// DefaultMaxBufferedRecords is how many records a producer client holds
	// unacknowledged before Produce blocks.
	DefaultMaxBufferedRecords = 200_000
	// DefaultFetchMaxBytes bounds one fetch response.
	DefaultFetchMaxBytes = 64 << 20
	// DefaultFetchMaxPartitionBytes bounds one partition in a fetch response.
	DefaultFetchMaxPartitionBytes = 16 << 20

	// closeDrainTimeout bounds the wait for a closed producer's promises.
	closeDrainTimeout = 10 * time.Second
)

// Produce sends w.Records records of w.RecordSize bytes to w.Topic on
// brokers from w.Producers concurrent kgo clients, creating the topic with
// w.Partitions partitions if it does not exist. It returns what it measured
// even when it fails or ctx is cancelled; the error then says why the run
// stopped short.
func Produce(ctx context.Context, brokers []string, w Workload) (*Result, error) {
	w = w.withDefaults()
	res := &Result{Op: OpProduce, Peer: labelOr(w.Label, "kafka")}
	if err := ensureTopic(ctx, brokers, w.Topic, w.Partitions); err != nil {
		return res, err
	}

	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(w.Topic),
		kgo.RequiredAcks(kgoAcks(w.Acks)),
		kgo.ProducerLinger(DefaultLinger),
		kgo.ProducerBatchMaxBytes(DefaultBatchMaxBytes),
		kgo.MaxBufferedRecords(DefaultMaxBufferedRecords),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	}
	if w.Acks != AcksAll {
		// kgo refuses idempotent writes without acks=all.
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	clients := make([]*kgo.Client, 0, w.Producers)
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for i := 0; i < w.Producers; i++ {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return res, fmt.Errorf("producer client %d: %w", i, err)
		}
		clients = append(clients, cl)
		if err := cl.Ping(ctx); err != nil {
			return res, fmt.Errorf("producer client %d: reach brokers %v: %w", i, brokers, err)
		}
	}

	// runCtx stops every producer at the first failed record.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	value := payload(w.RecordSize)
	prog := startProgress(w.Progress, "produce "+res.Peer, w.Records)
	var acked, bytes atomic.Int64
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			cancel(fmt.Errorf("produce to %s: %w", w.Topic, err))
			return
		}
		res.Latency.Record(time.Since(r.Timestamp))
		acked.Add(1)
		bytes.Add(int64(len(r.Value)))
		prog.add(1)
	}

	start := time.Now()
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func(cl *kgo.Client, n int64) {
			defer wg.Done()
			for j := int64(0); j < n && runCtx.Err() == nil; j++ {
				cl.Produce(runCtx, &kgo.Record{Value: value, Timestamp: time.Now()}, promise)
			}
			// Flush returns early on cancellation; Close then fails what
			// is still buffered.
			_ = cl.Flush(runCtx)
		}(cl, w.share(i))
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	// Close fails whatever a cancelled run left buffered; the Flush after it
	// waits until every promise has run, so the counts below are final.
	drainCtx, drainDone := context.WithTimeout(context.WithoutCancel(ctx), closeDrainTimeout)
	defer drainDone()
	for _, cl := range clients {
		cl.Close()
		_ = cl.Flush(drainCtx)
	}
	clients = nil
	prog.stop()
	res.Records, res.Bytes = acked.Load(), bytes.Load()
	return res, runError(ctx, runCtx, res, w.Records)
}

// runError decides how a run that stopped with res.Records of want records
// ended: nil when complete, else the parent's cancellation (marking res
// interrupted) or the cause the run cancelled itself with.
func runError(parent, run context.Context, res *Result, want int64) error {
	if err := parent.Err(); err != nil && res.Records < want {
		res.Interrupted = true
		return err
	}
	if cause := context.Cause(run); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if res.Records < want {
		return fmt.Errorf("%s: %d of %d records", res.Op, res.Records, want)
	}
	return nil
}

// Consume reads w.Records records from the start of w.Topic with a plain
// (groupless) kgo consumer. It fails with ErrIdle when no record arrives for
// w.IdleTimeout; like Produce it returns what it measured in every case.
func Consume(ctx context.Context, brokers []string, w Workload) (*Result, error) {
	w = w.withDefaults()
	res := &Result{Op: OpConsume, Peer: labelOr(w.Label, "kafka")}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(w.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(DefaultFetchMaxBytes),
		kgo.FetchMaxPartitionBytes(DefaultFetchMaxPartitionBytes),
	)
	if err != nil {
		return res, fmt.Errorf("consumer client: %w", err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return res, fmt.Errorf("consumer client: reach brokers %v: %w", brokers, err)
	}

	prog := startProgress(w.Progress, "consume "+res.Peer, w.Records)
	defer prog.stop()
	start := time.Now()
	lastRecord := start
	finish := func(err error) (*Result, error) {
		res.Elapsed = lastRecord.Sub(start)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() != nil {
				res.Interrupted = true
				return res, ctx.Err()
			}
		}
		return res, err
	}
	for res.Records < w.Records {
		pollCtx, cancel := context.WithTimeout(ctx, w.IdleTimeout)
		polled := time.Now()
		fetches := cl.PollFetches(pollCtx)
		now := time.Now()
		cancel()
		if ctx.Err() != nil {
			return finish(ctx.Err())
		}
		var fetchErr error
		fetches.EachError(func(topic string, partition int32, err error) {
			if fetchErr == nil && !errors.Is(err, context.DeadlineExceeded) {
				fetchErr = fmt.Errorf("fetch %s/%d: %w", topic, partition, err)
			}
		})
		if fetchErr != nil {
			return finish(fetchErr)
		}
		n := fetches.NumRecords()
		if n == 0 {
			if now.Sub(lastRecord) >= w.IdleTimeout {
				return finish(fmt.Errorf("consume %s after %d of %d records: %w", w.Topic, res.Records, w.Records, ErrIdle))
			}
			continue
		}
		res.Latency.Record(now.Sub(polled))
		fetches.EachRecord(func(r *kgo.Record) {
			res.EndToEnd.Record(now.Sub(r.Timestamp))
			res.Bytes += int64(len(r.Value))
		})
		res.Records += int64(n)
		lastRecord = now
		prog.add(int64(n))
	}
	return finish(nil)
}

// ensureTopic creates topic with the given partitions unless it exists.
func ensureTopic(ctx context.Context, brokers []string, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s with %d partitions: %w", topic, partitions, err)
	}
	return nil
}

func kgoAcks(a Acks) kgo.Acks {
	switch a {
	case AcksNone:
		return kgo.NoAck()
	case AcksLeader:
		return kgo.LeaderAck()
	}
	return kgo.AllISRAcks()
}
