package group

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestPartitionMatchesJava(t *testing.T) {
	// Expected values computed by hand from Java's String.hashCode and
	// Kafka's Utils.abs (Integer.MIN_VALUE maps to 0).
	cases := []struct {
		group      string
		hash       int32
		partitions int32
		want       int32
	}{
		{"abc", 96354, 50, 4},
		{"abc", 96354, 4, 2},
		{"", 0, 50, 0},
		{"polygenelubricants", -2147483648, 50, 0}, // hashCode is Integer.MIN_VALUE
		{"my-group", -1906497762, 50, 12},
		{"console-consumer-12345", 158455506, 50, 6},
		{"grüppe", -1233264812, 4, 0},
		{"😀", 1772899, 50, 49}, // one code point, two UTF-16 code units
	}
	for _, tc := range cases {
		if got := javaStringHashCode(tc.group); got != tc.hash {
			t.Errorf("javaStringHashCode(%q) = %d, want %d", tc.group, got, tc.hash)
		}
		c := NewCoordinator(Config{OffsetsTopicPartitions: tc.partitions}, newMemJournal())
		if got := c.Partition(tc.group); got != tc.want {
			t.Errorf("Partition(%q) with %d partitions = %d, want %d", tc.group, tc.partitions, got, tc.want)
		}
		c.Close()
	}
	c := NewCoordinator(Config{}, newMemJournal())
	defer c.Close()
	if got := c.Partition("abc"); got != 96354%DefaultOffsetsTopicPartitions {
		t.Errorf("default partition count: Partition(abc) = %d", got)
	}
}

func TestMemberIDRequired(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())

	resp := c.JoinGroup(ctx, "client-a", "/127.0.0.1", joinReq(4, "g", "", longSession, longSession))
	wantCode(t, "v4 join without member id", resp.ErrorCode, kerr.MemberIDRequired)
	if !strings.HasPrefix(resp.MemberID, "client-a-") || len(resp.MemberID) <= len("client-a-") {
		t.Fatalf("member id %q, want client-a-<uuid>", resp.MemberID)
	}
	if resp.Version != 4 {
		t.Fatalf("response version %d, want 4", resp.Version)
	}
	id := resp.MemberID
	resp = c.JoinGroup(ctx, "client-a", "/127.0.0.1", joinReq(4, "g", id, longSession, longSession))
	wantCode(t, "join with handed-out id", resp.ErrorCode, nil)
	if resp.MemberID != id || resp.LeaderID != id || resp.Generation != 1 || *resp.Protocol != "range" {
		t.Fatalf("join: %+v", resp)
	}

	// A made-up member id is unknown.
	resp = c.JoinGroup(ctx, "client-b", "/127.0.0.1", joinReq(4, "g", "client-b-made-up", longSession, longSession))
	wantCode(t, "join with made-up id", resp.ErrorCode, kerr.UnknownMemberID)

	// Before v4 the first join gets a member id right away.
	resp = c.JoinGroup(ctx, "old", "/127.0.0.1", joinReq(3, "g3", "", longSession, longSession))
	wantCode(t, "v3 join", resp.ErrorCode, nil)
	if !strings.HasPrefix(resp.MemberID, "old-") || resp.Generation != 1 {
		t.Fatalf("v3 join: %+v", resp)
	}
}

// TestGroupLifecycle runs three members through join, sync, heartbeat,
// a membership change and leave.
func TestGroupLifecycle(t *testing.T) {
	ctx := testCtx(t)
	j := newMemJournal()
	c := newTestCoordinator(t, testConfig(), j)
	const g = "lifecycle"

	// First member alone: generation 1, it leads.
	a, aJoin := joinNew(t, ctx, c, "a", g, longSession, "roundrobin", "range")
	ja := recv(t, aJoin, "a's join")
	wantCode(t, "a join", ja.ErrorCode, nil)
	if ja.Generation != 1 || ja.LeaderID != a || len(ja.Members) != 1 || *ja.Protocol != "roundrobin" || *ja.ProtocolType != "consumer" {
		t.Fatalf("a join: %+v", ja)
	}
	sa := c.SyncGroup(ctx, syncReq(5, g, a, 1, map[string]string{a: "all"}))
	wantCode(t, "a sync", sa.ErrorCode, nil)
	if string(sa.MemberAssignment) != "all" || *sa.Protocol != "roundrobin" || *sa.ProtocolType != "consumer" {
		t.Fatalf("a sync: %+v", sa)
	}
	wantCode(t, "a heartbeat while stable", heartbeat(c, g, a, 1), nil)

	// b and c join; they only support range, so range must win.
	b, bJoin := joinNew(t, ctx, c, "b", g, longSession, "range")
	cc, cJoin := joinNew(t, ctx, c, "c", g, longSession, "range")
	eventually(t, "a learns of the rebalance", func() bool {
		code := heartbeat(c, g, a, 1)
		if code != 0 && code != kerr.RebalanceInProgress.Code {
			t.Fatalf("a heartbeat: %s", codeName(code))
		}
		return code == kerr.RebalanceInProgress.Code
	})
	aJoin = joinAsync(ctx, c, "a", joinReq(9, g, a, longSession, longSession, "roundrobin", "range"))

	ja, jb, jc := recv(t, aJoin, "a rejoin"), recv(t, bJoin, "b join"), recv(t, cJoin, "c join")
	for _, r := range []*kmsg.JoinGroupResponse{ja, jb, jc} {
		wantCode(t, "join gen 2 of "+r.MemberID, r.ErrorCode, nil)
		if r.Generation != 2 || r.LeaderID != a || *r.Protocol != "range" {
			t.Fatalf("join gen 2: %+v", r)
		}
	}
	if len(ja.Members) != 3 || len(jb.Members) != 0 || len(jc.Members) != 0 {
		t.Fatalf("member lists: leader %d, followers %d and %d", len(ja.Members), len(jb.Members), len(jc.Members))
	}
	for _, m := range ja.Members {
		if string(m.ProtocolMetadata) != "meta-range" {
			t.Fatalf("leader sees metadata %q for %s, want the chosen protocol's", m.ProtocolMetadata, m.MemberID)
		}
	}

	// Followers sync first and wait for the leader.
	bSync := syncAsync(ctx, c, syncReq(3, g, b, 2, nil))
	cSync := syncAsync(ctx, c, syncReq(3, g, cc, 2, nil))
	sa = c.SyncGroup(ctx, syncReq(3, g, a, 2, map[string]string{a: "pa", b: "pb", cc: "pc"}))
	wantCode(t, "leader sync", sa.ErrorCode, nil)
	if string(sa.MemberAssignment) != "pa" {
		t.Fatalf("leader assignment %q", sa.MemberAssignment)
	}
	if sb := recv(t, bSync, "b sync"); sb.ErrorCode != 0 || string(sb.MemberAssignment) != "pb" {
		t.Fatalf("b sync: %s %q", codeName(sb.ErrorCode), sb.MemberAssignment)
	}
	if sc := recv(t, cSync, "c sync"); sc.ErrorCode != 0 || string(sc.MemberAssignment) != "pc" {
		t.Fatalf("c sync: %s %q", codeName(sc.ErrorCode), sc.MemberAssignment)
	}
	for _, m := range []string{a, b, cc} {
		wantCode(t, "heartbeat gen 2", heartbeat(c, g, m, 2), nil)
	}
	// A late sync in a stable group returns the assignment at once.
	if sb := c.SyncGroup(ctx, syncReq(3, g, b, 2, nil)); string(sb.MemberAssignment) != "pb" {
		t.Fatalf("late sync: %q", sb.MemberAssignment)
	}

	// The assignment was persisted as GroupMetadataValue.
	desc := c.DescribeGroups(&kmsg.DescribeGroupsRequest{Version: 5, Groups: []string{g}})
	dg := desc.Groups[0]
	if dg.State != "Stable" || dg.Protocol != "range" || dg.ProtocolType != "consumer" || len(dg.Members) != 3 || dg.AuthorizedOperations != -2147483648 {
		t.Fatalf("describe: %+v", dg)
	}
	last := lastGroupMetadata(t, j, c.Partition(g))
	if last.Generation != 2 || *last.Leader != a || *last.Protocol != "range" || len(last.Members) != 3 {
		t.Fatalf("persisted metadata: %+v", last)
	}

	// c leaves with a batched v5 LeaveGroup (plus an unknown member).
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 5
	leave.Group = g
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: cc}, {MemberID: "nobody"}}
	lr := c.LeaveGroup(ctx, leave)
	wantCode(t, "leave top-level", lr.ErrorCode, nil)
	if len(lr.Members) != 2 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave members: %+v", lr.Members)
	}
	wantCode(t, "a heartbeat after leave", heartbeat(c, g, a, 2), kerr.RebalanceInProgress)
	wantCode(t, "b heartbeat after leave", heartbeat(c, g, b, 2), kerr.RebalanceInProgress)
	wantCode(t, "c heartbeat after leave", heartbeat(c, g, cc, 2), kerr.UnknownMemberID)

	aJoin = joinAsync(ctx, c, "a", joinReq(9, g, a, longSession, longSession, "roundrobin", "range"))
	bJoin = joinAsync(ctx, c, "b", joinReq(9, g, b, longSession, longSession, "range"))
	ja, jb = recv(t, aJoin, "a join gen 3"), recv(t, bJoin, "b join gen 3")
	if ja.Generation != 3 || jb.Generation != 3 || len(ja.Members) != 2 {
		t.Fatalf("gen 3: a %+v b %+v", ja, jb)
	}

	// Old-style v0 leave of both: the group ends up empty.
	for _, m := range []string{a, b} {
		lr := c.LeaveGroup(ctx, &kmsg.LeaveGroupRequest{Version: 0, Group: g, MemberID: m})
		wantCode(t, "v0 leave", lr.ErrorCode, nil)
	}
	eventually(t, "the group is empty", func() bool {
		lg := c.ListGroups(&kmsg.ListGroupsRequest{Version: 4, StatesFilter: []string{"Empty"}})
		for _, x := range lg.Groups {
			if x.Group == g {
				return true
			}
		}
		// An empty group without offsets may also have been removed.
		d := c.DescribeGroups(&kmsg.DescribeGroupsRequest{Version: 0, Groups: []string{g}})
		return d.Groups[0].State == "Dead"
	})
}

func lastGroupMetadata(t *testing.T, j *memJournal, partition int32) kmsg.GroupMetadataValue {
	t.Helper()
	recs := j.all()[partition]
	for i := len(recs) - 1; i >= 0; i-- {
		var k kmsg.GroupMetadataKey
		if recs[i].Key[1] != 2 || k.ReadFrom(recs[i].Key) != nil || recs[i].Value == nil {
			continue
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(recs[i].Value); err != nil {
			t.Fatalf("decode group metadata: %v", err)
		}
		return v
	}
	t.Fatalf("no group metadata record in partition %d", partition)
	panic("unreachable")
}

// stableGroup brings n members into a stable group and returns their ids
// (leader first) and the generation.
func stableGroup(t *testing.T, ctx context.Context, c *Coordinator, g string, session time.Duration, n int) ([]string, int32) {
	t.Helper()
	ids := make([]string, n)
	joins := make([]<-chan *kmsg.JoinGroupResponse, n)
	for i := range n {
		ids[i], joins[i] = joinNew(t, ctx, c, "m", g, session)
		if i == 0 {
			r := recv(t, joins[0], "first join")
			wantCode(t, "first join", r.ErrorCode, nil)
			c.SyncGroup(ctx, syncReq(3, g, ids[0], r.Generation, map[string]string{ids[0]: "x"}))
		}
	}
	if n == 1 {
		return ids, 1
	}
	joins[0] = joinAsync(ctx, c, "m", joinReq(9, g, ids[0], session, session))
	var gen int32
	var leader string
	for i := range n {
		r := recv(t, joins[i], "join")
		wantCode(t, "join", r.ErrorCode, nil)
		gen, leader = r.Generation, r.LeaderID
	}
	syncs := make([]<-chan *kmsg.SyncGroupResponse, n)
	assign := map[string]string{}
	for _, id := range ids {
		assign[id] = "assignment-of-" + id
	}
	for i, id := range ids {
		if id == leader {
			syncs[i] = syncAsync(ctx, c, syncReq(3, g, id, gen, assign))
		} else {
			syncs[i] = syncAsync(ctx, c, syncReq(3, g, id, gen, nil))
		}
	}
	for i := range n {
		r := recv(t, syncs[i], "sync")
		wantCode(t, "sync", r.ErrorCode, nil)
	}
	if leader != ids[0] {
		t.Fatalf("leader %s, want the first member %s", leader, ids[0])
	}
	return ids, gen
}

func TestSessionExpiryTriggersRebalance(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	const g = "expiry"
	const session = 300 * time.Millisecond
	ids, gen := stableGroup(t, ctx, c, g, session, 2)
	alive, silent := ids[0], ids[1]

	// alive heartbeats like a client would; silent does nothing.
	tick := time.NewTicker(session / 10)
	defer tick.Stop()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code := heartbeat(c, g, alive, gen)
		if code == kerr.RebalanceInProgress.Code {
			break
		}
		wantCode(t, "heartbeat before expiry", code, nil)
		if time.Now().After(deadline) {
			t.Fatal("silent member never expired")
		}
		<-tick.C
	}
	wantCode(t, "expired member heartbeat", heartbeat(c, g, silent, gen), kerr.UnknownMemberID)

	r := c.JoinGroup(ctx, "m", "/127.0.0.1", joinReq(9, g, alive, session, session))
	wantCode(t, "rejoin", r.ErrorCode, nil)
	if r.Generation != gen+1 || r.LeaderID != alive || len(r.Members) != 1 {
		t.Fatalf("rejoin after expiry: %+v", r)
	}
}

func TestRebalanceTimeoutRemovesMembersThatDoNotRejoin(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	const g = "slow"
	// The laggard keeps its session alive, so only the rebalance timeout
	// can remove it.
	ids, gen := stableGroup(t, ctx, c, g, 250*time.Millisecond, 2)
	stayer := ids[0]

	// A third member joins; only it and the leader rejoin. The other one
	// keeps heartbeating (REBALANCE_IN_PROGRESS) but never rejoins.
	_, newJoin := joinNew(t, ctx, c, "n", g, 250*time.Millisecond)
	stayJoin := joinAsync(ctx, c, "m", joinReq(9, g, stayer, 250*time.Millisecond, 250*time.Millisecond))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var rs *kmsg.JoinGroupResponse
	for rs == nil {
		select {
		case rs = <-stayJoin:
		case <-tick.C:
			code := heartbeat(c, g, ids[1], gen)
			if code != kerr.RebalanceInProgress.Code && code != kerr.UnknownMemberID.Code {
				t.Fatalf("laggard heartbeat: %s", codeName(code))
			}
		case <-ctx.Done():
			t.Fatal("rebalance never completed")
		}
	}
	rn := recv(t, newJoin, "new member join")
	if rs.Generation != gen+1 || rn.Generation != gen+1 || len(rs.Members) != 2 {
		t.Fatalf("after rebalance timeout: stayer %+v new %+v", rs, rn)
	}
	wantCode(t, "laggard heartbeat", heartbeat(c, g, ids[1], gen), kerr.UnknownMemberID)
}

func TestGenerationAndMemberChecks(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	const g = "checks"
	ids, gen := stableGroup(t, ctx, c, g, longSession, 1)
	m := ids[0]

	wantCode(t, "heartbeat wrong generation", heartbeat(c, g, m, gen+5), kerr.IllegalGeneration)
	wantCode(t, "heartbeat unknown member", heartbeat(c, g, "ghost", gen), kerr.UnknownMemberID)
	wantCode(t, "heartbeat unknown group", heartbeat(c, "nope", m, gen), kerr.UnknownMemberID)
	wantCode(t, "sync wrong generation", c.SyncGroup(ctx, syncReq(3, g, m, gen-1, nil)).ErrorCode, kerr.IllegalGeneration)
	wantCode(t, "sync unknown member", c.SyncGroup(ctx, syncReq(3, g, "ghost", gen, nil)).ErrorCode, kerr.UnknownMemberID)
	sr := syncReq(5, g, m, gen, nil)
	other := "sticky"
	sr.Protocol = &other
	wantCode(t, "sync v5 other protocol", c.SyncGroup(ctx, sr).ErrorCode, kerr.InconsistentGroupProtocol)

	commit := func(member string, generation int32) int16 {
		return c.OffsetCommit(ctx, commitReq(9, g, member, generation, "t", map[int32]int64{0: 1})).Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "commit wrong generation", commit(m, gen+1), kerr.IllegalGeneration)
	wantCode(t, "commit unknown member", commit("ghost", gen), kerr.UnknownMemberID)
	wantCode(t, "simple commit to a live group", commit("", -1), kerr.UnknownMemberID)
	wantCode(t, "commit by member", commit(m, gen), nil)
	wantCode(t, "commit to unknown group with generation", c.OffsetCommit(ctx, commitReq(9, "other", "x", 3, "t", map[int32]int64{0: 1})).Topics[0].Partitions[0].ErrorCode, kerr.IllegalGeneration)

	jr := joinReq(9, g, "", time.Millisecond, longSession)
	wantCode(t, "session timeout too small", c.JoinGroup(ctx, "x", "h", jr).ErrorCode, kerr.InvalidSessionTimeout)
	jr = joinReq(9, g, "", time.Hour, longSession)
	wantCode(t, "session timeout too large", c.JoinGroup(ctx, "x", "h", jr).ErrorCode, kerr.InvalidSessionTimeout)
	jr = joinReq(9, g, "", longSession, longSession, "sticky")
	wantCode(t, "no common protocol", c.JoinGroup(ctx, "x", "h", jr).ErrorCode, kerr.InconsistentGroupProtocol)
	jr = joinReq(9, g, "", longSession, longSession)
	jr.ProtocolType = "connect"
	wantCode(t, "other protocol type", c.JoinGroup(ctx, "x", "h", jr).ErrorCode, kerr.InconsistentGroupProtocol)
	jr = joinReq(9, "fresh", "", longSession, longSession)
	jr.Protocols = nil
	wantCode(t, "no protocols", c.JoinGroup(ctx, "x", "h", jr).ErrorCode, kerr.InconsistentGroupProtocol)
	wantCode(t, "join unknown group with member id", c.JoinGroup(ctx, "x", "h", joinReq(9, "fresh", "x-1", longSession, longSession)).ErrorCode, kerr.UnknownMemberID)
	for _, lg := range c.ListGroups(&kmsg.ListGroupsRequest{Version: 0}).Groups {
		if lg.Group != g {
			t.Fatalf("failed joins left group %q behind", lg.Group)
		}
	}
	wantCode(t, "join without group id", c.JoinGroup(ctx, "x", "h", joinReq(9, "", "", longSession, longSession)).ErrorCode, kerr.InvalidGroupID)
}

func TestSyncDuringRebalance(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	const g = "midway"
	ids, gen := stableGroup(t, ctx, c, g, longSession, 2)

	// Generation gen+1 completes its join phase, then a newcomer interrupts
	// it before the leader synced: a waiting follower learns
	// REBALANCE_IN_PROGRESS.
	j0 := joinAsync(ctx, c, "m", joinReq(9, g, ids[0], longSession, longSession))
	eventually(t, "the follower learns of the rebalance", func() bool {
		return heartbeat(c, g, ids[1], gen) == kerr.RebalanceInProgress.Code
	})
	j1 := joinAsync(ctx, c, "m", joinReq(9, g, ids[1], longSession, longSession))
	for _, ch := range []<-chan *kmsg.JoinGroupResponse{j0, j1} {
		if r := recv(t, ch, "rejoin"); r.ErrorCode != 0 || r.Generation != gen+1 {
			t.Fatalf("rejoin: %+v", r)
		}
	}
	fSync := syncAsync(ctx, c, syncReq(3, g, ids[1], gen+1, nil))
	_, nJoin := joinNew(t, ctx, c, "n", g, longSession)
	wantCode(t, "follower sync interrupted", recv(t, fSync, "follower sync").ErrorCode, kerr.RebalanceInProgress)
	wantCode(t, "sync while preparing", c.SyncGroup(ctx, syncReq(3, g, ids[0], gen+1, nil)).ErrorCode, kerr.RebalanceInProgress)

	// Everyone rejoins; the rebalance completes.
	a := joinAsync(ctx, c, "m", joinReq(9, g, ids[0], longSession, longSession))
	b := joinAsync(ctx, c, "m", joinReq(9, g, ids[1], longSession, longSession))
	for _, ch := range []<-chan *kmsg.JoinGroupResponse{a, b, nJoin} {
		if r := recv(t, ch, "rejoin"); r.ErrorCode != 0 || r.Generation != gen+2 {
			t.Fatalf("rejoin: %+v", r)
		}
	}
}

func TestStaticMembership(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	const g = "static"
	inst := "instance-1"
	jr := joinReq(5, g, "", longSession, longSession)
	jr.InstanceID = &inst
	r1 := c.JoinGroup(ctx, "s", "h", jr)
	wantCode(t, "static join", r1.ErrorCode, nil) // no MEMBER_ID_REQUIRED for static members
	wantCode(t, "static sync", c.SyncGroup(ctx, syncReq(3, g, r1.MemberID, r1.Generation, map[string]string{r1.MemberID: "a"})).ErrorCode, nil)

	// The instance restarts and joins with an empty member id: it takes
	// over, and the old member id is fenced.
	r2 := c.JoinGroup(ctx, "s", "h", jr)
	wantCode(t, "static rejoin", r2.ErrorCode, nil)
	if r2.MemberID == r1.MemberID || r2.Generation != r1.Generation+1 || r2.LeaderID != r2.MemberID {
		t.Fatalf("static rejoin: %+v (first %+v)", r2, r1)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 3
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = g, r1.MemberID, r2.Generation, &inst
	wantCode(t, "fenced heartbeat", c.Heartbeat(hb).ErrorCode, kerr.FencedInstanceID)

	// Leaving by instance id.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 4
	leave.Group = g
	leave.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: &inst}}
	lr := c.LeaveGroup(ctx, leave)
	if lr.ErrorCode != 0 || len(lr.Members) != 1 || lr.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance: %+v", lr)
	}
	wantCode(t, "heartbeat after leave", heartbeat(c, g, r2.MemberID, r2.Generation), kerr.UnknownMemberID)
}

func TestInitialRebalanceDelay(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 500 * time.Millisecond
	c := newTestCoordinator(t, cfg, newMemJournal())
	const g = "delayed"
	// Both join within the delay: one generation with both members.
	ra := joinAsync(ctx, c, "a", joinReq(3, g, "", longSession, longSession))
	rb := joinAsync(ctx, c, "b", joinReq(3, g, "", longSession, longSession))
	a, b := recv(t, ra, "a"), recv(t, rb, "b")
	if a.ErrorCode != 0 || b.ErrorCode != 0 || a.Generation != 1 || b.Generation != 1 || a.LeaderID != b.LeaderID {
		t.Fatalf("delayed joins: %+v %+v", a, b)
	}
	leader := a
	if b.MemberID == b.LeaderID {
		leader = b
	}
	if len(leader.Members) != 2 {
		t.Fatalf("leader sees %d members, want 2", len(leader.Members))
	}
}

func TestCloseFailsBlockedCalls(t *testing.T) {
	ctx := testCtx(t)
	c := NewCoordinator(testConfig(), newMemJournal())
	const g = "closing"
	ids, _ := stableGroup(t, ctx, c, g, longSession, 1)
	// A newcomer waits for the existing member to rejoin, which it never does.
	_, nJoin := joinNew(t, ctx, c, "n", g, longSession)
	eventually(t, "the group is rebalancing", func() bool {
		return heartbeat(c, g, ids[0], 1) == kerr.RebalanceInProgress.Code
	})
	c.Close()
	wantCode(t, "blocked join after close", recv(t, nJoin, "blocked join").ErrorCode, kerr.CoordinatorNotAvailable)
	wantCode(t, "heartbeat after close", heartbeat(c, g, ids[0], 1), kerr.CoordinatorNotAvailable)
	wantCode(t, "join after close", c.JoinGroup(ctx, "x", "h", joinReq(9, g, "", longSession, longSession)).ErrorCode, kerr.CoordinatorNotAvailable)
	c.Close() // idempotent
}

func TestJoinContextCancelled(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	const g = "cancel"
	stableGroup(t, ctx, c, g, longSession, 1)
	jctx, cancel := context.WithCancel(ctx)
	_, nJoin := joinNew(t, jctx, c, "n", g, longSession)
	cancel()
	wantCode(t, "cancelled join", recv(t, nJoin, "cancelled join").ErrorCode, kerr.RebalanceInProgress)
}

func TestPendingMemberExpires(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	const g = "pending"
	ids, gen := stableGroup(t, ctx, c, g, longSession, 1)

	// A client gets a member id but never joins with it. The rebalance
	// the leader starts waits for it only until its session would expire.
	first := c.JoinGroup(ctx, "flaky", "h", joinReq(9, g, "", 100*time.Millisecond, longSession))
	wantCode(t, "flaky join", first.ErrorCode, kerr.MemberIDRequired)
	r := c.JoinGroup(ctx, "m", "h", joinReq(9, g, ids[0], longSession, longSession))
	if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("join after pending member expired: %+v", r)
	}
	wantCode(t, "leader sync", c.SyncGroup(ctx, syncReq(3, g, ids[0], r.Generation, nil)).ErrorCode, nil)
	// Too late now.
	wantCode(t, "late join with expired id", c.JoinGroup(ctx, "flaky", "h", joinReq(9, g, first.MemberID, longSession, longSession)).ErrorCode, kerr.UnknownMemberID)

	// A pending member may also leave; that too unblocks the rebalance.
	second := c.JoinGroup(ctx, "polite", "h", joinReq(9, g, "", longSession, longSession))
	wantCode(t, "polite join", second.ErrorCode, kerr.MemberIDRequired)
	rj := joinAsync(ctx, c, "m", joinReq(9, g, ids[0], longSession, longSession))
	lr := c.LeaveGroup(ctx, &kmsg.LeaveGroupRequest{Version: 2, Group: g, MemberID: second.MemberID})
	wantCode(t, "pending member leaves", lr.ErrorCode, nil)
	if r := recv(t, rj, "leader rejoin"); r.ErrorCode != 0 || r.Generation != gen+2 {
		t.Fatalf("join after pending member left: %+v", r)
	}
}

func TestSyncContextCancelled(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	const g = "sync-cancel"
	ids, gen := stableGroup(t, ctx, c, g, longSession, 2)
	a := joinAsync(ctx, c, "m", joinReq(9, g, ids[0], longSession, longSession))
	eventually(t, "the follower learns of the rebalance", func() bool {
		return heartbeat(c, g, ids[1], gen) == kerr.RebalanceInProgress.Code
	})
	b := c.JoinGroup(ctx, "m", "h", joinReq(9, g, ids[1], longSession, longSession))
	recv(t, a, "leader join")

	sctx, cancel := context.WithCancel(ctx)
	bSync := syncAsync(sctx, c, syncReq(3, g, ids[1], b.Generation, nil))
	cancel()
	wantCode(t, "cancelled sync", recv(t, bSync, "cancelled sync").ErrorCode, kerr.RebalanceInProgress)
	// The member is still there and gets its assignment on retry.
	wantCode(t, "leader sync", c.SyncGroup(ctx, syncReq(3, g, ids[0], b.Generation, map[string]string{ids[1]: "b"})).ErrorCode, nil)
	if r := c.SyncGroup(ctx, syncReq(3, g, ids[1], b.Generation, nil)); r.ErrorCode != 0 || string(r.MemberAssignment) != "b" {
		t.Fatalf("retried sync: %s %q", codeName(r.ErrorCode), r.MemberAssignment)
	}
}

func TestErrorCodesMatchKerr(t *testing.T) {
	for _, tc := range []struct {
		got  errCode
		want *kerr.Error
	}{
		{errCoordinatorNotAvail, kerr.CoordinatorNotAvailable},
		{errIllegalGeneration, kerr.IllegalGeneration},
		{errInconsistentProtocol, kerr.InconsistentGroupProtocol},
		{errInvalidGroupID, kerr.InvalidGroupID},
		{errUnknownMember, kerr.UnknownMemberID},
		{errRebalanceInProgress, kerr.RebalanceInProgress},
		{errFencedInstance, kerr.FencedInstanceID},
	} {
		if tc.got != tc.want.Code {
			t.Errorf("%s: code %d, kerr says %d", tc.want.Message, tc.got, tc.want.Code)
		}
	}
}
