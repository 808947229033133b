package topology

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
	"github.com/tributary/tributary/topology"
)

// Deadlines: generous, since the machine is shared; speed is not what
// these tests assert (except the bounds the issue sets on failover).
const mirrorTimeout = 90 * time.Second

// startBroker starts a broker of cluster registered in the consul agent.
func startBroker(t *testing.T, c *cluster.Consul, name string, node int, extra ...string) *cluster.Broker {
	t.Helper()
	return cluster.StartBroker(t, append([]string{"--cluster", name, "--node-id", fmt.Sprint(node),
		"--consul", c.HTTP, "--consul-check-ttl", "2s"}, extra...)...)
}

func consulClient(t *testing.T, c *cluster.Consul) *topology.Consul {
	t.Helper()
	cl, err := topology.NewConsul(topology.ConsulConfig{Address: c.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// passing returns the Kafka addresses of cluster's passing brokers.
func passing(t *testing.T, cl *topology.Consul, ref topology.ClusterRef) []string {
	ctx, cancel := context.WithTimeout(context.Background(), cluster.RequestTimeout)
	defer cancel()
	bs, err := cl.Brokers(ctx, ref)
	if err != nil {
		t.Logf("discovery of %s: %v", ref, err)
		return nil
	}
	return topology.Addrs(bs)
}

// produce writes n records "prefix-i" to topic synchronously.
func produce(t *testing.T, addr, topic, prefix string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d", prefix, i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), cluster.RequestTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s on %s: %v", topic, addr, err)
	}
}

// streamer produces "prefix-i" records one small batch at a time until
// stopped, so that a test can do things mid-stream.
type streamer struct {
	n    atomic.Int64
	stop chan struct{}
	done chan struct{}
	err  error
}

func startStreamer(t *testing.T, addr, topic, prefix string) *streamer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	s := &streamer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer cl.Close()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			i := s.n.Load()
			recs := make([]*kgo.Record, 10)
			for j := range recs {
				recs[j] = &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d", prefix, i+int64(j)))}
			}
			ctx, cancel := context.WithTimeout(context.Background(), cluster.RequestTimeout)
			err := cl.ProduceSync(ctx, recs...).FirstErr()
			cancel()
			if err != nil {
				s.err = err
				return
			}
			s.n.Add(int64(len(recs)))
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

// Stop stops producing; n then counts the records acknowledged.
func (s *streamer) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// waitAtLeast waits until topic on addr holds at least want records.
func waitAtLeast(t *testing.T, addr, topic string, want int64, timeout time.Duration) {
	t.Helper()
	var last int64
	var lastErr error
	cluster.Eventually(t, timeout, fmt.Sprintf("%d records in %s on %s", want, topic, addr), func() bool {
		last, lastErr = cluster.RecordCount(addr, topic)
		return lastErr == nil && last >= want
	})
}

// values reads every record value of topic on addr.
func values(t *testing.T, addr, topic string) []string {
	t.Helper()
	end, err := cluster.RecordCount(addr, topic)
	if err != nil {
		t.Fatalf("end of %s on %s: %v", topic, addr, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	defer cancel()
	for int64(len(out)) < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s on %s: got %d of %d records", topic, addr, len(out), end)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

// requireAll fails the test unless topic on addr holds every record
// prefix-0 .. prefix-(n-1) (repeats are allowed: at-least-once).
func requireAll(t *testing.T, addr, topic, prefix string, n int64) {
	t.Helper()
	waitAtLeast(t, addr, topic, n, mirrorTimeout)
	var missing []int64
	cluster.Eventually(t, mirrorTimeout, fmt.Sprintf("all %d records of %s in %s", n, prefix, topic), func() bool {
		have := map[string]bool{}
		for _, v := range values(t, addr, topic) {
			have[v] = true
		}
		missing = missing[:0]
		for i := int64(0); i < n; i++ {
			if !have[fmt.Sprintf("%s-%d", prefix, i)] {
				missing = append(missing, i)
			}
		}
		if len(missing) > 0 {
			t.Logf("%d records still missing, first %v", len(missing), missing[:min(len(missing), 10)])
		}
		return len(missing) == 0
	})
}

// runs reports whether worker m shows job (it runs only the jobs it owns).
func runs(m *cluster.Mirror, job string) bool {
	jobs, err := m.Jobs()
	if err != nil {
		return false
	}
	for _, j := range jobs {
		if j.Name == job {
			return true
		}
	}
	return false
}

// owners returns the indexes of the workers that run job.
func owners(ms []*cluster.Mirror, job string) []int {
	var out []int
	for i, m := range ms {
		if !m.Exited() && runs(m, job) {
			out = append(out, i)
		}
	}
	return out
}

// putJob writes a job file into tributary/jobs/name.
func putJob(t *testing.T, c *cluster.Consul, name, yaml string) {
	t.Helper()
	c.Do("PUT", "/v1/kv/"+topology.KVJobs+name, []byte(yaml))
}

// jobStatus reads tributary/job-status/name; ok is false if it is absent.
func jobStatus(c *cluster.Consul, name string) (st struct {
	State        string   `json:"state"`
	ModifyIndex  uint64   `json:"modify_index"`
	Errors       []string `json:"errors"`
	RunningIndex uint64   `json:"running_index"`
}, ok bool) {
	var pairs []struct{ Value []byte }
	if err := c.GetJSON("/v1/kv/"+topology.KVJobStatus+name, &pairs); err != nil || len(pairs) == 0 {
		return st, false
	}
	if err := json.Unmarshal(pairs[0].Value, &st); err != nil {
		return st, false
	}
	return st, true
}

// jobYAML is a job mirroring topics from cluster src to cluster dst, both
// given by their cluster definitions (YAML flow mappings).
func jobYAML(name, srcDef, dstDef string, topics ...string) string {
	sort.Strings(topics)
	return fmt.Sprintf(`clusters:
  src: %s
  dst: %s
jobs:
  - name: %s
    sources:
      - cluster: src
        topics: [%s]
    targets: [dst]
    tuning: {metadata_refresh: 1s}
`, srcDef, dstDef, name, strings.Join(topics, ", "))
}

func bootstrapDef(addr string) string { return fmt.Sprintf("{bootstrap: [%q]}", addr) }

func consulDef(cluster, dc string) string {
	if dc == "" {
		return fmt.Sprintf("{consul: {cluster: %s}}", cluster)
	}
	return fmt.Sprintf("{consul: {cluster: %s, datacenter: %s}}", cluster, dc)
}

// runTributary runs the tributary binary to completion and returns its
// output; it fails the test if it fails.
func runTributary(t *testing.T, args ...string) string {
	t.Helper()
	p := cluster.Start(t, "tributary "+args[0], cluster.Binary(t), args...)
	err, ok := p.Wait(60 * time.Second)
	if !ok {
		t.Fatalf("tributary %v did not finish", args)
	}
	if err != nil {
		t.Fatalf("tributary %v: %v\n%s", args, err, p.Output())
	}
	return p.Output()
}

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }
