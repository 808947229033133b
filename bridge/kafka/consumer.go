package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/IBM/sarama"

	"github.com/tributary/tributary/mirror"
)

// consumer implements mirror.Consumer over sarama partition consumers. One
// goroutine per partition turns messages into mirror.Records and hands them
// over in slices; Poll merges slices of all partitions.
type consumer struct {
	cfg    Config
	log    *slog.Logger
	client sarama.Client
	sc     sarama.Consumer

	batches chan []mirror.Record
	failed  chan struct{} // closed with err set, once
	err     error
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup

	failOnce  sync.Once
	closeOnce sync.Once
	closeErr  error
}

var _ mirror.Consumer = (*consumer)(nil)

// forwardMaxRecords bounds one partition's slice, so that one busy
// partition does not starve the others within a Poll.
const forwardMaxRecords = 2048

func newConsumer(cfg Config, log *slog.Logger, from map[mirror.TopicPartition]int64) (*consumer, error) {
	client, err := sarama.NewClient(cfg.Bootstrap, cfg.saramaConfig())
	if err != nil {
		return nil, cfg.errorf(err, "consume: connect to %v", cfg.Bootstrap)
	}
	sc, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		client.Close()
		return nil, cfg.errorf(err, "consume")
	}
	c := &consumer{
		cfg:     cfg,
		log:     log,
		client:  client,
		sc:      sc,
		batches: make(chan []mirror.Record, len(from)+1),
		failed:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	var pcs []sarama.PartitionConsumer
	for tp, off := range from {
		pc, err := sc.ConsumePartition(tp.Topic, tp.Partition, off)
		if err != nil {
			for _, pc := range pcs {
				pc.AsyncClose()
				drain(pc)
			}
			sc.Close()
			client.Close()
			return nil, cfg.errorf(err, "consume %s from offset %d", tp, off)
		}
		pcs = append(pcs, pc)
		sp := mirror.SourcePartition{Cluster: cfg.Name, Topic: tp.Topic, Partition: tp.Partition}
		c.wg.Add(1)
		go c.forward(pc, sp)
	}
	return c, nil
}

// drain empties a closing partition consumer's channels until sarama
// closes them, so none of its goroutines stays blocked.
func drain(pc sarama.PartitionConsumer) {
	for range pc.Messages() {
	}
	for range pc.Errors() {
	}
}

func (c *consumer) fail(err error) {
	c.failOnce.Do(func() {
		c.err = err
		close(c.failed)
	})
}

// forward moves one partition's messages to c.batches until Close, or until
// sarama gives the partition up.
func (c *consumer) forward(pc sarama.PartitionConsumer, sp mirror.SourcePartition) {
	defer c.wg.Done()
	defer func() {
		pc.AsyncClose()
		drain(pc)
	}()
	msgs, errs := pc.Messages(), pc.Errors()
	lastErr := error(nil)
	for {
		select {
		case <-c.done:
			return
		case cerr, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// sarama retries these itself; it closes Messages when it
			// gives up (offset out of range, retries exhausted). A
			// refused authentication cannot heal: fail at once.
			if ae := c.cfg.authFailure(cerr.Err); ae != nil {
				c.fail(ae)
				return
			}
			lastErr = cerr.Err
			c.log.Warn("consume error", "topic", sp.Topic, "partition", sp.Partition, "err", cerr.Err)
		case m, ok := <-msgs:
			if !ok {
				if lastErr == nil {
					lastErr = errors.New("closed by sarama")
				}
				c.fail(fmt.Errorf("cluster %s: consume %s: partition consumer stopped: %w", c.cfg.Name, sp, lastErr))
				return
			}
			n := len(msgs) + 1
			if n > forwardMaxRecords {
				n = forwardMaxRecords
			}
			recs := make([]mirror.Record, 1, n)
			convert(&recs[0], m, sp)
		more:
			for len(recs) < forwardMaxRecords {
				select {
				case m, ok := <-msgs:
					if !ok {
						break more // reported on the next turn
					}
					recs = append(recs, mirror.Record{})
					convert(&recs[len(recs)-1], m, sp)
				default:
					break more
				}
			}
			select {
			case c.batches <- recs:
			case <-c.done:
				return
			}
		}
	}
}

// convert fills r from m. Keys, values and header values alias sarama's
// fetch buffer, which is never reused; nil stays nil and empty stays empty.
func convert(r *mirror.Record, m *sarama.ConsumerMessage, sp mirror.SourcePartition) {
	r.Key = m.Key
	r.Value = m.Value
	r.Timestamp = m.Timestamp
	r.Source = mirror.SourcePosition{SourcePartition: sp, Offset: m.Offset}
	if len(m.Headers) > 0 {
		r.Headers = make([]mirror.Header, len(m.Headers))
		for i, h := range m.Headers {
			r.Headers[i] = mirror.Header{Key: string(h.Key), Value: h.Value}
		}
	}
}

// Poll returns the records ready now, up to Config.PollMaxRecords (a
// partition's slice is never split), waiting only while there are none.
func (c *consumer) Poll(ctx context.Context) ([]mirror.Record, error) {
	var out []mirror.Record
	select {
	case out = <-c.batches:
	default:
		select {
		case out = <-c.batches:
		case <-c.failed:
			return nil, c.err
		case <-c.done:
			return nil, fmt.Errorf("cluster %s: poll: %w", c.cfg.Name, ErrClosed)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for len(out) < c.cfg.PollMaxRecords {
		select {
		case more := <-c.batches:
			out = append(out, more...)
		default:
			return out, nil
		}
	}
	return out, nil
}

// Acknowledge does nothing: a Kafka source keeps no state of its readers.
func (c *consumer) Acknowledge(ctx context.Context, upTo map[mirror.TopicPartition]int64) error {
	return nil
}

// Close stops every partition consumer and closes the consumer's client.
func (c *consumer) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.wg.Wait()
		if err := c.sc.Close(); err != nil { // closes nothing but metrics for a borrowed client
			c.closeErr = fmt.Errorf("cluster %s: close consumer: %w", c.cfg.Name, err)
		}
		if err := c.client.Close(); err != nil && c.closeErr == nil {
			c.closeErr = fmt.Errorf("cluster %s: close consumer client: %w", c.cfg.Name, err)
		}
	})
	return c.closeErr
}
