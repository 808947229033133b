package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestBenchMirrorCommand(t *testing.T) {
	out, errOut, err := runBench(t, "mirror", "--records", "20000", "--record-size", "50",
		"--partitions", "2", "--rate", "2000", "--duration", "2s", "--linger", "2ms")
	if err != nil {
		t.Fatalf("bench mirror: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for _, want := range []string{
		"machine:",
		"20000 records of 50 bytes (null keys), 2 partition(s), acks=all, mirror linger 2ms",
		"(target 0.7)",
		"mirror/franz-go ",
		"exactly-once/mirror ",
		"replication latency at 2000 records/s for 2s: 4000 produced, 4000 delivered on the target",
		"p99 under 20 ms at 10000 records/s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Every throughput phase moved every record.
	for _, op := range []string{"mirror (one hop)", "mirror exactly-once", "produce sarama", "produce franz-go"} {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(op) + `\s+20000\s`).MatchString(out) {
			t.Errorf("no %q row with 20000 records:\n%s", op, out)
		}
	}
	// Both latency measurements saw every record of the fixed-rate phase.
	for _, row := range []string{"end-to-end (target consumer)", "mirror histogram (bucket bounds)"} {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(row) + `\s+4000\s`).MatchString(out) {
			t.Errorf("no %q row with 4000 samples:\n%s", row, out)
		}
	}
}

func TestBenchMirrorFlags(t *testing.T) {
	for _, args := range [][]string{
		{"mirror", "--records", "0"},
		{"mirror", "--partitions", "0"},
		{"mirror", "--rate", "-5"},
	} {
		if _, _, err := runBench(t, args...); err == nil || !strings.Contains(err.Error(), "must be positive") {
			t.Errorf("bench %v: err %v, want a must-be-positive error", args, err)
		}
	}
}
