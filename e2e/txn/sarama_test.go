package txn

import (
	"testing"

	"github.com/IBM/sarama"
)

// TestSaramaTransactions: sarama's transactional producer (idempotent, one
// request in flight, Kafka 2.6 protocol) commits one transaction and aborts
// another; read_committed sees the committed one only, read_uncommitted
// both.
func TestSaramaTransactions(t *testing.T) {
	b := startBroker(t)
	const topic = "sarama-txn"
	createTopics(t, b.Addr, topic)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_6_0_0
	cfg.ClientID = "sarama-txn-test"
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "sarama-txn"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer([]string{b.Addr}, cfg)
	if err != nil {
		t.Fatalf("sarama transactional producer: %v", err)
	}
	defer p.Close()

	send := func(vals []string) {
		t.Helper()
		if err := p.BeginTxn(); err != nil {
			t.Fatalf("BeginTxn: %v", err)
		}
		msgs := make([]*sarama.ProducerMessage, len(vals))
		for i, v := range vals {
			msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(v)}
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("SendMessages in a transaction: %v", err)
		}
	}
	send(values("committed", 4))
	if err := p.CommitTxn(); err != nil {
		t.Fatalf("CommitTxn: %v", err)
	}
	send(values("aborted", 3))
	if err := p.AbortTxn(); err != nil {
		t.Fatalf("AbortTxn: %v", err)
	}
	send(values("second", 2))
	if err := p.CommitTxn(); err != nil {
		t.Fatalf("second CommitTxn: %v", err)
	}
	if st := p.TxnStatus(); st&sarama.ProducerTxnFlagInError != 0 {
		t.Fatalf("producer transaction status %v", st)
	}
	produceSentinel(t, b.Addr, topic)
	requireValues(t, "read_committed", readUntilSentinel(t, b.Addr, topic, true),
		concat(values("committed", 4), values("second", 2)))
	requireValues(t, "read_uncommitted", readUntilSentinel(t, b.Addr, topic, false),
		concat(values("committed", 4), values("aborted", 3), values("second", 2)))
}
