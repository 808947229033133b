package broker

import (
	"fmt"
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
)

var topicConfigKeys = []string{cfgCleanupPolicy, cfgMaxMessageBytes, cfgTimestampType,
	cfgRetentionBytes, cfgRetentionMs, cfgSegmentBytes, cfgSegmentMs}

// topicLogConfig applies a topic's overrides to the broker defaults. It
// reports every bad override, not just the first. Internal topics never
// expire.
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
		for _, p := range strings.Split(value, ",") {
			switch strings.TrimSpace(p) {
			case "delete":
			case "compact":
				return fmt.Errorf("%w: %s=%q: %v", errInvalidConfig, key, value, errUnsupportedCompact)
			default:
				return bad("must be delete")
			}
		}
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
		return "delete"
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
