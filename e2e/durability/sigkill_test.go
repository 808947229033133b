package durability

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestSIGKILLKeepsAcknowledgedRecords SIGKILLs the broker while an acks=all
// producer has sends in flight and checks, after a restart, that every
// record the broker acknowledged is at the offset it was acknowledged with.
// The page cache survives a killed process, so this holds for every fsync
// policy.
func TestSIGKILLKeepsAcknowledgedRecords(t *testing.T) {
	for _, fsync := range []string{"never", "interval=50ms", "always"} {
		t.Run(fsync, func(t *testing.T) {
			b := cluster.StartBroker(t, "--fsync", fsync)
			const topic = "crash"
			cluster.CreateTopic(t, b.Addr, topic, 1, nil)

			acks := produceUntilKilled(t, b, topic, 3000)
			b.KillAndRestart()

			recs := readAll(t, b.Addr, topic)
			requireContiguous(t, recs, 0, int64(len(recs)))
			seen := make(map[string]int64, len(recs))
			for _, r := range recs {
				if prev, dup := seen[string(r.Value)]; dup {
					t.Fatalf("value %q is stored twice, at offsets %d and %d", r.Value, prev, r.Offset)
				}
				seen[string(r.Value)] = r.Offset
			}
			for value, off := range acks.acked {
				if off >= int64(len(recs)) {
					t.Fatalf("record %q was acknowledged at offset %d but the log ends at %d after the restart", value, off, len(recs))
				}
				if got := string(recs[off].Value); got != value {
					t.Fatalf("record %q was acknowledged at offset %d, which holds %q after the restart", value, off, got)
				}
			}
			t.Logf("fsync %s: %d acknowledged, %d unacknowledged at kill time, %d records in the log after restart",
				fsync, len(acks.acked), acks.unacked, len(recs))

			// The log takes appends after its recovered end.
			cl := cluster.Client(t, b.Addr, kgo.DefaultProduceTopic(topic))
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			res := cl.ProduceSync(ctx, kgo.StringRecord("after-restart"))
			if err := res.FirstErr(); err != nil {
				t.Fatalf("produce after restart: %v", err)
			}
			if off := res[0].Record.Offset; off != int64(len(recs)) {
				t.Fatalf("produce after restart got offset %d, want the recovered end %d", off, len(recs))
			}
		})
	}
}

// killAcks is what an acks=all producer learnt before its broker was killed.
type killAcks struct {
	acked   map[string]int64 // value -> acknowledged offset
	unacked int              // records produced but never acknowledged
}

// produceUntilKilled produces to topic asynchronously with acks=all and
// SIGKILLs b once at least minAcked records were acknowledged, with more
// still being sent. It then closes the producer, which fails every record
// not acknowledged, and reports the outcome of every record. It fails the
// test unless some records were in flight, unacknowledged, at the kill.
func produceUntilKilled(t *testing.T, b *cluster.Broker, topic string, minAcked int) killAcks {
	t.Helper()
	cl := cluster.Dial(t, b.Addr,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(2000),
		kgo.RecordRetries(3),
		kgo.RetryTimeout(5*time.Second),
	)

	var (
		mu       sync.Mutex
		acks     = killAcks{acked: make(map[string]int64)}
		issued   int
		answered int
		errs     = make(map[string]int)
	)
	ctx, cancel := context.WithCancel(context.Background())
	producing := make(chan struct{})
	closed := false
	defer func() {
		if !closed { // the test failed: stop the producer before returning
			cancel()
			<-producing
			cl.Close()
		}
	}()
	padding := strings.Repeat("x", 80)
	go func() {
		defer close(producing)
		for i := 0; ctx.Err() == nil; i++ {
			mu.Lock()
			issued++
			mu.Unlock()
			value := fmt.Sprintf("rec-%07d-%s", i, padding)
			cl.Produce(ctx, kgo.StringRecord(value), func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				answered++
				if err != nil {
					acks.unacked++
					errs[err.Error()]++
					return
				}
				acks.acked[string(r.Value)] = r.Offset
			})
		}
	}()

	cluster.Eventually(t, 60*time.Second, fmt.Sprintf("%d acknowledged records", minAcked), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acks.acked) >= minAcked
	})
	b.Kill()
	mu.Lock()
	inFlight := issued - answered
	mu.Unlock()

	// Nothing can be acknowledged any more: stop producing and fail what is
	// left, so that every promise has run.
	cancel()
	<-producing
	cl.Close()
	closed = true
	cluster.Eventually(t, 30*time.Second, "the closed producer to fail every unacknowledged record", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return answered == issued
	})
	mu.Lock()
	defer mu.Unlock()
	t.Logf("at the kill: %d records issued, %d not yet answered; errors after it: %v", issued, inFlight, errs)
	if acks.unacked == 0 {
		t.Fatalf("no record was left unacknowledged by the kill (%d acknowledged): the test did not kill during produce", len(acks.acked))
	}
	return acks
}
