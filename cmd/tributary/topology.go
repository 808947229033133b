package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tributary/tributary/topology"
)

func topologyCommand() *cli.Command {
	return &cli.Command{
		Name:  "topology",
		Usage: "show the clusters and brokers registered in Consul, by datacenter, with their health; and the mirror workers and job owners",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "consul", Value: "127.0.0.1:8500", Usage: "Consul agent `ADDR` (host:port or URL)"},
			&cli.StringFlag{Name: "log-level", Value: "warn"},
		},
		Action: runTopology,
	}
}

func runTopology(c *cli.Context) error {
	logger, err := newLogger(c)
	if err != nil {
		return err
	}
	cl, err := topology.NewConsul(topology.ConsulConfig{Address: c.String("consul"), Logger: logger})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	defer cancel()
	return printTopology(ctx, os.Stdout, cl)
}

// printTopology prints one table of brokers (every datacenter the agent
// knows), then the local datacenter's workers and job owners.
func printTopology(ctx context.Context, w io.Writer, cl *topology.Consul) error {
	dcs, err := cl.Datacenters(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATACENTER\tCLUSTER\tNODE\tADDRESS\tHEALTH\tCLUSTER ID")
	for _, dc := range dcs {
		brokers, err := cl.Catalog(ctx, dc)
		if err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tunreachable: %v\t-\n", dc, err)
			continue
		}
		if len(brokers) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tno brokers\t-\n", dc)
		}
		for _, b := range brokers {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", dc, b.Cluster, b.NodeID, b.Addr, b.Health, b.ClusterID)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	workers, err := cl.Workers(ctx, "")
	if err != nil {
		return err
	}
	owners, err := cl.Owners(ctx, topology.KVLocks)
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tNODE\tHEALTH")
	for _, wk := range workers {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", wk.ID, wk.Node, wk.Health)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tOWNER")
	for _, o := range owners {
		holder := o.Holder
		if o.Session == "" {
			holder = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", o.Key, holder)
	}
	return tw.Flush()
}
