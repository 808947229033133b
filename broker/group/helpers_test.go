package group

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memJournal is an in-memory Journal. failWith, when set, makes Append
// fail without storing anything.
type memJournal struct {
	mu       sync.Mutex
	parts    map[int32][]Record
	failWith error
}

func newMemJournal() *memJournal { return &memJournal{parts: make(map[int32][]Record)} }

func (j *memJournal) Append(ctx context.Context, partition int32, recs []Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failWith != nil {
		return j.failWith
	}
	for _, r := range recs {
		cp := Record{Key: append([]byte(nil), r.Key...)}
		if r.Value != nil {
			cp.Value = append([]byte{}, r.Value...)
		}
		j.parts[partition] = append(j.parts[partition], cp)
	}
	return nil
}

func (j *memJournal) setFail(err error) {
	j.mu.Lock()
	j.failWith = err
	j.mu.Unlock()
}

func (j *memJournal) all() map[int32][]Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make(map[int32][]Record, len(j.parts))
	for p, recs := range j.parts {
		out[p] = append([]Record(nil), recs...)
	}
	return out
}

// replayInto loads everything j holds into c, as the broker does on start.
func (j *memJournal) replayInto(t *testing.T, c *Coordinator) {
	t.Helper()
	for p, recs := range j.all() {
		if err := c.Load(p, recs); err != nil {
			t.Fatalf("Load partition %d: %v", p, err)
		}
	}
}

var errJournalDown = errors.New("disk on fire")

func testConfig() Config {
	return Config{
		MinSessionTimeout: 10 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func newTestCoordinator(t *testing.T, cfg Config, j Journal) *Coordinator {
	t.Helper()
	c := NewCoordinator(cfg, j)
	t.Cleanup(c.Close)
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const (
	longSession = 30 * time.Second
)

func protocols(names ...string) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, len(names))
	for i, n := range names {
		out[i] = kmsg.JoinGroupRequestProtocol{Name: n, Metadata: []byte("meta-" + n)}
	}
	return out
}

func joinReq(version int16, group, memberID string, session, rebalance time.Duration, protos ...string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = version
	r.Group = group
	r.MemberID = memberID
	r.SessionTimeoutMillis = int32(session / time.Millisecond)
	r.RebalanceTimeoutMillis = int32(rebalance / time.Millisecond)
	r.ProtocolType = "consumer"
	if len(protos) == 0 {
		protos = []string{"range"}
	}
	r.Protocols = protocols(protos...)
	return r
}

// joinAsync runs JoinGroup on its own goroutine; the test receives the
// response from the returned channel, which ends the goroutine.
func joinAsync(ctx context.Context, c *Coordinator, clientID string, r *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { ch <- c.JoinGroup(ctx, clientID, "/127.0.0.1", r) }()
	return ch
}

func syncAsync(ctx context.Context, c *Coordinator, r *kmsg.SyncGroupRequest) <-chan *kmsg.SyncGroupResponse {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { ch <- c.SyncGroup(ctx, r) }()
	return ch
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// joinNew performs the KIP-394 dance (v4+: MEMBER_ID_REQUIRED, then join
// with the given id) and returns the channel of the real join's response.
func joinNew(t *testing.T, ctx context.Context, c *Coordinator, clientID, group string, session time.Duration, protos ...string) (string, <-chan *kmsg.JoinGroupResponse) {
	t.Helper()
	first := c.JoinGroup(ctx, clientID, "/127.0.0.1", joinReq(9, group, "", session, session, protos...))
	wantCode(t, "first join", first.ErrorCode, kerr.MemberIDRequired)
	return first.MemberID, joinAsync(ctx, c, clientID, joinReq(9, group, first.MemberID, session, session, protos...))
}

func syncReq(version int16, group, memberID string, gen int32, assignments map[string]string) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = version
	r.Group = group
	r.MemberID = memberID
	r.Generation = gen
	for m, a := range assignments {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(a)})
	}
	return r
}

func heartbeat(c *Coordinator, group, memberID string, gen int32) int16 {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group = group
	r.MemberID = memberID
	r.Generation = gen
	return c.Heartbeat(r).ErrorCode
}

func commitReq(version int16, group, memberID string, gen int32, topic string, offsets map[int32]int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = version
	r.Group = group
	r.MemberID = memberID
	r.Generation = gen
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	for p, o := range offsets {
		tp := kmsg.NewOffsetCommitRequestTopicPartition()
		tp.Partition = p
		tp.Offset = o
		md := "md"
		tp.Metadata = &md
		t.Partitions = append(t.Partitions, tp)
	}
	r.Topics = append(r.Topics, t)
	return r
}

// fetchOne returns the committed offset of one partition with OffsetFetch v5.
func fetchOne(t *testing.T, c *Coordinator, group, topic string, partition int32) int64 {
	t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 5
	r.Group = group
	r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{partition}}}
	resp := c.OffsetFetch(r)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch %s/%s/%d: unexpected response %+v", group, topic, partition, resp)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch %s/%s/%d: %s", group, topic, partition, codeName(p.ErrorCode))
	}
	return p.Offset
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: got %s, want %s", what, codeName(got), codeName(wantCode))
	}
}

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).Error()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}
