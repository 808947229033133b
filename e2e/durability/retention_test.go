package durability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestSizeRetention writes a topic with small segments well past its
// retention.bytes and checks that retention deletes old segments: the log
// start offset advances, what is left on disk stays within retention.bytes
// plus one segment, and a consumer from the earliest offset gets exactly
// the retained tail.
func TestSizeRetention(t *testing.T) {
	const (
		topic          = "retained"
		segmentBytes   = 16 << 10
		retentionBytes = 48 << 10
		records        = 400
		perBatch       = 5
	)
	b := cluster.StartBroker(t, "--retention-check-interval", "200ms")
	cluster.CreateTopic(t, b.Addr, topic, 1, map[string]*string{
		"segment.bytes":   ptr(fmt.Sprint(segmentBytes)),
		"retention.bytes": ptr(fmt.Sprint(retentionBytes)),
	})

	value := func(i int) string { return fmt.Sprintf("ret-%05d-%s", i, strings.Repeat("r", 1000)) }
	cl := cluster.Client(t, b.Addr, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // sizes on disk are what the test reasons about
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < records; i += perBatch {
		batch := make([]*kgo.Record, perBatch)
		for j := range batch {
			batch[j] = kgo.StringRecord(value(i + j))
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatalf("produce records %d..%d: %v", i, i+perBatch-1, err)
		}
	}
	if start, end := offsets(t, b.Addr, topic); end != records {
		t.Fatalf("log end offset %d after producing %d records (start %d)", end, records, start)
	}

	// Retention deletes a segment only while what remains is still at
	// least retention.bytes, so it settles below retention.bytes plus
	// one segment (which can overshoot segment.bytes by one batch).
	const maxBatch = perBatch * 1100
	limit := int64(retentionBytes + segmentBytes + maxBatch)
	var start int64
	waitFor(t, 30*time.Second, "retention to delete old segments", func() (bool, string) {
		start, _ = offsets(t, b.Addr, topic)
		size := segmentsSize(t, b, topic)
		return start > 0 && size <= limit, fmt.Sprintf("log start offset %d, %d segments of %d bytes in all",
			start, len(segmentFiles(t, b, topic)), size)
	})
	start, _ = offsets(t, b.Addr, topic)
	if size := segmentsSize(t, b, topic); size < retentionBytes {
		t.Fatalf("retention left %d bytes, less than retention.bytes %d", size, retentionBytes)
	}

	recs := readAll(t, b.Addr, topic)
	if got := firstOffset(recs); got != start {
		t.Fatalf("consumer from earliest started at offset %d, want the log start offset %d", got, start)
	}
	requireContiguous(t, recs, start, records)
	for _, r := range recs {
		if want := value(int(r.Offset)); string(r.Value) != want {
			t.Fatalf("record at offset %d is %.20q..., want %.20q...", r.Offset, r.Value, want)
		}
	}
	t.Logf("log start offset %d, %d records and %d segment bytes retained", start, len(recs), segmentsSize(t, b, topic))
}

func ptr[T any](v T) *T { return &v }
