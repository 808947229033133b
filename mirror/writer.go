package mirror

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// errDropped reports that a batch was released unwritten because the flow
// is stopping (while paused, or while waiting on the rate limit). Nothing
// read after it may be written in that session, or the checkpoint would
// move past records the target never got: the session ends at once, and
// the next one starts from the checkpoint before the dropped batch.
var errDropped = errors.New("batch dropped: flow stopping")

// writer is the single goroutine of a session that batches chunks, writes
// them with their checkpoint, and advances positions once the target
// acknowledged them.
type writer struct {
	f         *flow
	sink      Sink
	consumers map[string]Consumer
	budget    *byteBudget
	limiter   *rate.Limiter
	draining  bool // stopping: write what was read, without waiting on the rate limit

	// positions are the acknowledged positions; guarded by f.mu because
	// watchLag reads them.
	positions map[SourcePartition]int64
	lastAcked time.Time // timestamp of the newest acknowledged record
}

// pending is a batch being filled.
type pending struct {
	records []OutRecord
	next    map[SourcePartition]int64
	bytes   int64
	size    int64
	skipped map[string]int
	err     error // from a chunk: return it once the batch is written
}

func (p *pending) add(c chunk) {
	if c.err != nil {
		p.err = c.err
	}
	if p.records == nil {
		p.records = c.records // the first chunk's slice, reused as the batch's
	} else {
		p.records = append(p.records, c.records...)
	}
	if p.next == nil {
		p.next = make(map[SourcePartition]int64, len(c.next))
	}
	for sp, off := range c.next {
		p.next[sp] = off
	}
	p.bytes += c.bytes
	for _, r := range c.records {
		p.size += int64(recordSize(&r.Record))
	}
	for k, v := range c.skipped {
		if p.skipped == nil {
			p.skipped = make(map[string]int)
		}
		p.skipped[k] += v
	}
}

// fill gathers chunks after first until the batch is full or has lingered,
// then writes it.
func (w *writer) fill(ctx context.Context, first chunk, chunks <-chan chunk) error {
	t := w.f.spec.Tuning
	var p pending
	p.add(first)
	linger := time.NewTimer(t.Linger)
	defer linger.Stop()
fill:
	for p.err == nil && len(p.records) < t.MaxBatchRecords && p.size < t.MaxBatchBytes {
		select {
		case c := <-chunks:
			p.add(c)
		case <-linger.C:
			break fill
		case <-ctx.Done():
			break fill
		}
	}
	if err := w.waitIfPaused(ctx); err != nil {
		w.budget.release(p.bytes)
		return errDropped // a later run repeats these records
	}
	wctx := ctx
	if ctx.Err() != nil {
		// Stopping while the batch filled: write it, then the session
		// drains the rest.
		w.draining = true
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
	}
	if err := w.write(wctx, &p); err != nil {
		return err
	}
	return p.err
}

// drain writes what the readers already handed over, so a stopping flow
// checkpoints everything it read.
func (w *writer) drain(chunks <-chan chunk) error {
	var p pending
	for {
		select {
		case c := <-chunks:
			p.add(c)
			continue
		default:
		}
		break
	}
	if len(p.next) == 0 {
		return nil
	}
	w.draining = true
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	w.f.log.Info("draining", "records", len(p.records))
	return w.write(ctx, &p)
}

func (w *writer) waitIfPaused(ctx context.Context) error {
	for {
		w.f.mu.Lock()
		paused, resume := w.f.paused, w.f.resume
		w.f.mu.Unlock()
		if !paused {
			return nil
		}
		w.f.setState("paused")
		select {
		case <-resume:
			w.f.setState("running")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// write writes one batch and its checkpoint and, on success, advances the
// positions, releases the budget and tells the sources.
func (w *writer) write(ctx context.Context, p *pending) error {
	f := w.f
	if w.limiter != nil && p.size > 0 && !w.draining {
		for left := p.size; left > 0; {
			n := left
			if b := int64(w.limiter.Burst()); n > b {
				n = b
			}
			if err := w.limiter.WaitN(ctx, int(n)); err != nil {
				w.budget.release(p.bytes)
				return errDropped
			}
			left -= n
		}
	}
	cp := &Checkpoint{Flow: f.id, Time: time.Now(), Positions: make(map[SourcePartition]int64, len(w.positions)+len(p.next))}
	f.mu.Lock()
	for sp, off := range w.positions {
		cp.Positions[sp] = off
	}
	f.mu.Unlock()
	for sp, off := range p.next {
		cp.Positions[sp] = off
	}
	err := w.sink.Write(ctx, &Batch{Records: p.records, Checkpoint: cp})
	if err != nil {
		w.budget.release(p.bytes)
		if errors.Is(err, ErrFenced) {
			return &flowError{kind: "fenced", permanent: true, err: err}
		}
		if errors.Is(err, ErrRecordTooLarge) {
			return kindError("oversized", fmt.Errorf("target %s: %w", f.target, err))
		}
		return kindError("sink", fmt.Errorf("target %s: write: %w", f.target, err))
	}
	now := time.Now()
	f.mu.Lock()
	for sp, off := range p.next {
		w.positions[sp] = off
	}
	f.status.Records += int64(len(p.records))
	f.status.Bytes += p.size
	f.status.CheckpointTime = cp.Time
	f.mu.Unlock()
	w.budget.release(p.bytes)
	if m := f.m.m; m != nil {
		m.Records.WithLabelValues(f.m.labels...).Add(float64(len(p.records)))
		m.Bytes.WithLabelValues(f.m.labels...).Add(float64(p.size))
		m.Checkpoints.WithLabelValues(f.m.labels...).Inc()
		for reason, n := range p.skipped {
			m.Skipped.WithLabelValues(f.spec.Name, f.target, reason).Add(float64(n))
		}
		h := m.Latency.WithLabelValues(f.m.labels...)
		for i := range p.records {
			if ts := p.records[i].Timestamp; !ts.IsZero() {
				h.Observe(now.Sub(ts).Seconds())
			}
		}
	}
	for i := len(p.records) - 1; i >= 0; i-- {
		if ts := p.records[i].Timestamp; !ts.IsZero() {
			f.mu.Lock()
			if ts.After(w.lastAcked) {
				w.lastAcked = ts
			}
			f.mu.Unlock()
			break
		}
	}
	// Tell the sources (a JetStream source acks its messages now).
	for cluster, cons := range w.consumers {
		upTo := make(map[TopicPartition]int64)
		for sp, off := range p.next {
			if sp.Cluster == cluster {
				upTo[TopicPartition{Topic: sp.Topic, Partition: sp.Partition}] = off
			}
		}
		if len(upTo) > 0 {
			if err := cons.Acknowledge(ctx, upTo); err != nil {
				f.log.Warn("source acknowledgement failed; the source may redeliver", "source", cluster, "err", err)
			}
		}
	}
	return nil
}

// updateLag sets the lag from the sources' end offsets.
func (w *writer) updateLag(ends map[SourcePartition]int64) {
	f := w.f
	f.mu.Lock()
	var total int64
	per := make(map[string]int64, len(ends))
	for sp, end := range ends {
		pos, ok := w.positions[sp]
		if !ok {
			continue
		}
		lag := end - pos
		if lag < 0 {
			lag = 0
		}
		total += lag
		per[sp.String()] = lag
		if f.m.m != nil {
			f.m.m.LagRecords.WithLabelValues(f.spec.Name, f.target, sp.Cluster, sp.Topic, labelPartition(sp.Partition)).Set(float64(lag))
		}
	}
	secs := 0.0
	if total > 0 && !w.lastAcked.IsZero() {
		secs = time.Since(w.lastAcked).Seconds()
	}
	f.status.LagRecords = total
	f.status.LagSeconds = secs
	f.status.PartitionLag = per
	f.mu.Unlock()
	if f.m.m != nil {
		f.m.m.LagSeconds.WithLabelValues(f.m.labels...).Set(secs)
	}
}
