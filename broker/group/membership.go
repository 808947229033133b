package group

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup handles JoinGroup v0–v9. It blocks until the group's join phase
// completes, ctx is done (the response then carries REBALANCE_IN_PROGRESS
// and the member stays in the group until it rejoins or its session
// expires), or the Coordinator is closed (COORDINATOR_NOT_AVAILABLE).
func (c *Coordinator) JoinGroup(ctx context.Context, clientID, clientHost string, r *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Version = r.Version
	fail := func(code errCode, memberID string) *kmsg.JoinGroupResponse {
		resp.ErrorCode = code
		resp.Generation = -1
		resp.MemberID = memberID
		return resp
	}

	rebalanceTimeout := time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	sessionTimeout := time.Duration(r.SessionTimeoutMillis) * time.Millisecond
	if r.Version == 0 || r.RebalanceTimeoutMillis < 0 {
		rebalanceTimeout = sessionTimeout
	}
	instanceID := r.InstanceID
	if r.Version < 5 || (instanceID != nil && *instanceID == "") {
		instanceID = nil
	}

	switch {
	case r.Group == "":
		return fail(errInvalidGroupID, r.MemberID)
	case sessionTimeout < c.cfg.MinSessionTimeout || sessionTimeout > c.cfg.MaxSessionTimeout:
		return fail(kerr.InvalidSessionTimeout.Code, r.MemberID)
	}

	g := c.lockGroup(r.Group, r.MemberID == "")
	if g == nil {
		if c.isClosed() {
			return fail(errCoordinatorNotAvail, r.MemberID)
		}
		return fail(errUnknownMember, r.MemberID)
	}

	ch, code, memberID, immediate := g.join(r, clientID, clientHost, instanceID, sessionTimeout, rebalanceTimeout)
	if code != errNone {
		g.dropIfNeverUsed()
	}
	g.mu.Unlock()
	if code != errNone {
		return fail(code, memberID)
	}
	var res joinResult
	if immediate != nil {
		res = *immediate
	} else {
		select {
		case res = <-ch:
		case <-ctx.Done():
			select {
			case res = <-ch: // the answer came in just as ctx ended
			default:
				g.abandonJoin(memberID, ch)
				return fail(errRebalanceInProgress, memberID)
			}
		case <-c.done:
			return fail(errCoordinatorNotAvail, memberID)
		}
	}
	if res.errCode != errNone {
		return fail(res.errCode, res.memberID)
	}
	resp.Generation = res.generation
	pt, proto := r.ProtocolType, res.protocol
	resp.ProtocolType = &pt
	resp.Protocol = &proto
	resp.LeaderID = res.leader
	resp.MemberID = res.memberID
	resp.Members = res.members
	return resp
}

// join admits the member to the group. It returns either an error code, an
// immediate result, or a channel on which the join result arrives. g.mu
// held.
func (g *group) join(r *kmsg.JoinGroupRequest, clientID, clientHost string, instanceID *string,
	sessionTimeout, rebalanceTimeout time.Duration,
) (ch chan joinResult, code errCode, memberID string, immediate *joinResult) {
	memberID = r.MemberID

	// A member id we know (or one being replaced by its static instance)
	// does not count as "other members" for the protocol check.
	replacing := memberID
	if memberID == "" && instanceID != nil {
		replacing = g.static[*instanceID]
	}
	if !g.compatible(r.ProtocolType, r.Protocols, replacing) {
		return nil, errInconsistentProtocol, memberID, nil
	}

	var m *member
	switch {
	case memberID == "" && instanceID != nil:
		memberID = clientID + "-" + uuid.NewString()
		if old, ok := g.members[g.static[*instanceID]]; ok {
			// The same instance restarted: it takes over the old slot
			// and the old member id is fenced.
			g.replyJoin(old, joinResult{errCode: errFencedInstance, generation: -1, memberID: old.id})
			g.replySync(old, syncResult{errCode: errFencedInstance})
			old.sessionEpoch++
			if old.sessionTimer != nil {
				old.sessionTimer.Stop()
			}
			delete(g.members, old.id)
			if g.leader == old.id {
				g.leader = memberID
			}
		}
		m = g.addMember(memberID, instanceID)

	case memberID == "":
		memberID = clientID + "-" + uuid.NewString()
		if r.Version >= 4 {
			g.addPending(memberID, sessionTimeout)
			return nil, kerr.MemberIDRequired.Code, memberID, nil
		}
		m = g.addMember(memberID, nil)

	default:
		if p, ok := g.pending[memberID]; ok {
			p.timer.Stop()
			delete(g.pending, memberID)
			m = g.addMember(memberID, instanceID)
			break
		}
		if instanceID != nil {
			if known, ok := g.static[*instanceID]; ok && known != memberID {
				return nil, errFencedInstance, memberID, nil
			}
		}
		m = g.members[memberID]
		if m == nil {
			return nil, errUnknownMember, memberID, nil
		}
	}

	changed := !sameProtocols(m.protocols, r.Protocols) || m.protocolType != r.ProtocolType
	isNew := m.protocols == nil
	m.clientID, m.clientHost = clientID, clientHost
	m.sessionTimeout, m.rebalanceTimeout = sessionTimeout, rebalanceTimeout
	m.protocolType, m.protocols = r.ProtocolType, r.Protocols
	if len(g.members) == 1 {
		g.protocolType = r.ProtocolType
	}
	g.resetSession(m)

	// An unchanged follower rejoining a group that is already past its join
	// phase gets the current generation back without a new rebalance.
	if !isNew && !changed && m.id != g.leader &&
		(g.state == stateStable || g.state == stateCompletingRebalance) {
		return nil, errNone, memberID, &joinResult{
			generation: g.generation,
			protocol:   g.protocol,
			leader:     g.leader,
			memberID:   m.id,
		}
	}
	if !isNew && !changed && m.id == g.leader && g.state == stateCompletingRebalance {
		return nil, errNone, memberID, &joinResult{
			generation: g.generation,
			protocol:   g.protocol,
			leader:     g.leader,
			memberID:   m.id,
			members:    g.memberList(),
		}
	}

	// Replace an earlier blocked join of the same member.
	g.replyJoin(m, joinResult{errCode: errUnknownMember, generation: -1, memberID: m.id})
	ch = make(chan joinResult, 1)
	m.joinCh = ch
	g.joinCounter++
	m.joinOrder = g.joinCounter

	if g.state == statePreparingRebalance {
		if g.initialDelay && isNew {
			g.newMemberJoined = true
		}
		g.tryCompleteJoin()
	} else {
		g.prepareRebalance()
	}
	return ch, errNone, memberID, nil
}

// addMember adds a new member that has not joined yet. g.mu held.
func (g *group) addMember(id string, instanceID *string) *member {
	m := &member{id: id, instanceID: instanceID}
	g.members[id] = m
	if instanceID != nil {
		g.static[*instanceID] = id
	}
	if g.leader == "" && g.state == stateEmpty {
		g.leader = id
	}
	return m
}

// abandonJoin withdraws a blocked join whose caller went away. The member
// stays in the group; its session timer decides whether it is still alive.
func (g *group) abandonJoin(memberID string, ch chan joinResult) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if m, ok := g.members[memberID]; ok && m.joinCh == ch {
		m.joinCh = nil
		g.resetSession(m)
	}
}

// abandonSync withdraws a blocked sync whose caller went away.
func (g *group) abandonSync(memberID string, ch chan syncResult) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if m, ok := g.members[memberID]; ok && m.syncCh == ch {
		m.syncCh = nil
		g.resetSession(m)
	}
}

// checkMember runs Kafka's common member checks for SyncGroup, Heartbeat
// and OffsetCommit. g.mu held.
func (g *group) checkMember(memberID string, instanceID *string, generation int32) (*member, errCode) {
	if instanceID != nil && *instanceID != "" {
		if known, ok := g.static[*instanceID]; ok && known != memberID {
			return nil, errFencedInstance
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, errUnknownMember
	}
	if generation != g.generation {
		return m, errIllegalGeneration
	}
	return m, errNone
}

// SyncGroup handles SyncGroup v0–v5. The leader's request carries the
// assignments, which are persisted before anyone gets theirs; other members
// block until then, until ctx is done (REBALANCE_IN_PROGRESS) or until the
// Coordinator is closed (COORDINATOR_NOT_AVAILABLE).
func (c *Coordinator) SyncGroup(ctx context.Context, r *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.Version = r.Version
	fail := func(code errCode) *kmsg.SyncGroupResponse {
		resp.ErrorCode = code
		return resp
	}
	if r.Group == "" {
		return fail(errInvalidGroupID)
	}
	instanceID := r.InstanceID
	if r.Version < 3 {
		instanceID = nil
	}

	g := c.lockGroup(r.Group, false)
	if g == nil {
		if c.isClosed() {
			return fail(errCoordinatorNotAvail)
		}
		return fail(errUnknownMember)
	}
	m, code := g.checkMember(r.MemberID, instanceID, r.Generation)
	if code == errNone && r.Version >= 5 &&
		((r.ProtocolType != nil && *r.ProtocolType != g.protocolType) || (r.Protocol != nil && *r.Protocol != g.protocol)) {
		code = errInconsistentProtocol
	}
	if code == errNone {
		switch g.state {
		case stateEmpty:
			code = errUnknownMember
		case statePreparingRebalance:
			code = errRebalanceInProgress
		}
	}
	if code != errNone {
		g.mu.Unlock()
		return fail(code)
	}
	g.resetSession(m)
	fill := func(assignment []byte) *kmsg.SyncGroupResponse {
		if r.Version >= 5 {
			pt, p := g.protocolType, g.protocol
			resp.ProtocolType, resp.Protocol = &pt, &p
		}
		resp.MemberAssignment = assignment
		return resp
	}
	if g.state == stateStable {
		defer g.mu.Unlock()
		return fill(m.assignment)
	}

	// CompletingRebalance.
	g.replySync(m, syncResult{errCode: errRebalanceInProgress}) // an earlier blocked sync
	ch := make(chan syncResult, 1)
	m.syncCh = ch
	isLeader := m.id == g.leader
	gen := g.generation
	g.mu.Unlock()

	if isLeader {
		if code := c.completeSync(ctx, g, gen, r.GroupAssignment); code != errNone {
			return fail(code)
		}
	}
	var res syncResult
	select {
	case res = <-ch:
	case <-ctx.Done():
		select {
		case res = <-ch: // the answer came in just as ctx ended
		default:
			g.abandonSync(r.MemberID, ch)
			return fail(errRebalanceInProgress)
		}
	case <-c.done:
		return fail(errCoordinatorNotAvail)
	}
	if res.errCode != errNone {
		return fail(res.errCode)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return fill(res.assignment)
}

// completeSync persists the leader's assignments for generation gen and
// moves the group to Stable, answering every blocked SyncGroup. On a
// journal failure the group rebalances again and the leader gets the
// journal's error code.
func (c *Coordinator) completeSync(ctx context.Context, g *group, gen int32, assignments []kmsg.SyncGroupRequestGroupAssignment) errCode {
	g.writeMu.Lock()
	defer g.writeMu.Unlock()
	g.mu.Lock()
	if g.state != stateCompletingRebalance || g.generation != gen {
		g.mu.Unlock()
		return errNone // the leader's blocked sync has been answered already
	}
	byMember := make(map[string][]byte, len(assignments))
	for _, a := range assignments {
		byMember[a.MemberID] = a.MemberAssignment
	}
	for id, m := range g.members {
		m.assignment = byMember[id]
	}
	rec := g.metadataRecord()
	g.mu.Unlock()

	err := c.append(ctx, g.id, []Record{rec})

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateCompletingRebalance || g.generation != gen {
		return errNone
	}
	if err != nil {
		c.log.Warn("persist group assignment", "group", g.id, "generation", gen, "err", err)
		code := journalErrCode(err)
		for _, m := range g.members {
			m.assignment = nil
			g.replySync(m, syncResult{errCode: code})
		}
		g.prepareRebalance()
		return code
	}
	g.setState(stateStable)
	for _, m := range g.members {
		g.replySync(m, syncResult{assignment: m.assignment})
	}
	return errNone
}

// Heartbeat handles Heartbeat v0–v4.
func (c *Coordinator) Heartbeat(r *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.Version = r.Version
	if r.Group == "" {
		resp.ErrorCode = errInvalidGroupID
		return resp
	}
	instanceID := r.InstanceID
	if r.Version < 3 {
		instanceID = nil
	}
	g := c.lockGroup(r.Group, false)
	if g == nil {
		resp.ErrorCode = errUnknownMember
		if c.isClosed() {
			resp.ErrorCode = errCoordinatorNotAvail
		}
		return resp
	}
	defer g.mu.Unlock()
	m, code := g.checkMember(r.MemberID, instanceID, r.Generation)
	if code == errNone {
		switch g.state {
		case stateEmpty:
			code = errUnknownMember
		case statePreparingRebalance:
			code = errRebalanceInProgress
		}
	}
	if code == errNone || code == errRebalanceInProgress {
		g.resetSession(m)
	}
	resp.ErrorCode = code
	return resp
}

// LeaveGroup handles LeaveGroup v0–v5. From v3 members leave in a batch,
// each with its own error code; before v3 the one member's error is the
// response's.
func (c *Coordinator) LeaveGroup(ctx context.Context, r *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	_ = ctx // leaving does not wait: the departure is persisted with the next generation
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	resp.Version = r.Version
	leaving := r.Members
	if r.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: r.MemberID}}
	}
	if r.Group == "" {
		resp.ErrorCode = errInvalidGroupID
		return resp
	}
	g := c.lockGroup(r.Group, false)
	if g == nil && c.isClosed() {
		resp.ErrorCode = errCoordinatorNotAvail
		return resp
	}
	codes := make([]errCode, len(leaving))
	if g == nil {
		for i := range codes {
			codes[i] = errUnknownMember
		}
	} else {
		for i, lm := range leaving {
			codes[i] = g.leave(lm.MemberID, lm.InstanceID)
		}
		g.mu.Unlock()
	}
	if r.Version < 3 {
		resp.ErrorCode = codes[0]
		return resp
	}
	for i, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = lm.MemberID
		rm.InstanceID = lm.InstanceID
		rm.ErrorCode = codes[i]
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

// leave removes one member. g.mu held.
func (g *group) leave(memberID string, instanceID *string) errCode {
	if instanceID != nil && *instanceID != "" {
		known, ok := g.static[*instanceID]
		if !ok {
			return errUnknownMember
		}
		if memberID != "" && memberID != known {
			return errFencedInstance
		}
		memberID = known
	}
	if p, ok := g.pending[memberID]; ok {
		p.timer.Stop()
		delete(g.pending, memberID)
		g.tryCompleteJoin()
		return errNone
	}
	m := g.members[memberID]
	if m == nil {
		return errUnknownMember
	}
	g.c.log.Info("group member left", "group", g.id, "member", memberID)
	g.removeMember(m)
	return errNone
}
