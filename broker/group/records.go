package group

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record schema versions written to the offsets topic, as Kafka 2.3+
// writes them.
const (
	offsetCommitKeyVersion     int16 = 1
	groupMetadataKeyVersion    int16 = 2
	offsetCommitValueVersion   int16 = 3
	groupMetadataValueVersion  int16 = 3
	maxGroupMetadataKeyVersion int16 = 2
)

func offsetKey(group string, tp topicPartition) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = offsetCommitKeyVersion
	k.Group = group
	k.Topic = tp.topic
	k.Partition = tp.partition
	return k.AppendTo(nil)
}

func offsetRecord(group string, tp topicPartition, o committedOffset) Record {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetCommitValueVersion
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.timestamp
	return Record{Key: offsetKey(group, tp), Value: v.AppendTo(nil)}
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = groupMetadataKeyVersion
	k.Group = group
	return k.AppendTo(nil)
}

func groupTombstone(group string) Record { return Record{Key: groupKey(group)} }

// metadataRecord is the group's current metadata. g.mu held.
func (g *group) metadataRecord() Record {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupMetadataValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = g.stateTime.UnixMilli()
	for _, m := range g.members {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadataFor(g.protocol)
		vm.Assignment = m.assignment
		v.Members = append(v.Members, vm)
	}
	return Record{Key: groupKey(g.id), Value: v.AppendTo(nil)}
}

// Load replays records of one offsets-topic partition, in log order. The
// broker calls it for every partition before serving requests. Records of
// types this package does not write (transaction markers, KIP-848 records)
// are skipped.
func (c *Coordinator) Load(partition int32, recs []Record) error {
	if c.isClosed() {
		return fmt.Errorf("load offsets partition %d: %w", partition, ErrClosed)
	}
	for i, r := range recs {
		if err := c.loadRecord(partition, r); err != nil {
			return fmt.Errorf("load offsets partition %d record %d: %w", partition, i, err)
		}
	}
	return nil
}

func (c *Coordinator) loadRecord(partition int32, r Record) error {
	if len(r.Key) < 2 {
		return fmt.Errorf("key of %d bytes: %w", len(r.Key), ErrCorruptRecord)
	}
	switch version := int16(binary.BigEndian.Uint16(r.Key)); {
	case version == 0 || version == 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("offset commit key: %w: %v", ErrCorruptRecord, err)
		}
		c.warnMisplaced(partition, k.Group)
		tp := topicPartition{k.Topic, k.Partition}
		if r.Value == nil {
			if g := c.lockGroup(k.Group, false); g != nil {
				delete(g.offsets, tp)
				g.plain[tp]++
				c.dropIfUnused(g)
				g.mu.Unlock()
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("offset commit value for group %q: %w: %v", k.Group, ErrCorruptRecord, err)
		}
		epoch := v.LeaderEpoch
		if v.Version < 3 {
			epoch = -1
		}
		g := c.lockGroup(k.Group, true)
		if g == nil {
			return ErrClosed
		}
		g.offsets[tp] = committedOffset{offset: v.Offset, leaderEpoch: epoch, metadata: v.Metadata, timestamp: v.CommitTimestamp}
		g.plain[tp]++
		g.mu.Unlock()
		return nil

	case version == maxGroupMetadataKeyVersion:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("group metadata key: %w: %v", ErrCorruptRecord, err)
		}
		c.warnMisplaced(partition, k.Group)
		if r.Value == nil {
			if g := c.lockGroup(k.Group, false); g != nil {
				g.clearMembers()
				g.protocolType, g.protocol, g.leader, g.generation = "", "", "", 0
				g.setState(stateEmpty)
				c.dropIfUnused(g)
				g.mu.Unlock()
			}
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("group metadata value for group %q: %w: %v", k.Group, ErrCorruptRecord, err)
		}
		g := c.lockGroup(k.Group, true)
		if g == nil {
			return ErrClosed
		}
		defer g.mu.Unlock()
		g.loadMetadata(&v)
		return nil

	default:
		return nil
	}
}

func (c *Coordinator) warnMisplaced(partition int32, group string) {
	if want := c.Partition(group); want != partition {
		c.log.Warn("offsets record in unexpected partition; was the partition count changed?",
			"group", group, "partition", partition, "expected_partition", want)
	}
}

// dropIfUnused forgets a replayed group that has neither members nor
// offsets left, as a deleted group. g.mu held.
func (c *Coordinator) dropIfUnused(g *group) {
	if len(g.members) > 0 || len(g.offsets) > 0 || len(g.pending) > 0 || len(g.txnOffsets) > 0 {
		return
	}
	g.setState(stateDead)
	c.forget(g)
}

// clearMembers drops every member without triggering a rebalance. g.mu
// held.
func (g *group) clearMembers() {
	for _, m := range g.members {
		m.sessionEpoch++
		if m.sessionTimer != nil {
			m.sessionTimer.Stop()
		}
	}
	clear(g.members)
	clear(g.static)
}

// loadMetadata replaces the group's state with a replayed metadata record.
// Loaded members get fresh session timers. g.mu held.
func (g *group) loadMetadata(v *kmsg.GroupMetadataValue) {
	g.clearMembers()
	g.protocolType = v.ProtocolType
	g.generation = max(g.generation, v.Generation)
	g.protocol, g.leader = "", ""
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	for _, vm := range v.Members {
		m := &member{
			id:               vm.MemberID,
			instanceID:       vm.InstanceID,
			clientID:         vm.ClientID,
			clientHost:       vm.ClientHost,
			sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
			protocolType:     v.ProtocolType,
			protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
			assignment:       vm.Assignment,
		}
		if m.rebalanceTimeout <= 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		g.joinCounter++
		m.joinOrder = g.joinCounter
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
		g.resetSession(m)
	}
	if len(g.members) == 0 {
		g.setState(stateEmpty)
	} else {
		g.setState(stateStable)
	}
}
