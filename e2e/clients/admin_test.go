package clients

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

func strp(s string) *string { return &s }

// topicConfig is topic's value of key as DescribeConfigs reports it ("" if
// absent or null).
func topicConfig(t testing.TB, adm *kadm.Client, topic, key string) string {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctxFor(t), topic)
	if err != nil {
		t.Fatalf("describe configs of %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		t.Fatalf("describe configs of %s: %v (%s)", topic, err, rc.ErrMessage)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			if c.Value == nil {
				return ""
			}
			return *c.Value
		}
	}
	return ""
}

// alterErr is the error of the only topic in an AlterConfigs response.
func alterErr(resps kadm.AlterConfigsResponses, err error) (error, string) {
	if err != nil {
		return err, ""
	}
	for _, r := range resps {
		if r.Err != nil {
			return r.Err, r.ErrMessage
		}
	}
	return nil, ""
}

// TestAdminTopicConfigs creates a topic with configs and changes them with
// IncrementalAlterConfigs and AlterConfigs, reading each change back with
// DescribeConfigs; cleanup.policy=compact and malformed values are refused
// with a clear error and change nothing.
func TestAdminTopicConfigs(t *testing.T) {
	b := cluster.StartBroker(t)
	adm := newAdmin(t, b.Addr)
	const topic = "configured"
	cluster.CreateTopic(t, b.Addr, topic, 2, map[string]*string{
		"retention.ms":      strp("3600000"),
		"max.message.bytes": strp("2000000"),
	})
	defaultRetention := (168 * time.Hour).Milliseconds()
	expect := func(key, want string) {
		t.Helper()
		if got := topicConfig(t, adm, topic, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	expect("retention.ms", "3600000")
	expect("max.message.bytes", "2000000")
	expect("cleanup.policy", "delete")

	// IncrementalAlterConfigs changes one key and keeps the others.
	err, msg := alterErr(adm.AlterTopicConfigs(ctxFor(t),
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("7200000")}}, topic))
	if err != nil {
		t.Fatalf("incremental alter retention.ms: %v (%s)", err, msg)
	}
	expect("retention.ms", "7200000")
	expect("max.message.bytes", "2000000")

	// Deleting an override goes back to the broker's default.
	err, msg = alterErr(adm.AlterTopicConfigs(ctxFor(t),
		[]kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, topic))
	if err != nil {
		t.Fatalf("incremental delete retention.ms: %v (%s)", err, msg)
	}
	expect("retention.ms", strconv.FormatInt(defaultRetention, 10))

	// AlterConfigs (not incremental) replaces every override: keys it does
	// not name go back to their defaults.
	err, msg = alterErr(adm.AlterTopicConfigsState(ctxFor(t),
		[]kadm.AlterConfig{{Name: "retention.ms", Value: strp("1800000")}}, topic))
	if err != nil {
		t.Fatalf("alter configs retention.ms: %v (%s)", err, msg)
	}
	expect("retention.ms", "1800000")
	if got := topicConfig(t, adm, topic, "max.message.bytes"); got == "2000000" {
		t.Errorf("max.message.bytes still %s after AlterConfigs without it, want the default", got)
	}

	// Refused changes leave the topic as it was: every bad value is named.
	for _, bad := range []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "cleanup.policy", Value: strp("shred")},
		{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("soon")},
	} {
		err, msg := alterErr(adm.AlterTopicConfigs(ctxFor(t), []kadm.AlterConfig{bad}, topic))
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("setting %s=%s: error %v (%s), want INVALID_CONFIG", bad.Name, *bad.Value, err, msg)
		}
		if !strings.Contains(msg, bad.Name) {
			t.Errorf("setting %s=%s: error message %q does not name it", bad.Name, *bad.Value, msg)
		}
	}
	expect("cleanup.policy", "delete")
	expect("retention.ms", "1800000")

	// Compaction: a topic can be created compacted, and switched.
	cresps, err := adm.CreateTopics(ctxFor(t), 1, 1, map[string]*string{"cleanup.policy": strp("compact")}, "compacted")
	if err != nil {
		t.Fatalf("create compacted topic: request failed: %v", err)
	}
	if resp := cresps["compacted"]; resp.Err != nil {
		t.Fatalf("create topic with cleanup.policy=compact: %v (%q)", resp.Err, resp.ErrMessage)
	}
	if got := topicConfig(t, adm, "compacted", "cleanup.policy"); got != "compact" {
		t.Errorf("compacted topic has cleanup.policy=%q", got)
	}
	err, msg = alterErr(adm.AlterTopicConfigs(ctxFor(t),
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: strp("compact,delete")}}, topic))
	if err != nil {
		t.Fatalf("set cleanup.policy=compact,delete: %v (%s)", err, msg)
	}
	expect("cleanup.policy", "compact,delete")

	// Configs survive a restart.
	b.Restart()
	adm = newAdmin(t, b.Addr)
	expect("retention.ms", "1800000")
}

// TestAdminPartitionsAndDeletion grows a topic with CreatePartitions, uses
// the new partitions, deletes the topic and checks a topic created again
// under the same name starts empty.
func TestAdminPartitionsAndDeletion(t *testing.T) {
	b := cluster.StartBroker(t, "--auto-create-topics=false")
	adm := newAdmin(t, b.Addr)
	const topic = "growing"
	cluster.CreateTopic(t, b.Addr, topic, 1, nil)
	before := makeRecords(100, genOptions{})
	produceKgo(t, b.Addr, topic, before)

	resps, err := adm.CreatePartitions(ctxFor(t), 2, topic)
	if err == nil {
		_, err = resps.On(topic, nil)
	}
	if err == nil {
		err = resps[topic].Err
	}
	if err != nil {
		t.Fatalf("create partitions: %v (%s)", err, resps[topic].ErrMessage)
	}
	// Shrinking is refused.
	resps, err = adm.UpdatePartitions(ctxFor(t), 2, topic)
	if err == nil && resps[topic].Err == nil {
		t.Errorf("setting 3 partitions down to 2 succeeded")
	}

	md, err := adm.Metadata(ctxFor(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(md.Topics[topic].Partitions); got != 3 {
		t.Fatalf("%s has %d partitions after adding 2 to 1, want 3", topic, got)
	}
	cl := cluster.Client(t, b.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var krs []*kgo.Record
	for p := int32(1); p < 3; p++ {
		for i := 0; i < 10; i++ {
			krs = append(krs, &kgo.Record{Topic: topic, Partition: p, Value: []byte{byte(p), byte(i)}})
		}
	}
	if err := cl.ProduceSync(ctxFor(t), krs...).FirstErr(); err != nil {
		t.Fatalf("produce to the new partitions: %v", err)
	}
	requireOffsets(t, "end offsets after growing", endOffsets(t, b.Addr, topic), map[int32]int64{0: 100, 1: 10, 2: 10})

	dresps, err := adm.DeleteTopics(ctxFor(t), topic)
	if err == nil {
		err = dresps[topic].Err
	}
	if err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	topics, err := adm.ListTopics(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has(topic) {
		t.Fatalf("%s still listed after DeleteTopics", topic)
	}
	if err := cl.ProduceSync(ctxFor(t), &kgo.Record{Topic: "never-created", Partition: 0, Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("produce to a missing topic with auto-create off: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}

	b.Restart()
	cluster.CreateTopic(t, b.Addr, topic, 1, nil)
	requireOffsets(t, "end offsets of the topic created again", endOffsets(t, b.Addr, topic), map[int32]int64{0: 0})
}

// TestAdminListOffsets checks ListOffsets earliest, latest and by
// timestamp, within and across batches, before and after a restart.
func TestAdminListOffsets(t *testing.T) {
	b := cluster.StartBroker(t)
	adm := newAdmin(t, b.Addr)
	const topic = "timed"
	cluster.CreateTopic(t, b.Addr, topic, 1, nil)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	cl := cluster.Client(t, b.Addr)
	for batch := 0; batch < 2; batch++ { // two produce requests: two batches of 10
		var krs []*kgo.Record
		for i := batch * 10; i < batch*10+10; i++ {
			krs = append(krs, &kgo.Record{Topic: topic, Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Second)})
		}
		if err := cl.ProduceSync(ctxFor(t), krs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	offsetAt := func(what string, list func() (kadm.ListedOffsets, error)) int64 {
		t.Helper()
		listed, err := list()
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			t.Fatalf("list %s offsets: %v", what, err)
		}
		o, ok := listed.Lookup(topic, 0)
		if !ok {
			t.Fatalf("list %s offsets: no answer for %s/0", what, topic)
		}
		return o.Offset
	}
	check := func(when string) {
		t.Helper()
		ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
		for _, c := range []struct {
			what string
			list func() (kadm.ListedOffsets, error)
			want int64
		}{
			{"earliest", func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctxFor(t), topic) }, 0},
			{"latest", func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctxFor(t), topic) }, 20},
			{"before every record", func() (kadm.ListedOffsets, error) {
				return adm.ListOffsetsAfterMilli(ctxFor(t), ms(-time.Minute), topic)
			}, 0},
			{"exactly record 0", func() (kadm.ListedOffsets, error) { return adm.ListOffsetsAfterMilli(ctxFor(t), ms(0), topic) }, 0},
			{"inside batch 1", func() (kadm.ListedOffsets, error) {
				return adm.ListOffsetsAfterMilli(ctxFor(t), ms(3500*time.Millisecond), topic)
			}, 4},
			{"between batches", func() (kadm.ListedOffsets, error) {
				return adm.ListOffsetsAfterMilli(ctxFor(t), ms(9500*time.Millisecond), topic)
			}, 10},
			{"inside batch 2", func() (kadm.ListedOffsets, error) {
				return adm.ListOffsetsAfterMilli(ctxFor(t), ms(12*time.Second), topic)
			}, 12},
			{"after every record", func() (kadm.ListedOffsets, error) {
				return adm.ListOffsetsAfterMilli(ctxFor(t), ms(time.Minute), topic)
			}, 20},
		} {
			if got := offsetAt(c.what, c.list); got != c.want {
				t.Errorf("%s: %s offset = %d, want %d", when, c.what, got, c.want)
			}
		}
	}
	check("before restart")
	b.Restart()
	adm = newAdmin(t, b.Addr)
	check("after restart")
}

// TestAdminGroups lists, describes and deletes a consumer group with kadm
// while it has a member and after it emptied.
func TestAdminGroups(t *testing.T) {
	b := cluster.StartBroker(t)
	adm := newAdmin(t, b.Addr)
	const topic, group, n = "grouped", "admin-group", 50
	cluster.CreateTopic(t, b.Addr, topic, 2, nil)
	produceKgo(t, b.Addr, topic, makeRecords(n, genOptions{}))

	cl := groupKgo(t, b.Addr, group, topic)
	pollKgo(t, cl, n)
	if err := cl.CommitUncommittedOffsets(ctxFor(t)); err != nil {
		t.Fatalf("commit: %v", err)
	}

	describe := func() kadm.DescribedGroup {
		t.Helper()
		dgs, err := adm.DescribeGroups(ctxFor(t), group)
		if err != nil {
			t.Fatalf("describe groups: %v", err)
		}
		dg, ok := dgs[group]
		if !ok || dg.Err != nil {
			t.Fatalf("describe group %s: %v (%s)", group, dg.Err, dg.ErrMessage)
		}
		return dg
	}
	dg := describe()
	if dg.State != "Stable" || dg.ProtocolType != "consumer" || len(dg.Members) != 1 {
		t.Errorf("group with one member: state %q, protocol type %q, %d members; want Stable, consumer, 1",
			dg.State, dg.ProtocolType, len(dg.Members))
	}
	listed, err := adm.ListGroups(ctxFor(t))
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	if lg, ok := listed[group]; !ok || lg.ProtocolType != "consumer" {
		t.Errorf("list groups: %v, want %s with protocol type consumer", listed.Groups(), group)
	}
	dresps, err := adm.DeleteGroups(ctxFor(t), group)
	if err != nil {
		t.Fatalf("delete groups: %v", err)
	}
	if !errors.Is(dresps[group].Err, kerr.NonEmptyGroup) {
		t.Errorf("deleting a group with a member: %v, want NON_EMPTY_GROUP", dresps[group].Err)
	}

	cl.Close() // leaves the group
	cluster.Eventually(t, 30*time.Second, "the group to be Empty after its member left", func() bool {
		dg := describe()
		return dg.State == "Empty" && len(dg.Members) == 0
	})
	requireOffsets(t, "committed offsets", committedKadm(t, b.Addr, group, topic), endOffsets(t, b.Addr, topic))

	dresps, err = adm.DeleteGroups(ctxFor(t), group)
	if err == nil {
		err = dresps[group].Err
	}
	if err != nil {
		t.Fatalf("delete empty group: %v", err)
	}
	listed, err = adm.ListGroups(ctxFor(t))
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	if _, ok := listed[group]; ok {
		t.Errorf("deleted group %s still listed", group)
	}
	requireOffsets(t, "committed offsets after deletion", committedKadm(t, b.Addr, group, topic), map[int32]int64{})

	// The deletion is durable: the offsets do not come back after a restart.
	b.Restart()
	requireOffsets(t, "committed offsets after deletion and restart", committedKadm(t, b.Addr, group, topic), map[int32]int64{})
}

// TestClusterID checks Metadata carries a UUID cluster ID that survives a
// clean restart and a SIGKILL.
func TestClusterID(t *testing.T) {
	b := cluster.StartBroker(t)
	clusterID := func() string {
		t.Helper()
		md, err := newAdmin(t, b.Addr).BrokerMetadata(ctxFor(t))
		if err != nil {
			t.Fatalf("metadata: %v", err)
		}
		if _, err := uuid.Parse(md.Cluster); err != nil {
			t.Fatalf("cluster ID %q is not a UUID: %v", md.Cluster, err)
		}
		return md.Cluster
	}
	first := clusterID()
	b.Restart()
	if id := clusterID(); id != first {
		t.Errorf("cluster ID after restart = %s, want %s", id, first)
	}
	b.KillAndRestart()
	if id := clusterID(); id != first {
		t.Errorf("cluster ID after SIGKILL and restart = %s, want %s", id, first)
	}
	other := cluster.StartBroker(t)
	md, err := newAdmin(t, other.Addr).BrokerMetadata(ctxFor(t))
	if err != nil {
		t.Fatalf("metadata of a second broker: %v", err)
	}
	if md.Cluster == first {
		t.Errorf("two brokers with separate data dirs share cluster ID %s", first)
	}
}
