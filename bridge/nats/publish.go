package nats

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publisher publishes batches of messages to one JetStream stream without
// waiting for each PubAck, and collects the PubAcks of the batch on one
// wildcard reply subscription. It does what jetstream's PublishMsgAsync
// does for this one use, at a fraction of the cost per message: no
// future, timer or map entry per message, and a PubAck of the usual form
// is read without a JSON decoder.
//
// One batch is in flight at a time: publish returns once every message of
// the batch is acknowledged or the batch failed. A PubAck of an earlier,
// failed batch that arrives late is ignored.
type publisher struct {
	nc         *nats.Conn
	stream     string
	cluster    string // for errors
	prefix     string // reply subjects are prefix + "<batch>-<index>"
	maxPending int
	timeout    time.Duration
	sub        *nats.Subscription
	status     chan nats.Status // connection lost: the PubAcks in flight are too

	mu       sync.Mutex // guards what follows; held briefly by onAck
	batch    uint64     // number of the batch in flight
	subjects []string   // of the batch's messages published so far
	acked    []bool
	sent     int // messages of the batch published so far
	received int // PubAcks (or failures) of the batch received
	wakeAt   int // publish waits until received reaches it
	tally    ackTally
	progress chan struct{} // signalled (without blocking) when received reaches wakeAt
}

// ackTally is what the PubAcks of one batch said.
type ackTally struct {
	stored, duplicates int64
	err                error // the first failure
}

// newPublisher subscribes to the reply subjects of a publisher to stream
// on nc.
func newPublisher(nc *nats.Conn, cluster, stream string, maxPending int, timeout time.Duration) (*publisher, error) {
	p := &publisher{
		nc: nc, stream: stream, cluster: cluster, maxPending: maxPending, timeout: timeout,
		prefix:   nc.NewRespInbox() + ".",
		progress: make(chan struct{}, 1),
	}
	sub, err := nc.Subscribe(p.prefix+"*", p.onAck)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: subscribe to PubAcks: %w", cluster, err)
	}
	// The window bounds what is in flight; never drop a PubAck.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("cluster %s: subscribe to PubAcks: %w", cluster, err)
	}
	p.sub = sub
	p.status = nc.StatusChanged(nats.RECONNECTING, nats.CLOSED)
	return p, nil
}

// close stops listening for PubAcks.
func (p *publisher) close() {
	p.nc.RemoveStatusListener(p.status)
	p.sub.Unsubscribe()
}

// publish publishes n messages, made by next as they are needed, with at
// most maxPending of them unacknowledged, and waits for every PubAck. An
// error of next ends the batch with it. Each wait (for room in the window, and for
// the last PubAcks) fails after the publisher's timeout. It returns the
// tally of the PubAcks received; an error says the batch failed: then
// some of it may be stored and some not.
func (p *publisher) publish(ctx context.Context, n int, next func(i int) (*nats.Msg, error), a *msgArena) (ackTally, error) {
	p.mu.Lock()
	p.batch++
	batch := p.batch
	p.subjects = make([]string, n)
	p.acked = make([]bool, n)
	p.sent, p.received, p.wakeAt = 0, 0, 0
	p.tally = ackTally{}
	p.mu.Unlock()
	// Connection events and wake-ups from before this batch do not
	// concern it.
	for drained := false; !drained; {
		select {
		case <-p.status:
		case <-p.progress:
		default:
			drained = true
		}
	}
	for i := 0; i < n; i++ {
		m, err := next(i)
		if err != nil {
			return p.result(err)
		}
		p.mu.Lock()
		failed := p.tally.err != nil
		full := p.sent-p.received >= p.maxPending
		if full {
			p.wakeAt = p.sent - p.maxPending + 1
		}
		p.mu.Unlock()
		if failed {
			return p.result(nil)
		}
		if full {
			if err := p.wait(ctx); err != nil {
				return p.result(err)
			}
		}
		a.scratch = append(a.scratch[:0], p.prefix...)
		a.scratch = strconv.AppendUint(a.scratch, batch, 10)
		a.scratch = append(a.scratch, '-')
		a.scratch = strconv.AppendInt(a.scratch, int64(i), 10)
		m.Reply = a.text(a.scratch)
		p.mu.Lock()
		p.subjects[i] = m.Subject
		p.sent++
		p.mu.Unlock()
		if err := p.nc.PublishMsg(m); err != nil {
			return p.result(fmt.Errorf("cluster %s: publish to %s: %w", p.cluster, m.Subject, err))
		}
	}
	p.mu.Lock()
	p.wakeAt = n
	p.mu.Unlock()
	return p.result(p.wait(ctx))
}

// wait waits until onAck has received wakeAt PubAcks of the batch, or a
// failure, or fails itself.
func (p *publisher) wait(ctx context.Context) error {
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		done := p.received >= p.wakeAt || p.tally.err != nil
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-p.progress:
		case st := <-p.status:
			return fmt.Errorf("cluster %s: connection %s while waiting for PubAcks: %w", p.cluster, st, nats.ErrDisconnected)
		case <-timer.C:
			p.mu.Lock()
			missing := p.sent - p.received
			p.mu.Unlock()
			return fmt.Errorf("cluster %s: %d PubAcks missing after %s: %w", p.cluster, missing, p.timeout, jetstream.ErrAsyncPublishTimeout)
		case <-ctx.Done():
			return fmt.Errorf("cluster %s: waiting for PubAcks: %w", p.cluster, ctx.Err())
		}
	}
}

// result ends a batch: its later PubAcks are ignored. The first failure a
// PubAck reported wins over err.
func (p *publisher) result(err error) (ackTally, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batch++
	p.subjects, p.acked = nil, nil
	t := p.tally
	if t.err != nil {
		return t, t.err
	}
	return t, err
}

// onAck records one PubAck and wakes publish when it waits for it. It
// runs on the subscription's goroutine.
func (p *publisher) onAck(m *nats.Msg) {
	batch, index, ok := parseReplyToken(m.Subject[min(len(p.prefix), len(m.Subject)):])
	if !ok {
		return
	}
	stream, duplicate, ackErr := parsePubAck(m, p.stream)
	p.mu.Lock()
	defer p.mu.Unlock()
	if batch != p.batch || index >= len(p.acked) || p.acked[index] {
		return // a late or repeated PubAck
	}
	p.acked[index] = true
	p.received++
	subject := p.subjects[index]
	switch {
	case ackErr != nil:
		if p.tally.err == nil {
			p.tally.err = fmt.Errorf("cluster %s: publish to %s: %w", p.cluster, subject, ackErr)
		}
	case stream != p.stream:
		if p.tally.err == nil {
			p.tally.err = fmt.Errorf("cluster %s: subject %s is stored by stream %s, not %s", p.cluster, subject, stream, p.stream)
		}
	case duplicate:
		p.tally.duplicates++
	default:
		p.tally.stored++
	}
	if p.received >= p.wakeAt || p.tally.err != nil {
		select {
		case p.progress <- struct{}{}:
		default:
		}
	}
}

// parseReplyToken parses "<batch>-<index>".
func parseReplyToken(tok string) (batch uint64, index int, ok bool) {
	i := len(tok) - 1
	for i >= 0 && tok[i] != '-' {
		i--
	}
	if i <= 0 {
		return 0, 0, false
	}
	b, err1 := strconv.ParseUint(tok[:i], 10, 64)
	n, err2 := strconv.Atoi(tok[i+1:])
	if err1 != nil || err2 != nil || n < 0 {
		return 0, 0, false
	}
	return b, n, true
}

// Forms of a PubAck read without a JSON decoder.
var (
	ackPrefix    = []byte(`{"stream":"`)
	ackDuplicate = []byte(`"duplicate":`)
	ackErrorKey  = []byte(`"error"`)
)

// pubAckJSON is a PubAck, or the error JetStream answers instead.
type pubAckJSON struct {
	Stream    string              `json:"stream"`
	Duplicate bool                `json:"duplicate,omitempty"`
	Error     *jetstream.APIError `json:"error,omitempty"`
}

// parsePubAck reads a PubAck: the stream that stored the message and
// whether it was a duplicate, or why it was not stored. want is the stream
// expected, returned without allocating when it is the one named.
func parsePubAck(m *nats.Msg, want string) (stream string, duplicate bool, err error) {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return "", false, jetstream.ErrNoStreamResponse
		}
		return "", false, jetstream.ErrInvalidJSAck
	}
	// The usual form, {"stream":"S","seq":N[,"domain":"D"][,"duplicate":true]}:
	// stream names hold no quote or backslash.
	if d := m.Data; bytes.HasPrefix(d, ackPrefix) && !bytes.Contains(d, ackErrorKey) {
		rest := d[len(ackPrefix):]
		if end := bytes.IndexByte(rest, '"'); end > 0 && bytes.IndexByte(rest[:end], '\\') < 0 {
			stream = want
			if string(rest[:end]) != want {
				stream = string(rest[:end])
			}
			return stream, duplicateFlag(rest[end:]), nil
		}
	}
	var pa pubAckJSON
	if err := json.Unmarshal(m.Data, &pa); err != nil {
		return "", false, fmt.Errorf("%w: %v", jetstream.ErrInvalidJSAck, err)
	}
	if pa.Error != nil {
		return "", false, pa.Error
	}
	if pa.Stream == "" {
		return "", false, jetstream.ErrInvalidJSAck
	}
	return pa.Stream, pa.Duplicate, nil
}

// duplicateFlag reports whether the rest of a PubAck says "duplicate":
// true (the server writes it with and without a blank).
func duplicateFlag(b []byte) bool {
	i := bytes.Index(b, ackDuplicate)
	if i < 0 {
		return false
	}
	b = bytes.TrimLeft(b[i+len(ackDuplicate):], " ")
	return bytes.HasPrefix(b, []byte("true"))
}
