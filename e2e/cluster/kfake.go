package cluster

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// StartKfake starts an in-process franz-go kfake cluster, the tests'
// stand-in for a legacy Apache Kafka: one broker on loopback reporting
// clusterID, with topics created with partitions each. It is closed at
// cleanup; StartKfake returns its address.
func StartKfake(t testing.TB, clusterID string, partitions int32, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...), kfake.ClusterID(clusterID))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}
