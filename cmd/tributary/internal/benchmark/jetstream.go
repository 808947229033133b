package benchmark

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream client tuning.
const (
	// DefaultPublishWindow is how many async publishes one connection keeps
	// unacknowledged.
	DefaultPublishWindow = 4096
	// DefaultFetchBatch is how many messages one pull Fetch asks for.
	DefaultFetchBatch = 4096
	// DefaultJetStreamStartTimeout bounds how long StartJetStream waits for
	// the embedded server to accept connections.
	DefaultJetStreamStartTimeout = 10 * time.Second

	// publishAckTimeout makes every async publish resolve even if its ack
	// never comes, so a run cannot hang on a lost ack.
	publishAckTimeout = 30 * time.Second
)

// JetStreamServer is an embedded nats-server with file-backed JetStream.
type JetStreamServer struct {
	srv *server.Server
}

// StartJetStream starts a nats-server in this process on a random
// 127.0.0.1 port, with JetStream storing its files under storeDir.
func StartJetStream(storeDir string) (*JetStreamServer, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "tributary-bench",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   storeDir,
	})
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(DefaultJetStreamStartTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats-server: not accepting connections after %s", DefaultJetStreamStartTimeout)
	}
	return &JetStreamServer{srv: srv}, nil
}

// URL is the nats:// address clients connect to.
func (s *JetStreamServer) URL() string { return s.srv.ClientURL() }

// Shutdown stops the server and waits until it has.
func (s *JetStreamServer) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// streamName turns a topic into a valid stream name (no '.', '*', '>' or
// whitespace).
func streamName(topic string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\n', '/', '\\':
			return '_'
		}
		return r
	}, topic)
}

// connectJetStream connects to url and returns the connection and its
// JetStream context.
func connectJetStream(url string, opts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("tributary-bench"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", url, err)
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream on %s: %w", url, err)
	}
	return nc, js, nil
}

// ProduceJetStream publishes w.Records messages of w.RecordSize bytes to the
// subject w.Topic, in a file-backed stream it creates if missing, from
// w.Producers connections with async publish and a window of
// DefaultPublishWindow unacknowledged messages each. JetStream always
// acknowledges, so w.Acks and w.Partitions do not apply. Latency is from
// PublishAsync to the ack. Like Produce it returns what it measured in every
// case.
func ProduceJetStream(ctx context.Context, url string, w Workload) (*Result, error) {
	w = w.withDefaults()
	res := &Result{Op: OpProduce, Peer: labelOr(w.Label, "jetstream")}
	nc, js, err := connectJetStream(url)
	if err != nil {
		return res, err
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     streamName(w.Topic),
		Subjects: []string{w.Topic},
		Storage:  jetstream.FileStorage,
	})
	nc.Close()
	if err != nil {
		return res, fmt.Errorf("create stream %s: %w", streamName(w.Topic), err)
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	value := payload(w.RecordSize)
	prog := startProgress(w.Progress, "produce "+res.Peer, w.Records)
	var acked, bytes atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < w.Producers; i++ {
		// The client's own limit sits above our window so that PublishAsync
		// never stalls: our channel is what bounds the messages in flight.
		nc, js, err := connectJetStream(url,
			jetstream.WithPublishAsyncMaxPending(DefaultPublishWindow+64),
			jetstream.WithPublishAsyncTimeout(publishAckTimeout))
		if err != nil {
			cancel(err)
			break
		}
		wg.Add(1)
		go func(n int64) {
			defer wg.Done()
			defer nc.Close()
			publishJetStream(runCtx, cancel, js, w.Topic, value, n, fmt.Sprintf("p%d-", i), w.MsgIDs, res, &acked, &bytes, prog)
		}(w.share(i))
	}
	wg.Wait()
	prog.stop()
	res.Elapsed = time.Since(start)
	res.Records, res.Bytes = acked.Load(), bytes.Load()
	return res, runError(ctx, runCtx, res, w.Records)
}

// publishJetStream publishes n messages on js and waits for their acks, in
// order, recording each one's latency in res.
func publishJetStream(ctx context.Context, fail context.CancelCauseFunc, js jetstream.JetStream,
	subject string, value []byte, n int64, idPrefix string, msgIDs bool, res *Result, acked, bytes *atomic.Int64, prog *progress) {
	type inflight struct {
		ack  jetstream.PubAckFuture
		sent time.Time
	}
	window := make(chan inflight, DefaultPublishWindow)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f := range window {
			select {
			case <-f.ack.Ok():
				res.Latency.Record(time.Since(f.sent))
				acked.Add(1)
				bytes.Add(int64(len(value)))
				prog.add(1)
			case err := <-f.ack.Err():
				fail(fmt.Errorf("publish to %s: %w", subject, err))
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		close(window)
		<-done
	}()
	for i := int64(0); i < n; i++ {
		sent := time.Now()
		var ack jetstream.PubAckFuture
		var err error
		if msgIDs {
			ack, err = js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: value,
				Header: nats.Header{"Nats-Msg-Id": []string{idPrefix + strconv.FormatInt(i, 10)}}})
		} else {
			ack, err = js.PublishAsync(subject, value)
		}
		if err != nil {
			fail(fmt.Errorf("publish to %s: %w", subject, err))
			return
		}
		select {
		case window <- inflight{ack: ack, sent: sent}:
		case <-ctx.Done():
			return
		case <-done: // the ack reader stopped on an error
			return
		}
	}
}

// ConsumeJetStream reads w.Records messages from the start of the stream
// holding w.Topic with an ephemeral pull consumer (no acks) that fetches
// DefaultFetchBatch messages at a time. Latency is per Fetch: from the
// request to its last message. It fails with ErrIdle when no message arrives
// for w.IdleTimeout and, like Consume, returns what it measured in every
// case.
func ConsumeJetStream(ctx context.Context, url string, w Workload) (*Result, error) {
	w = w.withDefaults()
	res := &Result{Op: OpConsume, Peer: labelOr(w.Label, "jetstream")}
	nc, js, err := connectJetStream(url)
	if err != nil {
		return res, err
	}
	defer nc.Close()
	cons, err := js.CreateConsumer(ctx, streamName(w.Topic), jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckNonePolicy,
		FilterSubject: w.Topic,
	})
	if err != nil {
		return res, fmt.Errorf("consumer on stream %s: %w", streamName(w.Topic), err)
	}

	prog := startProgress(w.Progress, "consume "+res.Peer, w.Records)
	defer prog.stop()
	start := time.Now()
	lastMessage := start
	finish := func(err error) (*Result, error) {
		res.Elapsed = lastMessage.Sub(start)
		if ctx.Err() != nil && res.Records < w.Records {
			res.Interrupted = true
			return res, ctx.Err()
		}
		return res, err
	}
	for res.Records < w.Records {
		if ctx.Err() != nil {
			return finish(ctx.Err())
		}
		want := int(min(int64(DefaultFetchBatch), w.Records-res.Records))
		fetched := time.Now()
		batch, err := cons.Fetch(want, jetstream.FetchMaxWait(min(w.IdleTimeout, time.Second)))
		if err != nil {
			return finish(fmt.Errorf("fetch from %s: %w", streamName(w.Topic), err))
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			res.Bytes += int64(len(msg.Data()))
		}
		now := time.Now()
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return finish(fmt.Errorf("fetch from %s: %w", streamName(w.Topic), err))
		}
		if n == 0 {
			if now.Sub(lastMessage) >= w.IdleTimeout {
				return finish(fmt.Errorf("consume %s after %d of %d messages: %w", w.Topic, res.Records, w.Records, ErrIdle))
			}
			continue
		}
		res.Latency.Record(now.Sub(fetched))
		res.Records += int64(n)
		lastMessage = now
		prog.add(int64(n))
	}
	return finish(nil)
}
