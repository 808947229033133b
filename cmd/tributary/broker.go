package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/broker/txn"
	"github.com/tributary/tributary/topology"
)

// shutdownGrace bounds how long a SIGTERM'd broker waits for requests in
// progress before closing their connections.
const shutdownGrace = 30 * time.Second

func brokerCommand() *cli.Command {
	d := broker.DefaultConfig()
	return &cli.Command{
		Name:  "broker",
		Usage: "run a Kafka-protocol broker node",
		Description: "Serves the Kafka protocol on --listen with partition logs under --data-dir.\n" +
			"SIGTERM or SIGINT: stop accepting, finish requests in progress, flush and close the logs.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: "./data", Usage: "directory of the broker's logs and metadata"},
			&cli.StringFlag{Name: "listen", Value: d.Listen, Usage: "Kafka listener `HOST:PORT`"},
			&cli.StringFlag{Name: "advertise", Usage: "`HOST:PORT` given to clients (default: the listen address)"},
			&cli.IntFlag{Name: "node-id", Value: 0, Usage: "this broker's node ID"},
			&cli.StringFlag{Name: "cluster", Value: d.Cluster, Usage: "human name of the cluster (the cluster ID is a UUID kept in the data dir)"},
			&cli.BoolFlag{Name: "auto-create-topics", Value: true, Usage: "create topics that clients ask Metadata for"},
			&cli.IntFlag{Name: "num-partitions", Value: int(d.DefaultPartitions), Usage: "partitions of auto-created topics"},
			&cli.IntFlag{Name: "max-request-bytes", Value: int(d.MaxRequestBytes), Usage: "largest request frame accepted; larger ones close the connection"},
			&cli.DurationFlag{Name: "transaction-abort-interval", Value: txn.DefaultAbortInterval, Usage: "how often transactions open past their timeout are aborted"},
			&cli.StringFlag{Name: "consul", Usage: "register in the Consul agent at `ADDR` (host:port or URL) as service " + topology.ServiceBroker},
			&cli.StringFlag{Name: "datacenter", Usage: "Consul datacenter `DC` the broker is in; must be its agent's (default: the agent's)"},
			&cli.DurationFlag{Name: "consul-check-ttl", Value: topology.DefaultCheckTTL, Usage: "TTL of the broker's Consul check, renewed every third of it (at most every 2s)"},
		}, logFlags()...),
		Action: runBroker,
	}
}

// logFlags are the flags of every topic's default log settings.
func logFlags() []cli.Flag {
	d := storage.DefaultConfig()
	return []cli.Flag{
		&cli.StringFlag{Name: "fsync", Value: "never", Usage: "fsync policy: never (as Kafka), interval=DURATION, or always (acknowledge after fsync)"},
		&cli.Int64Flag{Name: "segment-bytes", Value: d.SegmentBytes, Usage: "roll a segment at this size (topic config segment.bytes)"},
		&cli.DurationFlag{Name: "segment-time", Value: d.SegmentMs, Usage: "roll a segment this long after its first append (segment.ms)"},
		&cli.DurationFlag{Name: "retention-time", Value: d.RetentionMs, Usage: "delete segments older than this; -1ns keeps forever (retention.ms)"},
		&cli.Int64Flag{Name: "retention-bytes", Value: d.RetentionBytes, Usage: "delete old segments past this size per partition; -1 unlimited (retention.bytes)"},
		&cli.IntFlag{Name: "max-message-bytes", Value: int(d.MaxMessageBytes), Usage: "largest record batch accepted (max.message.bytes)"},
		&cli.DurationFlag{Name: "retention-check-interval", Value: broker.DefaultRetentionCheckInterval, Usage: "how often retention runs"},
		&cli.DurationFlag{Name: "log-cleaner-interval", Value: broker.DefaultCleanerInterval, Usage: "how often the log cleaner compacts topics with cleanup.policy=compact"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
	}
}

func logConfig(c *cli.Context) (storage.Config, error) {
	cfg := storage.DefaultConfig()
	fsync, err := storage.ParseFsyncPolicy(c.String("fsync"))
	if err != nil {
		return cfg, fmt.Errorf("--fsync: %w", err)
	}
	cfg.Fsync = fsync
	cfg.SegmentBytes = c.Int64("segment-bytes")
	cfg.SegmentMs = c.Duration("segment-time")
	cfg.RetentionMs = c.Duration("retention-time")
	if cfg.RetentionMs < 0 {
		cfg.RetentionMs = -1
	}
	cfg.RetentionBytes = c.Int64("retention-bytes")
	cfg.MaxMessageBytes = int32(c.Int("max-message-bytes"))
	return cfg, nil
}

func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}

func runBroker(c *cli.Context) error {
	logger, err := newLogger(c)
	if err != nil {
		return err
	}
	lcfg, err := logConfig(c)
	if err != nil {
		return err
	}
	cfg := broker.DefaultConfig()
	cfg.DataDir = c.String("data-dir")
	cfg.Listen = c.String("listen")
	cfg.Advertise = c.String("advertise")
	cfg.NodeID = int32(c.Int("node-id"))
	cfg.Cluster = c.String("cluster")
	cfg.Log = lcfg
	cfg.AutoCreateTopics = c.Bool("auto-create-topics")
	cfg.DefaultPartitions = int32(c.Int("num-partitions"))
	cfg.MaxRequestBytes = int32(c.Int("max-request-bytes"))
	cfg.RetentionCheckInterval = c.Duration("retention-check-interval")
	cfg.CleanerInterval = c.Duration("log-cleaner-interval")
	cfg.TransactionAbortInterval = c.Duration("transaction-abort-interval")
	cfg.Logger = logger

	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	if err := b.Start(); err != nil {
		b.Shutdown(context.Background())
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var reg *topology.Registration
	if addr := c.String("consul"); addr != "" {
		if reg, err = registerBroker(ctx, c, cfg, b, logger); err != nil {
			b.Shutdown(context.Background())
			return err
		}
	}
	<-ctx.Done()
	logger.Info("signal received, shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if reg != nil { // first, so that discovery stops handing out this broker
		if err := reg.Close(sctx); err != nil {
			logger.Warn("leaving consul", "err", err)
		}
	}
	return b.Shutdown(sctx)
}

// registerBroker registers the started broker in the Consul agent of
// --consul, retrying until the agent answers or ctx ends: a broker serves
// whether or not Consul is up.
func registerBroker(ctx context.Context, c *cli.Context, cfg broker.Config, b *broker.Broker, logger *slog.Logger) (*topology.Registration, error) {
	cl, err := topology.NewConsul(topology.ConsulConfig{Address: c.String("consul"), Logger: logger})
	if err != nil {
		return nil, err
	}
	addr := cfg.Advertise
	if addr == "" {
		addr = b.Addr()
	}
	want := topology.BrokerRegistration{
		Cluster: cfg.Cluster, Datacenter: c.String("datacenter"), NodeID: cfg.NodeID,
		ClusterID: b.ClusterID(), Addr: addr, CheckTTL: c.Duration("consul-check-ttl"),
	}
	for backoff := 500 * time.Millisecond; ; backoff = min(2*backoff, 10*time.Second) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		reg, err := cl.RegisterBroker(rctx, want)
		cancel()
		if err == nil || errors.Is(err, topology.ErrDatacenter) {
			return reg, err
		}
		logger.Warn("cannot register in consul; retrying", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, nil
		}
	}
}
