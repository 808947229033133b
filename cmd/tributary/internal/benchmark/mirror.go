package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	kafkabridge "github.com/tributary/tributary/bridge/kafka"
	"github.com/tributary/tributary/cmd/tributary/internal/runner"
	"github.com/tributary/tributary/mirror"
	"github.com/tributary/tributary/mirror/config"
)

// Mirror benchmark defaults, chosen so that a whole run takes well under a
// minute on a 2-core machine.
const (
	// DefaultMirrorRecords is how many records the throughput phases
	// produce and mirror.
	DefaultMirrorRecords = 1_000_000
	// DefaultMirrorRate is the records per second of the latency phase.
	DefaultMirrorRate = 10_000
	// DefaultMirrorDuration is how long the latency phase produces.
	DefaultMirrorDuration = 10 * time.Second
	// DefaultMirrorSettle bounds how long the latency phase waits, after its
	// producer stopped, for every record to reach the target.
	DefaultMirrorSettle = 30 * time.Second
	// DefaultMirrorRatioTarget is what the mirror's throughput should reach
	// as a fraction of raw produce with the sink's own client and settings.
	DefaultMirrorRatioTarget = 0.7
	// DefaultMirrorP99Target is the replication latency p99 the mirror
	// should stay under at DefaultMirrorRate.
	DefaultMirrorP99Target = 20 * time.Millisecond

	// mirrorPollInterval is how often the throughput phase looks at the
	// job's acknowledged record count.
	mirrorPollInterval = 2 * time.Millisecond
	// rateTick is how often the latency phase's producer catches up with
	// its schedule.
	rateTick = time.Millisecond
)

// Names used inside a mirror benchmark: the clusters as the job knows them,
// the jobs and the topics.
const (
	mirrorSourceCluster  = "source"
	mirrorTargetCluster  = "target"
	mirrorThroughputJob  = "bench-throughput"
	mirrorEOSJob         = "bench-exactly-once"
	mirrorLatencyJob     = "bench-latency"
	mirrorTopic          = "mirror-bench"
	mirrorEOSTopic       = "mirror-bench-exactly-once"
	mirrorLatencyTopic   = "mirror-bench-latency"
	mirrorSaramaTopic    = "mirror-bench-raw-sarama"
	mirrorFranzTopic     = "mirror-bench-raw-franz"
	mirrorLatencyMetric  = "tributary_mirror_replication_latency_seconds"
	peerSarama           = "sarama"
	peerFranz            = "franz-go"
	peerMirror           = "mirror"
	mirrorBrokerStopWait = DefaultPeerStopTimeout
)

// MirrorConfig says what RunMirror measures. Zero fields take defaults.
type MirrorConfig struct {
	// Records is how many records each throughput phase produces or
	// mirrors. Default DefaultMirrorRecords.
	Records int64
	// RecordSize is each record's value size in bytes (keys are null).
	// Default DefaultRecordSize.
	RecordSize int
	// Partitions of every topic the benchmark creates. Default
	// DefaultPartitions.
	Partitions int32
	// Rate is the records per second the latency phase produces into the
	// source. Default DefaultMirrorRate.
	Rate int
	// Duration is how long the latency phase produces. Default
	// DefaultMirrorDuration; negative skips the latency phase.
	Duration time.Duration
	// Linger is the mirror's Tuning.Linger; default mirror.DefaultLinger.
	Linger time.Duration
	// TempDir is where the two brokers' data directories are made (and
	// removed); default os.TempDir().
	TempDir string

	// MirrorCPUProfile, when set, receives a CPU profile (pprof format) of
	// the mirror throughput phase alone: the brokers and the job, while the
	// job copies the pre-loaded topic.
	MirrorCPUProfile io.Writer

	Progress ProgressOutput
	Logger   *slog.Logger // brokers' and mirror's log lines; default: discard
}

func (c MirrorConfig) withDefaults() MirrorConfig {
	if c.Records <= 0 {
		c.Records = DefaultMirrorRecords
	}
	if c.RecordSize <= 0 {
		c.RecordSize = DefaultRecordSize
	}
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Rate <= 0 {
		c.Rate = DefaultMirrorRate
	}
	if c.Duration == 0 {
		c.Duration = DefaultMirrorDuration
	}
	if c.Linger <= 0 {
		c.Linger = mirror.DefaultLinger
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// MirrorReport is what RunMirror measured. A phase that did not run (or
// failed before measuring anything) is nil.
type MirrorReport struct {
	Machine Machine
	Config  MirrorConfig // with defaults filled in

	// Sarama is raw produce into the target with the mirror sink's client
	// library and producer settings; Franz is raw produce with franz-go.
	Sarama, Franz *Result
	// Mirror is the one-hop mirror of a pre-loaded source topic: from the
	// job's start until the target acknowledged every record. Its Bytes
	// count keys and values only, like the raw produce runs.
	Mirror *Result
	// MirrorSetup is how long the mirror took from the job's start until it
	// was running (endpoints opened, target topic created, checkpoint
	// loaded); it is part of Mirror.Elapsed.
	MirrorSetup time.Duration
	// MirrorWireBytes are the key, value and header bytes the mirror wrote:
	// more than Mirror.Bytes by the provenance header on every record.
	MirrorWireBytes int64
	// MirrorExactlyOnce is the same one-hop mirror of another pre-loaded
	// source topic (same records, same settings) with delivery:
	// exactly-once: each batch and its checkpoint in one transaction on
	// the target. MirrorExactlyOnceSetup is its MirrorSetup.
	MirrorExactlyOnce      *Result
	MirrorExactlyOnceSetup time.Duration

	// Latency is the fixed-rate phase; nil when it did not run.
	Latency *LatencyReport
}

// LatencyReport is what the fixed-rate phase measured.
type LatencyReport struct {
	Rate     int           // records per second asked for
	Duration time.Duration // how long the producer ran
	Produced int64         // records the source acknowledged
	// Delivered counts the records a consumer of the target received; for
	// each, EndToEnd holds now minus its timestamp (the source's CreateTime,
	// kept by the mirror, in milliseconds), so it includes the source
	// producer's send, the mirror and the consumer's fetch.
	Delivered int64
	EndToEnd  Histogram
	// Mirror is the job's own tributary_mirror_replication_latency_seconds
	// histogram: source timestamp to the sink's acknowledgement of the
	// batch and its checkpoint.
	Mirror PromHistogram
}

// PromHistogram is a Prometheus histogram read back from a registry.
type PromHistogram struct {
	Count  uint64
	Sum    float64   // seconds
	Bounds []float64 // bucket upper bounds in seconds, ascending
	Counts []uint64  // cumulative counts, one per bound
}

// Quantile returns the upper bound of the bucket holding rank q of the
// observations, in seconds: the true quantile is at most that. It is +Inf
// when the rank lies beyond the last bound, and 0 with no observations.
func (h PromHistogram) Quantile(q float64) float64 {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(math.Max(0, math.Min(1, q)) * float64(h.Count)))
	rank = max(rank, 1)
	for i, c := range h.Counts {
		if c >= rank {
			return h.Bounds[i]
		}
	}
	return math.Inf(1)
}

// Mean is the average observation in seconds; 0 with none.
func (h PromHistogram) Mean() float64 {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / float64(h.Count)
}

// RunMirror starts two Tributary brokers in this process (source and
// target) and measures, one after the other: raw produce into the target
// with sarama configured as the mirror's sink configures it, raw produce
// with franz-go, a one-hop mirror of a pre-loaded source topic (at-least-once,
// then exactly-once on a second topic), and replication latency at a fixed
// rate. It returns what it measured even when
// a phase fails or ctx ends; the error says why the run stopped short.
func RunMirror(ctx context.Context, cfg MirrorConfig) (*MirrorReport, error) {
	cfg = cfg.withDefaults()
	rep := &MirrorReport{Machine: CurrentMachine(), Config: cfg}
	dir, err := os.MkdirTemp(cfg.TempDir, "tributary-bench-mirror-")
	if err != nil {
		return rep, fmt.Errorf("data directory: %w", err)
	}
	defer os.RemoveAll(dir)

	var stops []func(context.Context) error
	defer func() {
		for _, stop := range stops {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mirrorBrokerStopWait)
			_ = stop(sctx)
			cancel()
		}
	}()
	start := func(name string) ([]string, error) {
		addrs, stop, err := StartTributary(ctx, filepath.Join(dir, name), cfg.Logger.With("broker", name))
		if err != nil {
			return nil, fmt.Errorf("%s broker: %w", name, err)
		}
		stops = append(stops, stop)
		return addrs, nil
	}
	source, err := start(mirrorSourceCluster)
	if err != nil {
		return rep, err
	}
	target, err := start(mirrorTargetCluster)
	if err != nil {
		return rep, err
	}

	wl := Workload{Records: cfg.Records, RecordSize: cfg.RecordSize, Acks: AcksAll,
		Partitions: cfg.Partitions, Progress: cfg.Progress, Logger: cfg.Logger}

	// (a) Raw produce with the sink's client and settings.
	rep.Sarama, err = produceSarama(ctx, target, mirrorSaramaTopic, wl.withDefaults())
	if err != nil {
		return rep, fmt.Errorf("raw produce with sarama: %w", err)
	}
	// (b) Raw produce with franz-go, for reference.
	fw := wl
	fw.Topic, fw.Label = mirrorFranzTopic, peerFranz
	if rep.Franz, err = Produce(ctx, target, fw); err != nil {
		return rep, fmt.Errorf("raw produce with franz-go: %w", err)
	}
	// (c) One-hop mirror of a pre-loaded source topic.
	ep := &runner.Endpoints{Clusters: map[string]config.Cluster{
		mirrorSourceCluster: {Name: mirrorSourceCluster, Bootstrap: source},
		mirrorTargetCluster: {Name: mirrorTargetCluster, Bootstrap: target},
	}, Log: cfg.Logger}
	if err := mirrorThroughput(ctx, rep, ep, source, target, wl); err != nil {
		return rep, fmt.Errorf("mirror throughput: %w", err)
	}
	// (c') The same with delivery: exactly-once.
	if err := mirrorThroughputExactlyOnce(ctx, rep, ep, source, target, wl); err != nil {
		return rep, fmt.Errorf("exactly-once mirror throughput: %w", err)
	}
	// (d) Replication latency at a fixed rate.
	if cfg.Duration > 0 {
		rep.Latency = &LatencyReport{Rate: cfg.Rate, Duration: cfg.Duration}
		if err := mirrorLatency(ctx, rep.Latency, cfg, ep, source, target); err != nil {
			return rep, fmt.Errorf("mirror latency: %w", err)
		}
	}
	return rep, nil
}

// produceSarama sends w.Records records of w.RecordSize bytes to topic
// with an async producer configured as the mirror's sink, record i to
// partition i mod w.Partitions, keeping the input channel full and counting
// acknowledgements.
func produceSarama(ctx context.Context, brokers []string, topic string, w Workload) (*Result, error) {
	res := &Result{Op: OpProduce, Peer: peerSarama}
	if err := ensureTopic(ctx, brokers, topic, w.Partitions); err != nil {
		return res, err
	}
	// Exactly the settings of the mirror's Kafka sink with default options.
	sc, err := kafkabridge.ProducerConfig(kafkabridge.Config{Name: "target", Bootstrap: brokers}, kafkabridge.SinkOptions{})
	if err != nil {
		return res, err
	}
	p, err := sarama.NewAsyncProducer(brokers, sc)
	if err != nil {
		return res, fmt.Errorf("sarama producer for %v: %w", brokers, err)
	}
	closed := false
	defer func() {
		if closed {
			return
		}
		// Shut down without waiting for what is in flight: drain both
		// channels until sarama closes them.
		p.AsyncClose()
		succ, errs := p.Successes(), p.Errors()
		for succ != nil || errs != nil {
			select {
			case _, ok := <-succ:
				if !ok {
					succ = nil
				}
			case _, ok := <-errs:
				if !ok {
					errs = nil
				}
			}
		}
	}()
	value := payload(w.RecordSize)
	prog := startProgress(w.Progress, "produce "+peerSarama, w.Records)
	defer prog.stop()
	var sent int64
	input, succ, errs := p.Input(), p.Successes(), p.Errors()
	start := time.Now()
	for res.Records < w.Records {
		in := input
		var next *sarama.ProducerMessage
		if sent < w.Records {
			next = &sarama.ProducerMessage{Topic: topic, Partition: int32(sent % int64(w.Partitions)),
				Value: sarama.ByteEncoder(value), Timestamp: time.Now()}
		} else {
			in = nil
		}
		select {
		case in <- next:
			sent++
		case m := <-succ:
			res.Latency.Record(time.Since(m.Timestamp))
			res.Records++
			res.Bytes += int64(w.RecordSize)
			prog.add(1)
		case pe := <-errs:
			res.Elapsed = time.Since(start)
			return res, fmt.Errorf("produce to %s-%d: %w", pe.Msg.Topic, pe.Msg.Partition, pe.Err)
		case <-ctx.Done():
			res.Elapsed = time.Since(start)
			res.Interrupted = true
			return res, ctx.Err()
		}
	}
	res.Elapsed = time.Since(start)
	closed = true
	if err := p.Close(); err != nil {
		return res, fmt.Errorf("close sarama producer: %w", err)
	}
	return res, nil
}

// mirrorSpec is a job copying topic from the source cluster to the target
// with identity names, preserved partitions, from the earliest offset,
// creating the target topic.
func mirrorSpec(name, topic string, linger time.Duration) (mirror.JobSpec, error) {
	re, err := mirror.CompilePattern(topic)
	if err != nil {
		return mirror.JobSpec{}, fmt.Errorf("topic pattern %q: %w", topic, err)
	}
	return mirror.JobSpec{
		Name:         name,
		Sources:      []mirror.SourceSpec{{Cluster: mirrorSourceCluster, Include: []*regexp.Regexp{re}}},
		Targets:      []string{mirrorTargetCluster},
		Rename:       mirror.Rename{Kind: mirror.RenameIdentity},
		Partitioning: mirror.PartitionPreserve,
		Start:        mirror.StartPosition{Kind: mirror.StartEarliest},
		TopicSync:    mirror.TopicSync{Create: true},
		Tuning:       mirror.Tuning{Linger: linger},
	}, nil
}

// runningJob is a mirror job running in the background.
type runningJob struct {
	job    *mirror.Job
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done closes
}

func startJob(ctx context.Context, spec mirror.JobSpec, ep mirror.Endpoints, opts mirror.Options) *runningJob {
	jctx, cancel := context.WithCancel(ctx)
	rj := &runningJob{job: mirror.NewJob(spec, ep, opts), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rj.done)
		rj.err = rj.job.Run(jctx)
	}()
	return rj
}

// stop stops the job (it drains and checkpoints) and returns its error.
func (rj *runningJob) stop() error {
	rj.cancel()
	<-rj.done
	return rj.err
}

// flow returns the status of the job's only flow.
func (rj *runningJob) flow() mirror.FlowStatus {
	st := rj.job.Status()
	if len(st.Flows) == 0 {
		return mirror.FlowStatus{}
	}
	return st.Flows[0]
}

// waitFlow polls the job's flow every mirrorPollInterval until done says
// so, the job stops, or ctx ends.
func (rj *runningJob) waitFlow(ctx context.Context, done func(mirror.FlowStatus) bool) error {
	t := time.NewTicker(mirrorPollInterval)
	defer t.Stop()
	for {
		fs := rj.flow()
		if done(fs) {
			return nil
		}
		select {
		case <-t.C:
		case <-rj.done:
			if rj.err != nil {
				return fmt.Errorf("job %s stopped: %w", rj.job.Spec().Name, rj.err)
			}
			return fmt.Errorf("job %s stopped (state %s, last error %q)", rj.job.Spec().Name, fs.State, fs.LastError)
		case <-ctx.Done():
			return fmt.Errorf("job %s: flow %s, %d records acknowledged, last error %q: %w",
				rj.job.Spec().Name, fs.State, fs.Records, fs.LastError, ctx.Err())
		}
	}
}

// mirrorThroughput pre-loads the source topic, then runs a job copying it
// to the target and times it until the target acknowledged every record,
// which it then checks against the target's end offsets.
func mirrorThroughput(ctx context.Context, rep *MirrorReport, ep mirror.Endpoints, source, target []string, w Workload) error {
	spec, err := mirrorSpec(mirrorThroughputJob, mirrorTopic, rep.Config.Linger)
	if err != nil {
		return err
	}
	res, setup, wire, err := mirrorOnce(ctx, spec, mirrorTopic, rep.Config.MirrorCPUProfile, ep, source, target, w, "mirror")
	rep.Mirror, rep.MirrorSetup, rep.MirrorWireBytes = res, setup, wire
	return err
}

// mirrorThroughputExactlyOnce is mirrorThroughput with delivery:
// exactly-once, on a topic of its own.
func mirrorThroughputExactlyOnce(ctx context.Context, rep *MirrorReport, ep mirror.Endpoints, source, target []string, w Workload) error {
	spec, err := mirrorSpec(mirrorEOSJob, mirrorEOSTopic, rep.Config.Linger)
	if err != nil {
		return err
	}
	spec.Delivery = mirror.ExactlyOnce
	res, setup, _, err := mirrorOnce(ctx, spec, mirrorEOSTopic, nil, ep, source, target, w, "mirror exactly-once")
	rep.MirrorExactlyOnce, rep.MirrorExactlyOnceSetup = res, setup
	return err
}

// mirrorOnce pre-loads topic, the source topic of spec, runs spec until the target acknowledged every
// record, and checks the target: its end offsets must add up to the records
// (at-least-once), or to at least them, markers included (exactly-once: the
// flow's count of acknowledged records is then exact). It returns the
// result, the setup time and the bytes written with headers.
func mirrorOnce(ctx context.Context, spec mirror.JobSpec, topic string, cpuprofile io.Writer, ep mirror.Endpoints, source, target []string, w Workload, label string) (*Result, time.Duration, int64, error) {
	pw := w
	pw.Topic, pw.Label = topic, "source"
	if _, err := Produce(ctx, source, pw); err != nil {
		return nil, 0, 0, fmt.Errorf("pre-load the source: %w", err)
	}
	res := &Result{Op: "mirror", Peer: peerMirror}
	if cpuprofile != nil {
		if err := pprof.StartCPUProfile(cpuprofile); err != nil {
			return nil, 0, 0, fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	prog := startProgress(w.Progress, label, w.Records)
	start := time.Now()
	rj := startJob(ctx, spec, ep, mirror.Options{Logger: w.Logger})
	defer rj.stop()
	running := false
	var setup time.Duration
	var last int64
	err := rj.waitFlow(ctx, func(fs mirror.FlowStatus) bool {
		if !running && fs.State == "running" {
			running = true
			setup = time.Since(start)
		}
		prog.add(fs.Records - last)
		last = fs.Records
		return fs.Records >= w.Records
	})
	res.Elapsed = time.Since(start)
	prog.stop()
	fs := rj.flow()
	res.Records, res.Bytes = fs.Records, fs.Records*int64(w.RecordSize)
	if err != nil {
		res.Interrupted = ctx.Err() != nil
		return res, setup, fs.Bytes, err
	}
	if err := rj.stop(); err != nil {
		return res, setup, fs.Bytes, err
	}
	held, err := endOffsetSum(ctx, target, topic)
	if err != nil {
		return res, setup, fs.Bytes, err
	}
	switch exact := spec.Delivery != mirror.ExactlyOnce; {
	case exact && held != w.Records:
		return res, setup, fs.Bytes, fmt.Errorf("target topic %s holds %d records, want %d", topic, held, w.Records)
	case !exact && (held < w.Records || rj.flow().Records != w.Records):
		return res, setup, fs.Bytes, fmt.Errorf("target topic %s ends at %d with %d records acknowledged, want %d records", topic, held, rj.flow().Records, w.Records)
	}
	return res, setup, fs.Bytes, nil
}

// endOffsetSum sums the end offsets of topic's partitions: the records it
// holds, for a topic written once from offset 0.
func endOffsetSum(ctx context.Context, brokers []string, topic string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum, nil
}

// mirrorLatency runs a job on an empty source topic, produces into the
// source at cfg.Rate for cfg.Duration while a consumer of the target
// measures each record's age on delivery, then reads the job's latency
// histogram.
func mirrorLatency(ctx context.Context, lr *LatencyReport, cfg MirrorConfig, ep mirror.Endpoints, source, target []string) error {
	if err := ensureTopic(ctx, source, mirrorLatencyTopic, cfg.Partitions); err != nil {
		return err
	}
	spec, err := mirrorSpec(mirrorLatencyJob, mirrorLatencyTopic, cfg.Linger)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	rj := startJob(ctx, spec, ep, mirror.Options{Logger: cfg.Logger, Metrics: mirror.NewMetrics(reg)})
	defer rj.stop()
	// Running means the target topic exists: the consumer finds it with
	// its partition count.
	if err := rj.waitFlow(ctx, func(fs mirror.FlowStatus) bool { return fs.State == "running" }); err != nil {
		return err
	}

	cons, err := kgo.NewClient(
		kgo.SeedBrokers(target...),
		kgo.ConsumeTopics(mirrorLatencyTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return fmt.Errorf("target consumer: %w", err)
	}
	defer cons.Close()
	if err := cons.Ping(ctx); err != nil {
		return fmt.Errorf("target consumer: reach %v: %w", target, err)
	}
	// The consumer runs until it has every produced record (known once the
	// producer finished) or its context ends.
	var produced atomic.Int64
	produced.Store(math.MaxInt64)
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	var delivered atomic.Int64
	consumed := make(chan error, 1)
	go func() {
		consumed <- consumeAges(cctx, cons, &lr.EndToEnd, &delivered, &produced)
	}()

	n, err := produceAtRate(ctx, source, mirrorLatencyTopic, cfg)
	lr.Produced = n
	if err != nil {
		return err
	}
	produced.Store(n)
	settle := time.NewTimer(DefaultMirrorSettle)
	defer settle.Stop()
	// The consumer checks its count only when a fetch returns records: if
	// it had them all before n was known, it waits in PollFetches, so look
	// at the count from here too.
	check := time.NewTicker(10 * mirrorPollInterval)
	defer check.Stop()
wait:
	for {
		select {
		case err = <-consumed:
			break wait
		case <-check.C:
			if delivered.Load() >= n {
				stopConsumer()
				<-consumed
				err = nil
				break wait
			}
		case <-settle.C:
			stopConsumer()
			<-consumed
			err = fmt.Errorf("%d of %d records reached the target within %s of the producer's end", delivered.Load(), n, DefaultMirrorSettle)
			break wait
		}
	}
	lr.Delivered = delivered.Load()
	if err != nil {
		return err
	}
	// The histogram is observed once a batch and its checkpoint are
	// acknowledged: wait for that, then read it.
	sctx, cancel := context.WithTimeout(ctx, DefaultMirrorSettle)
	defer cancel()
	if err := rj.waitFlow(sctx, func(fs mirror.FlowStatus) bool { return fs.Records >= n }); err != nil {
		return err
	}
	lr.Mirror, err = gatherHistogram(reg, mirrorLatencyMetric, mirrorLatencyJob)
	return err
}

// consumeAges records into ages now minus the timestamp of every record
// the target delivers, counting them in delivered, until it has produced
// records (a count published once known) or ctx ends.
func consumeAges(ctx context.Context, cl *kgo.Client, ages *Histogram, delivered, produced *atomic.Int64) error {
	for delivered.Load() < produced.Load() {
		fetches := cl.PollFetches(ctx)
		now := time.Now()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fetchErr error
		fetches.EachError(func(topic string, partition int32, err error) {
			if fetchErr == nil && !errors.Is(err, context.Canceled) {
				fetchErr = fmt.Errorf("fetch %s-%d: %w", topic, partition, err)
			}
		})
		if fetchErr != nil {
			return fetchErr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			ages.Record(now.Sub(r.Timestamp))
		})
		delivered.Add(int64(fetches.NumRecords()))
	}
	return nil
}

// produceAtRate produces cfg.RecordSize-byte records into topic at
// cfg.Rate records per second for cfg.Duration, each stamped with the time
// it was handed to the client, and returns how many the source
// acknowledged. The producer does not linger, so records leave at once.
func produceAtRate(ctx context.Context, brokers []string, topic string, cfg MirrorConfig) (int64, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return 0, fmt.Errorf("source producer: %w", err)
	}
	defer cl.Close()
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var acked atomic.Int64
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			cancel(fmt.Errorf("produce to %s: %w", topic, err))
			return
		}
		acked.Add(1)
	}
	value := payload(cfg.RecordSize)
	total := int64(float64(cfg.Rate) * cfg.Duration.Seconds())
	prog := startProgress(cfg.Progress, fmt.Sprintf("latency at %d rec/s", cfg.Rate), total)
	defer prog.stop()
	t := time.NewTicker(rateTick)
	defer t.Stop()
	start := time.Now()
	var sent int64
	for sent < total && runCtx.Err() == nil {
		due := min(total, int64(float64(cfg.Rate)*time.Since(start).Seconds()))
		before := sent
		for ; sent < due; sent++ {
			cl.Produce(runCtx, &kgo.Record{Value: value, Timestamp: time.Now()}, promise)
		}
		prog.add(sent - before)
		select {
		case <-t.C:
		case <-runCtx.Done():
		}
	}
	if err := cl.Flush(runCtx); err != nil && runCtx.Err() == nil {
		return acked.Load(), fmt.Errorf("flush producer: %w", err)
	}
	if cause := context.Cause(runCtx); cause != nil {
		return acked.Load(), cause
	}
	return acked.Load(), nil
}

// gatherHistogram reads the histogram name with label job=job from reg.
func gatherHistogram(reg *prometheus.Registry, name, job string) (PromHistogram, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return PromHistogram{}, fmt.Errorf("gather metrics: %w", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			matched := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "job" && lp.GetValue() == job {
					matched = true
				}
			}
			h := m.GetHistogram()
			if !matched || h == nil {
				continue
			}
			out := PromHistogram{Count: h.GetSampleCount(), Sum: h.GetSampleSum()}
			for _, b := range h.GetBucket() {
				out.Bounds = append(out.Bounds, b.GetUpperBound())
				out.Counts = append(out.Counts, b.GetCumulativeCount())
			}
			return out, nil
		}
	}
	return PromHistogram{}, fmt.Errorf("no histogram %s for job %s", name, job)
}
