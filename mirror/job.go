package mirror

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// Endpoints opens the sources and sinks a job names by cluster. Each flow
// opens its own, so one slow or failing target holds up no other.
type Endpoints interface {
	OpenSource(ctx context.Context, cluster string, use Use) (Source, error)
	OpenSink(ctx context.Context, cluster string, use Use) (Sink, error)
}

// Use says which flow opens an endpoint, so the endpoint can key what it
// keeps per flow: a transactional ID, a durable consumer, a checkpoint
// bucket.
type Use struct {
	// Job is the job's name and Flow the flow's ID (FlowID).
	Job, Flow string
	// Target is the flow's target cluster.
	Target string
	// Delivery is the job's delivery guarantee: an exactly-once Kafka sink
	// writes transactionally with a transactional ID fixed by Flow.
	Delivery Delivery
}

// Options are a Job's optional collaborators.
type Options struct {
	// Logger receives the job's log lines; default slog.Default().
	Logger *slog.Logger
	// Metrics receives the job's metrics; default none.
	Metrics *Metrics
}

// Job runs a JobSpec: one flow per target.
type Job struct {
	spec  JobSpec
	ep    Endpoints
	log   *slog.Logger
	flows []*flow
}

// JobStatus is what /v1/jobs shows of a job.
type JobStatus struct {
	Name  string       `json:"name"`
	Flows []FlowStatus `json:"flows"`
}

// NewJob prepares a job; Run starts it.
func NewJob(spec JobSpec, ep Endpoints, opts Options) *Job {
	fillTuning(&spec.Tuning)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	j := &Job{spec: spec, ep: ep, log: opts.Logger.With("job", spec.Name)}
	for _, target := range spec.Targets {
		f := &flow{job: j, spec: &j.spec, target: target, id: FlowID(spec.Name, target),
			log: j.log.With("target", target), resume: make(chan struct{})}
		f.status = FlowStatus{Job: spec.Name, Target: target, State: "starting"}
		f.m = flowMetrics{m: opts.Metrics, labels: []string{spec.Name, target}}
		j.flows = append(j.flows, f)
	}
	return j
}

func fillTuning(t *Tuning) {
	if t.MaxInFlightBytes <= 0 {
		t.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if t.MaxBatchRecords <= 0 {
		t.MaxBatchRecords = DefaultMaxBatchRecords
	}
	if t.MaxBatchBytes <= 0 {
		t.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if t.Linger <= 0 {
		t.Linger = DefaultLinger
	}
	if t.MetadataRefresh <= 0 {
		t.MetadataRefresh = DefaultMetadataRefresh
	}
	if t.RetryBackoff <= 0 {
		t.RetryBackoff = DefaultRetryBackoff
	}
	if t.MaxRetryBackoff <= 0 {
		t.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
}

// Spec is the job's spec.
func (j *Job) Spec() JobSpec { return j.spec }

// Run runs every flow until ctx ends (then drains: what was read is written
// and checkpointed) or a flow stops for good. It returns the errors of
// flows that stopped for good (fenced, or a configuration the clusters
// refuse), joined.
func (j *Job) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(j.flows))
	for i, f := range j.flows {
		wg.Add(1)
		go func(i int, f *flow) {
			defer wg.Done()
			errs[i] = f.run(ctx)
		}(i, f)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Status returns the state of every flow.
func (j *Job) Status() JobStatus {
	st := JobStatus{Name: j.spec.Name}
	for _, f := range j.flows {
		f.mu.Lock()
		fs := f.status
		fs.PartitionLag = make(map[string]int64, len(f.status.PartitionLag))
		for k, v := range f.status.PartitionLag {
			fs.PartitionLag[k] = v
		}
		f.mu.Unlock()
		st.Flows = append(st.Flows, fs)
	}
	return st
}

// Pause stops writing after the batch in progress; reading stops once the
// in-flight budget is full.
func (j *Job) Pause() {
	for _, f := range j.flows {
		f.mu.Lock()
		if !f.paused {
			f.paused = true
			f.resume = make(chan struct{})
		}
		f.mu.Unlock()
	}
}

// Resume undoes Pause.
func (j *Job) Resume() {
	for _, f := range j.flows {
		f.mu.Lock()
		if f.paused {
			f.paused = false
			close(f.resume)
		}
		f.mu.Unlock()
	}
}
