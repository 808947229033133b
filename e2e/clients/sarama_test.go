package clients

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tributary/tributary/e2e/cluster"
)

func saramaConfig(version sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.ClientID = "tributary-e2e-sarama"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Metadata.AllowAutoTopicCreation = false
	return cfg
}

func toSarama(topic string, r record) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(r.Value)}
	if r.Key != nil {
		m.Key = sarama.ByteEncoder(r.Key)
	}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	return m
}

func fromSarama(m *sarama.ConsumerMessage) record {
	r := record{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, header{Key: string(h.Key), Value: h.Value})
	}
	return r
}

// checkAcked asserts that the partition and offset each producer
// acknowledgement reported is where a consumer found that record.
func checkAcked(t testing.TB, acked map[int]record, consumed []record) {
	t.Helper()
	if len(acked) != len(consumed) {
		t.Errorf("%d acknowledgements for %d consumed records", len(acked), len(consumed))
	}
	bad := 0
	for _, c := range consumed {
		a, ok := acked[recordIndex(c.Value)]
		if !ok || a.Partition != c.Partition || a.Offset != c.Offset {
			if bad++; bad <= 5 {
				t.Errorf("record %d acknowledged at p%d@%d, consumed at p%d@%d",
					recordIndex(c.Value), a.Partition, a.Offset, c.Partition, c.Offset)
			}
		}
	}
}

// committedSarama reads group's committed offsets of partitions 0..n-1 of
// topic with sarama's OffsetManager.
func committedSarama(t testing.TB, addr, group, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	cfg := saramaConfig(sarama.V2_8_0_0)
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest // NextOffset answers -2 without a commit
	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama client: %v", err)
	}
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatalf("sarama offset manager: %v", err)
	}
	defer om.Close()
	out := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		pom, err := om.ManagePartition(topic, p)
		if err != nil {
			t.Fatalf("sarama offset manager, partition %d: %v", p, err)
		}
		if at, _ := pom.NextOffset(); at >= 0 {
			out[p] = at
		}
		pom.AsyncClose()
	}
	return out
}

// TestSaramaSyncProducerAndGroup produces with sarama's SyncProducer,
// consumes with a sarama ConsumerGroup that commits, and reads the committed
// offsets back with kadm.
func TestSaramaSyncProducerAndGroup(t *testing.T) {
	b := cluster.StartBroker(t)
	const topic, group, n = "sarama-sync", "sarama-group", 3000
	cluster.CreateTopic(t, b.Addr, topic, 3, nil)
	want := makeRecords(n, genOptions{nullKeyEvery: 9})

	producer, err := sarama.NewSyncProducer([]string{b.Addr}, saramaConfig(sarama.V2_8_0_0))
	if err != nil {
		t.Fatalf("sarama sync producer: %v", err)
	}
	acked := map[int]record{}
	for start := 0; start < n; start += 500 { // batches, and one message at a time below
		msgs := make([]*sarama.ProducerMessage, 0, 500)
		for _, r := range want[start : start+500] {
			msgs = append(msgs, toSarama(topic, r))
		}
		if start == 0 {
			for _, m := range msgs {
				if _, _, err := producer.SendMessage(m); err != nil {
					t.Fatalf("send message: %v", err)
				}
			}
		} else if err := producer.SendMessages(msgs); err != nil {
			t.Fatalf("send messages: %v", err)
		}
		for i, m := range msgs {
			acked[start+i] = record{Partition: m.Partition, Offset: m.Offset}
		}
	}
	if err := producer.Close(); err != nil {
		t.Fatalf("close producer: %v", err)
	}

	got := consumeSaramaGroup(t, b.Addr, group, topic, n, sarama.V2_8_0_0)
	ends := checkRecords(t, want, got)
	checkAcked(t, acked, got)
	requireOffsets(t, "end offsets", endOffsets(t, b.Addr, topic), ends)
	requireOffsets(t, "committed offsets read with kadm", committedKadm(t, b.Addr, group, topic), ends)
}

// TestSaramaIdempotentAsyncProducer produces with sarama's idempotent
// AsyncProducer at the oldest protocol version it allows (0.11) and
// consumes with franz-go, then consumes the same records again with a
// sarama group at a recent protocol version.
func TestSaramaIdempotentAsyncProducer(t *testing.T) {
	b := cluster.StartBroker(t)
	const topic, n = "sarama-async", 4000
	cluster.CreateTopic(t, b.Addr, topic, 3, nil)
	want := makeRecords(n, genOptions{nullKeyEvery: 4})

	cfg := saramaConfig(sarama.V0_11_0_0)
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Errors = true
	producer, err := sarama.NewAsyncProducer([]string{b.Addr}, cfg)
	if err != nil {
		t.Fatalf("sarama async producer: %v", err)
	}
	acked := map[int]record{}
	var failures []error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for m := range producer.Successes() {
			v, _ := m.Value.Encode()
			acked[recordIndex(v)] = record{Partition: m.Partition, Offset: m.Offset}
		}
	}()
	go func() {
		defer wg.Done()
		for e := range producer.Errors() {
			failures = append(failures, e)
		}
	}()
	for _, r := range want {
		producer.Input() <- toSarama(topic, r)
	}
	producer.AsyncClose() // flushes what is buffered, then closes both channels
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(failures), failures[0])
	}

	got := consumeKgo(t, b.Addr, topic, n)
	ends := checkRecords(t, want, got)
	checkAcked(t, acked, got)
	requireIdempotent(t, got)
	requireOffsets(t, "end offsets", endOffsets(t, b.Addr, topic), ends)

	again := consumeSaramaGroup(t, b.Addr, "sarama-recent", topic, n, sarama.V3_6_0_0)
	checkRecords(t, want, again)
}

// consumeSaramaGroup consumes n records of topic in a sarama ConsumerGroup
// starting at the oldest offset, commits what it consumed and leaves.
func consumeSaramaGroup(t testing.TB, addr, group, topic string, n int, version sarama.KafkaVersion) []record {
	t.Helper()
	cfg := saramaConfig(version)
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatalf("sarama consumer group: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	h := &saramaHandler{want: n, done: cancel}
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	err = <-errc
	if cerr := cg.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("sarama group %s: %v", group, err)
	}
	got := h.records()
	if len(got) < n {
		t.Fatalf("sarama group %s consumed %d of %d records before %v", group, len(got), n, opTimeout)
	}
	return got
}

// saramaHandler collects and marks records until it has want, then calls
// done; Cleanup commits the marked offsets (the callers check them).
type saramaHandler struct {
	want int
	done context.CancelFunc

	mu  sync.Mutex
	got []record
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	s.Commit()
	return nil
}

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-s.Context().Done():
			return nil
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			h.mu.Lock()
			h.got = append(h.got, fromSarama(m))
			full := len(h.got) >= h.want
			h.mu.Unlock()
			s.MarkMessage(m, "")
			if full {
				h.done()
			}
		}
	}
}

func (h *saramaHandler) records() []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), h.got...)
}
