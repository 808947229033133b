package kafka

import "github.com/IBM/sarama"

// ProducerConfig returns the sarama configuration a Sink made by
// NewSink(cfg, opts) produces with (defaults filled in as NewSink fills
// them): idempotent, acks=all, one open request per broker, the manual
// partitioner, opts.MaxBatchBytes as the batch bound, retries bounded by
// opts.DeliveryTimeout, and cfg's client ID, protocol version, TLS and
// SASL. It is for tools that must produce exactly as a Sink does, such as
// the benchmark; it connects to nothing.
func ProducerConfig(cfg Config, opts SinkOptions) (*sarama.Config, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	opts.fill()
	// A Sink's producer settings depend only on its filled Config and
	// SinkOptions: one that is never connected gives exactly them.
	s := &Sink{c: &cluster{cfg: cfg}, opts: opts}
	return s.producerConfig(opts.MaxBatchBytes), nil
}
