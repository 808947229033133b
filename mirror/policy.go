package mirror

import (
	"regexp"
	"strings"
)

// CompilePattern compiles a topic pattern of a job file. Patterns match
// whole topic names: "orders" matches only orders, "orders\..*" every
// orders.* topic.
func CompilePattern(p string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + p + ")$")
}

// Matches reports whether the source spec selects topic: its Include and
// Exclude patterns come from CompilePattern. Internal topics
// (a "__" prefix: __consumer_offsets, checkpoint topics) match only an
// Include pattern that is their literal name.
func (s SourceSpec) Matches(topic string) bool {
	internal := strings.HasPrefix(topic, "__")
	matched := false
	for _, re := range s.Include {
		if internal {
			if re.String() == "^(?:"+topic+")$" || re.String() == "^(?:"+regexp.QuoteMeta(topic)+")$" {
				matched = true
				break
			}
			continue
		}
		if re.MatchString(topic) {
			matched = true
			break
		}
	}
	if !matched {
		return false
	}
	for _, re := range s.Exclude {
		if re.MatchString(topic) {
			return false
		}
	}
	return true
}

// Target returns the target topic for a source cluster's topic.
func (r Rename) Target(cluster, topic string) string {
	switch r.Kind {
	case RenamePrefix:
		return strings.ReplaceAll(r.Prefix, "{cluster}", cluster) + topic
	case RenameTemplate:
		return strings.NewReplacer("{cluster}", cluster, "{topic}", topic).Replace(r.Template)
	default:
		return topic
	}
}
