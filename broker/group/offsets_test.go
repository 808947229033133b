package group

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCommitFetchAcrossRestart(t *testing.T) {
	ctx := testCtx(t)
	j := newMemJournal()
	now := time.UnixMilli(1_700_000_000_000)
	cfg := testConfig()
	cfg.Now = func() time.Time { return now }
	c := newTestCoordinator(t, cfg, j)

	// A simple (generation -1) commit to a group without members, v2.
	resp := c.OffsetCommit(ctx, commitReq(2, "simple", "", -1, "orders", map[int32]int64{0: 10, 1: 20}))
	if resp.Version != 2 {
		t.Fatalf("response version %d", resp.Version)
	}
	for _, p := range resp.Topics[0].Partitions {
		wantCode(t, "simple commit", p.ErrorCode, nil)
	}

	// A member commit, v9, with leader epoch and metadata.
	ids, gen := stableGroup(t, ctx, c, "live", longSession, 1)
	req := commitReq(9, "live", ids[0], gen, "payments", map[int32]int64{3: 33})
	req.Topics[0].Partitions[0].LeaderEpoch = 7
	md := "checkpoint"
	req.Topics[0].Partitions[0].Metadata = &md
	wantCode(t, "member commit", c.OffsetCommit(ctx, req).Topics[0].Partitions[0].ErrorCode, nil)

	// The journal holds Kafka's own schemas.
	var sawOffset bool
	for _, r := range j.all()[c.Partition("live")] {
		if r.Key[1] != 1 {
			continue
		}
		var k kmsg.OffsetCommitKey
		var v kmsg.OffsetCommitValue
		if err := k.ReadFrom(r.Key); err != nil {
			t.Fatal(err)
		}
		if err := v.ReadFrom(r.Value); err != nil {
			t.Fatal(err)
		}
		if k.Group == "live" && k.Topic == "payments" && k.Partition == 3 {
			sawOffset = true
			if v.Version != 3 || v.Offset != 33 || v.LeaderEpoch != 7 || v.Metadata != "checkpoint" || v.CommitTimestamp != now.UnixMilli() {
				t.Fatalf("offset record: %+v", v)
			}
		}
	}
	if !sawOffset {
		t.Fatal("no OffsetCommitKey record for live/payments/3")
	}
	c.Close()

	// "Restart": a new coordinator replays the journal.
	c2 := newTestCoordinator(t, cfg, j)
	j.replayInto(t, c2)
	if got := fetchOne(t, c2, "simple", "orders", 1); got != 20 {
		t.Fatalf("simple/orders/1 after restart = %d, want 20", got)
	}
	if got := fetchOne(t, c2, "simple", "orders", 7); got != -1 {
		t.Fatalf("uncommitted partition = %d, want -1", got)
	}
	if got := fetchOne(t, c2, "unknown-group", "orders", 0); got != -1 {
		t.Fatalf("unknown group = %d, want -1", got)
	}

	// Null topics (v2+) means every committed partition, with metadata and
	// leader epoch.
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 7
	f.Group = "live"
	f.RequireStable = true
	fr := c2.OffsetFetch(f)
	if fr.ErrorCode != 0 || len(fr.Topics) != 1 || fr.Topics[0].Topic != "payments" || len(fr.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch all: %+v", fr)
	}
	p := fr.Topics[0].Partitions[0]
	if p.Partition != 3 || p.Offset != 33 || p.LeaderEpoch != 7 || *p.Metadata != "checkpoint" {
		t.Fatalf("fetched partition: %+v", p)
	}

	// The group itself came back: same member, same generation, and the
	// next rebalance moves the generation forward.
	d := c2.DescribeGroups(&kmsg.DescribeGroupsRequest{Version: 4, Groups: []string{"live"}}).Groups[0]
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != ids[0] || string(d.Members[0].MemberAssignment) != "x" {
		t.Fatalf("described after restart: %+v", d)
	}
	wantCode(t, "heartbeat after restart", heartbeat(c2, "live", ids[0], gen), nil)
	r := c2.JoinGroup(ctx, "m", "h", joinReq(9, "live", ids[0], longSession, longSession))
	if r.ErrorCode != 0 || r.Generation != gen+1 {
		t.Fatalf("rejoin after restart: %+v", r)
	}
}

func TestLoadedMembersExpire(t *testing.T) {
	ctx := testCtx(t)
	j := newMemJournal()
	c := newTestCoordinator(t, testConfig(), j)
	const session = 200 * time.Millisecond
	ids, gen := stableGroup(t, ctx, c, "ghosts", session, 1)
	wantCode(t, "commit", c.OffsetCommit(ctx, commitReq(9, "ghosts", ids[0], gen, "t", map[int32]int64{0: 5})).Topics[0].Partitions[0].ErrorCode, nil)
	c.Close()

	c2 := newTestCoordinator(t, testConfig(), j)
	j.replayInto(t, c2)
	eventually(t, "the loaded member expires", func() bool {
		lg := c2.ListGroups(&kmsg.ListGroupsRequest{Version: 4, StatesFilter: []string{"empty"}})
		return len(lg.Groups) == 1 && lg.Groups[0].Group == "ghosts"
	})
	if got := fetchOne(t, c2, "ghosts", "t", 0); got != 5 {
		t.Fatalf("offset after expiry = %d, want 5", got)
	}
	// The generation never goes backwards: the expiry made generation
	// gen+1 and the next join gets gen+2.
	r := c2.JoinGroup(ctx, "m", "h", joinReq(3, "ghosts", "", session, session))
	if r.ErrorCode != 0 || r.Generation != gen+2 {
		t.Fatalf("join after expiry: %+v, want generation %d", r, gen+2)
	}
}

func TestOffsetFetchMultiGroupV8(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	c.OffsetCommit(ctx, commitReq(8, "g1", "", -1, "a", map[int32]int64{0: 1, 1: 2}))
	c.OffsetCommit(ctx, commitReq(8, "g2", "", -1, "b", map[int32]int64{0: 3}))

	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 8
	f.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "g1", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "a", Partitions: []int32{1, 5}}}},
		{Group: "g2"}, // null topics: everything
		{Group: "g3", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "a", Partitions: []int32{0}}}},
	}
	resp := c.OffsetFetch(f)
	if resp.Version != 8 || len(resp.Groups) != 3 {
		t.Fatalf("fetch v8: %+v", resp)
	}
	g1, g2, g3 := resp.Groups[0], resp.Groups[1], resp.Groups[2]
	if g1.Group != "g1" || g1.ErrorCode != 0 || len(g1.Topics) != 1 || len(g1.Topics[0].Partitions) != 2 ||
		g1.Topics[0].Partitions[0].Offset != 2 || g1.Topics[0].Partitions[1].Offset != -1 {
		t.Fatalf("g1: %+v", g1)
	}
	if g2.Group != "g2" || len(g2.Topics) != 1 || g2.Topics[0].Topic != "b" || g2.Topics[0].Partitions[0].Offset != 3 {
		t.Fatalf("g2: %+v", g2)
	}
	if g3.Group != "g3" || g3.ErrorCode != 0 || g3.Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("g3: %+v", g3)
	}
}

func TestCommitJournalFailure(t *testing.T) {
	ctx := testCtx(t)
	j := newMemJournal()
	c := newTestCoordinator(t, testConfig(), j)
	wantCode(t, "first commit", c.OffsetCommit(ctx, commitReq(9, "g", "", -1, "t", map[int32]int64{0: 1})).Topics[0].Partitions[0].ErrorCode, nil)

	j.setFail(errJournalDown)
	wantCode(t, "commit while journal fails", c.OffsetCommit(ctx, commitReq(9, "g", "", -1, "t", map[int32]int64{0: 2})).Topics[0].Partitions[0].ErrorCode, kerr.CoordinatorNotAvailable)
	if got := fetchOne(t, c, "g", "t", 0); got != 1 {
		t.Fatalf("offset after failed commit = %d, want 1", got)
	}
	j.setFail(kerr.NotCoordinator)
	wantCode(t, "commit with kerr journal error", c.OffsetCommit(ctx, commitReq(9, "g", "", -1, "t", map[int32]int64{0: 3})).Topics[0].Partitions[0].ErrorCode, kerr.NotCoordinator)
	if got := fetchOne(t, c, "g", "t", 0); got != 1 {
		t.Fatalf("offset after failed commit = %d, want 1", got)
	}

	// A failing journal also fails the leader's SyncGroup; the group goes
	// back to rebalancing and succeeds once the journal recovers.
	j.setFail(nil)
	r := c.JoinGroup(ctx, "m", "h", joinReq(3, "sg", "", longSession, longSession))
	j.setFail(errJournalDown)
	wantCode(t, "sync with failing journal", c.SyncGroup(ctx, syncReq(3, "sg", r.MemberID, r.Generation, map[string]string{r.MemberID: "x"})).ErrorCode, kerr.CoordinatorNotAvailable)
	j.setFail(nil)
	r2 := c.JoinGroup(ctx, "m", "h", joinReq(3, "sg", r.MemberID, longSession, longSession))
	if r2.ErrorCode != 0 || r2.Generation != r.Generation+1 {
		t.Fatalf("rejoin after failed sync: %+v", r2)
	}
	wantCode(t, "sync after recovery", c.SyncGroup(ctx, syncReq(3, "sg", r.MemberID, r2.Generation, map[string]string{r.MemberID: "x"})).ErrorCode, nil)
}

func TestCommitPartitionErrors(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig()
	cfg.TopicPartitionExists = func(topic string, partition int32) bool { return topic == "t" && partition < 2 }
	c := newTestCoordinator(t, cfg, newMemJournal())

	req := commitReq(9, "g", "", -1, "t", map[int32]int64{0: 1})
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition = 1
	p.Offset = 9
	big := strings.Repeat("x", DefaultMaxMetadataBytes+1)
	p.Metadata = &big
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, p)
	p2 := kmsg.NewOffsetCommitRequestTopicPartition()
	p2.Partition = 5
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, p2)
	other := kmsg.NewOffsetCommitRequestTopic()
	other.Topic = "missing"
	other.Partitions = []kmsg.OffsetCommitRequestTopicPartition{kmsg.NewOffsetCommitRequestTopicPartition()}
	req.Topics = append(req.Topics, other)

	resp := c.OffsetCommit(ctx, req)
	parts := resp.Topics[0].Partitions
	wantCode(t, "valid partition", parts[0].ErrorCode, nil)
	wantCode(t, "metadata too large", parts[1].ErrorCode, kerr.OffsetMetadataTooLarge)
	wantCode(t, "unknown partition", parts[2].ErrorCode, kerr.UnknownTopicOrPartition)
	wantCode(t, "unknown topic", resp.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	if resp.Topics[1].Topic != "missing" || parts[2].Partition != 5 {
		t.Fatalf("response does not mirror the request: %+v", resp)
	}
	if got := fetchOne(t, c, "g", "t", 0); got != 1 {
		t.Fatalf("valid partition committed %d, want 1", got)
	}
	if got := fetchOne(t, c, "g", "t", 1); got != -1 {
		t.Fatalf("rejected partition committed %d, want -1", got)
	}
}

func TestDeleteGroups(t *testing.T) {
	ctx := testCtx(t)
	j := newMemJournal()
	c := newTestCoordinator(t, testConfig(), j)
	c.OffsetCommit(ctx, commitReq(2, "idle", "", -1, "t", map[int32]int64{0: 1, 1: 2}))
	stableGroup(t, ctx, c, "busy", longSession, 1)

	resp := c.DeleteGroups(ctx, &kmsg.DeleteGroupsRequest{Version: 2, Groups: []string{"idle", "busy", "nope"}})
	if resp.Version != 2 || len(resp.Groups) != 3 {
		t.Fatalf("delete: %+v", resp)
	}
	wantCode(t, "delete empty group", resp.Groups[0].ErrorCode, nil)
	wantCode(t, "delete group with members", resp.Groups[1].ErrorCode, kerr.NonEmptyGroup)
	wantCode(t, "delete unknown group", resp.Groups[2].ErrorCode, kerr.GroupIDNotFound)
	if got := fetchOne(t, c, "idle", "t", 0); got != -1 {
		t.Fatalf("offset after delete = %d", got)
	}
	list := c.ListGroups(&kmsg.ListGroupsRequest{Version: 0})
	if len(list.Groups) != 1 || list.Groups[0].Group != "busy" {
		t.Fatalf("groups after delete: %+v", list.Groups)
	}

	// Deleted durably: the tombstones survive a restart.
	c.Close()
	c2 := newTestCoordinator(t, testConfig(), j)
	j.replayInto(t, c2)
	if got := fetchOne(t, c2, "idle", "t", 1); got != -1 {
		t.Fatalf("offset after delete and restart = %d", got)
	}
	d := c2.DescribeGroups(&kmsg.DescribeGroupsRequest{Version: 5, Groups: []string{"idle"}})
	if d.Groups[0].State != "Dead" || d.Groups[0].ErrorCode != 0 {
		t.Fatalf("deleted group described as %+v", d.Groups[0])
	}

	// Journal failure: the group and its offsets stay.
	c2.OffsetCommit(ctx, commitReq(2, "again", "", -1, "t", map[int32]int64{0: 4}))
	j.setFail(errJournalDown)
	resp = c2.DeleteGroups(ctx, &kmsg.DeleteGroupsRequest{Version: 0, Groups: []string{"again"}})
	wantCode(t, "delete with failing journal", resp.Groups[0].ErrorCode, kerr.CoordinatorNotAvailable)
	j.setFail(nil)
	if got := fetchOne(t, c2, "again", "t", 0); got != 4 {
		t.Fatalf("offset after failed delete = %d, want 4", got)
	}
}

func TestListAndDescribeGroups(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	c.OffsetCommit(ctx, commitReq(2, "offsets-only", "", -1, "t", map[int32]int64{0: 1}))
	ids, _ := stableGroup(t, ctx, c, "consumers", longSession, 1)

	all := c.ListGroups(&kmsg.ListGroupsRequest{Version: 5})
	if len(all.Groups) != 2 || all.Groups[0].Group != "consumers" || all.Groups[0].ProtocolType != "consumer" ||
		all.Groups[0].GroupState != "Stable" || all.Groups[0].GroupType != "classic" || all.Groups[1].GroupState != "Empty" {
		t.Fatalf("list: %+v", all.Groups)
	}
	stable := c.ListGroups(&kmsg.ListGroupsRequest{Version: 4, StatesFilter: []string{"Stable"}})
	if len(stable.Groups) != 1 || stable.Groups[0].Group != "consumers" {
		t.Fatalf("list stable: %+v", stable.Groups)
	}
	none := c.ListGroups(&kmsg.ListGroupsRequest{Version: 5, TypesFilter: []string{"consumer"}})
	if len(none.Groups) != 0 {
		t.Fatalf("list consumer-type groups: %+v", none.Groups)
	}

	d := c.DescribeGroups(&kmsg.DescribeGroupsRequest{Version: 3, Groups: []string{"consumers", "offsets-only"}, IncludeAuthorizedOperations: true})
	cg, og := d.Groups[0], d.Groups[1]
	if cg.State != "Stable" || cg.Protocol != "range" || len(cg.Members) != 1 || cg.Members[0].MemberID != ids[0] ||
		cg.Members[0].ClientID != "m" || cg.Members[0].ClientHost != "/127.0.0.1" ||
		string(cg.Members[0].ProtocolMetadata) != "meta-range" || string(cg.Members[0].MemberAssignment) != "x" {
		t.Fatalf("describe consumers: %+v", cg)
	}
	if cg.AuthorizedOperations == -2147483648 {
		t.Fatal("authorized operations asked for but omitted")
	}
	if og.State != "Empty" || len(og.Members) != 0 {
		t.Fatalf("describe offsets-only: %+v", og)
	}
	d6 := c.DescribeGroups(&kmsg.DescribeGroupsRequest{Version: 6, Groups: []string{"missing"}})
	wantCode(t, "describe v6 unknown group", d6.Groups[0].ErrorCode, kerr.GroupIDNotFound)
}

func TestLoadRejectsCorruptRecords(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	if err := c.Load(0, []Record{{Key: []byte{0}}}); err == nil {
		t.Fatal("Load accepted a one-byte key")
	}
	if err := c.Load(0, []Record{{Key: offsetKey("g", topicPartition{"t", 0}), Value: []byte{0, 3, 1}}}); err == nil {
		t.Fatal("Load accepted a truncated offset value")
	}
	// Record types we do not write (e.g. transaction log, version 3+ keys)
	// are skipped.
	if err := c.Load(0, []Record{{Key: []byte{0, 9, 1, 2}, Value: []byte{1}}}); err != nil {
		t.Fatalf("Load of a foreign record type: %v", err)
	}
}
