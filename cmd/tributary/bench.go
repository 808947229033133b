package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tributary/tributary/cmd/tributary/internal/benchmark"
)

// benchCommand is `tributary bench`: produce, consume and compare
// throughput and latency benchmarks.
func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure produce and consume throughput and latency",
		Subcommands: []*cli.Command{
			{
				Name:   "produce",
				Usage:  "produce records to Kafka-protocol brokers and report throughput and ack latency",
				Flags:  append(brokerFlags(), workloadFlags(true)...),
				Action: benchProduce,
			},
			{
				Name:   "consume",
				Usage:  "consume records from the start of a topic (no group) and report throughput",
				Flags:  append(brokerFlags(), workloadFlags(false)...),
				Action: benchConsume,
			},
			{
				Name: "compare",
				Usage: "run the same produce and consume against an in-process Tributary broker, " +
					"kfake and JetStream, and print one table",
				Flags: append(workloadFlags(true),
					&cli.Int64Flag{Name: "jetstream-records", Value: benchmark.DefaultJetStreamRecords,
						Usage: "records for JetStream (slower on small records; rates are compared)"},
					&cli.StringSliceFlag{Name: "peers",
						Value: cli.NewStringSlice(benchmark.PeerTributary, benchmark.PeerKfake, benchmark.PeerJetStream),
						Usage: "peers to measure, in order"},
				),
				Action: benchCompare,
			},
			benchMirrorCommand(),
			benchBridgeCommand(),
		},
	}
}

func brokerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "brokers", Value: cli.NewStringSlice("127.0.0.1:9092"), Usage: "bootstrap brokers"},
	}
}

// workloadFlags are the flags every bench command shares; produce-side ones
// only where records are produced.
func workloadFlags(produce bool) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "topic", Value: benchmark.DefaultTopic, Usage: "topic to use"},
		&cli.Int64Flag{Name: "records", Value: benchmark.DefaultRecords, Usage: "records to produce or consume"},
		&cli.DurationFlag{Name: "idle-timeout", Value: benchmark.DefaultIdleTimeout,
			Usage: "give up consuming after this long without a record"},
	}
	if produce {
		flags = append(flags,
			&cli.IntFlag{Name: "record-size", Value: benchmark.DefaultRecordSize, Usage: "record value size in bytes"},
			&cli.StringFlag{Name: "acks", Value: "all", Usage: "producer acks: 0, 1, -1 or all"},
			&cli.IntFlag{Name: "partitions", Value: benchmark.DefaultPartitions, Usage: "partitions of the topic if it must be created"},
			&cli.IntFlag{Name: "producers", Value: benchmark.DefaultProducers, Usage: "concurrent producer clients"},
		)
	}
	return flags
}

func workloadFromFlags(c *cli.Context) (benchmark.Workload, error) {
	w := benchmark.Workload{
		Topic:       c.String("topic"),
		Records:     c.Int64("records"),
		RecordSize:  c.Int("record-size"),
		Partitions:  int32(c.Int("partitions")),
		Producers:   c.Int("producers"),
		IdleTimeout: c.Duration("idle-timeout"),
		Progress:    progressOutput(c.App.ErrWriter),
		Logger:      slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if c.IsSet("acks") || c.Command.Name != "consume" {
		acks, err := benchmark.ParseAcks(c.String("acks"))
		if err != nil {
			return w, err
		}
		w.Acks = acks
	}
	if w.Records <= 0 {
		return w, fmt.Errorf("--records must be positive, got %d", w.Records)
	}
	return w, nil
}

// progressOutput draws a bar when w is a terminal, plain lines otherwise.
func progressOutput(w io.Writer) benchmark.ProgressOutput {
	out := benchmark.ProgressOutput{W: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			out.Terminal = true
		}
	}
	return out
}

// signalContext is cancelled by Ctrl-C or SIGTERM, so that a run stops and
// prints what it measured so far.
func signalContext(c *cli.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
}

func benchProduce(c *cli.Context) error {
	w, err := workloadFromFlags(c)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c)
	defer stop()
	res, runErr := benchmark.Produce(ctx, c.StringSlice("brokers"), w)
	return reportRun(c, res, runErr)
}

func benchConsume(c *cli.Context) error {
	w, err := workloadFromFlags(c)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c)
	defer stop()
	res, runErr := benchmark.Consume(ctx, c.StringSlice("brokers"), w)
	return reportRun(c, res, runErr)
}

// reportRun prints whatever res measured, then returns the run's error.
func reportRun(c *cli.Context, res *benchmark.Result, runErr error) error {
	if res != nil && (res.Records > 0 || runErr == nil) {
		if err := benchmark.WriteResults(c.App.Writer, res); err != nil {
			return err
		}
	}
	if runErr != nil {
		return fmt.Errorf("bench %s: %w", c.Command.Name, runErr)
	}
	return nil
}

func benchCompare(c *cli.Context) error {
	w, err := workloadFromFlags(c)
	if err != nil {
		return err
	}
	peers, err := peersByName(c.StringSlice("peers"))
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c)
	defer stop()
	cmp, runErr := benchmark.Compare(ctx, benchmark.CompareConfig{
		Workload:         w,
		JetStreamRecords: c.Int64("jetstream-records"),
		Peers:            peers,
	})
	if err := cmp.WriteTable(c.App.Writer); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("bench compare: %w", runErr)
	}
	return nil
}

func peersByName(names []string) ([]benchmark.Peer, error) {
	known := map[string]func() benchmark.Peer{
		benchmark.PeerTributary: benchmark.TributaryPeer,
		benchmark.PeerKfake:     benchmark.KfakePeer,
		benchmark.PeerJetStream: benchmark.JetStreamPeer,
	}
	var peers []benchmark.Peer
	for _, list := range names {
		for _, name := range strings.Split(list, ",") {
			name = strings.TrimSpace(name)
			mk, ok := known[name]
			if !ok {
				return nil, fmt.Errorf("unknown peer %q: want %s, %s or %s", name,
					benchmark.PeerTributary, benchmark.PeerKfake, benchmark.PeerJetStream)
			}
			peers = append(peers, mk())
		}
	}
	if len(peers) == 0 {
		return nil, errors.New("--peers: no peer given")
	}
	return peers, nil
}
