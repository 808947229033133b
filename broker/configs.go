package broker

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config resource types and sources, as numbered by Kafka.
const (
	resourceTopic  = 2
	resourceBroker = 4

	sourceTopicOverride = 1 // DYNAMIC_TOPIC_CONFIG
	sourceStaticBroker  = 4 // STATIC_BROKER_CONFIG
	sourceDefault       = 5 // DEFAULT_CONFIG
)

// configTypes are the Kafka config types of the topic configs (v3+).
var configTypes = map[string]kmsg.ConfigType{
	cfgCleanupPolicy:   kmsg.ConfigTypeList,
	cfgRetentionMs:     kmsg.ConfigTypeLong,
	cfgRetentionBytes:  kmsg.ConfigTypeLong,
	cfgSegmentBytes:    kmsg.ConfigTypeInt,
	cfgSegmentMs:       kmsg.ConfigTypeLong,
	cfgMaxMessageBytes: kmsg.ConfigTypeInt,
	cfgTimestampType:   kmsg.ConfigTypeString,

	cfgDeleteRetentionMs:      kmsg.ConfigTypeLong,
	cfgMinCleanableDirtyRatio: kmsg.ConfigTypeDouble,
	cfgMinCompactionLagMs:     kmsg.ConfigTypeLong,
}

// brokerConfigNames maps each topic config to the broker setting holding
// its default, as Kafka names them.
var brokerConfigNames = map[string]string{
	cfgCleanupPolicy:   "log.cleanup.policy",
	cfgRetentionMs:     "log.retention.ms",
	cfgRetentionBytes:  "log.retention.bytes",
	cfgSegmentBytes:    "log.segment.bytes",
	cfgSegmentMs:       "log.roll.ms",
	cfgMaxMessageBytes: "message.max.bytes",
	cfgTimestampType:   "log.message.timestamp.type",

	cfgDeleteRetentionMs:      "log.cleaner.delete.retention.ms",
	cfgMinCleanableDirtyRatio: "log.cleaner.min.cleanable.ratio",
	cfgMinCompactionLagMs:     "log.cleaner.min.compaction.lag.ms",
}

// describeTopicConfigs lists the topic configs (all, or those in names)
// with their effective values given overrides.
func (b *Broker) describeTopicConfigs(overrides map[string]string, names []string, synonyms bool) []kmsg.DescribeConfigsResponseResourceConfig {
	want := topicConfigKeys
	if names != nil {
		want = names
	}
	eff, _ := topicLogConfig(b.cfg.Log, overrides, false)
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range want {
		t, ok := configTypes[k]
		if !ok {
			continue // Kafka leaves unknown names out
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = k
		v := topicConfigValue(eff, k)
		rc.Value = &v
		rc.ConfigType = t
		rc.Source = sourceDefault
		rc.IsDefault = true
		if _, ok := overrides[k]; ok {
			rc.Source = sourceTopicOverride
			rc.IsDefault = false
		}
		if synonyms {
			if _, ok := overrides[k]; ok {
				s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				s.Name, s.Value, s.Source = k, &v, sourceTopicOverride
				rc.ConfigSynonyms = append(rc.ConfigSynonyms, s)
			}
			s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			dv := topicConfigValue(b.cfg.Log, k)
			s.Name, s.Value, s.Source = brokerConfigNames[k], &dv, sourceStaticBroker
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, s)
		}
		out = append(out, rc)
	}
	return out
}

// DescribeConfigs: v0–v4.
//
// Topics: the configs of topicconfig.go with their effective values;
// overrides have source DYNAMIC_TOPIC_CONFIG, the rest DEFAULT_CONFIG, and
// synonyms (v1+) show the broker setting behind each. Brokers: the broker
// settings behind the topic defaults, read-only. Other resource types get
// INVALID_REQUEST.
func (b *Broker) handleDescribeConfigs(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeConfigsRequest)
	resp := kmsg.NewPtrDescribeConfigsResponse()
	for _, res := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		switch res.ResourceType {
		case resourceTopic:
			t := b.topics.view(res.ResourceName)
			if t == nil {
				rr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			rr.Configs = b.describeTopicConfigs(t.configs, res.ConfigNames, req.IncludeSynonyms)
		case resourceBroker:
			if res.ResourceName != "" && res.ResourceName != strconv.Itoa(int(b.cfg.NodeID)) {
				rr.ErrorCode = kerr.InvalidRequest.Code
				msg := fmt.Sprintf("unknown broker %q; this is node %d", res.ResourceName, b.cfg.NodeID)
				rr.ErrorMessage = &msg
				break
			}
			for _, k := range topicConfigKeys {
				name := brokerConfigNames[k]
				if res.ConfigNames != nil && !contains(res.ConfigNames, name) {
					continue
				}
				rc := kmsg.NewDescribeConfigsResponseResourceConfig()
				v := topicConfigValue(b.cfg.Log, k)
				rc.Name, rc.Value, rc.ReadOnly, rc.Source, rc.ConfigType = name, &v, true, sourceStaticBroker, configTypes[k]
				rr.Configs = append(rr.Configs, rc)
			}
		default:
			rr.ErrorCode = kerr.InvalidRequest.Code
			msg := fmt.Sprintf("resource type %d is not supported; topics (2) and brokers (4) are", res.ResourceType)
			rr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// AlterConfigs: v0–v2.
//
// Replaces a topic's overrides with the given set (Kafka's non-incremental
// semantics: what is not named goes back to the default). Every bad entry is
// reported in one INVALID_CONFIG message. ValidateOnly checks only. Broker
// configs are read-only here.
func (b *Broker) handleAlterConfigs(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.AlterConfigsRequest)
	resp := kmsg.NewPtrAlterConfigsResponse()
	for _, res := range req.Resources {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		next := make(map[string]string)
		for _, cfg := range res.Configs {
			if cfg.Value != nil {
				next[cfg.Name] = *cfg.Value
			}
		}
		rr.ErrorCode, rr.ErrorMessage = b.alterTopicConfigs(res.ResourceType, res.ResourceName, func(map[string]string) (map[string]string, error) {
			return next, nil
		}, req.ValidateOnly)
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

// IncrementalAlterConfigs: v0–v1.
//
// SET and DELETE change one override each; APPEND and SUBTRACT apply to
// list configs (cleanup.policy). Otherwise as AlterConfigs.
func (b *Broker) handleIncrementalAlterConfigs(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.IncrementalAlterConfigsRequest)
	resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
	for _, res := range req.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		ops := res.Configs
		rr.ErrorCode, rr.ErrorMessage = b.alterTopicConfigs(res.ResourceType, res.ResourceName, func(cur map[string]string) (map[string]string, error) {
			next := cloneConfigs(cur)
			var errs []string
			for _, op := range ops {
				val := ""
				if op.Value != nil {
					val = *op.Value
				}
				switch op.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					next[op.Name] = val
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(next, op.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					if configTypes[op.Name] != kmsg.ConfigTypeList {
						errs = append(errs, fmt.Sprintf("%s: APPEND and SUBTRACT need a list config", op.Name))
						continue
					}
					items := splitList(next[op.Name])
					if _, ok := next[op.Name]; !ok {
						items = splitList(topicConfigValue(b.cfg.Log, op.Name))
					}
					for _, v := range splitList(val) {
						if op.Op == kmsg.IncrementalAlterConfigOpAppend && !contains(items, v) {
							items = append(items, v)
						} else if op.Op == kmsg.IncrementalAlterConfigOpSubtract {
							items = remove(items, v)
						}
					}
					next[op.Name] = strings.Join(items, ",")
				default:
					errs = append(errs, fmt.Sprintf("%s: unknown operation %d", op.Name, op.Op))
				}
			}
			if len(errs) > 0 {
				return nil, fmt.Errorf("%w: %s", errInvalidConfig, strings.Join(errs, "; "))
			}
			return next, nil
		}, req.ValidateOnly)
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// alterTopicConfigs computes a topic's new overrides with change, validates
// them (every problem in one message) and, unless validateOnly, applies them.
func (b *Broker) alterTopicConfigs(resType kmsg.ConfigResourceType, name string, change func(map[string]string) (map[string]string, error), validateOnly bool) (int16, *string) {
	fail := func(code int16, msg string) (int16, *string) { return code, &msg }
	if resType != resourceTopic {
		return fail(kerr.InvalidRequest.Code, fmt.Sprintf("resource type %d cannot be altered; topic configs (2) can", resType))
	}
	t := b.topics.view(name)
	if t == nil {
		return fail(kerr.UnknownTopicOrPartition.Code, "unknown topic "+name)
	}
	next, err := change(t.configs)
	if err == nil {
		_, err = topicLogConfig(b.cfg.Log, next, t.internal)
	}
	if err == nil && !validateOnly {
		err = b.topics.setConfigs(name, next)
	}
	if err != nil {
		return fail(topicErrorCode(err), err.Error())
	}
	return 0, nil
}
