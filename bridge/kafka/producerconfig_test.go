package kafka

import (
	"testing"

	"github.com/IBM/sarama"
)

func TestProducerConfigIsTheSinks(t *testing.T) {
	sc, err := ProducerConfig(Config{Name: "c", Bootstrap: []string{"127.0.0.1:9092"}}, SinkOptions{MaxBatchBytes: 12345})
	if err != nil {
		t.Fatal(err)
	}
	if !sc.Producer.Idempotent || sc.Producer.RequiredAcks != sarama.WaitForAll || sc.Net.MaxOpenRequests != 1 {
		t.Errorf("idempotent %v, acks %v, max open requests %d: want true, all, 1",
			sc.Producer.Idempotent, sc.Producer.RequiredAcks, sc.Net.MaxOpenRequests)
	}
	if sc.Producer.MaxMessageBytes != 12345 {
		t.Errorf("MaxMessageBytes %d, want 12345", sc.Producer.MaxMessageBytes)
	}
	if sc.ClientID != DefaultClientID || sc.Version.String() != DefaultVersion {
		t.Errorf("client ID %q, version %s: want %q, %s", sc.ClientID, sc.Version, DefaultClientID, DefaultVersion)
	}
	if sc.Producer.Retry.Max != producerRetries || sc.Metadata.Retry.Max != producerRetries ||
		sc.Metadata.Timeout != DefaultDeliveryTimeout {
		t.Errorf("retries %d, metadata retries %d, metadata timeout %v: want %d, %d, %v", sc.Producer.Retry.Max,
			sc.Metadata.Retry.Max, sc.Metadata.Timeout, producerRetries, producerRetries, DefaultDeliveryTimeout)
	}
	if err := sc.Validate(); err != nil {
		t.Errorf("invalid sarama config: %v", err)
	}
	if _, err := ProducerConfig(Config{Name: "c"}, SinkOptions{}); err == nil {
		t.Error("ProducerConfig without bootstrap addresses succeeded")
	}
}
