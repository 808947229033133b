package mirror

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestSIGKILLDuringStream streams 200,000 records (3 partitions, paced at
// 30,000 records/s) from east to central and SIGKILLs the worker at 15,
// 30, 45, 60 and 75 % of the target's progress, restarting it each time.
// Every produced record reaches central, and in each partition the first
// occurrences come in the order produced; repeats (the records in flight
// at each kill) are allowed and logged.
func TestSIGKILLDuringStream(t *testing.T) {
	const (
		total      = 200_000
		partitions = 3
		perSecond  = 30_000
		tick       = 10 * time.Millisecond
		perTick    = perSecond * int(tick) / int(time.Second)
	)
	east, central := cluster.StartBroker(t), cluster.StartBroker(t)
	cluster.CreateTopic(t, east.Addr, "stream", partitions, nil)
	job := cluster.WriteFile(t, "stream.yaml", cluster.ClustersYAML(map[string]string{"east": east.Addr, "central": central.Addr})+`
jobs:
  - name: stream
    sources:
      - cluster: east
        topics: [stream]
    targets: [central]
    rename: identity
    partitioning: preserve
    start: earliest
    tuning: {metadata_refresh: 1s, max_retry_backoff: 1s}
`)
	m := cluster.StartMirror(t, job)

	// The paced producer: perTick records every tick, round-robin over the
	// partitions, each value "partition|sequence within the partition|padding".
	cl := cluster.Dial(t, east.Addr, kgo.DefaultProduceTopic("stream"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		produceErr atomic.Value
		acked      atomic.Int64
		wg         sync.WaitGroup
	)
	defer func() { cancel(); wg.Wait() }()
	padding := strings.Repeat("x", 80)
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for i := 0; i < total; {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			for j := 0; j < perTick && i < total; j, i = j+1, i+1 {
				p := int32(i % partitions)
				r := &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("%d|%d|%s", p, i/partitions, padding))}
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						produceErr.CompareAndSwap(nil, err)
						return
					}
					acked.Add(1)
				})
			}
		}
		if err := cl.Flush(ctx); err != nil {
			produceErr.CompareAndSwap(nil, err)
		}
	}()

	for _, pct := range []int64{15, 30, 45, 60, 75} {
		at := waitAtLeast(t, central.Addr, "stream", total*pct/100, 2*mirrorTimeout)
		m.Kill()
		t.Logf("SIGKILLed the worker at %d%% (central holds %d records, %d produced)", pct, at, acked.Load())
		m.Restart()
	}
	wg.Wait()
	if err, _ := produceErr.Load().(error); err != nil {
		t.Fatalf("producer: %v", err)
	}
	elapsed := time.Since(start)
	t.Logf("produced %d records in %v (%.0f records/s)", acked.Load(), elapsed.Round(time.Millisecond), float64(acked.Load())/elapsed.Seconds())
	if acked.Load() != total {
		t.Fatalf("producer acknowledged %d records, want %d", acked.Load(), total)
	}

	waitAtLeast(t, central.Addr, "stream", total, 2*mirrorTimeout)
	waitLagZero(t, m, "stream", "central", partitions)
	recs := cluster.ReadTopic(t, central.Addr, "stream", false).Records
	next := make([]int, partitions)
	repeats := 0
	for _, r := range recs {
		fields := strings.SplitN(string(r.Value), "|", 3)
		if len(fields) != 3 {
			t.Fatalf("stream-%d@%d: bad value %q", r.Partition, r.Offset, r.Value)
		}
		p, err1 := strconv.Atoi(fields[0])
		seq, err2 := strconv.Atoi(fields[1])
		if err1 != nil || err2 != nil || int32(p) != r.Partition {
			t.Fatalf("stream-%d@%d: value %q does not belong to this partition", r.Partition, r.Offset, r.Value)
		}
		switch {
		case seq < next[p]:
			repeats++
		case seq == next[p]:
			next[p]++
		default:
			t.Fatalf("stream-%d@%d: first occurrence of sequence %d follows %d: records lost or out of order",
				r.Partition, r.Offset, seq, next[p]-1)
		}
	}
	for p, n := range next {
		if want := (total - p + partitions - 1) / partitions; n != want {
			t.Fatalf("partition %d: central holds sequences 0..%d, want 0..%d", p, n-1, want-1)
		}
	}
	t.Logf("central holds all %d records once or more: %d records, %d repeats over 5 SIGKILLs", total, len(recs), repeats)
}
