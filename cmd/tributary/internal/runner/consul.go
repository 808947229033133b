package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/multierr"

	"github.com/tributary/tributary/mirror"
	"github.com/tributary/tributary/mirror/config"
	"github.com/tributary/tributary/topology"
)

// ConsulOptions configure Runner.RunConsul.
type ConsulOptions struct {
	// Consul is the agent the worker talks to. Required.
	Consul *topology.Consul
	// File holds jobs given with --config, or is nil. Its jobs are shared
	// among workers like those in KV; a KV job of the same name is
	// rejected.
	File *config.File
	// WorkerID names this worker in Consul. Default: hostname-pid.
	WorkerID string
	// MemberTTL, LockDelay and LockTolerance: see topology.MemberOptions.
	MemberTTL, LockDelay, LockTolerance time.Duration
}

// JobStatusReport is what a worker writes to topology.KVJobStatus+NAME
// about the job in topology.KVJobs+NAME.
type JobStatusReport struct {
	Job string `json:"job"`
	// State is "accepted" or "rejected".
	State string `json:"state"`
	// ModifyIndex is the index of the KV value judged.
	ModifyIndex uint64 `json:"modify_index"`
	// Errors says why a job was rejected, one problem per entry.
	Errors []string `json:"errors,omitempty"`
	// RunningIndex is the index of the version of the job that keeps
	// running after a rejection; 0 if none.
	RunningIndex uint64    `json:"running_index,omitempty"`
	Worker       string    `json:"worker"`
	Time         time.Time `json:"time"`
}

// ParseKVJob parses the value of topology.KVJobs+name: a complete job file
// (no ${...} references) holding exactly one job, named name.
func ParseKVJob(name string, value []byte) (*config.File, error) {
	f, err := config.Parse("consul:"+topology.KVJobs+name, value, config.Options{NoEnv: true})
	if err != nil {
		return nil, err
	}
	switch {
	case len(f.Jobs) != 1:
		return nil, fmt.Errorf("%s%s: holds %d jobs; a key holds exactly one, named as the key", topology.KVJobs, name, len(f.Jobs))
	case f.Jobs[0].Name != name:
		return nil, fmt.Errorf("%s%s: the job is named %q; name it as its key, %q", topology.KVJobs, name, f.Jobs[0].Name, name)
	}
	return f, nil
}

// consulWorker is the state of RunConsul.
type consulWorker struct {
	r      *Runner
	consul *topology.Consul
	member *topology.Member
	disc   *Discovery
	log    *slog.Logger
	jobCtx context.Context // the running jobs' context

	mu       sync.Mutex
	valid    map[string]*config.File // job name -> last valid file holding it
	fromFile map[string]bool         // jobs of --config
	kvIndex  map[string]uint64       // KV job -> modify index last judged
	runIdx   map[string]uint64       // KV job -> modify index of its valid version
	owned    map[string]bool         // jobs whose lock this worker holds
	holders  map[string]context.CancelFunc
	closing  bool

	holdWG  sync.WaitGroup
	applyMu sync.Mutex // serialises Runner.Apply
}

// RunConsul runs the jobs of opts.File and of Consul's KV store
// (topology.KVJobs), each only while this worker holds its lock
// (topology.KVLocks+NAME), until ctx ends. Jobs start, restart and stop as
// their keys change; a job whose cluster's brokers change restarts with the
// new ones. When ctx ends it stops every job (draining), releases their
// locks and leaves Consul. It returns an error only if it could not start.
func (r *Runner) RunConsul(ctx context.Context, opts ConsulOptions) error {
	if opts.Consul == nil {
		return errors.New("run jobs from consul: no consul client")
	}
	if opts.WorkerID == "" {
		host, _ := os.Hostname()
		opts.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	log := r.log.With("worker", opts.WorkerID)
	var member *topology.Member
	for backoff := time.Second; ; backoff = min(2*backoff, 10*time.Second) {
		var err error
		member, err = opts.Consul.Join(ctx, topology.MemberOptions{ID: opts.WorkerID, TTL: opts.MemberTTL,
			LockDelay: opts.LockDelay, LockTolerance: opts.LockTolerance})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("cannot join consul; retrying", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
	}
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	discCtx, cancelDisc := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDisc()
	w := &consulWorker{r: r, consul: opts.Consul, member: member, log: log, jobCtx: jobCtx,
		valid: map[string]*config.File{}, fromFile: map[string]bool{}, kvIndex: map[string]uint64{}, runIdx: map[string]uint64{},
		owned: map[string]bool{}, holders: map[string]context.CancelFunc{}}
	w.disc = NewDiscovery(discCtx, opts.Consul, r.log, func(topology.ClusterRef) { go w.apply() })
	r.Resolve = w.disc.Resolve
	if opts.File != nil {
		for _, j := range opts.File.Jobs {
			w.valid[j.Name] = &config.File{Path: opts.File.Path, Clusters: opts.File.Clusters, Jobs: []mirror.JobSpec{j}}
			if n := opts.File.NATS[j.Name]; n != nil {
				w.valid[j.Name].NATS = map[string]*config.NATSJob{j.Name: n}
			}
			w.fromFile[j.Name] = true
		}
	}
	holdCtx, cancelHolds := context.WithCancel(ctx)
	defer cancelHolds()
	w.syncHolders(holdCtx)
	go w.releaseFenced(holdCtx)
	log.Info("watching consul for jobs", "prefix", topology.KVJobs)
	for entries := range opts.Consul.WatchPrefix(ctx, topology.KVJobs) {
		w.onKV(ctx, entries)
		w.syncHolders(holdCtx)
		w.apply()
	}

	// Shutdown: each holder stops its job (draining) and releases its lock.
	log.Info("stopping: draining jobs and releasing their locks")
	cancelHolds()
	w.holdWG.Wait()
	w.applyMu.Lock() // an apply triggered by discovery finishes first
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	w.applyMu.Unlock()
	r.Stop()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := member.Close(lctx); err != nil {
		log.Warn("leaving consul", "err", err)
	}
	return nil
}

// fencedRetry is how long a worker that was fenced out of a job waits
// before competing for its lock again.
const fencedRetry = 30 * time.Second

// releaseFenced gives up the lock of every job the runner reports fenced:
// a newer instance runs it, so the lock should be free for whoever does.
// The worker competes for it again after fencedRetry.
func (w *consulWorker) releaseFenced(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case fj := <-w.r.Fenced():
			w.log.Warn("fenced by a newer instance of the job; releasing its lock", "job", fj.Job, "err", fj.Err, "retry_in", fencedRetry)
			w.mu.Lock()
			if cancel, ok := w.holders[fj.Job]; ok {
				cancel()
				delete(w.holders, fj.Job)
			}
			w.mu.Unlock()
			time.AfterFunc(fencedRetry, func() {
				if ctx.Err() == nil {
					w.syncHolders(ctx)
				}
			})
		}
	}
}

// onKV judges every new or changed job under topology.KVJobs, reports the
// verdicts, and forgets removed jobs.
func (w *consulWorker) onKV(ctx context.Context, entries []topology.KVEntry) {
	seen := map[string]bool{}
	for _, e := range entries {
		name := strings.TrimPrefix(e.Key, topology.KVJobs)
		if name == "" || strings.Contains(name, "/") {
			continue // a folder, or a key that names no job
		}
		seen[name] = true
		w.mu.Lock()
		judged := w.kvIndex[name] == e.ModifyIndex
		w.kvIndex[name] = e.ModifyIndex
		fromFile := w.fromFile[name]
		w.mu.Unlock()
		if judged {
			continue
		}
		f, err := ParseKVJob(name, e.Value)
		if err == nil && fromFile {
			err = fmt.Errorf("%s%s: job %s is already defined by the --config file of worker %s", topology.KVJobs, name, name, w.member.ID())
		}
		report := JobStatusReport{Job: name, ModifyIndex: e.ModifyIndex, Worker: w.member.ID(), Time: time.Now().UTC()}
		if err != nil {
			report.State = "rejected"
			for _, pe := range multierr.Errors(err) {
				report.Errors = append(report.Errors, pe.Error())
			}
			w.mu.Lock()
			if prev := w.valid[name]; prev != nil && !fromFile {
				report.RunningIndex = w.runIdx[name]
			}
			w.mu.Unlock()
			w.log.Error("job in consul rejected; a running version keeps running", "job", name, "modify_index", e.ModifyIndex,
				"errors", strings.Join(report.Errors, "; "))
		} else {
			report.State = "accepted"
			w.mu.Lock()
			w.valid[name] = f
			w.runIdx[name] = e.ModifyIndex
			w.mu.Unlock()
			w.log.Info("job in consul accepted", "job", name, "modify_index", e.ModifyIndex)
		}
		w.writeStatus(ctx, report)
	}
	w.mu.Lock()
	var removed []string
	for name := range w.kvIndex {
		if !seen[name] {
			removed = append(removed, name)
			delete(w.kvIndex, name)
			delete(w.runIdx, name)
			if !w.fromFile[name] {
				delete(w.valid, name)
			}
		}
	}
	w.mu.Unlock()
	for _, name := range removed {
		w.log.Info("job removed from consul", "job", name)
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := w.consul.Delete(dctx, topology.KVJobStatus+name); err != nil {
			w.log.Warn("cannot remove job status", "job", name, "err", err)
		}
		cancel()
	}
}

func (w *consulWorker) writeStatus(ctx context.Context, rep JobStatusReport) {
	data, _ := json.MarshalIndent(rep, "", "  ")
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.consul.Put(sctx, topology.KVJobStatus+rep.Job, data); err != nil {
		w.log.Warn("cannot write job status", "job", rep.Job, "err", err)
	}
}

// syncHolders starts a lock holder for every valid job without one and
// stops those of jobs no longer valid.
func (w *consulWorker) syncHolders(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, cancel := range w.holders {
		if w.valid[name] == nil {
			cancel()
			delete(w.holders, name)
		}
	}
	for name := range w.valid {
		if _, ok := w.holders[name]; ok {
			continue
		}
		hctx, cancel := context.WithCancel(ctx)
		w.holders[name] = cancel
		w.holdWG.Add(1)
		go func() {
			defer w.holdWG.Done()
			w.member.Hold(hctx, topology.KVLocks+name, []byte(w.member.ID()), func(lctx context.Context) {
				w.setOwned(name, true)
				w.log.Info("owning job", "job", name)
				w.apply()
				<-lctx.Done()
				w.setOwned(name, false)
				w.log.Info("no longer owning job; stopping it", "job", name)
				w.apply()
			})
		}()
	}
}

func (w *consulWorker) setOwned(name string, owned bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if owned {
		w.owned[name] = true
	} else {
		delete(w.owned, name)
	}
}

// apply makes the runner run exactly the owned jobs with their last valid
// config, their Consul clusters' bootstrap lists set to the brokers known
// now (so a change of brokers changes the fingerprint and restarts the
// job).
func (w *consulWorker) apply() {
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return
	}
	names := make([]string, 0, len(w.owned))
	for name := range w.owned {
		if w.valid[name] != nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	files := make([]*config.File, len(names))
	for i, n := range names {
		files[i] = w.valid[n]
	}
	w.mu.Unlock()

	merged := &config.File{Path: "consul", Clusters: map[string]config.Cluster{}, NATS: map[string]*config.NATSJob{}}
	for _, f := range files {
		job := f.Jobs[0]
		if err := mergeClusters(merged.Clusters, f.Clusters, job); err != nil {
			w.log.Error("job not started", "job", job.Name, "err", err)
			continue
		}
		merged.Jobs = append(merged.Jobs, job)
		if n := f.NATS[job.Name]; n != nil {
			merged.NATS[job.Name] = n
		}
	}
	for name, c := range merged.Clusters {
		if c.Consul != nil {
			c.Bootstrap = w.disc.WaitKnown(w.jobCtx, Ref(c), DefaultFirstResolveWait)
			merged.Clusters[name] = c
		}
	}
	w.r.Apply(w.jobCtx, merged)
}

// mergeClusters adds the clusters job uses to into; a cluster defined
// differently by another job is an error.
func mergeClusters(into, from map[string]config.Cluster, job mirror.JobSpec) error {
	var names []string
	for _, s := range job.Sources {
		names = append(names, s.Cluster)
	}
	names = append(names, job.Targets...)
	for _, n := range names {
		c := from[n]
		if have, ok := into[n]; ok {
			a, _ := json.Marshal(have)
			b, _ := json.Marshal(c)
			if string(a) != string(b) {
				return fmt.Errorf("cluster %s is defined differently by another job this worker runs; give it another name", n)
			}
		}
	}
	for _, n := range names {
		into[n] = from[n]
	}
	return nil
}
