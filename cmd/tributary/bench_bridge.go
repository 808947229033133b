package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tributary/tributary/cmd/tributary/internal/benchmark"
	"github.com/tributary/tributary/cmd/tributary/internal/runner"
	"github.com/tributary/tributary/mirror"
	"github.com/tributary/tributary/mirror/config"
)

// Defaults of `tributary bench bridge`.
const (
	// defaultBridgeRecords is how many records each phase moves.
	defaultBridgeRecords = 200_000
	// bridgeTargetRatio is the bridge's throughput target relative to raw
	// JetStream publish.
	bridgeTargetRatio = 0.7
)

// benchBridgeCommand is `tributary bench bridge`: Kafka → JetStream
// throughput through the NATS bridge next to raw JetStream publish of the
// same records, measured in the same run.
func benchBridgeCommand() *cli.Command {
	return &cli.Command{
		Name: "bridge",
		Usage: "start a Tributary broker and a nats-server in-process and compare Kafka → JetStream mirroring " +
			"(exactly-once, Nats-Msg-Id) with raw JetStream async publish of the same records",
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "records", Value: defaultBridgeRecords, Usage: "records published by each phase"},
			&cli.IntFlag{Name: "record-size", Value: benchmark.DefaultRecordSize, Usage: "record value size in bytes"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the bridge phase to `FILE`"},
		},
		Action: benchBridge,
	}
}

func benchBridge(c *cli.Context) error {
	n, size := c.Int64("records"), c.Int("record-size")
	if n <= 0 || size <= 0 {
		return fmt.Errorf("--records and --record-size must be positive")
	}
	logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signalContext(c)
	defer stop()
	dir, err := os.MkdirTemp("", "tributary-bench-bridge-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	brokers, stopBroker, err := benchmark.StartTributary(ctx, filepath.Join(dir, "tributary"), logger)
	if err != nil {
		return err
	}
	defer stopBroker(context.WithoutCancel(ctx))
	ns, err := benchmark.StartJetStream(filepath.Join(dir, "jetstream"))
	if err != nil {
		return err
	}
	defer ns.Shutdown()

	// Raw JetStream publish: the ceiling.
	raw, err := benchmark.ProduceJetStream(ctx, ns.URL(), benchmark.Workload{Topic: "raw", Records: n, RecordSize: size,
		Progress: progressOutput(c.App.ErrWriter), Logger: logger})
	if err != nil {
		return fmt.Errorf("raw JetStream publish: %w", err)
	}
	// The same with a Nats-Msg-Id per message: the server's deduplication,
	// the guarantee the exactly-once bridge gives, has a cost of its own.
	rawIDs, err := benchmark.ProduceJetStream(ctx, ns.URL(), benchmark.Workload{Topic: "rawids", Records: n, RecordSize: size,
		MsgIDs: true, Label: "jetstream+msgid", Progress: progressOutput(c.App.ErrWriter), Logger: logger})
	if err != nil {
		return fmt.Errorf("raw JetStream publish with message IDs: %w", err)
	}
	// Pre-load the Kafka topic, then time the bridge moving it.
	if _, err := benchmark.Produce(ctx, brokers, benchmark.Workload{Topic: "orders", Records: n, RecordSize: size,
		Acks: benchmark.AcksAll, Progress: progressOutput(c.App.ErrWriter), Logger: logger}); err != nil {
		return fmt.Errorf("pre-load orders: %w", err)
	}
	var profile io.Writer
	if path := c.String("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		profile = f
	}
	elapsed, err := runBridge(ctx, brokers, ns.URL(), n, profile, logger)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	bridgeRate := float64(n) / elapsed.Seconds()
	ratio := bridgeRate / raw.RecordsPerSec()
	w := c.App.Writer
	fmt.Fprintf(w, "%-32s %12s %12s\n", "PHASE", "RECORDS/S", "SECONDS")
	fmt.Fprintf(w, "%-32s %12.0f %12.2f\n", "raw JetStream async publish", raw.RecordsPerSec(), raw.Elapsed.Seconds())
	fmt.Fprintf(w, "%-32s %12.0f %12.2f\n", "raw publish with Nats-Msg-Id", rawIDs.RecordsPerSec(), rawIDs.Elapsed.Seconds())
	fmt.Fprintf(w, "%-32s %12.0f %12.2f\n", "Kafka -> JetStream bridge", bridgeRate, elapsed.Seconds())
	verdict := "meets"
	if ratio < bridgeTargetRatio {
		verdict = "misses"
	}
	fmt.Fprintf(w, "ratio bridge/raw: %.2f (%s the target of %.1f); %d records of %d bytes\n", ratio, verdict, bridgeTargetRatio, n, size)
	fmt.Fprintf(w, "ratio bridge/raw with Nats-Msg-Id (same deduplication): %.2f\n", bridgeRate/rawIDs.RecordsPerSec())
	return nil
}

// runBridge runs an exactly-once Kafka → JetStream job over topic orders
// until the target acknowledged n records, and returns how long it took.
// With a non-nil profile it writes a CPU profile of that time to it.
func runBridge(ctx context.Context, brokers []string, natsURL string, n int64, profile io.Writer, logger *slog.Logger) (time.Duration, error) {
	const job = "bench-bridge"
	ep := &runner.Endpoints{
		Clusters: map[string]config.Cluster{
			"kafka":  {Name: "kafka", Bootstrap: brokers},
			"events": {Name: "events", NATS: &config.NATS{Servers: []string{natsURL}}},
		},
		NATS: map[string]*config.NATSJob{job: {Stream: "BRIDGE", Subjects: []string{"bridge.>"}, CreateStream: true,
			Subject: "bridge.{partition}"}},
		Log: logger,
	}
	spec := mirror.JobSpec{Name: job, Targets: []string{"events"},
		Sources:   []mirror.SourceSpec{{Cluster: "kafka", Include: []*regexp.Regexp{regexp.MustCompile(`^orders$`)}}},
		Start:     mirror.StartPosition{Kind: mirror.StartEarliest},
		TopicSync: mirror.TopicSync{Create: true}, Delivery: mirror.ExactlyOnce}
	j := mirror.NewJob(spec, ep, mirror.Options{Logger: logger})
	jctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err != nil {
			cancel()
			return 0, fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	go func() { done <- j.Run(jctx) }()
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		st := j.Status()
		if len(st.Flows) == 1 && st.Flows[0].Records >= n {
			return time.Since(start), nil
		}
		select {
		case <-tick.C:
		case err := <-done:
			done <- err
			return 0, fmt.Errorf("job stopped: %v", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
