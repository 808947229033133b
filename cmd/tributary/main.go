package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:  "tributary",
		Usage: "Kafka-protocol brokers and cross-cluster mirroring",
		Commands: []*cli.Command{
			brokerCommand(),
			benchCommand(),
			mirrorCommand(),
			devCommand(),
			groupsCommand(),
			topologyCommand(),
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "tributary:", err)
		os.Exit(1)
	}
}
