package durability

import (
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/e2e/cluster"
)

// TestTornTailIsTruncated damages the end of the active segment while the
// broker is down, as a crash in the middle of a write would, and checks that
// the broker starts, says it truncated the tail, serves every whole batch
// before it and appends new records right after them.
func TestTornTailIsTruncated(t *testing.T) {
	const (
		batches   = 5
		perBatch  = 10
		allOffset = batches * perBatch
	)
	damages := []struct {
		name string
		// damage changes the segment file whose last batch is lastBatch
		// bytes long and returns the log end offset expected afterwards.
		damage func(t *testing.T, path string, lastBatch int) int64
	}{
		{"garbage appended", func(t *testing.T, path string, _ int) int64 {
			garbage := []byte(strings.Repeat("\x13\x37garbage-after-the-last-batch\x00\xff", 12))
			// Byte 16 of a batch is its magic; make sure it is not 2.
			garbage[16] = 0x7f
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(garbage); err != nil {
				t.Fatal(err)
			}
			return allOffset
		}},
		{"last batch cut short", func(t *testing.T, path string, lastBatch int) int64 {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()-int64(lastBatch)/2); err != nil {
				t.Fatal(err)
			}
			return allOffset - perBatch
		}},
	}
	stops := []struct {
		name string
		stop func(*cluster.Broker)
	}{
		{"SIGTERM", (*cluster.Broker).Stop},
		{"SIGKILL", (*cluster.Broker).Kill},
	}
	for _, d := range damages {
		for _, s := range stops {
			t.Run(d.name+" after "+s.name, func(t *testing.T) {
				b := cluster.StartBroker(t)
				const topic = "torn"
				cluster.CreateTopic(t, b.Addr, topic, 1, nil)
				cl := cluster.Dial(t, b.Addr)
				var all []string
				var last []byte
				for i := 0; i < batches; i++ {
					vs := seqValues("torn", i*perBatch, perBatch)
					last = storage.EncodeBatch(valueRecords(vs...), -1, -1, -1)
					if sp := produceBatch(t, cl, topic, last); sp.ErrorCode != 0 || sp.BaseOffset != int64(i*perBatch) {
						t.Fatalf("batch %d: error %v, base offset %d; want no error at %d", i, kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset, i*perBatch)
					}
					all = append(all, vs...)
				}
				cl.Close()

				s.stop(b)
				files := segmentFiles(t, b, topic)
				end := d.damage(t, files[len(files)-1], len(last))
				b.StartAgain()

				if out := b.Output(); !strings.Contains(out, logTornTail) {
					t.Fatalf("broker did not log %q at start:\n%s", logTornTail, out)
				}
				if _, got := offsets(t, b.Addr, topic); got != end {
					t.Fatalf("log end offset %d after recovery, want %d", got, end)
				}
				recs := readAll(t, b.Addr, topic)
				requireContiguous(t, recs, 0, end)
				requireValues(t, recs, all[:end])

				cl = cluster.Client(t, b.Addr)
				more := seqValues("after", 0, perBatch)
				if sp := produceBatch(t, cl, topic, storage.EncodeBatch(valueRecords(more...), -1, -1, -1)); sp.ErrorCode != 0 || sp.BaseOffset != end {
					t.Fatalf("batch after recovery: error %v, base offset %d; want no error at %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset, end)
				}
				recs = readAll(t, b.Addr, topic)
				requireContiguous(t, recs, 0, end+perBatch)
				requireValues(t, recs, append(all[:end:end], more...))
			})
		}
	}
}
