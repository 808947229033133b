package group

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

// String returns the state name Kafka uses in DescribeGroups and ListGroups.
func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

type topicPartition struct {
	topic     string
	partition int32
}

type committedOffset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	timestamp   int64 // commit time, unix ms
	// plainBefore, of a pending transactional offset, is how many plain
	// commits the partition had when it was staged: if another came
	// since, that later commit wins and the transaction's is dropped.
	plainBefore uint64
}

// joinResult is what a blocked JoinGroup receives.
type joinResult struct {
	errCode    errCode
	generation int32
	protocol   string
	leader     string
	memberID   string
	members    []kmsg.JoinGroupResponseMember // leader only
}

// syncResult is what a blocked SyncGroup receives.
type syncResult struct {
	errCode    errCode
	assignment []byte
}

type member struct {
	id         string
	instanceID *string
	clientID   string
	clientHost string

	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte

	// joinOrder is when the member last joined, to pick a leader.
	joinOrder uint64
	// joinCh is non-nil while the member awaits the end of the join phase.
	joinCh chan joinResult
	// syncCh is non-nil while the member awaits the leader's assignment.
	syncCh chan syncResult

	sessionTimer *time.Timer
	// sessionEpoch invalidates session timer callbacks that raced a reset.
	sessionEpoch uint64
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func (m *member) supports(protocol string) bool {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return true
		}
	}
	return false
}

func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Metadata) != string(b[i].Metadata) {
			return false
		}
	}
	return true
}

// pendingMember is a member id handed out with MEMBER_ID_REQUIRED that has
// not joined yet.
type pendingMember struct {
	timer *time.Timer
}

// group is one consumer group.
//
// Lock order: writeMu before mu; c.mu may be taken while mu is held, never
// the other way round.
type group struct {
	c  *Coordinator
	id string

	// writeMu serialises this group's journal appends so that the log order
	// matches the order in which state is applied in memory.
	writeMu sync.Mutex

	mu           sync.Mutex
	state        groupState
	isDead       atomic.Bool // mirrors state == stateDead for lock-free lookup
	stateTime    time.Time
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string // instance id -> member id
	pending      map[string]*pendingMember
	offsets      map[topicPartition]committedOffset
	// plain counts the plain (non-transactional) commits and deletions of
	// each partition's offset, in log order (see committedOffset.plainBefore).
	plain map[topicPartition]uint64
	// txnOffsets are transactional offsets not yet committed or aborted,
	// by producer ID (TxnOffsetCommit; made visible or dropped by
	// CompleteTxn).
	txnOffsets  map[int64]map[topicPartition]committedOffset
	joinCounter uint64

	rebalanceTimer *time.Timer
	// rebalanceEpoch invalidates rebalance timer callbacks that raced a
	// completion or a reschedule.
	rebalanceEpoch uint64
	// initialDelay is set while the first rebalance of an empty group is
	// waiting for more members; joins then never complete the phase early.
	initialDelay    bool
	newMemberJoined bool          // during initialDelay
	delayRemaining  time.Duration // during initialDelay
}

func newGroup(c *Coordinator, id string) *group {
	return &group{
		c:          c,
		id:         id,
		state:      stateEmpty,
		stateTime:  c.cfg.Now(),
		members:    make(map[string]*member),
		static:     make(map[string]string),
		pending:    make(map[string]*pendingMember),
		offsets:    make(map[topicPartition]committedOffset),
		plain:      make(map[topicPartition]uint64),
		txnOffsets: make(map[int64]map[topicPartition]committedOffset),
	}
}

func (g *group) dead() bool { return g.isDead.Load() }

// setState moves the group to s. g.mu held.
func (g *group) setState(s groupState) {
	if g.state != s {
		g.c.log.Debug("group state change", "group", g.id, "from", g.state.String(), "to", s.String(), "generation", g.generation)
	}
	g.state = s
	g.stateTime = g.c.cfg.Now()
	if s == stateDead {
		g.isDead.Store(true)
	}
}

// stopTimers stops every timer of the group and fails blocked waiters with
// COORDINATOR_NOT_AVAILABLE. g.mu held.
func (g *group) stopTimers() {
	g.rebalanceEpoch++
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
		g.rebalanceTimer = nil
	}
	for _, m := range g.members {
		m.sessionEpoch++
		if m.sessionTimer != nil {
			m.sessionTimer.Stop()
			m.sessionTimer = nil
		}
		g.replyJoin(m, joinResult{errCode: errCoordinatorNotAvail, generation: -1, memberID: m.id})
		g.replySync(m, syncResult{errCode: errCoordinatorNotAvail})
	}
	for id, p := range g.pending {
		p.timer.Stop()
		delete(g.pending, id)
	}
}

// replyJoin completes m's blocked JoinGroup, if any. g.mu held.
func (g *group) replyJoin(m *member, r joinResult) {
	if m.joinCh == nil {
		return
	}
	m.joinCh <- r // buffered, one reply per channel
	m.joinCh = nil
}

// replySync completes m's blocked SyncGroup, if any. g.mu held.
func (g *group) replySync(m *member, r syncResult) {
	if m.syncCh == nil {
		return
	}
	m.syncCh <- r // buffered, one reply per channel
	m.syncCh = nil
}

// resetSession (re)starts m's session timer. g.mu held.
func (g *group) resetSession(m *member) {
	m.sessionEpoch++
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	if g.c.isClosed() {
		m.sessionTimer = nil
		return
	}
	epoch := m.sessionEpoch
	m.sessionTimer = time.AfterFunc(m.sessionTimeout, func() { g.sessionExpired(m, epoch) })
}

func (g *group) sessionExpired(m *member, epoch uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == stateDead || m.sessionEpoch != epoch || g.members[m.id] != m {
		return
	}
	if m.joinCh != nil || m.syncCh != nil {
		// A member blocked in JoinGroup or SyncGroup is alive by
		// definition; check again later.
		g.resetSession(m)
		return
	}
	g.c.log.Info("group member session expired", "group", g.id, "member", m.id, "generation", g.generation)
	g.removeMember(m)
}

// addPending remembers a member id handed out with MEMBER_ID_REQUIRED; it
// is forgotten if the member does not join within sessionTimeout. g.mu held.
func (g *group) addPending(id string, sessionTimeout time.Duration) {
	p := &pendingMember{}
	p.timer = time.AfterFunc(sessionTimeout, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.pending[id] != p {
			return
		}
		delete(g.pending, id)
		if g.state == statePreparingRebalance {
			g.tryCompleteJoin()
		}
		g.dropIfNeverUsed()
	})
	g.pending[id] = p
}

// dropIfNeverUsed forgets a group that was created for a join that never
// got anywhere: no generation, members, pending members or offsets. g.mu
// held.
func (g *group) dropIfNeverUsed() {
	if g.generation == 0 && g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == 0 && len(g.txnOffsets) == 0 {
		g.setState(stateDead)
		g.c.forget(g)
	}
}

// removeMember takes m out of the group, fails its blocked calls and moves
// the rebalance along. g.mu held.
func (g *group) removeMember(m *member) {
	m.sessionEpoch++
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
		m.sessionTimer = nil
	}
	g.replyJoin(m, joinResult{errCode: errUnknownMember, generation: -1, memberID: m.id})
	g.replySync(m, syncResult{errCode: errUnknownMember})
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
	}
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance()
	case statePreparingRebalance:
		g.tryCompleteJoin()
	}
}

// rebalanceTimeout is the longest rebalance timeout of all members. g.mu
// held.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// prepareRebalance starts a join phase: members must (re)join within the
// rebalance timeout. g.mu held.
func (g *group) prepareRebalance() {
	if g.state == stateCompletingRebalance {
		// Assignments of the interrupted generation are void.
		for _, m := range g.members {
			m.assignment = nil
			g.replySync(m, syncResult{errCode: errRebalanceInProgress})
		}
	}
	wasEmpty := g.state == stateEmpty
	g.setState(statePreparingRebalance)
	timeout := g.rebalanceTimeout()
	if wasEmpty && g.c.cfg.InitialRebalanceDelay > 0 {
		g.initialDelay = true
		g.newMemberJoined = false
		delay := min(g.c.cfg.InitialRebalanceDelay, timeout)
		g.delayRemaining = timeout - delay
		g.scheduleRebalanceTimer(delay)
		return
	}
	g.initialDelay = false
	g.scheduleRebalanceTimer(timeout)
	g.tryCompleteJoin()
}

func (g *group) scheduleRebalanceTimer(d time.Duration) {
	g.rebalanceEpoch++
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
		g.rebalanceTimer = nil
	}
	if g.c.isClosed() {
		return
	}
	epoch := g.rebalanceEpoch
	g.rebalanceTimer = time.AfterFunc(d, func() { g.rebalanceTimerFired(epoch) })
}

func (g *group) rebalanceTimerFired(epoch uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rebalanceEpoch != epoch || g.state != statePreparingRebalance {
		return
	}
	if g.initialDelay && g.newMemberJoined && g.delayRemaining > 0 {
		delay := min(g.c.cfg.InitialRebalanceDelay, g.delayRemaining)
		g.delayRemaining -= delay
		g.newMemberJoined = false
		g.scheduleRebalanceTimer(delay)
		return
	}
	g.initialDelay = false
	g.completeJoin()
}

// tryCompleteJoin ends the join phase if every member and every pending
// member has joined. g.mu held.
func (g *group) tryCompleteJoin() {
	if g.state != statePreparingRebalance || g.initialDelay {
		return
	}
	if len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			return
		}
	}
	g.completeJoin()
}

// completeJoin ends the join phase: members that did not rejoin are
// removed, the generation advances, a protocol and a leader are chosen and
// every blocked JoinGroup gets its answer. g.mu held.
func (g *group) completeJoin() {
	g.rebalanceEpoch++
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
		g.rebalanceTimer = nil
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			g.c.log.Info("group member did not rejoin in time", "group", g.id, "member", m.id)
			m.sessionEpoch++
			if m.sessionTimer != nil {
				m.sessionTimer.Stop()
				m.sessionTimer = nil
			}
			g.replySync(m, syncResult{errCode: errUnknownMember})
			delete(g.members, m.id)
			if m.instanceID != nil && g.static[*m.instanceID] == m.id {
				delete(g.static, *m.instanceID)
			}
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.leader = ""
		g.setState(stateEmpty)
		g.persistEmptyAsync()
		return
	}

	if _, ok := g.members[g.leader]; !ok {
		g.leader = ""
		var first uint64
		for id, m := range g.members {
			if g.leader == "" || m.joinOrder < first {
				g.leader, first = id, m.joinOrder
			}
		}
	}
	g.protocol = g.selectProtocol()
	g.setState(stateCompletingRebalance)
	g.c.log.Info("group rebalanced", "group", g.id, "generation", g.generation, "protocol", g.protocol, "leader", g.leader, "members", len(g.members))

	for _, m := range g.members {
		r := joinResult{
			generation: g.generation,
			protocol:   g.protocol,
			leader:     g.leader,
			memberID:   m.id,
		}
		if m.id == g.leader {
			r.members = g.memberList()
		}
		g.replyJoin(m, r)
		g.resetSession(m)
	}
}

// memberList is the leader's view of the group. g.mu held.
func (g *group) memberList() []kmsg.JoinGroupResponseMember {
	list := make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
	for _, m := range g.members {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadataFor(g.protocol)
		list = append(list, jm)
	}
	return list
}

// selectProtocol returns the first protocol in the leader's order that every
// member supports. g.mu held, at least one member, leader set.
func (g *group) selectProtocol() string {
	leader := g.members[g.leader]
	for _, p := range leader.protocols {
		all := true
		for _, m := range g.members {
			if !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			return p.Name
		}
	}
	return "" // unreachable: joins with no common protocol are rejected
}

// compatible reports whether a member with protocols could join: it names a
// protocol type and protocols, and unless it would be alone in the group
// (not counting the member it replaces, whose id is replacing), its
// protocol type matches the group's and it shares at least one protocol
// with every other member. g.mu held.
func (g *group) compatible(protocolType string, protocols []kmsg.JoinGroupRequestProtocol, replacing string) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	others := 0
	for id := range g.members {
		if id != replacing {
			others++
		}
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for id, m := range g.members {
			if id != replacing && !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// persistEmptyAsync writes the group's state after it became empty: its
// metadata without members if it still has offsets, else a tombstone, after
// which the group is forgotten. g.mu held.
func (g *group) persistEmptyAsync() {
	gen := g.generation
	g.c.goBackground(func(ctx context.Context) {
		g.writeMu.Lock()
		defer g.writeMu.Unlock()
		g.mu.Lock()
		if g.state != stateEmpty || g.generation != gen {
			g.mu.Unlock()
			return
		}
		remove := len(g.offsets) == 0 && len(g.pending) == 0 && len(g.txnOffsets) == 0
		var rec Record
		if len(g.offsets) == 0 {
			rec = groupTombstone(g.id)
		} else {
			rec = g.metadataRecord()
		}
		g.mu.Unlock()

		if err := g.c.append(ctx, g.id, []Record{rec}); err != nil {
			g.c.log.Warn("persist empty group", "group", g.id, "generation", gen, "err", err)
			return
		}
		if !remove {
			return
		}
		g.mu.Lock()
		stillEmpty := g.state == stateEmpty && g.generation == gen && len(g.offsets) == 0 && len(g.pending) == 0 && len(g.txnOffsets) == 0 && len(g.members) == 0
		if stillEmpty {
			g.setState(stateDead)
		}
		g.mu.Unlock()
		if stillEmpty {
			g.c.forget(g)
		}
	})
}
