package broker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/storage"
)

// TestProduceSeveralBatchesAllOrNothing sends one partition two batches,
// the second corrupt: the request fails and neither batch is appended, so
// the client's retry of the whole request does not duplicate the first.
func TestProduceSeveralBatchesAllOrNothing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.AutoCreateTopics = true
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	if _, err := b.topics.create("two", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	good := storage.EncodeBatch([]storage.Record{{Value: []byte("one")}}, -1, -1, -1)
	bad := storage.EncodeBatch([]storage.Record{{Value: []byte("two")}}, -1, -1, -1)
	bad[len(bad)-1] ^= 0xff // breaks the CRC
	produce := func(records []byte) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 7, -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "two"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = records
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := produce(append(append([]byte(nil), good...), bad...)); code != kerr.CorruptMessage.Code {
		t.Fatalf("error code %d, want CORRUPT_MESSAGE", code)
	}
	if end := b.topics.partition("two", 0).log.LogEndOffset(); end != 0 {
		t.Fatalf("log end offset %d after a refused request: part of it was appended", end)
	}
	if code := produce(good); code != 0 {
		t.Fatalf("a good batch afterwards: error code %d", code)
	}
}
