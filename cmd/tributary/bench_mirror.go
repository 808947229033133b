package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tributary/tributary/cmd/tributary/internal/benchmark"
)

// benchMirrorCommand is `tributary bench mirror`: a one-hop mirror's
// throughput next to raw produce into the same target, and replication
// latency at a fixed rate, between two in-process brokers.
func benchMirrorCommand() *cli.Command {
	return &cli.Command{
		Name: "mirror",
		Usage: "start a source and a target broker in-process and measure a one-hop mirror's throughput " +
			"against raw produce (sarama with the sink's settings, franz-go), then replication latency at a fixed rate",
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "records", Value: benchmark.DefaultMirrorRecords,
				Usage: "records produced, and mirrored, by each throughput phase"},
			&cli.IntFlag{Name: "record-size", Value: benchmark.DefaultRecordSize, Usage: "record value size in bytes (keys are null)"},
			&cli.IntFlag{Name: "partitions", Value: benchmark.DefaultPartitions, Usage: "partitions of every topic"},
			&cli.IntFlag{Name: "rate", Value: benchmark.DefaultMirrorRate, Usage: "records/s produced into the source in the latency phase"},
			&cli.DurationFlag{Name: "duration", Value: benchmark.DefaultMirrorDuration,
				Usage: "how long the latency phase produces; 0 skips it"},
			&cli.DurationFlag{Name: "linger", Usage: "the mirror's batch linger (default the mirror's own default)"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the mirror throughput phase to `FILE`"},
		},
		Action: benchMirror,
	}
}

func benchMirror(c *cli.Context) error {
	cfg := benchmark.MirrorConfig{
		Records:    c.Int64("records"),
		RecordSize: c.Int("record-size"),
		Partitions: int32(c.Int("partitions")),
		Rate:       c.Int("rate"),
		Duration:   c.Duration("duration"),
		Linger:     c.Duration("linger"),
		Progress:   progressOutput(c.App.ErrWriter),
		Logger:     slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	switch {
	case cfg.Records <= 0:
		return fmt.Errorf("--records must be positive, got %d", cfg.Records)
	case cfg.RecordSize <= 0:
		return fmt.Errorf("--record-size must be positive, got %d", cfg.RecordSize)
	case cfg.Partitions <= 0:
		return fmt.Errorf("--partitions must be positive, got %d", cfg.Partitions)
	case cfg.Rate <= 0:
		return fmt.Errorf("--rate must be positive, got %d", cfg.Rate)
	case cfg.Duration < 0 || cfg.Linger < 0:
		return fmt.Errorf("--duration and --linger cannot be negative")
	}
	if cfg.Duration == 0 {
		cfg.Duration = -1 // MirrorConfig: negative skips the latency phase
	}
	if path := c.String("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		cfg.MirrorCPUProfile = f
	}
	ctx, stop := signalContext(c)
	defer stop()
	rep, runErr := benchmark.RunMirror(ctx, cfg)
	if err := rep.WriteTable(c.App.Writer); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("bench mirror: %w", runErr)
	}
	return nil
}
