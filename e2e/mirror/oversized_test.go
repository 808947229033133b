package mirror

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestOversized mirrors, under each oversized policy, a topic holding a
// 10 KB record between small ones into a central topic created in advance
// with max.message.bytes=2048 (three jobs of one worker, one per policy):
//
//   - skip: the six small records arrive, and the skipped-records metric
//     with reason oversized counts the big one;
//   - dead-letter: the six small records arrive, and the dead-letter topic
//     gets one record with the big one's key and provenance, and no value;
//   - fail: the three records before the big one arrive, the ones after do
//     not, and /v1/jobs shows a last error giving the record's size.
func TestOversized(t *testing.T) {
	east, central := cluster.StartBroker(t), cluster.StartBroker(t)
	maxBytes := "2048"
	var small []string
	var recs []*kgo.Record
	for _, k := range []string{"a0", "a1", "a2", "big", "b0", "b1", "b2"} {
		v := bytes.Repeat([]byte{'.'}, 100)
		if k == "big" {
			v = bytes.Repeat([]byte{'#'}, 10*1024)
		} else {
			small = append(small, k)
		}
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: v})
	}
	for _, topic := range []string{"big-skip", "big-dlq", "big-fail"} {
		cluster.CreateTopic(t, east.Addr, topic, 1, nil)
		cluster.CreateTopic(t, central.Addr, topic, 1, map[string]*string{"max.message.bytes": &maxBytes})
		fresh := make([]*kgo.Record, len(recs)) // kgo owns a record once produced
		for i, r := range recs {
			fresh[i] = &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value}
		}
		cluster.Produce(t, east.Addr, fresh)
	}
	job := cluster.WriteFile(t, "oversized.yaml", cluster.ClustersYAML(map[string]string{"east": east.Addr, "central": central.Addr})+`
jobs:
  - name: oversized-skip
    sources: [{cluster: east, topics: [big-skip]}]
    targets: [central]
    oversized: skip
  - name: oversized-dead-letter
    sources: [{cluster: east, topics: [big-dlq]}]
    targets: [central]
    oversized: dead-letter
    dead_letter_topic: big-dlq.dead
  - name: oversized-fail
    sources: [{cluster: east, topics: [big-fail]}]
    targets: [central]
    oversized: fail
    tuning: {max_retry_backoff: 1s}
`)
	m := cluster.StartMirror(t, job)

	t.Run("skip", func(t *testing.T) {
		waitCount(t, central.Addr, "big-skip", int64(len(small)), mirrorTimeout)
		requireKeys(t, cluster.ReadTopic(t, central.Addr, "big-skip", false).Records, small)
		metric := `tributary_mirror_records_skipped_total{job="oversized-skip",reason="oversized",target="central"}`
		cluster.Eventually(t, mirrorTimeout, metric+" >= 1", func() bool {
			text, err := m.Metrics()
			v, ok := cluster.MetricValue(text, metric)
			return err == nil && ok && v >= 1
		})
	})
	t.Run("dead-letter", func(t *testing.T) {
		waitCount(t, central.Addr, "big-dlq", int64(len(small)), mirrorTimeout)
		requireKeys(t, cluster.ReadTopic(t, central.Addr, "big-dlq", false).Records, small)
		waitCount(t, central.Addr, "big-dlq.dead", 1, mirrorTimeout)
		dead := cluster.ReadTopic(t, central.Addr, "big-dlq.dead", false).Records[0]
		if string(dead.Key) != "big" {
			t.Errorf("dead-letter record has key %q, want %q", dead.Key, "big")
		}
		if len(dead.Value) >= 10*1024 {
			t.Errorf("dead-letter record carries the %d-byte value it was too large for", len(dead.Value))
		}
		p := provenance(t, dead)
		if p.Topic != "big-dlq" || p.Partition != 0 || p.Offset != 3 || len(p.Path) != 1 || p.Path[0] != clusterID(t, east.Addr) {
			t.Errorf("dead-letter record's provenance %+v, want east's big-dlq-0 offset 3", *p)
		}
		for _, h := range dead.Headers {
			t.Logf("dead-letter header %s: %q", h.Key, h.Value)
		}
	})
	t.Run("fail", func(t *testing.T) {
		waitCount(t, central.Addr, "big-fail", 3, mirrorTimeout)
		var last cluster.FlowStatus
		cluster.Eventually(t, mirrorTimeout, "last_error of oversized-fail mentioning the record's size", func() bool {
			f, ok, err := m.Flow("oversized-fail", "central")
			last = f
			return err == nil && ok && strings.Contains(f.LastError, "bytes") && strings.Contains(f.LastError, "offset 3")
		})
		t.Logf("oversized-fail: state %s, last error %q", last.State, last.LastError)
		if !strings.Contains(last.LastError, fmt.Sprint(10*1024)) && !strings.Contains(last.LastError, "too large") {
			t.Errorf("last_error %q gives neither the record's size nor says it is too large", last.LastError)
		}
		stableCount(t, central.Addr, "big-fail", 3, 3*time.Second)
		requireKeys(t, cluster.ReadTopic(t, central.Addr, "big-fail", false).Records, small[:3])
	})
}

// requireKeys fails unless recs have exactly keys, in order.
func requireKeys(t *testing.T, recs []*kgo.Record, keys []string) {
	t.Helper()
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Key))
	}
	if strings.Join(got, ",") != strings.Join(keys, ",") {
		t.Fatalf("%s holds keys %v, want %v", recs[0].Topic, got, keys)
	}
}
