package txn

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestConfluentKafkaTransactions runs testdata/confluent_txn.py with
// Debian's python3-confluent-kafka (librdkafka): a committed and an aborted
// transaction, read back by a read_committed consumer (the committed
// records only) and a read_uncommitted one (both).
func TestConfluentKafkaTransactions(t *testing.T) {
	cluster.RequirePythonModule(t, "confluent_kafka", "python3-confluent-kafka")
	b := startBroker(t)
	const topic = "confluent-txn"
	createTopics(t, b.Addr, topic)

	cmd := exec.Command(cluster.SystemPython, "testdata/confluent_txn.py", b.Addr, topic)
	var stderr syncWriter
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("confluent_txn.py: %v\nstderr:\n%s", err, stderr.String())
	}
	var res struct {
		Committed   []string `json:"committed"`
		Uncommitted []string `json:"uncommitted"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("confluent_txn.py output %q: %v\nstderr:\n%s", out, err, stderr.String())
	}
	requireValues(t, "read_committed (librdkafka)", res.Committed, values("committed", 5))
	requireValues(t, "read_uncommitted (librdkafka)", res.Uncommitted, concat(values("committed", 5), values("aborted", 3)))
	// And franz-go agrees.
	requireValues(t, "read_committed (franz-go)", readUntilSentinel(t, b.Addr, topic, true), values("committed", 5))
}
