package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	kafkabridge "github.com/tributary/tributary/bridge/kafka"
	natsbridge "github.com/tributary/tributary/bridge/nats"
	"github.com/tributary/tributary/mirror"
	"github.com/tributary/tributary/mirror/config"
	"github.com/tributary/tributary/topology"
)

// Runner runs a set of jobs and serves their status.
type Runner struct {
	// Resolve, when set before Apply, finds the brokers of clusters (see
	// Endpoints.Resolve).
	Resolve func(ctx context.Context, c config.Cluster) ([]string, error)

	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *mirror.Metrics
	nats    *natsbridge.Metrics

	mu   sync.Mutex // guards jobs
	jobs map[string]*running
	wg   sync.WaitGroup

	fenced chan FencedJob // jobs stopped because a newer instance fenced them
}

type running struct {
	spec        mirror.JobSpec
	fingerprint string
	job         *mirror.Job
	cancel      context.CancelFunc
	done        chan struct{}
	err         error // set before done closes
}

// New returns a Runner with no jobs.
func New(log *slog.Logger) *Runner {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Runner{log: log, reg: reg, metrics: mirror.NewMetrics(reg), nats: natsbridge.NewMetrics(reg), jobs: make(map[string]*running), fenced: make(chan FencedJob, 16)}
}

// Apply makes the running jobs those of f: new jobs start, jobs whose spec
// or clusters changed restart (draining first), jobs no longer in f stop.
func (r *Runner) Apply(ctx context.Context, f *config.File) {
	want := make(map[string]mirror.JobSpec, len(f.Jobs))
	prints := make(map[string]string, len(f.Jobs))
	for _, j := range f.Jobs {
		want[j.Name] = j
		prints[j.Name] = Fingerprint(j, f.Clusters) + natsFingerprint(f.NATS[j.Name])
	}
	r.mu.Lock()
	var stop []*running
	for name, rj := range r.jobs {
		if fp, ok := prints[name]; !ok || fp != rj.fingerprint {
			stop = append(stop, rj)
			delete(r.jobs, name)
		}
	}
	r.mu.Unlock()
	for _, rj := range stop {
		r.log.Info("stopping job", "job", rj.spec.Name)
		rj.cancel()
		<-rj.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := r.jobs[name]; ok {
			continue
		}
		spec := want[name]
		ep := &Endpoints{Clusters: f.Clusters, Log: r.log, Resolve: r.Resolve, NATS: f.NATS, NATSMetrics: r.nats}
		job := mirror.NewJob(spec, ep, mirror.Options{Logger: r.log, Metrics: r.metrics})
		jctx, cancel := context.WithCancel(ctx)
		rj := &running{spec: spec, fingerprint: prints[name], job: job, cancel: cancel, done: make(chan struct{})}
		r.jobs[name] = rj
		r.log.Info("starting job", "job", name, "targets", strings.Join(spec.Targets, ","))
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer close(rj.done)
			rj.err = job.Run(jctx)
			if rj.err != nil {
				r.log.Error("job stopped", "job", name, "err", rj.err)
			}
			if errors.Is(rj.err, mirror.ErrFenced) {
				select {
				case r.fenced <- FencedJob{Job: name, Err: rj.err}:
				default:
				}
			}
		}()
	}
}

// FencedJob is a job that stopped because a newer instance of one of its
// flows fenced it (exactly-once delivery): another worker runs it now.
type FencedJob struct {
	Job string
	Err error
}

func (f FencedJob) Error() string { return fmt.Sprintf("job %s: %v", f.Job, f.Err) }

// Fenced delivers each job fenced by a newer instance. A worker running
// jobs from a file exits on it; one sharing jobs through Consul gives the
// job's lock up, so that the lock follows whoever runs it.
func (r *Runner) Fenced() <-chan FencedJob { return r.fenced }

// Stop stops every job, each draining what it read, and waits for them.
func (r *Runner) Stop() {
	r.mu.Lock()
	for _, rj := range r.jobs {
		rj.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Job returns the named running job.
func (r *Runner) Job(name string) *mirror.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rj, ok := r.jobs[name]; ok {
		return rj.job
	}
	return nil
}

// Status returns every job's status, sorted by name.
func (r *Runner) Status() []mirror.JobStatus {
	r.mu.Lock()
	jobs := make([]*running, 0, len(r.jobs))
	for _, rj := range r.jobs {
		jobs = append(jobs, rj)
	}
	r.mu.Unlock()
	out := make([]mirror.JobStatus, 0, len(jobs))
	for _, rj := range jobs {
		out = append(out, rj.job.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Handler serves:
//
//	GET  /metrics                 Prometheus metrics
//	GET  /v1/jobs                 every job's status (JSON)
//	GET  /v1/jobs/{name}          one job's status
//	POST /v1/jobs/{name}/pause    stop writing after the batch in progress
//	POST /v1/jobs/{name}/resume
func (r *Runner) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"jobs": r.Status()})
	})
	mux.HandleFunc("GET /v1/jobs/{name}", func(w http.ResponseWriter, req *http.Request) {
		j := r.Job(req.PathValue("name"))
		if j == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no job " + req.PathValue("name")})
			return
		}
		writeJSON(w, http.StatusOK, j.Status())
	})
	for _, action := range []string{"pause", "resume"} {
		mux.HandleFunc("POST /v1/jobs/{name}/"+action, func(w http.ResponseWriter, req *http.Request) {
			j := r.Job(req.PathValue("name"))
			if j == nil {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "no job " + req.PathValue("name")})
				return
			}
			if action == "pause" {
				j.Pause()
			} else {
				j.Resume()
			}
			r.log.Info("job "+action+"d", "job", req.PathValue("name"))
			writeJSON(w, http.StatusOK, j.Status())
		})
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Serve serves Handler on addr until ctx ends; it returns the address
// actually listened on (addr may have port 0) once listening.
func (r *Runner) Serve(ctx context.Context, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("http server failed", "err", err)
		}
	}()
	return ln.Addr().String(), nil
}

// Fingerprint identifies a job's spec and the clusters it uses, so a
// reload restarts exactly the jobs that changed.
func Fingerprint(spec mirror.JobSpec, clusters map[string]config.Cluster) string {
	used := map[string]config.Cluster{}
	for _, s := range spec.Sources {
		used[s.Cluster] = clusters[s.Cluster]
	}
	for _, t := range spec.Targets {
		used[t] = clusters[t]
	}
	b, _ := json.Marshal(struct {
		Spec     string
		Clusters map[string]config.Cluster
	}{fmt.Sprintf("%+v", spec), used})
	return string(b)
}

// Endpoints opens bridges for the clusters of a job file. It implements
// mirror.Endpoints.
type Endpoints struct {
	Clusters map[string]config.Cluster
	Log      *slog.Logger
	// Resolve returns the bootstrap addresses of a Kafka-protocol cluster.
	// Default: the job file's bootstrap list; clusters found through Consul
	// need a resolver from the topology package.
	Resolve func(ctx context.Context, c config.Cluster) ([]string, error)
	// NATS holds the NATS mapping of each job with a NATS endpoint
	// (config.File.NATS); NATSMetrics receives the NATS bridge's metrics.
	NATS        map[string]*config.NATSJob
	NATSMetrics *natsbridge.Metrics

	staticOnce sync.Once
	static     *topology.Static // the job file's bootstrap lists
}

// staticAddrs resolves a cluster given by bootstrap addresses through the
// topology package's static backend, built from the job file.
func (e *Endpoints) staticAddrs(ctx context.Context, c config.Cluster) ([]string, error) {
	e.staticOnce.Do(func() {
		lists := make(map[string][]string, len(e.Clusters))
		for name, cl := range e.Clusters {
			if cl.Consul == nil && cl.NATS == nil {
				lists[name] = cl.Bootstrap
			}
		}
		e.static = topology.NewStatic(lists)
	})
	bs, err := e.static.Brokers(ctx, topology.ClusterRef{Name: c.Name})
	if err != nil {
		return nil, err
	}
	return topology.Addrs(bs), nil
}

func (e *Endpoints) cluster(name string) (config.Cluster, error) {
	c, ok := e.Clusters[name]
	if !ok {
		return config.Cluster{}, fmt.Errorf("no cluster %q in the job file", name)
	}
	return c, nil
}

// KafkaConfig is the Kafka bridge configuration of the named cluster: its
// brokers (resolved through Resolve when set), client ID, version and
// security.
func (e *Endpoints) KafkaConfig(ctx context.Context, name string) (kafkabridge.Config, error) {
	c, err := e.cluster(name)
	if err != nil {
		return kafkabridge.Config{}, err
	}
	return e.kafkaConfig(ctx, c)
}

func (e *Endpoints) kafkaConfig(ctx context.Context, c config.Cluster) (kafkabridge.Config, error) {
	var addrs []string
	var err error
	switch {
	case c.Consul != nil && e.Resolve != nil:
		addrs, err = e.Resolve(ctx, c)
	case c.Consul != nil:
		return kafkabridge.Config{}, fmt.Errorf("cluster %s is found through Consul, which this worker was not given (--consul)", c.Name)
	default:
		addrs, err = e.staticAddrs(ctx, c)
	}
	if err != nil {
		return kafkabridge.Config{}, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	cfg := kafkabridge.Config{Name: c.Name, Bootstrap: addrs, ClientID: c.ClientID, Version: c.Version, Logger: e.Log}
	cfg.TLS, cfg.SASL = kafkaSecurity(c.Security)
	return cfg, nil
}

// OpenSource implements mirror.Endpoints.
func (e *Endpoints) OpenSource(ctx context.Context, name string, use mirror.Use) (mirror.Source, error) {
	c, err := e.cluster(name)
	if err != nil {
		return nil, err
	}
	if c.NATS != nil {
		return e.openNATSSource(ctx, c, use)
	}
	cfg, err := e.kafkaConfig(ctx, c)
	if err != nil {
		return nil, err
	}
	return kafkabridge.NewSource(cfg)
}

// OpenSink implements mirror.Endpoints.
func (e *Endpoints) OpenSink(ctx context.Context, name string, use mirror.Use) (mirror.Sink, error) {
	c, err := e.cluster(name)
	if err != nil {
		return nil, err
	}
	if c.NATS != nil {
		return e.openNATSSink(ctx, c, use)
	}
	cfg, err := e.kafkaConfig(ctx, c)
	if err != nil {
		return nil, err
	}
	var opts kafkabridge.SinkOptions
	if use.Delivery == mirror.ExactlyOnce {
		opts.TransactionalID = TransactionalID(use.Flow)
	}
	return kafkabridge.NewSink(cfg, opts)
}

// TransactionalID is the transactional ID of an exactly-once flow into a
// Kafka-protocol target: fixed by the flow's ID (job and target), so every
// instance of the flow, on any worker, fences the ones before it.
func TransactionalID(flow string) string { return "tributary-" + flow }
