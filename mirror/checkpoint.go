package mirror

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// CheckpointVersion is the "v" of the checkpoint values EncodeCheckpoint
// writes and the only one DecodeCheckpoint accepts.
const CheckpointVersion = 1

// ErrCheckpointVersion is returned (wrapped) by DecodeCheckpoint for a
// value of a version other than CheckpointVersion.
var ErrCheckpointVersion = errors.New("unknown checkpoint version")

// checkpointValue is the JSON of a checkpoint, version 1 (see the package
// doc). Field order and names are the format: do not change them.
type checkpointValue struct {
	V         int                `json:"v"`
	Flow      string             `json:"flow"`
	Time      time.Time          `json:"time"`
	Positions []checkpointOffset `json:"positions"`
}

type checkpointOffset struct {
	Cluster   string `json:"cluster"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// EncodeCheckpoint returns cp as a checkpoint value of version
// CheckpointVersion: its time in UTC and its positions sorted by cluster,
// topic and partition, so equal checkpoints encode to equal bytes.
func EncodeCheckpoint(cp *Checkpoint) ([]byte, error) {
	v := checkpointValue{V: CheckpointVersion, Flow: cp.Flow, Time: cp.Time.UTC(),
		Positions: make([]checkpointOffset, 0, len(cp.Positions))}
	for sp, off := range cp.Positions {
		v.Positions = append(v.Positions, checkpointOffset{sp.Cluster, sp.Topic, sp.Partition, off})
	}
	sort.Slice(v.Positions, func(i, j int) bool {
		a, b := v.Positions[i], v.Positions[j]
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal checkpoint: %w", err)
	}
	return b, nil
}

// DecodeCheckpoint parses a value written by EncodeCheckpoint. It refuses
// a value of any other version with ErrCheckpointVersion.
func DecodeCheckpoint(b []byte) (*Checkpoint, error) {
	var v checkpointValue
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode checkpoint: %w", err)
	}
	if v.V != CheckpointVersion {
		return nil, fmt.Errorf("decode checkpoint: version %d, want %d: %w", v.V, CheckpointVersion, ErrCheckpointVersion)
	}
	cp := &Checkpoint{Flow: v.Flow, Time: v.Time, Positions: make(map[SourcePartition]int64, len(v.Positions))}
	for _, p := range v.Positions {
		cp.Positions[SourcePartition{Cluster: p.Cluster, Topic: p.Topic, Partition: p.Partition}] = p.Offset
	}
	return cp, nil
}
