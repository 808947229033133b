package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tributary/tributary/cmd/tributary/internal/benchmark"
)

// runBench runs `tributary bench args...` in-process and returns its
// standard output and error.
func runBench(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{
		Name:      "tributary",
		Commands:  []*cli.Command{benchCommand()},
		Writer:    &out,
		ErrWriter: &errOut,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = app.RunContext(ctx, append([]string{"tributary", "bench"}, args...))
	return out.String(), errOut.String(), err
}

func TestBenchCompareCommand(t *testing.T) {
	out, errOut, err := runBench(t, "compare", "--records", "2000", "--jetstream-records", "500", "--record-size", "20")
	if err != nil {
		t.Fatalf("bench compare: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for _, want := range []string{"machine:", "500 on jetstream", "tributary/kfake ", "tributary/jetstream "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Every peer produced and consumed every record it was given.
	for _, row := range []struct{ op, peer, records string }{
		{"produce", "tributary", "2000"}, {"produce", "kfake", "2000"}, {"produce", "jetstream", "500"},
		{"consume", "tributary", "2000"}, {"consume", "kfake", "2000"}, {"consume", "jetstream", "500"},
	} {
		if !hasRow(out, row.op, row.peer, row.records) {
			t.Errorf("no %s row for %s with %s records:\n%s", row.op, row.peer, row.records, out)
		}
	}
}

func TestBenchProduceConsumeCommands(t *testing.T) {
	brokers, stop, err := benchmark.StartKfake(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stop(context.Background()) }()
	common := []string{"--brokers", strings.Join(brokers, ","), "--topic", "cli", "--records", "300"}
	out, errOut, err := runBench(t, append([]string{"produce", "--acks", "1", "--partitions", "2", "--producers", "2", "--record-size", "7"}, common...)...)
	if err != nil {
		t.Fatalf("bench produce: %v\n%s%s", err, out, errOut)
	}
	if !hasRow(out, "produce", "kafka", "300") || !strings.Contains(out, "p99.9 ms") {
		t.Errorf("bench produce output:\n%s", out)
	}
	out, errOut, err = runBench(t, append([]string{"consume"}, common...)...)
	if err != nil {
		t.Fatalf("bench consume: %v\n%s%s", err, out, errOut)
	}
	if !hasRow(out, "consume", "kafka", "300") {
		t.Errorf("bench consume output:\n%s", out)
	}
	if _, _, err := runBench(t, "produce", "--acks", "2"); err == nil || !strings.Contains(err.Error(), "acks") {
		t.Errorf("bench produce --acks 2: err %v, want an acks error", err)
	}
	if _, _, err := runBench(t, "compare", "--peers", "kafka"); err == nil || !strings.Contains(err.Error(), "unknown peer") {
		t.Errorf("bench compare --peers kafka: err %v, want unknown peer", err)
	}
}

// hasRow reports whether a table line starts with op, peer and records.
func hasRow(out, op, peer, records string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == op && f[1] == peer && f[2] == records {
			return true
		}
	}
	return false
}
