package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/multierr"

	"github.com/tributary/tributary/cmd/tributary/internal/runner"
	"github.com/tributary/tributary/mirror"
	"github.com/tributary/tributary/mirror/config"
	"github.com/tributary/tributary/topology"
)

func mirrorCommand() *cli.Command {
	return &cli.Command{
		Name:  "mirror",
		Usage: "validate, plan, run and watch mirror jobs",
		Subcommands: []*cli.Command{
			{
				Name:      "validate",
				Usage:     "check a job file and report every mistake in it",
				ArgsUsage: "FILE",
				Action:    mirrorValidate,
			},
			{
				Name:      "plan",
				Usage:     "show which source topics a job file would mirror where, and any cycle, without moving data",
				ArgsUsage: "FILE",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "consul", Usage: "Consul agent `ADDR` for clusters given as consul:"},
					&cli.StringFlag{Name: "log-level", Value: "warn"},
				},
				Action: mirrorPlan,
			},
			{
				Name:  "run",
				Usage: "run the jobs of a job file and/or of Consul's KV store until SIGTERM (which drains in-flight records and writes checkpoints)",
				Description: "With --consul the worker also runs the jobs under the KV prefix " + topology.KVJobs + " of the agent's datacenter,\n" +
					"starting, restarting and stopping them as their keys change, and shares every job (those of --config too)\n" +
					"with the other workers of that Consul: a job runs on the worker holding its lock " + topology.KVLocks + "NAME.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "config", Usage: "job `FILE` (needed unless --consul is given)"},
					&cli.StringFlag{Name: "consul", Usage: "Consul agent `ADDR` (host:port or URL): run the jobs in its KV store, find clusters given as consul:, share jobs with other workers"},
					&cli.StringFlag{Name: "worker-id", Usage: "this worker's `ID` in Consul (default: hostname-pid)"},
					&cli.DurationFlag{Name: "consul-check-ttl", Value: topology.DefaultMemberTTL, Usage: "TTL of the worker's Consul check; a killed worker's jobs move to another worker after about this plus 5s"},
					&cli.DurationFlag{Name: "lock-delay", Value: topology.DefaultLockDelay, Usage: "lock-delay of the worker's Consul session (must be > 0: Consul reads 0 as 15s)"},
					&cli.DurationFlag{Name: "consul-outage-tolerance", Value: topology.DefaultLockTolerance, Usage: "a Consul outage shorter than this does not stop the jobs this worker owns"},
					&cli.StringFlag{Name: "http", Usage: "serve /metrics and /v1/jobs on `ADDR` (127.0.0.1:0 picks a free port and logs it)"},
					&cli.StringFlag{Name: "log-level", Value: "info"},
				},
				Action: mirrorRun,
			},
			{
				Name:  "status",
				Usage: "print the jobs of a running worker as a table",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "http", Required: true, Usage: "the worker's --http `ADDR`"},
				},
				Action: mirrorStatus,
			},
		},
	}
}

// loadJobFile loads and validates a job file, printing every problem.
func loadJobFile(path string) (*config.File, error) {
	f, err := config.Load(path, config.Options{})
	if err != nil {
		if errors.Is(err, config.ErrInvalid) {
			errs := multierr.Errors(err)
			for _, e := range errs {
				fmt.Fprintln(os.Stderr, e)
			}
			return nil, fmt.Errorf("%s: %d problem(s)", path, len(errs))
		}
		return nil, err
	}
	return f, nil
}

func mirrorValidate(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: tributary mirror validate FILE")
	}
	f, err := loadJobFile(c.Args().First())
	if err != nil {
		return err
	}
	fmt.Printf("%s: valid: %d cluster(s), %d job(s)\n", c.Args().First(), len(f.Clusters), len(f.Jobs))
	return nil
}

func mirrorPlan(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: tributary mirror plan FILE")
	}
	logger, err := newLogger(c)
	if err != nil {
		return err
	}
	f, err := loadJobFile(c.Args().First())
	if err != nil {
		return err
	}
	ep := &runner.Endpoints{Clusters: f.Clusters, Log: logger, NATS: f.NATS}
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	defer cancel()
	if addr := c.String("consul"); addr != "" {
		cl, err := topology.NewConsul(topology.ConsulConfig{Address: addr, Logger: logger})
		if err != nil {
			return err
		}
		ep.Resolve = runner.NewDiscovery(ctx, cl, logger, nil).Resolve
	}
	plan, err := f.Plan(ctx, func(ctx context.Context, cluster string) ([]mirror.TopicInfo, error) {
		src, err := ep.OpenSource(ctx, cluster, mirror.Use{})
		if err != nil {
			return nil, err
		}
		defer src.Close()
		return src.Topics(ctx)
	})
	if err != nil {
		return err
	}
	return config.FormatPlan(os.Stdout, plan)
}

func mirrorRun(c *cli.Context) error {
	logger, err := newLogger(c)
	if err != nil {
		return err
	}
	if c.String("config") == "" && c.String("consul") == "" {
		return errors.New("mirror run: give --config FILE, --consul ADDR, or both")
	}
	if c.IsSet("lock-delay") && c.Duration("lock-delay") <= 0 {
		return errors.New("mirror run: --lock-delay must be positive (Consul reads 0 as 15s)")
	}
	var f *config.File
	if path := c.String("config"); path != "" {
		if f, err = loadJobFile(path); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	r := runner.New(logger)
	if addr := c.String("http"); addr != "" {
		httpCtx, cancelHTTP := context.WithCancel(context.Background())
		defer cancelHTTP()
		got, err := r.Serve(httpCtx, addr)
		if err != nil {
			return err
		}
		logger.Info("serving metrics and status", "http", got)
	}
	if addr := c.String("consul"); addr != "" {
		cl, err := topology.NewConsul(topology.ConsulConfig{Address: addr, Logger: logger})
		if err != nil {
			return err
		}
		err = r.RunConsul(ctx, runner.ConsulOptions{
			Consul: cl, File: f, WorkerID: c.String("worker-id"),
			MemberTTL: c.Duration("consul-check-ttl"), LockDelay: c.Duration("lock-delay"),
			LockTolerance: c.Duration("consul-outage-tolerance"),
		})
		logger.Info("all jobs stopped")
		return err
	}
	r.Apply(ctx, f)
	select {
	case <-ctx.Done():
		logger.Info("signal received: draining jobs")
		r.Stop()
		logger.Info("all jobs stopped")
		return nil
	case fj := <-r.Fenced():
		err := error(fj)
		// Exactly-once: a newer instance of a flow took over (this worker
		// was paused or partitioned). It must not write again: exit.
		logger.Error("fenced by a newer instance; exiting", "err", err)
		r.Stop()
		return fmt.Errorf("fenced: another instance of the job took over, so this one stopped writing: %w", err)
	}
}

func mirrorStatus(c *cli.Context) error {
	ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.String("http")+"/v1/jobs", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask worker at %s: %w", c.String("http"), err)
	}
	defer resp.Body.Close()
	var body struct {
		Jobs []mirror.JobStatus `json:"jobs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("read status from %s: %w", c.String("http"), err)
	}
	return printStatus(os.Stdout, body.Jobs)
}

func printStatus(w io.Writer, jobs []mirror.JobStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tTARGET\tSTATE\tRECORDS\tLAG\tLAG(s)\tCHECKPOINT\tLAST ERROR")
	for _, j := range jobs {
		sort.Slice(j.Flows, func(a, b int) bool { return j.Flows[a].Target < j.Flows[b].Target })
		for _, f := range j.Flows {
			cp := "-"
			if !f.CheckpointTime.IsZero() {
				cp = time.Since(f.CheckpointTime).Round(time.Second).String() + " ago"
			}
			lastErr := f.LastError
			if len(lastErr) > 80 {
				lastErr = lastErr[:77] + "..."
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1f\t%s\t%s\n", j.Name, f.Target, f.State, f.Records, f.LagRecords, f.LagSeconds, cp, lastErr)
		}
	}
	return tw.Flush()
}
