package group

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// roundTrip encodes resp as its Version and decodes it again, as the broker
// and a client would.
func roundTrip(t *testing.T, what string, resp kmsg.Response) {
	t.Helper()
	buf := resp.AppendTo(nil)
	back := resp.RequestKind().ResponseKind()
	back.SetVersion(resp.GetVersion())
	if err := back.ReadFrom(buf); err != nil {
		t.Fatalf("%s v%d: response does not decode: %v", what, resp.GetVersion(), err)
	}
}

func TestResponsesEncodeAtEverySupportedVersion(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCoordinator(t, testConfig(), newMemJournal())
	for v := int16(0); v <= 9; v++ {
		g := fmt.Sprintf("v%d", v)
		jr := c.JoinGroup(ctx, "c", "h", joinReq(v, g, "", longSession, longSession))
		roundTrip(t, "JoinGroup", jr)
		if jr.Version != v {
			t.Fatalf("JoinGroup v%d answered as v%d", v, jr.Version)
		}
		if jr.ErrorCode != 0 {
			jr = c.JoinGroup(ctx, "c", "h", joinReq(v, g, jr.MemberID, longSession, longSession))
			roundTrip(t, "JoinGroup", jr)
		}
		if v <= 5 {
			roundTrip(t, "SyncGroup", c.SyncGroup(ctx, syncReq(v, g, jr.MemberID, jr.Generation, map[string]string{jr.MemberID: "a"})))
			roundTrip(t, "LeaveGroup", c.LeaveGroup(ctx, &kmsg.LeaveGroupRequest{Version: v, Group: g, MemberID: "nobody",
				Members: []kmsg.LeaveGroupRequestMember{{MemberID: "nobody"}}}))
			roundTrip(t, "DescribeGroups", c.DescribeGroups(&kmsg.DescribeGroupsRequest{Version: v, Groups: []string{g, "missing"}}))
			roundTrip(t, "ListGroups", c.ListGroups(&kmsg.ListGroupsRequest{Version: v}))
		}
		if v <= 4 {
			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Version, hb.Group, hb.MemberID, hb.Generation = v, g, jr.MemberID, jr.Generation
			roundTrip(t, "Heartbeat", c.Heartbeat(hb))
		}
		if v >= 2 {
			roundTrip(t, "OffsetCommit", c.OffsetCommit(ctx, commitReq(v, g, jr.MemberID, jr.Generation, "t", map[int32]int64{0: 1})))
		}
		if v >= 1 {
			f := kmsg.NewPtrOffsetFetchRequest()
			f.Version = v
			f.Group = g
			f.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
			f.Groups = []kmsg.OffsetFetchRequestGroup{{Group: g}}
			roundTrip(t, "OffsetFetch", c.OffsetFetch(f))
		}
		if v <= 2 {
			roundTrip(t, "DeleteGroups", c.DeleteGroups(ctx, &kmsg.DeleteGroupsRequest{Version: v, Groups: []string{"missing"}}))
		}
	}
}
