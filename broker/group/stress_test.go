package group

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consume behaves like a client's group loop: join (with the member id
// dance), sync, heartbeat and commit while stable, rejoin when told to,
// and leave after the given number of stable generations.
func consume(ctx context.Context, c *Coordinator, g, clientID string, generations int) error {
	const session = 2 * time.Second
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	memberID := ""
	for done := 0; done < generations; {
		if err := ctx.Err(); err != nil {
			return err
		}
		jr := c.JoinGroup(ctx, clientID, "/127.0.0.1", joinReq(9, g, memberID, session, session))
		switch jr.ErrorCode {
		case 0:
		case kerr.MemberIDRequired.Code:
			memberID = jr.MemberID
			continue
		case kerr.UnknownMemberID.Code:
			memberID = ""
			continue
		default:
			return fmt.Errorf("join: %s", codeName(jr.ErrorCode))
		}
		memberID = jr.MemberID
		sr := syncReq(3, g, memberID, jr.Generation, nil)
		if jr.LeaderID == memberID {
			for _, m := range jr.Members {
				sr.GroupAssignment = append(sr.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m.MemberID, MemberAssignment: []byte(m.MemberID)})
			}
		}
		resp := c.SyncGroup(ctx, sr)
		switch resp.ErrorCode {
		case 0:
		case kerr.RebalanceInProgress.Code, kerr.IllegalGeneration.Code:
			continue
		case kerr.UnknownMemberID.Code:
			memberID = ""
			continue
		default:
			return fmt.Errorf("sync: %s", codeName(resp.ErrorCode))
		}
		if string(resp.MemberAssignment) != memberID {
			return fmt.Errorf("member %s got assignment %q", memberID, resp.MemberAssignment)
		}
		done++
	stable:
		for i := 0; i < 5; i++ {
			<-tick.C
			switch code := heartbeat(c, g, memberID, jr.Generation); code {
			case 0:
			case kerr.RebalanceInProgress.Code:
				break stable
			case kerr.UnknownMemberID.Code:
				memberID = ""
				break stable
			default:
				return fmt.Errorf("heartbeat: %s", codeName(code))
			}
			cr := c.OffsetCommit(ctx, commitReq(9, g, memberID, jr.Generation, clientID, map[int32]int64{0: int64(done)}))
			switch code := cr.Topics[0].Partitions[0].ErrorCode; code {
			case 0, kerr.RebalanceInProgress.Code, kerr.IllegalGeneration.Code, kerr.UnknownMemberID.Code:
			default:
				return fmt.Errorf("commit: %s", codeName(code))
			}
		}
	}
	if memberID != "" {
		c.LeaveGroup(ctx, &kmsg.LeaveGroupRequest{Version: 1, Group: g, MemberID: memberID})
	}
	return nil
}

func TestConcurrentConsumersChurn(t *testing.T) {
	ctx := testCtx(t)
	j := newMemJournal()
	c := newTestCoordinator(t, testConfig(), j)
	const consumers = 4
	var wg sync.WaitGroup
	errs := make(chan error, consumers)
	for i := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := consume(ctx, c, "churn", fmt.Sprintf("client-%d", i), 3+i); err != nil {
				errs <- fmt.Errorf("consumer %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Everyone left: the group ends up empty, its offsets intact.
	eventually(t, "the group is empty", func() bool {
		d := c.DescribeGroups(&kmsg.DescribeGroupsRequest{Version: 5, Groups: []string{"churn"}}).Groups[0]
		return d.State == "Empty" && len(d.Members) == 0
	})
	for i := range consumers {
		if got := fetchOne(t, c, "churn", fmt.Sprintf("client-%d", i), 0); got < 1 {
			t.Fatalf("client-%d committed %d", i, got)
		}
	}
	// And a restart agrees.
	c.Close()
	c2 := newTestCoordinator(t, testConfig(), j)
	j.replayInto(t, c2)
	d := c2.DescribeGroups(&kmsg.DescribeGroupsRequest{Version: 5, Groups: []string{"churn"}}).Groups[0]
	if d.State != "Empty" {
		t.Fatalf("after restart the group is %s with %d members", d.State, len(d.Members))
	}
}
