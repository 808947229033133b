package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// drainTimeout bounds the final write of a flow that is stopping.
const drainTimeout = 30 * time.Second

// lagInterval is how often a flow asks its sources for their end offsets.
const lagInterval = 5 * time.Second

// flow copies a job's sources into one target. It runs sessions: each opens
// the endpoints, resumes from the target's checkpoint, and streams until an
// error, a change of topics, or the end; the next session starts over from
// the checkpoint, so an error rewinds the whole flow to what the target
// acknowledged, and nothing is ever written past a failed batch.
type flow struct {
	job    *Job
	spec   *JobSpec
	target string
	id     string
	log    *slog.Logger
	m      flowMetrics

	rr atomic.Uint32 // round-robin partitioner

	mu     sync.Mutex // guards status, paused, resume
	status FlowStatus
	paused bool
	resume chan struct{} // closed when a paused flow resumes
}

// FlowStatus is what /v1/jobs shows of a flow.
type FlowStatus struct {
	Job    string `json:"job"`
	Target string `json:"target"`
	// State is starting, running, paused, retrying, failed or stopped.
	State         string    `json:"state"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitempty"`
	// Records and Bytes count what this process wrote and the target
	// acknowledged.
	Records int64 `json:"records"`
	Bytes   int64 `json:"bytes"`
	// Partitions is the number of source partitions read.
	Partitions int `json:"partitions"`
	// LagRecords sums, over the source partitions, the records not yet
	// checkpointed; LagSeconds is how old the newest acknowledged record was
	// when the flow had lag.
	LagRecords     int64     `json:"lag_records"`
	LagSeconds     float64   `json:"lag_seconds"`
	CheckpointTime time.Time `json:"checkpoint_time,omitempty"`
	// Lag per source partition ("cluster/topic-partition").
	PartitionLag map[string]int64 `json:"partition_lag,omitempty"`
}

type flowMetrics struct {
	m      *Metrics
	labels []string
}

func (f *flow) setState(state string) {
	f.mu.Lock()
	f.status.State = state
	f.mu.Unlock()
	if f.m.m != nil {
		v := 0.0
		if state == "running" {
			v = 1
		}
		f.m.m.FlowsRunning.WithLabelValues(f.m.labels...).Set(v)
	}
}

func (f *flow) noteError(kind string, err error) {
	f.mu.Lock()
	f.status.LastError = err.Error()
	f.status.LastErrorTime = time.Now()
	f.mu.Unlock()
	if f.m.m != nil {
		f.m.m.Errors.WithLabelValues(f.job.spec.Name, f.target, kind).Inc()
	}
}

// flowError carries the kind of a flow error, for metrics and retry
// decisions.
type flowError struct {
	kind      string
	permanent bool // retrying cannot help: the flow stops
	err       error
}

func (e *flowError) Error() string { return e.err.Error() }
func (e *flowError) Unwrap() error { return e.err }

func kindError(kind string, err error) error { return &flowError{kind: kind, err: err} }

// errRediscover ends a session so the next one picks up new topics or
// partitions; it is not a failure.
var errRediscover = errors.New("topics or partitions changed")

// run runs sessions until ctx ends or a permanent error.
func (f *flow) run(ctx context.Context) error {
	tuning := f.spec.Tuning
	backoff := tuning.RetryBackoff
	for {
		f.setState("starting")
		start := time.Now()
		err := f.session(ctx)
		if ctx.Err() != nil {
			f.setState("stopped")
			return nil
		}
		if errors.Is(err, errRediscover) {
			f.log.Info("topics changed; resuming from the checkpoint with the new set")
			continue
		}
		kind := "sink"
		var fe *flowError
		if errors.As(err, &fe) {
			kind = fe.kind
		}
		f.noteError(kind, err)
		if errors.Is(err, ErrFenced) || errors.Is(err, ErrAuth) || (fe != nil && fe.permanent) {
			f.setState("failed")
			f.log.Error("flow stopped", "err", err)
			return fmt.Errorf("flow %s: %w", f.id, err)
		}
		if time.Since(start) > time.Minute {
			backoff = tuning.RetryBackoff
		}
		f.setState("retrying")
		f.log.Warn("flow failed; rewinding to the target's checkpoint", "err", err, "kind", kind, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			f.setState("stopped")
			return nil
		}
		if backoff *= 2; backoff > tuning.MaxRetryBackoff {
			backoff = tuning.MaxRetryBackoff
		}
	}
}

// route is where one source topic goes.
type route struct {
	target     string // target topic
	partitions int32  // target partition count
	maxBytes   int    // largest record the target topic takes; 0: unknown
}

// chunk is what a reader hands the writer: records of one Poll, in order
// per partition, and the positions after them.
type chunk struct {
	records []OutRecord
	next    map[SourcePartition]int64
	bytes   int64 // budget held
	skipped map[string]int
	// err ends the session once the records before it are written: the
	// policy refused the record after them.
	err error
}

// session is one run of the flow from the target's checkpoint.
func (f *flow) session(ctx context.Context) error {
	ep := f.job.ep
	use := Use{Job: f.spec.Name, Flow: f.id, Target: f.target, Delivery: f.spec.Delivery}
	sink, err := ep.OpenSink(ctx, f.target, use)
	if err != nil {
		return kindError("sink", fmt.Errorf("open target %s: %w", f.target, err))
	}
	defer sink.Close()
	sources := make(map[string]Source, len(f.spec.Sources))
	defer func() {
		for _, s := range sources {
			s.Close()
		}
	}()
	for _, ss := range f.spec.Sources {
		if _, ok := sources[ss.Cluster]; ok {
			continue
		}
		src, err := ep.OpenSource(ctx, ss.Cluster, use)
		if err != nil {
			return kindError("source", fmt.Errorf("open source %s: %w", ss.Cluster, err))
		}
		sources[ss.Cluster] = src
	}

	// Identities: cluster IDs, falling back to the job's names.
	targetID, err := sink.ClusterID(ctx)
	if err != nil {
		return kindError("sink", fmt.Errorf("target %s: cluster ID: %w", f.target, err))
	}
	if targetID == "" {
		targetID = f.target
	}
	sourceIDs := make(map[string]string, len(sources))
	for name, src := range sources {
		id, err := src.ClusterID(ctx)
		if err != nil {
			return kindError("source", fmt.Errorf("source %s: cluster ID: %w", name, err))
		}
		if id == "" {
			id = name
		}
		if id == targetID {
			return &flowError{kind: "config", permanent: true,
				err: fmt.Errorf("source %s and target %s are the same cluster (cluster ID %s): refusing to mirror a cluster into itself", name, f.target, id)}
		}
		sourceIDs[name] = id
	}

	routes, parts, sig, err := f.discover(ctx, sources, sink)
	if err != nil {
		return err
	}
	cp, err := sink.LoadCheckpoint(ctx, f.id)
	if err != nil {
		return kindError("checkpoint", fmt.Errorf("load checkpoint of %s from %s: %w", f.id, f.target, err))
	}
	positions := make(map[SourcePartition]int64)
	if cp != nil {
		for sp, off := range cp.Positions {
			positions[sp] = off
		}
	}
	from := make(map[string]map[TopicPartition]int64)
	for cluster, tps := range parts {
		var missing []TopicPartition
		from[cluster] = make(map[TopicPartition]int64, len(tps))
		for _, tp := range tps {
			sp := SourcePartition{Cluster: cluster, Topic: tp.Topic, Partition: tp.Partition}
			if off, ok := positions[sp]; ok {
				from[cluster][tp] = off
			} else {
				missing = append(missing, tp)
			}
		}
		if len(missing) > 0 {
			offs, err := sources[cluster].Offsets(ctx, missing, f.spec.Start)
			if err != nil {
				return kindError("source", fmt.Errorf("source %s: start offsets: %w", cluster, err))
			}
			for tp, off := range offs {
				from[cluster][tp] = off
				positions[SourcePartition{Cluster: cluster, Topic: tp.Topic, Partition: tp.Partition}] = off
			}
		}
	}
	npart := 0
	for _, tps := range parts {
		npart += len(tps)
	}
	f.mu.Lock()
	f.status.Partitions = npart
	f.mu.Unlock()
	f.log.Info("flow starting", "target_cluster_id", targetID, "partitions", npart, "resumed", cp != nil)

	// Teardown order: stop the lag watcher and the readers and wait for
	// them, then close the consumers they poll (the deferred closes of the
	// sources and the sink run after this).
	sctx, cancel := context.WithCancel(ctx)
	rctx, stopReaders := context.WithCancel(context.Background())
	var readers, background sync.WaitGroup
	consumers := make(map[string]Consumer, len(sources))
	defer func() {
		cancel()
		stopReaders()
		readers.Wait()
		background.Wait()
		for _, c := range consumers {
			c.Close()
		}
	}()
	budget := newByteBudget(f.spec.Tuning.MaxInFlightBytes)
	chunks := make(chan chunk, 64)
	errc := make(chan error, len(sources)+1)
	for cluster, src := range sources {
		if len(from[cluster]) == 0 {
			continue
		}
		cons, err := src.Consume(ctx, from[cluster])
		if err != nil {
			return kindError("source", fmt.Errorf("source %s: consume: %w", cluster, err))
		}
		consumers[cluster] = cons
		readers.Add(1)
		go func(cluster string, cons Consumer) {
			defer readers.Done()
			f.read(rctx, cluster, sourceIDs[cluster], targetID, cons, routes[cluster], budget, chunks, errc)
		}(cluster, cons)
	}
	f.setState("running")

	w := &writer{f: f, sink: sink, consumers: consumers, positions: positions, budget: budget}
	if f.spec.RateLimitBytes > 0 {
		burst := f.spec.RateLimitBytes
		if burst < f.spec.Tuning.MaxBatchBytes {
			burst = f.spec.Tuning.MaxBatchBytes
		}
		w.limiter = rate.NewLimiter(rate.Limit(f.spec.RateLimitBytes), int(burst))
	}
	background.Add(1)
	go func() {
		defer background.Done()
		f.watchLag(sctx, sources, parts, w)
	}()
	refresh := time.NewTicker(f.spec.Tuning.MetadataRefresh)
	defer refresh.Stop()
	for {
		var first chunk
		select {
		case first = <-chunks:
		case err := <-errc:
			return err
		case <-refresh.C:
			if _, _, sig2, err := f.discover(ctx, sources, sink); err == nil && sig2 != sig {
				return errRediscover
			}
			continue
		case <-ctx.Done():
			stopReaders()
			return w.drain(chunks)
		}
		if err := w.fill(ctx, first, chunks); err != nil {
			if errors.Is(err, errDropped) {
				return nil // stopping; nothing after the dropped batch is written
			}
			return err
		}
	}
}

// read polls one source's consumer and hands transformed chunks to the
// writer until ctx ends or the consumer fails.
func (f *flow) read(ctx context.Context, cluster, sourceID, targetID string, cons Consumer, routes map[string]*route,
	budget *byteBudget, chunks chan<- chunk, errc chan<- error) {
	for {
		recs, err := cons.Poll(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			errc <- kindError("source", fmt.Errorf("source %s: %w", cluster, err))
			return
		}
		if len(recs) == 0 {
			continue
		}
		c, err := f.transform(cluster, sourceID, targetID, recs, routes)
		c.err = err
		if err := budget.acquire(ctx, c.bytes); err != nil {
			return
		}
		select {
		case chunks <- c:
		case <-ctx.Done():
			budget.release(c.bytes)
			return
		}
		if c.err != nil {
			return
		}
	}
}

// recordOverhead approximates what a record adds to a batch beyond its key,
// value and headers (varints, attributes, deltas) plus the batch header.
const recordOverhead = 96

func recordSize(r *Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 4
	}
	return n
}

// transform applies the job's policy to polled records: the loop check,
// renaming, partitioning, the provenance header and the oversized policy.
func (f *flow) transform(cluster, sourceID, targetID string, recs []Record, routes map[string]*route) (chunk, error) {
	c := chunk{records: make([]OutRecord, 0, len(recs)), next: make(map[SourcePartition]int64)}
	// One slab for every record's headers and one buffer for the
	// provenance encodings, instead of two allocations per record.
	nh := 0
	for i := range recs {
		nh += len(recs[i].Headers) + 1
	}
	slab := make([]Header, 0, nh)
	provBuf := make([]byte, 0, 48*len(recs))
	for i := range recs {
		r := &recs[i]
		r.Source.Cluster = cluster
		prevNext, hadNext := c.next[r.Source.SourcePartition]
		c.next[r.Source.SourcePartition] = r.Source.Offset + 1
		rt := routes[r.Source.Topic]
		if rt == nil {
			continue // a topic this flow does not route (should not happen)
		}
		prev := ProvenanceOf(r.Headers)
		if prev != nil && prev.Crossed(targetID) {
			c.skip("loop")
			continue
		}
		prov := Provenance{Topic: r.Source.Topic, Partition: r.Source.Partition, Offset: r.Source.Offset}
		if prev != nil {
			prov.Path = append(append(make([]string, 0, len(prev.Path)+1), prev.Path...), sourceID)
		} else {
			prov.Path = []string{sourceID}
		}
		start := len(slab)
		for _, h := range r.Headers {
			if h.Key != ProvenanceHeader {
				slab = append(slab, h)
			}
		}
		pstart := len(provBuf)
		provBuf = prov.AppendTo(provBuf)
		slab = append(slab, Header{Key: ProvenanceHeader, Value: provBuf[pstart:len(provBuf):len(provBuf)]})
		headers := slab[start:len(slab):len(slab)]
		out := OutRecord{Record: *r, Topic: rt.target}
		out.Headers = headers
		size := recordSize(&out.Record)
		if rt.maxBytes > 0 && size+recordOverhead > rt.maxBytes {
			switch f.spec.Oversized.Kind {
			case OversizedSkip:
				f.log.Warn("skipping oversized record", "source", r.Source.SourcePartition.String(), "offset", r.Source.Offset,
					"bytes", size, "target_topic", rt.target, "max_bytes", rt.maxBytes)
				c.skip("oversized")
				continue
			case OversizedDeadLetter:
				f.log.Warn("dead-lettering oversized record", "source", r.Source.SourcePartition.String(), "offset", r.Source.Offset,
					"bytes", size, "dead_letter_topic", f.spec.Oversized.DeadLetterTopic, "max_bytes", rt.maxBytes)
				out = f.deadLetter(out, size, rt)
				c.skip("dead_letter")
			default:
				// Write what came before; the checkpoint stops short of this record.
				if hadNext {
					c.next[r.Source.SourcePartition] = prevNext
				} else {
					delete(c.next, r.Source.SourcePartition)
				}
				c.finish()
				return c, &flowError{kind: "oversized", err: fmt.Errorf("%w: record at %s offset %d is %d bytes; target topic %s takes at most %d (oversized: fail)",
					ErrRecordTooLarge, r.Source.SourcePartition, r.Source.Offset, size, rt.target, rt.maxBytes)}
			}
		} else {
			p, err := f.partition(r, rt)
			if err != nil {
				if hadNext {
					c.next[r.Source.SourcePartition] = prevNext
				} else {
					delete(c.next, r.Source.SourcePartition)
				}
				c.finish()
				return c, err
			}
			out.Partition = p
		}
		c.bytes += int64(recordSize(&out.Record))
		c.records = append(c.records, out)
	}
	c.finish()
	return c, nil
}

// finish makes every chunk hold some budget, so releases balance.
func (c *chunk) finish() {
	if c.bytes == 0 {
		c.bytes = 1
	}
}

func (c *chunk) skip(reason string) {
	if c.skipped == nil {
		c.skipped = make(map[string]int)
	}
	c.skipped[reason]++
}

// deadLetter turns an oversized record into its dead-letter form: key,
// headers and provenance kept, value dropped, and a header saying why.
func (f *flow) deadLetter(out OutRecord, size int, rt *route) OutRecord {
	out.Topic = f.spec.Oversized.DeadLetterTopic
	out.Partition = 0
	out.Value = nil
	out.Headers = append(out.Headers,
		Header{Key: "tributary.dead-letter.reason", Value: []byte(fmt.Sprintf("record of %d bytes exceeds %d bytes of target topic %s", size, rt.maxBytes, rt.target))},
		Header{Key: "tributary.dead-letter.topic", Value: []byte(rt.target)})
	return out
}

// partition picks the target partition of a record.
func (f *flow) partition(r *Record, rt *route) (int32, error) {
	n := rt.partitions
	switch f.spec.Partitioning {
	case PartitionKeyHash:
		if r.Key != nil {
			return KeyPartition(r.Key, n), nil
		}
		return r.Source.Partition % n, nil
	case PartitionRoundRobin:
		return int32(f.rr.Add(1) % uint32(n)), nil
	default:
		if r.Source.Partition >= n {
			return 0, kindError("config", fmt.Errorf("partitioning preserve: %s has partition %d but target topic %s has %d partitions",
				r.Source.SourcePartition, r.Source.Partition, rt.target, n))
		}
		return r.Source.Partition, nil
	}
}

// discover matches source topics, keeps target topics in step (topic sync)
// and returns the routes per source cluster and topic, the partitions to
// read per cluster, and a signature that changes when either does.
func (f *flow) discover(ctx context.Context, sources map[string]Source, sink Sink) (map[string]map[string]*route, map[string][]TopicPartition, string, error) {
	type want struct {
		partitions int32
		configs    map[string]string
	}
	targets := make(map[string]*want)
	matched := make(map[string][]TopicInfo)
	for _, ss := range f.spec.Sources {
		topics, err := sources[ss.Cluster].Topics(ctx)
		if err != nil {
			return nil, nil, "", kindError("source", fmt.Errorf("source %s: list topics: %w", ss.Cluster, err))
		}
		for _, t := range topics {
			if !ss.Matches(t.Name) {
				continue
			}
			matched[ss.Cluster] = append(matched[ss.Cluster], t)
			name := f.spec.Rename.Target(ss.Cluster, t.Name)
			w := targets[name]
			if w == nil {
				w = &want{configs: make(map[string]string)}
				targets[name] = w
			}
			if t.Partitions > w.partitions {
				w.partitions = t.Partitions
			}
			for _, k := range f.spec.TopicSync.Configs {
				if v, ok := t.Configs[k]; ok {
					w.configs[k] = v
				}
			}
		}
	}
	existing, err := sink.Topics(ctx)
	if err != nil {
		return nil, nil, "", kindError("sink", fmt.Errorf("target %s: list topics: %w", f.target, err))
	}
	have := make(map[string]int32, len(existing))
	for _, t := range existing {
		have[t.Name] = t.Partitions
	}
	if dlq := f.spec.Oversized.DeadLetterTopic; f.spec.Oversized.Kind == OversizedDeadLetter {
		if _, ok := have[dlq]; !ok {
			if err := sink.CreateTopic(ctx, TopicInfo{Name: dlq, Partitions: 1}); err != nil && !errors.Is(err, ErrTopicExists) {
				return nil, nil, "", kindError("sink", fmt.Errorf("target %s: create dead-letter topic %s: %w", f.target, dlq, err))
			}
		}
	}
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		w := targets[name]
		n, ok := have[name]
		switch {
		case !ok && !f.spec.TopicSync.Create:
			return nil, nil, "", kindError("config", fmt.Errorf("target %s has no topic %s and topic_sync.create is off", f.target, name))
		case !ok:
			err := sink.CreateTopic(ctx, TopicInfo{Name: name, Partitions: w.partitions, Configs: w.configs})
			if err != nil && !errors.Is(err, ErrTopicExists) {
				return nil, nil, "", kindError("sink", fmt.Errorf("target %s: create topic %s: %w", f.target, name, err))
			}
			if err == nil {
				f.log.Info("created target topic", "topic", name, "partitions", w.partitions)
				have[name] = w.partitions
			} else if have[name], err = f.partitionsOf(ctx, sink, name); err != nil {
				return nil, nil, "", err
			}
		case n < w.partitions && f.spec.TopicSync.AddPartitions:
			if err := sink.AddPartitions(ctx, name, w.partitions); err != nil {
				return nil, nil, "", kindError("sink", fmt.Errorf("target %s: grow topic %s to %d partitions: %w", f.target, name, w.partitions, err))
			}
			f.log.Info("added target partitions", "topic", name, "from", n, "to", w.partitions)
			have[name] = w.partitions
		}
	}
	routes := make(map[string]map[string]*route)
	parts := make(map[string][]TopicPartition)
	var sig []byte
	clusters := make([]string, 0, len(matched))
	for c := range matched {
		clusters = append(clusters, c)
	}
	sort.Strings(clusters)
	for _, cluster := range clusters {
		ts := matched[cluster]
		sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
		routes[cluster] = make(map[string]*route)
		for _, t := range ts {
			name := f.spec.Rename.Target(cluster, t.Name)
			maxBytes, err := sink.MaxRecordBytes(ctx, name)
			if err != nil {
				return nil, nil, "", kindError("sink", fmt.Errorf("target %s: max record size of %s: %w", f.target, name, err))
			}
			routes[cluster][t.Name] = &route{target: name, partitions: have[name], maxBytes: maxBytes}
			for p := int32(0); p < t.Partitions; p++ {
				parts[cluster] = append(parts[cluster], TopicPartition{Topic: t.Name, Partition: p})
			}
			sig = fmt.Appendf(sig, "%s/%s:%d>%s:%d;", cluster, t.Name, t.Partitions, name, have[name])
		}
	}
	return routes, parts, string(sig), nil
}

func (f *flow) partitionsOf(ctx context.Context, sink Sink, topic string) (int32, error) {
	ts, err := sink.Topics(ctx)
	if err != nil {
		return 0, kindError("sink", fmt.Errorf("target %s: list topics: %w", f.target, err))
	}
	for _, t := range ts {
		if t.Name == topic {
			return t.Partitions, nil
		}
	}
	return 0, kindError("sink", fmt.Errorf("target %s: topic %s vanished", f.target, topic))
}

// watchLag updates lag from the sources' end offsets until ctx ends.
func (f *flow) watchLag(ctx context.Context, sources map[string]Source, parts map[string][]TopicPartition, w *writer) {
	t := time.NewTicker(lagInterval)
	defer t.Stop()
	for {
		ends := make(map[SourcePartition]int64)
		for cluster, tps := range parts {
			offs, err := sources[cluster].EndOffsets(ctx, tps)
			if err != nil {
				if ctx.Err() == nil {
					f.log.Debug("end offsets failed", "source", cluster, "err", err)
				}
				continue
			}
			for tp, off := range offs {
				ends[SourcePartition{Cluster: cluster, Topic: tp.Topic, Partition: tp.Partition}] = off
			}
		}
		w.updateLag(ends)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// labelPartition formats a partition number for a metric label.
func labelPartition(p int32) string { return strconv.Itoa(int(p)) }
