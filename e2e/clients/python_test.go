package clients

import (
	"strconv"
	"testing"

	"github.com/tributary/tributary/e2e/cluster"
)

// ackedFromPy turns the records a script reports as acknowledged into
// checkAcked's map, failing the test if any is missing.
func ackedFromPy(t testing.TB, res pyResult, n int) map[int]record {
	t.Helper()
	if res.Produced != n || len(res.Records) != n {
		t.Fatalf("script produced %d and acknowledged %d records, want %d", res.Produced, len(res.Records), n)
	}
	acked := map[int]record{}
	for _, p := range res.Records {
		r := fromPy(t, p)
		acked[recordIndex(r.Value)] = r
	}
	return acked
}

func consumedFromPy(t testing.TB, res pyResult) []record {
	t.Helper()
	got := make([]record, len(res.Records))
	for i, p := range res.Records {
		got[i] = fromPy(t, p)
	}
	return got
}

// TestKafkaPython produces with kafka-python's KafkaProducer (read back
// with franz-go), then consumes the topic with a KafkaConsumer in a group
// that commits; kadm reads the committed offsets. kafka-python 2.0.2 picks
// request versions from the broker version it probes ("auto") or is told;
// both ways are tested.
func TestKafkaPython(t *testing.T) {
	cluster.RequirePythonModule(t, "kafka", "python3-kafka")
	for _, version := range []string{"auto", "2.5.0"} {
		t.Run("api_version="+version, func(t *testing.T) {
			b := cluster.StartBroker(t)
			const topic, group, n = "kafka-python", "kafka-python-group", 2000
			cluster.CreateTopic(t, b.Addr, topic, 3, nil)
			want := makeRecords(n, genOptions{nullKeyEvery: 8})

			res := runPython(t, "kafka_python.py", "produce", b.Addr, topic, writeRecordsFile(t, want), version)
			acked := ackedFromPy(t, res, n)
			got := consumeKgo(t, b.Addr, topic, n)
			ends := checkRecords(t, want, got)
			checkAcked(t, acked, got)
			requireOffsets(t, "end offsets", endOffsets(t, b.Addr, topic), ends)

			res = runPython(t, "kafka_python.py", "group", b.Addr, topic, group, strconv.Itoa(n), version)
			checkRecords(t, want, consumedFromPy(t, res))
			requireOffsets(t, "committed offsets read with kadm", committedKadm(t, b.Addr, group, topic), ends)
		})
	}
}

// TestConfluentKafka produces with confluent-kafka's idempotent Producer
// (read back with franz-go), then consumes with a confluent-kafka Consumer
// in a group that commits; sarama reads the committed offsets.
func TestConfluentKafka(t *testing.T) {
	cluster.RequirePythonModule(t, "confluent_kafka", "python3-confluent-kafka")
	b := cluster.StartBroker(t)
	const topic, group, n = "confluent", "confluent-group", 5000
	cluster.CreateTopic(t, b.Addr, topic, 3, nil)
	want := makeRecords(n, genOptions{nullKeyEvery: 11})

	res := runPython(t, "confluent.py", "produce", b.Addr, topic, writeRecordsFile(t, want))
	acked := ackedFromPy(t, res, n)
	got := consumeKgo(t, b.Addr, topic, n)
	ends := checkRecords(t, want, got)
	checkAcked(t, acked, got)
	requireIdempotent(t, got)
	requireOffsets(t, "end offsets", endOffsets(t, b.Addr, topic), ends)

	res = runPython(t, "confluent.py", "group", b.Addr, topic, group, strconv.Itoa(n))
	checkRecords(t, want, consumedFromPy(t, res))
	requireOffsets(t, "committed offsets read with sarama", committedSarama(t, b.Addr, group, topic, 3), ends)
}
