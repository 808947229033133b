package broker

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/multierr"

	"github.com/tributary/tributary/broker/storage"
)

// Topic configs served by DescribeConfigs and changed by CreateTopics,
// AlterConfigs and IncrementalAlterConfigs. Any other key is rejected with
// INVALID_CONFIG naming it.
const (
	cfgCleanupPolicy   = "cleanup.policy"
	cfgRetentionMs     = "retention.ms"
	cfgRetentionBytes  = "retention.bytes"
	cfgSegmentBytes    = "segment.bytes"
	cfgSegmentMs       = "segment.ms"
	cfgMaxMessageBytes = "max.message.bytes"
	cfgTimestampType   = "message.timestamp.type"

	// Log compaction (cleanup.policy containing compact).
	cfgDeleteRetentionMs      = "delete.retention.ms"
	cfgMinCleanableDirtyRatio = "min.cleanable.dirty.ratio"
	cfgMinCompactionLagMs     = "min.compaction.lag.ms"
)

var topicConfigKeys = []string{cfgCleanupPolicy, cfgDeleteRetentionMs, cfgMaxMessageBytes, cfgTimestampType,
	cfgMinCleanableDirtyRatio, cfgMinCompactionLagMs, cfgRetentionBytes, cfgRetentionMs, cfgSegmentBytes, cfgSegmentMs}

// topicLogConfig applies a topic's overrides to the broker defaults. It
// reports every bad override, not just the first. Internal topics are
// compacted and never expire.
func topicLogConfig(defaults storage.Config, overrides map[string]string, internal bool) (storage.Config, error) {
	cfg := defaults
	var errs error
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := applyTopicConfig(&cfg, k, overrides[k]); err != nil {
			errs = multierr.Append(errs, err)
		}
	}
	if internal {
		cfg.RetentionMs = -1
		cfg.RetentionBytes = -1
		cfg.Cleanup = storage.CleanupCompact
	}
	return cfg, errs
}

func applyTopicConfig(cfg *storage.Config, key, value string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %s=%q: %s", errInvalidConfig, key, value, why)
	}
	num := func(min int64) (int64, error) {
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return 0, bad("not an integer")
		}
		if n < min {
			return 0, bad(fmt.Sprintf("must be at least %d", min))
		}
		return n, nil
	}
	switch key {
	case cfgCleanupPolicy:
		var policy storage.CleanupPolicy
		for _, p := range strings.Split(value, ",") {
			switch strings.TrimSpace(p) {
			case "delete":
				policy |= storage.CleanupDelete
			case "compact":
				policy |= storage.CleanupCompact
			default:
				return bad("must be delete, compact or compact,delete")
			}
		}
		cfg.Cleanup = policy
	case cfgDeleteRetentionMs, cfgMinCompactionLagMs:
		n, err := num(0)
		if err != nil {
			return err
		}
		d := time.Duration(n) * time.Millisecond
		if key == cfgMinCompactionLagMs {
			cfg.MinCompactionLag = d
		} else {
			// storage takes zero for its default: 0 ms is the shortest
			// positive duration.
			cfg.DeleteRetention = max(d, time.Nanosecond)
		}
	case cfgMinCleanableDirtyRatio:
		r, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || r < 0 || r > 1 {
			return bad("must be a number from 0 to 1")
		}
		// storage takes zero for its default: 0 means any dirty byte.
		cfg.MinCleanableDirtyRatio = max(r, math.SmallestNonzeroFloat64)
	case cfgRetentionMs:
		n, err := num(-1)
		if err != nil {
			return err
		}
		cfg.RetentionMs = time.Duration(n) * time.Millisecond
		if n == -1 {
			cfg.RetentionMs = -1
		}
	case cfgRetentionBytes:
		n, err := num(-1)
		if err != nil {
			return err
		}
		cfg.RetentionBytes = n
	case cfgSegmentBytes:
		n, err := num(14)
		if err != nil {
			return err
		}
		if n > 1<<31-1 {
			return bad("must fit in 32 bits")
		}
		cfg.SegmentBytes = n
	case cfgSegmentMs:
		n, err := num(1)
		if err != nil {
			return err
		}
		cfg.SegmentMs = time.Duration(n) * time.Millisecond
	case cfgMaxMessageBytes:
		n, err := num(0)
		if err != nil {
			return err
		}
		if n > 1<<31-1 {
			return bad("must fit in 32 bits")
		}
		cfg.MaxMessageBytes = int32(n)
	case cfgTimestampType:
		switch value {
		case "CreateTime":
			cfg.TimestampType = storage.CreateTime
		case "LogAppendTime":
			cfg.TimestampType = storage.LogAppendTime
		default:
			return bad("must be CreateTime or LogAppendTime")
		}
	default:
		return fmt.Errorf("%w: unknown topic config %q (supported: %s)", errInvalidConfig, key, strings.Join(topicConfigKeys, ", "))
	}
	return nil
}

// topicConfigValue renders cfg's value of key as Kafka shows it.
func topicConfigValue(cfg storage.Config, key string) string {
	ms := func(d time.Duration) string {
		if d < 0 {
			return "-1"
		}
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
	switch key {
	case cfgCleanupPolicy:
		return cfg.Cleanup.String()
	case cfgDeleteRetentionMs:
		return strconv.FormatInt(cfg.DeleteRetention.Milliseconds(), 10)
	case cfgMinCompactionLagMs:
		return strconv.FormatInt(cfg.MinCompactionLag.Milliseconds(), 10)
	case cfgMinCleanableDirtyRatio:
		if cfg.MinCleanableDirtyRatio < 1e-9 {
			return "0.0"
		}
		return strconv.FormatFloat(cfg.MinCleanableDirtyRatio, 'f', -1, 64)
	case cfgRetentionMs:
		return ms(cfg.RetentionMs)
	case cfgRetentionBytes:
		return strconv.FormatInt(cfg.RetentionBytes, 10)
	case cfgSegmentBytes:
		return strconv.FormatInt(cfg.SegmentBytes, 10)
	case cfgSegmentMs:
		return ms(cfg.SegmentMs)
	case cfgMaxMessageBytes:
		return strconv.FormatInt(int64(cfg.MaxMessageBytes), 10)
	case cfgTimestampType:
		if cfg.TimestampType == storage.LogAppendTime {
			return "LogAppendTime"
		}
		return "CreateTime"
	}
	return ""
}
