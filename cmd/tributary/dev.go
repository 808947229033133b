package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/cmd/tributary/internal/runner"
	"github.com/tributary/tributary/configs"
	"github.com/tributary/tributary/mirror/config"
)

// devClusters are the brokers of `tributary dev`, in port order.
var devClusters = []string{"east", "west", "central"}

// devTopics are created on start so the embedded jobs find them at once.
var devTopics = map[string][]string{"east": {"orders"}, "west": {"orders"}, "central": {"announcements"}}

func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run three brokers (east, west, central) and the jobs of the embedded configs/dev.yaml in one process",
		Description: "east on --base-port, west on +1, central on +2. The embedded jobs aggregate topic orders\n" +
			"from east and west into central and fan announcements out from central to east and west.\n" +
			"--demo adds a small producer and a live line of rates and lag.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "base-port", Value: 9092, Usage: "port of east; west and central take the next two"},
			&cli.StringFlag{Name: "data-dir", Usage: "where the brokers keep their logs (default: a temp dir, removed at exit)"},
			&cli.StringFlag{Name: "http", Value: "127.0.0.1:0", Usage: "serve /metrics and /v1/jobs on `ADDR`"},
			&cli.BoolFlag{Name: "demo", Usage: "produce a few records a second and print rates and lag"},
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "debug, info, warn or error (warn keeps the --demo line readable)"},
		},
		Action: runDev,
	}
}

func runDev(c *cli.Context) error {
	logger, err := newLogger(c)
	if err != nil {
		return err
	}
	dataDir := c.String("data-dir")
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "tributary-dev-"); err != nil {
			return err
		}
		defer os.RemoveAll(dataDir)
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	env := map[string]string{}
	var brokers []*broker.Broker
	defer func() {
		for _, b := range brokers {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			b.Shutdown(sctx)
			cancel()
		}
	}()
	for i, name := range devClusters {
		cfg := broker.DefaultConfig()
		cfg.DataDir = filepath.Join(dataDir, name)
		cfg.Listen = fmt.Sprintf("127.0.0.1:%d", c.Int("base-port")+i)
		cfg.Cluster = name
		cfg.AutoCreateTopics = true
		cfg.Logger = logger.With("broker", name)
		b, err := broker.New(cfg)
		if err != nil {
			return fmt.Errorf("broker %s: %w", name, err)
		}
		brokers = append(brokers, b)
		if err := b.Start(); err != nil {
			return fmt.Errorf("broker %s: %w", name, err)
		}
		env["DEV_"+strings.ToUpper(name)+"_BOOTSTRAP"] = b.Addr()
		if err := createTopics(ctx, b.Addr(), devTopics[name]); err != nil {
			return fmt.Errorf("broker %s: %w", name, err)
		}
	}
	f, err := config.Parse(configs.DevName, configs.Dev, config.Options{LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		return fmt.Errorf("embedded job file: %w", err)
	}
	r := runner.New(logger)
	httpCtx, cancelHTTP := context.WithCancel(context.Background())
	defer cancelHTTP()
	addr, err := r.Serve(httpCtx, c.String("http"))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\ntributary dev: east %s, west %s, central %s; status http://%s/v1/jobs, metrics http://%s/metrics\n"+
		"  try: kcat -b %s -P -t orders   then   kcat -b %s -C -t orders\n\n",
		env["DEV_EAST_BOOTSTRAP"], env["DEV_WEST_BOOTSTRAP"], env["DEV_CENTRAL_BOOTSTRAP"], addr, addr,
		env["DEV_EAST_BOOTSTRAP"], env["DEV_CENTRAL_BOOTSTRAP"])
	r.Apply(ctx, f)
	if c.Bool("demo") {
		go demo(ctx, logger, env, r)
	}
	<-ctx.Done()
	logger.Info("stopping: draining jobs, then brokers")
	r.Stop()
	return nil
}

// createTopics creates topics (one partition each) if missing.
func createTopics(ctx context.Context, addr string, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, topics...)
	if err != nil {
		return err
	}
	for _, r := range resps.Sorted() {
		if r.Err != nil && !strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS") {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// demo produces a few records a second to each source topic and prints a
// line of rates and lag every second.
func demo(ctx context.Context, logger *slog.Logger, env map[string]string, r *runner.Runner) {
	producers := map[string]string{"east": "orders", "west": "orders", "central": "announcements"}
	for cluster, topic := range producers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(env["DEV_"+strings.ToUpper(cluster)+"_BOOTSTRAP"]), kgo.DefaultProduceTopic(topic))
		if err != nil {
			logger.Error("demo producer", "err", err)
			return
		}
		defer cl.Close()
		go func(cluster string, cl *kgo.Client) {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", n%10)), Value: []byte(fmt.Sprintf("%s record %d", cluster, n))}, nil)
			}
		}(cluster, cl)
	}
	last := map[string]int64{}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr)
			return
		case <-t.C:
		}
		var parts []string
		for _, j := range r.Status() {
			for _, f := range j.Flows {
				key := j.Name + "/" + f.Target
				rate := f.Records - last[key]
				last[key] = f.Records
				parts = append(parts, fmt.Sprintf("%s→%s %d rec/s lag %d", j.Name, f.Target, rate, f.LagRecords))
			}
		}
		fmt.Fprintf(os.Stderr, "\r%s   ", strings.Join(parts, " | "))
	}
}
