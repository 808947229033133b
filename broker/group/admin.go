package group

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// authorizedOperationsOmitted is Kafka's "not asked for" value of
	// AuthorizedOperations (Integer.MIN_VALUE).
	authorizedOperationsOmitted int32 = -2147483648
	// groupAuthorizedOperations is READ(3), DELETE(6) and DESCRIBE(8): all
	// group operations, since the broker has no ACLs.
	groupAuthorizedOperations int32 = 1<<3 | 1<<6 | 1<<8
	// groupTypeClassic is the only group type this coordinator serves.
	groupTypeClassic = "classic"
)

// ListGroups handles ListGroups v0–v5, with the states filter (v4+) and the
// types filter (v5+), both matched case-insensitively as Kafka does.
func (c *Coordinator) ListGroups(r *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.Version = r.Version
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		resp.ErrorCode = errCoordinatorNotAvail
		return resp
	}
	groups := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		groups = append(groups, g)
	}
	c.mu.Unlock()

	matches := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	for _, g := range groups {
		g.mu.Lock()
		state, protocolType := g.state, g.protocolType
		g.mu.Unlock()
		if state == stateDead {
			continue
		}
		if r.Version >= 4 && !matches(r.StatesFilter, state.String()) {
			continue
		}
		if r.Version >= 5 && !matches(r.TypesFilter, groupTypeClassic) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = g.id
		lg.ProtocolType = protocolType
		lg.GroupState = state.String()
		lg.GroupType = groupTypeClassic
		resp.Groups = append(resp.Groups, lg)
	}
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	return resp
}

// DescribeGroups handles DescribeGroups v0–v6. An unknown group is
// described as Dead with no error before v6, as Kafka's classic coordinator
// does, and with GROUP_ID_NOT_FOUND from v6. Member metadata and
// assignments are shown only for Stable groups.
func (c *Coordinator) DescribeGroups(r *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Version = r.Version
	closed := c.isClosed()
	for _, id := range r.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		dg.AuthorizedOperations = authorizedOperationsOmitted
		if r.IncludeAuthorizedOperations && r.Version >= 3 {
			dg.AuthorizedOperations = groupAuthorizedOperations
		}
		g := (*group)(nil)
		if !closed {
			g = c.lockGroup(id, false)
		}
		switch {
		case closed:
			dg.ErrorCode = errCoordinatorNotAvail
		case g == nil:
			dg.State = stateDead.String()
			if r.Version >= 6 {
				dg.ErrorCode = kerr.GroupIDNotFound.Code
				msg := "group " + id + " not found"
				dg.ErrorMessage = &msg
			}
		default:
			dg.State = g.state.String()
			dg.ProtocolType = g.protocolType
			stable := g.state == stateStable
			if stable {
				dg.Protocol = g.protocol
			}
			for _, m := range g.members {
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID = m.id
				dm.InstanceID = m.instanceID
				dm.ClientID = m.clientID
				dm.ClientHost = m.clientHost
				if stable {
					dm.ProtocolMetadata = m.metadataFor(g.protocol)
					dm.MemberAssignment = m.assignment
				}
				dg.Members = append(dg.Members, dm)
			}
			slices.SortFunc(dg.Members, func(a, b kmsg.DescribeGroupsResponseGroupMember) int {
				return strings.Compare(a.MemberID, b.MemberID)
			})
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// DeleteGroups handles DeleteGroups v0–v3. Only groups without members can
// be deleted (NON_EMPTY_GROUP otherwise, GROUP_ID_NOT_FOUND for unknown
// groups); the group's offsets and metadata are tombstoned in the journal
// before the group disappears.
func (c *Coordinator) DeleteGroups(ctx context.Context, r *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Version = r.Version
	for _, id := range r.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		dg.ErrorCode = c.deleteGroup(ctx, id)
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(ctx context.Context, id string) errCode {
	g := c.lockGroupForWrite(id, false)
	if g == nil {
		if c.isClosed() {
			return errCoordinatorNotAvail
		}
		return kerr.GroupIDNotFound.Code
	}
	defer g.writeMu.Unlock()
	if g.state != stateEmpty || len(g.members) > 0 {
		g.mu.Unlock()
		return kerr.NonEmptyGroup.Code
	}
	recs := make([]Record, 0, len(g.offsets)+1)
	for tp := range g.offsets {
		recs = append(recs, Record{Key: offsetKey(g.id, tp)})
	}
	recs = append(recs, groupTombstone(g.id))
	g.mu.Unlock()

	if err := c.append(ctx, g.id, recs); err != nil {
		c.log.Warn("delete group", "group", id, "err", err)
		return journalErrCode(err)
	}

	g.mu.Lock()
	// g.writeMu held throughout: no commit slipped in. A member that
	// joined meanwhile is failed and starts over in a new group.
	g.stopTimers()
	g.clearMembers()
	clear(g.offsets)
	g.setState(stateDead)
	g.mu.Unlock()
	c.forget(g)
	c.log.Info("group deleted", "group", id)
	return errNone
}
