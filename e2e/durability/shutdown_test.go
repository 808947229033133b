package durability

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/e2e/cluster"
)

// shutdownBound is how long a SIGTERM'd broker may take to exit. It is a
// liveness bound, far below the broker's 30s grace for requests in progress,
// so a long poll that is not cut short, or a hang, fails the test.
const shutdownBound = 10 * time.Second

// TestSIGTERMShutsDownCleanly sends SIGTERM while a producer is producing, a
// franz-go consumer is consuming and a raw Fetch long-polls an idle topic:
// the broker exits with status 0 within shutdownBound, and the restart finds
// clean logs (no warning at all) holding every acknowledged record.
func TestSIGTERMShutsDownCleanly(t *testing.T) {
	b := cluster.StartBroker(t)
	const topic, idle = "graceful", "idle"
	cluster.CreateTopic(t, b.Addr, topic, 1, nil)
	cluster.CreateTopic(t, b.Addr, idle, 1, nil)

	// Cleanups run last-in first-out: the clients close (failing what the
	// producer still retries) before the goroutines are waited for.
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	prod := cluster.Client(t, b.Addr, kgo.DefaultProduceTopic(topic), kgo.RecordRetries(1))
	cons := cluster.Client(t, b.Addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(5*time.Second))

	var (
		mu       sync.Mutex
		acked    []*kgo.Record
		consumed int
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			r := kgo.StringRecord("graceful-" + strings.Repeat("g", i%50))
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				continue // expected once the broker stops; only acknowledged records count
			}
			mu.Lock()
			acked = append(acked, r)
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			mu.Lock()
			consumed += fs.NumRecords()
			mu.Unlock()
		}
	}()
	cluster.Eventually(t, 30*time.Second, "records produced and consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) > 500 && consumed > 100
	})

	// A long poll that cannot be answered before its 25s wait is over.
	poll := dialRaw(t, b.Addr)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	fetch.ReplicaID = -1
	fetch.MaxWaitMillis = 25000
	fetch.MinBytes = 1
	fetch.MaxBytes = 1 << 20
	fetch.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = idle
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.CurrentLeaderEpoch = -1
	fp.LastFetchedEpoch = -1
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	pollCorr := poll.send(fetch)

	b.Signal(syscall.SIGTERM)
	err, exited := b.Wait(shutdownBound)
	if !exited {
		t.Fatalf("broker still running %v after SIGTERM", shutdownBound)
	}
	if err != nil {
		t.Fatalf("broker exited with %v after SIGTERM, want status 0", err)
	}
	// The long poll was answered or its connection closed; it was not left
	// hanging.
	poll.nc.SetReadDeadline(time.Now().Add(requestTimeout))
	var size [4]byte
	_, err = io.ReadFull(poll.nc, size[:])
	switch {
	case err == nil:
		buf := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(poll.nc, buf); err != nil {
			t.Fatalf("long poll response cut short: %v", err)
		}
		if got := int32(binary.BigEndian.Uint32(buf)); got != pollCorr {
			t.Fatalf("long poll answered with correlation ID %d, want %d", got, pollCorr)
		}
		t.Logf("long poll answered at shutdown (%d bytes)", len(buf))
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		// Reset: SIGTERM came before the broker read the request, which it
		// then never read (as Kafka drops unread requests at shutdown).
		t.Logf("long poll connection closed at shutdown: %v", err)
	default:
		t.Fatalf("long poll neither answered nor closed after the broker exited: %v", err)
	}
	// An idempotent producer keeps retrying a sent record whose outcome it
	// does not know; closing the client fails it.
	cancel()
	prod.Close()
	cons.Close()
	wg.Wait()

	b.StartAgain()
	// Recovery logs before the listener line; wait for that to be copied
	// from the broker's stderr.
	cluster.Eventually(t, 10*time.Second, "the broker's listening log line", func() bool {
		return strings.Contains(b.Output(), "broker listening")
	})
	for _, bad := range []string{"level=WARN", "level=ERROR"} {
		if out := b.Output(); strings.Contains(out, bad) {
			t.Fatalf("restart after a clean shutdown logged a %s line:\n%s", strings.TrimPrefix(bad, "level="), out)
		}
	}
	recs := readAll(t, b.Addr, topic)
	requireContiguous(t, recs, 0, int64(len(recs)))
	mu.Lock()
	defer mu.Unlock()
	for _, r := range acked {
		if r.Offset >= int64(len(recs)) || string(recs[r.Offset].Value) != string(r.Value) {
			t.Fatalf("acknowledged record %q at offset %d is missing after the restart (log holds %d records)", r.Value, r.Offset, len(recs))
		}
	}
	t.Logf("%d records acknowledged before SIGTERM, %d in the log after restart", len(acked), len(recs))
}
