package kafka

import (
	"context"
	"testing"

	"github.com/IBM/sarama"

	"github.com/tributary/tributary/mirror"
)

const benchBatch = 10000

// BenchmarkSinkWrite writes batches of 100-byte records and a checkpoint
// into an in-process Tributary broker; compare with BenchmarkRawProduce.
func BenchmarkSinkWrite(b *testing.B) {
	p := startBroker(b)
	ctx := context.Background()
	sink, err := NewSink(Config{Name: "bench", Bootstrap: p.addrs, Logger: quietLogger()}, SinkOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	if err := sink.CreateTopic(ctx, mirror.TopicInfo{Name: "bench", Partitions: 4}); err != nil {
		b.Fatal(err)
	}
	batch := &mirror.Batch{Checkpoint: &mirror.Checkpoint{Flow: "bench/x", Positions: map[mirror.SourcePartition]int64{}}}
	val := make([]byte, 100)
	for i := 0; i < benchBatch; i++ {
		batch.Records = append(batch.Records, mirror.OutRecord{Topic: "bench", Partition: int32(i % 4), Record: mirror.Record{Value: val}})
	}
	b.SetBytes(benchBatch * 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := sink.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawProduce produces the same records with a plain sarama async
// producer configured like the Sink's, waiting for every acknowledgement.
func BenchmarkRawProduce(b *testing.B) {
	p := startBroker(b)
	cfg := Config{Name: "bench", Bootstrap: p.addrs, Logger: quietLogger()}
	if err := cfg.fill(); err != nil {
		b.Fatal(err)
	}
	sink, err := NewSink(cfg, SinkOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	if err := sink.CreateTopic(context.Background(), mirror.TopicInfo{Name: "bench", Partitions: 4}); err != nil {
		b.Fatal(err)
	}
	prod, err := sarama.NewAsyncProducer(p.addrs, cfg.saramaConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	val := sarama.ByteEncoder(make([]byte, 100))
	b.SetBytes(benchBatch * 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sent, acked := 0, 0
		for acked < benchBatch {
			in := prod.Input()
			if sent == benchBatch {
				in = nil
			}
			select {
			case in <- &sarama.ProducerMessage{Topic: "bench", Partition: int32(sent % 4), Value: val}:
				sent++
			case <-prod.Successes():
				acked++
			case err := <-prod.Errors():
				b.Fatal(err)
			}
		}
	}
}
