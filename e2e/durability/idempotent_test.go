package durability

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/e2e/cluster"
)

// TestIdempotentRetryAcrossRestart sends an idempotent batch, restarts the
// broker and sends the very same batch again, as a producer retrying after
// a lost response would: the broker must answer with the original base
// offset and no error, and keep the records once. Producer state comes back
// from a clean shutdown (SIGTERM) and from replaying the log (SIGKILL).
func TestIdempotentRetryAcrossRestart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart func(*cluster.Broker)
	}{
		{"SIGTERM", (*cluster.Broker).Restart},
		{"SIGKILL", (*cluster.Broker).KillAndRestart},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := cluster.StartBroker(t)
			const topic = "idem"
			cluster.CreateTopic(t, b.Addr, topic, 1, nil)
			cl := cluster.Client(t, b.Addr)

			// Plain records first, so that the idempotent batch's base
			// offset is not 0.
			plain := seqValues("plain", 0, 3)
			if sp := produceBatch(t, cl, topic, storage.EncodeBatch(valueRecords(plain...), -1, -1, -1)); sp.ErrorCode != 0 || sp.BaseOffset != 0 {
				t.Fatalf("plain batch: error %v, base offset %d; want no error at 0", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
			}

			pid, epoch := initProducerID(t, cl)
			if epoch != 0 {
				t.Fatalf("InitProducerID gave epoch %d, want 0", epoch)
			}
			first := seqValues("idem", 0, 5)
			batch := storage.EncodeBatch(valueRecords(first...), pid, epoch, 0)
			sp := produceBatch(t, cl, topic, batch)
			if sp.ErrorCode != 0 || sp.BaseOffset != 3 {
				t.Fatalf("idempotent batch seq 0-4: error %v, base offset %d; want no error at 3", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
			}

			tc.restart(b)
			cl = cluster.Client(t, b.Addr)

			sp = produceBatch(t, cl, topic, batch)
			if sp.ErrorCode != 0 {
				t.Fatalf("retried batch seq 0-4 after %s restart: %v, want no error", tc.name, kerr.ErrorForCode(sp.ErrorCode))
			}
			if sp.BaseOffset != 3 {
				t.Fatalf("retried batch seq 0-4 after %s restart: base offset %d, want the original 3", tc.name, sp.BaseOffset)
			}
			if _, end := offsets(t, b.Addr, topic); end != 8 {
				t.Fatalf("log end offset %d after the retry, want 8: the retried batch was appended again", end)
			}

			// The producer goes on where it was.
			next := seqValues("idem", 5, 5)
			sp = produceBatch(t, cl, topic, storage.EncodeBatch(valueRecords(next...), pid, epoch, 5))
			if sp.ErrorCode != 0 || sp.BaseOffset != 8 {
				t.Fatalf("next batch seq 5-9: error %v, base offset %d; want no error at 8", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
			}

			// A gap in the sequence is refused and appends nothing.
			sp = produceBatch(t, cl, topic, storage.EncodeBatch(valueRecords("gap"), pid, epoch, 15))
			if sp.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
				t.Fatalf("batch seq 15 after seq 9: error %v (base offset %d), want %v",
					kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset, kerr.OutOfOrderSequenceNumber)
			}

			recs := readAll(t, b.Addr, topic)
			requireContiguous(t, recs, 0, 13)
			requireValues(t, recs, append(append(plain, first...), next...))
		})
	}
}
