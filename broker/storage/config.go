package storage

import (
	"fmt"
	"strings"
	"time"
)

// TimestampType says which timestamp the log keeps for its records.
type TimestampType int8

const (
	// CreateTime keeps the timestamps the producer set.
	CreateTime TimestampType = 0
	// LogAppendTime overwrites the batch timestamps with the broker's clock
	// at append.
	LogAppendTime TimestampType = 1
)

func (t TimestampType) String() string {
	switch t {
	case CreateTime:
		return "CreateTime"
	case LogAppendTime:
		return "LogAppendTime"
	}
	return fmt.Sprintf("TimestampType(%d)", int8(t))
}

// FsyncMode says when appended data is fsynced.
type FsyncMode int8

const (
	// FsyncNever leaves flushing to the operating system (Kafka's default);
	// Close still flushes.
	FsyncNever FsyncMode = iota
	// FsyncInterval expects the owner to call Log.Sync every Interval (see
	// Log.SyncLoop).
	FsyncInterval
	// FsyncAlways makes Append return only after the batch is fsynced; the
	// high watermark moves only over fsynced data.
	FsyncAlways
)

// FsyncPolicy is an FsyncMode plus, for FsyncInterval, the period.
type FsyncPolicy struct {
	Mode     FsyncMode
	Interval time.Duration
}

// String renders p in the syntax ParseFsyncPolicy accepts.
func (p FsyncPolicy) String() string {
	switch p.Mode {
	case FsyncNever:
		return "never"
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval=" + p.Interval.String()
	}
	return fmt.Sprintf("FsyncMode(%d)", int8(p.Mode))
}

// ParseFsyncPolicy parses "never", "always" or "interval=<duration>" (for
// example "interval=100ms").
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	switch s = strings.TrimSpace(s); {
	case s == "never" || s == "":
		return FsyncPolicy{Mode: FsyncNever}, nil
	case s == "always":
		return FsyncPolicy{Mode: FsyncAlways}, nil
	case strings.HasPrefix(s, "interval="):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "interval="))
		if err != nil {
			return FsyncPolicy{}, fmt.Errorf("parse fsync policy %q: %w", s, err)
		}
		if d <= 0 {
			return FsyncPolicy{}, fmt.Errorf("parse fsync policy %q: interval must be positive", s)
		}
		return FsyncPolicy{Mode: FsyncInterval, Interval: d}, nil
	}
	return FsyncPolicy{}, fmt.Errorf("parse fsync policy %q: want never, always or interval=<duration>", s)
}

// Defaults of Config. A zero field of a Config given to Open or SetConfig
// takes its default.
const (
	DefaultSegmentBytes       int64         = 1 << 30
	DefaultSegmentMs          time.Duration = 7 * 24 * time.Hour
	DefaultRetentionMs        time.Duration = 7 * 24 * time.Hour
	DefaultRetentionBytes     int64         = -1
	DefaultMaxMessageBytes    int32         = 1048588
	DefaultIndexIntervalBytes int32         = 4096
	// DefaultProducerIDExpiration is how long the state of an idle producer
	// (no open transaction) is kept, like Kafka's producer.id.expiration.ms.
	DefaultProducerIDExpiration time.Duration = 24 * time.Hour
	// DefaultCleanupPolicy deletes old segments and does not compact.
	DefaultCleanupPolicy = CleanupDelete
	// DefaultDeleteRetention is how long the cleaner keeps tombstones and
	// removable transaction markers after it first saw them, like Kafka's
	// delete.retention.ms.
	DefaultDeleteRetention time.Duration = 24 * time.Hour
	// DefaultMinCleanableDirtyRatio is the share of the cleanable bytes that
	// must be dirty (not cleaned yet) before the cleaner rewrites a log.
	DefaultMinCleanableDirtyRatio = 0.5
	// DefaultCleanerMaxKeys bounds the distinct keys one cleaner run maps
	// (about 60 bytes each: a 16-byte key hash and an offset in a map).
	DefaultCleanerMaxKeys = 1 << 20
)

// CleanupPolicy says how a log gets rid of old data: a set of flags.
type CleanupPolicy uint8

const (
	// CleanupDelete deletes old segments by retention time and size.
	CleanupDelete CleanupPolicy = 1 << iota
	// CleanupCompact keeps only the latest record of each key (Clean).
	CleanupCompact
)

func (p CleanupPolicy) String() string {
	switch p {
	case CleanupDelete, 0: // zero takes the default, delete
		return "delete"
	case CleanupCompact:
		return "compact"
	case CleanupCompact | CleanupDelete:
		return "compact,delete"
	}
	return fmt.Sprintf("CleanupPolicy(%d)", uint8(p))
}

// Config is the per-partition log configuration (Kafka topic configs).
type Config struct {
	// SegmentBytes is the size at which the active segment is rolled.
	// Default DefaultSegmentBytes (1 GiB); capped at 4 GiB - 1 because index
	// positions are 32-bit.
	SegmentBytes int64
	// SegmentMs rolls the active segment this long after its first append.
	// Default DefaultSegmentMs (7 days).
	SegmentMs time.Duration
	// RetentionMs deletes a non-active segment whose largest timestamp is
	// older than this. Default DefaultRetentionMs (7 days); -1 keeps forever.
	RetentionMs time.Duration
	// RetentionBytes deletes the oldest non-active segments while the log,
	// without that segment, is still at least this big. Default
	// DefaultRetentionBytes (-1, unlimited).
	RetentionBytes int64
	// MaxMessageBytes is the largest batch Append accepts. Default
	// DefaultMaxMessageBytes (1048588).
	MaxMessageBytes int32
	// IndexIntervalBytes is the number of bytes between offset (and time)
	// index entries. Default DefaultIndexIntervalBytes (4096).
	IndexIntervalBytes int32
	// TimestampType is CreateTime (default) or LogAppendTime.
	TimestampType TimestampType
	// Fsync is the fsync policy. Default never.
	Fsync FsyncPolicy
	// ProducerIDExpiration drops the state of producers idle that long at
	// EnforceRetention. Default DefaultProducerIDExpiration (1 day); -1
	// keeps it forever.
	ProducerIDExpiration time.Duration
	// Cleanup is the cleanup policy. Default DefaultCleanupPolicy (delete);
	// without CleanupDelete, EnforceRetention deletes no segment.
	Cleanup CleanupPolicy
	// DeleteRetention is how long a compacted log keeps a tombstone (and a
	// transaction marker whose transaction has no data left) after the
	// cleaner first kept it. Default DefaultDeleteRetention (1 day).
	DeleteRetention time.Duration
	// MinCleanableDirtyRatio: Clean rewrites the log only when at least
	// this share of its cleanable bytes is dirty (or a delete horizon has
	// passed). Default DefaultMinCleanableDirtyRatio (0.5); a tiny positive
	// value means "whenever anything is dirty".
	MinCleanableDirtyRatio float64
	// MinCompactionLag keeps records younger than this out of compaction
	// (whole segments whose largest timestamp is that recent). Default 0.
	MinCompactionLag time.Duration
	// CleanerMaxKeys bounds the memory of a cleaner run, like Kafka's
	// log.cleaner.dedupe.buffer.size: the run maps the distinct keys of
	// whole segments until it has mapped this many, and cleans only those
	// segments; the next run goes on from there. Default
	// DefaultCleanerMaxKeys.
	CleanerMaxKeys int
}

// DefaultConfig returns a Config with every field at its default.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:         DefaultSegmentBytes,
		SegmentMs:            DefaultSegmentMs,
		RetentionMs:          DefaultRetentionMs,
		RetentionBytes:       DefaultRetentionBytes,
		MaxMessageBytes:      DefaultMaxMessageBytes,
		IndexIntervalBytes:   DefaultIndexIntervalBytes,
		TimestampType:        CreateTime,
		Fsync:                FsyncPolicy{Mode: FsyncNever},
		ProducerIDExpiration: DefaultProducerIDExpiration,

		Cleanup:                DefaultCleanupPolicy,
		DeleteRetention:        DefaultDeleteRetention,
		MinCleanableDirtyRatio: DefaultMinCleanableDirtyRatio,
		CleanerMaxKeys:         DefaultCleanerMaxKeys,
	}
}

const maxSegmentBytes = 1<<32 - 1

// withDefaults fills zero fields with defaults and clamps SegmentBytes.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	if c.SegmentBytes > maxSegmentBytes {
		c.SegmentBytes = maxSegmentBytes
	}
	if c.SegmentMs <= 0 {
		c.SegmentMs = d.SegmentMs
	}
	if c.RetentionMs == 0 {
		c.RetentionMs = d.RetentionMs
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = d.RetentionBytes
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = d.IndexIntervalBytes
	}
	if c.ProducerIDExpiration == 0 {
		c.ProducerIDExpiration = d.ProducerIDExpiration
	}
	if c.Cleanup == 0 {
		c.Cleanup = d.Cleanup
	}
	if c.DeleteRetention <= 0 {
		c.DeleteRetention = d.DeleteRetention
	}
	if c.MinCleanableDirtyRatio <= 0 || c.MinCleanableDirtyRatio > 1 {
		c.MinCleanableDirtyRatio = d.MinCleanableDirtyRatio
	}
	if c.MinCompactionLag < 0 {
		c.MinCompactionLag = 0
	}
	if c.CleanerMaxKeys <= 0 {
		c.CleanerMaxKeys = d.CleanerMaxKeys
	}
	return c
}
