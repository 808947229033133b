package nats

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// Deadlines: generous, since the machine is shared; speed is never what
// these tests assert.
const mirrorTimeout = 2 * time.Minute

// waitAtLeast waits until topic holds at least want records.
func waitAtLeast(t testing.TB, addr, topic string, want int64, timeout time.Duration) int64 {
	t.Helper()
	var n int64
	var err error
	cluster.Eventually(t, timeout, fmt.Sprintf("%d records in %s", want, topic), func() bool {
		n, err = cluster.RecordCount(addr, topic)
		return err == nil && n >= want
	})
	return n
}

// readAll reads want records of topic from the start of every partition,
// ordered by partition and offset.
func readAll(t testing.TB, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl := cluster.Dial(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s: %v", len(out), want, topic, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch %s: %v", topic, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// jetStream connects to url.
func jetStream(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// streamMsgs returns the number of messages stream holds, or -1 when it
// does not exist (yet).
func streamMsgs(js jetstream.JetStream, stream string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), cluster.RequestTimeout)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return -1
	}
	info, err := st.Info(ctx)
	if err != nil {
		return -1
	}
	return int64(info.State.Msgs)
}

// readStream reads every message of stream with an ordered consumer.
func readStream(t testing.TB, js jetstream.JetStream, stream string, want int) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	oc, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < want {
		batch, err := oc.Fetch(want-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatalf("fetch from %s after %d messages: %v", stream, len(out), err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d messages of %s", len(out), want, stream)
		}
	}
	return out
}

var duplicatesLine = regexp.MustCompile(`(?m)^tributary_nats_duplicates_total\{[^}]*\} (\S+)$`)

// duplicates is the tributary_nats_duplicates_total of a worker (summed
// over its series), or 0 when it has none yet.
func duplicates(t testing.TB, m *cluster.Mirror) int64 {
	t.Helper()
	body, err := m.Metrics()
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	var n int64
	for _, sub := range duplicatesLine.FindAllStringSubmatch(body, -1) {
		f, err := strconv.ParseFloat(sub[1], 64)
		if err != nil {
			t.Fatalf("bad metric value %q", sub[1])
		}
		n += int64(f)
	}
	return n
}

// flowRunning waits until job's flow into target runs.
func flowRunning(t testing.TB, m *cluster.Mirror, job, target string) {
	t.Helper()
	cluster.Eventually(t, mirrorTimeout, job+" running", func() bool {
		f, ok, err := m.Flow(job, target)
		return err == nil && ok && f.State == "running"
	})
}
