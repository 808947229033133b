package clients

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// groupKgo returns a franz-go group consumer of topic that starts at the
// earliest offset when the group has no commit and commits only when told.
func groupKgo(t testing.TB, addr, group, topic string) *kgo.Client {
	t.Helper()
	return cluster.Client(t, addr,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
}

// TestFranzGo produces with franz-go's default producer (idempotent,
// acks=all) to a keyed three-partition topic, consumes in a franz-go group,
// and reads the group's committed offsets back with sarama.
func TestFranzGo(t *testing.T) {
	b := cluster.StartBroker(t)
	const topic, group, n = "franzgo", "franzgo-group", 5000
	cluster.CreateTopic(t, b.Addr, topic, 3, nil)
	want := makeRecords(n, genOptions{nullKeyEvery: 7})
	produceKgo(t, b.Addr, topic, want)

	cl := groupKgo(t, b.Addr, group, topic)
	got := pollKgo(t, cl, n)
	if err := cl.CommitUncommittedOffsets(ctxFor(t)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	cl.Close()

	ends := checkRecords(t, want, got)
	requireIdempotent(t, got)
	if len(ends) != 3 {
		t.Errorf("records landed in partitions %v, want all 3", sortedOffsets(ends))
	}
	requireOffsets(t, "end offsets", endOffsets(t, b.Addr, topic), ends)
	requireOffsets(t, "committed offsets read with sarama", committedSarama(t, b.Addr, group, topic, 3), ends)
}

// TestGroupResumesAfterRestart commits part of a topic in a group, restarts
// the broker (SIGTERM, or SIGKILL), and checks a new member of the group
// resumes exactly at the committed offsets: no gap, no repeat.
func TestGroupResumesAfterRestart(t *testing.T) {
	t.Run("SIGTERM", func(t *testing.T) { testGroupResumes(t, (*cluster.Broker).Restart) })
	t.Run("SIGKILL", func(t *testing.T) { testGroupResumes(t, (*cluster.Broker).KillAndRestart) })
}

func testGroupResumes(t *testing.T, restart func(*cluster.Broker)) {
	b := cluster.StartBroker(t)
	const topic, group, n, first = "resume", "resume-group", 3000, 1000
	cluster.CreateTopic(t, b.Addr, topic, 3, nil)
	want := makeRecords(n, genOptions{nullKeyEvery: 5})
	produceKgo(t, b.Addr, topic, want)

	cl := groupKgo(t, b.Addr, group, topic)
	polled := pollKgo(t, cl, first)
	before := polled[:first]
	krs := make([]*kgo.Record, len(before))
	committed := map[int32]int64{}
	for i, r := range before {
		krs[i] = &kgo.Record{Topic: topic, Partition: r.Partition, Offset: r.Offset}
		committed[r.Partition] = r.Offset + 1
	}
	if err := cl.CommitRecords(ctxFor(t), krs...); err != nil {
		t.Fatalf("commit first %d records: %v", first, err)
	}
	cl.Close()
	requireOffsets(t, "committed before restart", committedKadm(t, b.Addr, group, topic), committed)

	restart(b)

	requireOffsets(t, "committed after restart", committedKadm(t, b.Addr, group, topic), committed)
	cl = groupKgo(t, b.Addr, group, topic)
	after := pollKgo(t, cl, n-first)
	if err := cl.CommitUncommittedOffsets(ctxFor(t)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	cl.Close()

	for p, at := range committed {
		for _, r := range after {
			if r.Partition == p {
				if r.Offset != at {
					t.Errorf("partition %d resumed at offset %d, committed %d", p, r.Offset, at)
				}
				break
			}
		}
	}
	// The committed prefix and what the group got after the restart are,
	// together, every record exactly once and in order.
	ends := checkRecords(t, want, append(append([]record(nil), before...), after...))
	requireOffsets(t, "committed at the end", committedKadm(t, b.Addr, group, topic), ends)
}
