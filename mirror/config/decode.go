package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tributary/tributary/mirror"
)

// Keys of each mapping of a job file.
var (
	fileKeys      = []string{"clusters", "jobs"}
	clusterKeys   = []string{"bootstrap", "consul", "nats", "client_id", "version", "security"}
	consulKeys    = []string{"cluster", "datacenter"}
	securityKeys  = []string{"tls", "sasl"}
	tlsKeys       = []string{"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"}
	saslKeys      = []string{"mechanism", "username", "password"}
	jobKeys       = []string{"name", "sources", "targets", "rename", "partitioning", "start", "rate_limit", "oversized", "dead_letter_topic", "topic_sync", "delivery", "tuning", "nats"}
	sourceKeys    = []string{"cluster", "topics", "exclude"}
	renameKeys    = []string{"prefix", "template"}
	topicSyncKeys = []string{"create", "configs", "add_partitions"}
	tuningKeys    = []string{"max_in_flight_bytes", "max_batch_records", "max_batch_bytes", "linger", "metadata_refresh", "retry_backoff", "max_retry_backoff"}
)

// nameRE is what job and cluster names may be.
var nameRE = regexp.MustCompile(`^[a-z0-9._-]+$`)

const nameHelp = "lowercase letters, digits, '-', '_' and '.'"

// maxTopicName is the longest topic name Kafka accepts.
const maxTopicName = 249

// topicChars is what Kafka topic names are made of.
var topicChars = regexp.MustCompile(`^[a-zA-Z0-9._-]*$`)

var versionRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+){1,3}$`)

func (d *decoder) file(root *yaml.Node, f *File) {
	if root == nil {
		d.p.add(1, 1, "", "empty job file (expected clusters: and jobs:)")
		return
	}
	top, ok := d.mapping(deref(root), "", fileKeys...)
	if !ok {
		return
	}
	if n := d.required(top, root, "clusters", "clusters", "define the clusters the jobs read and write"); n != nil {
		keys, values := d.namedEntries(n, "clusters")
		for i, k := range keys {
			if c, ok := d.cluster(k, values[i]); ok {
				f.Clusters[c.Name] = c
			}
		}
	}
	// Jobs are checked against the cluster names even when a cluster's
	// definition has problems, so that one mistake is reported once.
	defined := map[string]bool{}
	if n := top["clusters"]; n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			name := deref(n.Content[i]).Value
			defined[name] = true
			if c := deref(n.Content[i+1]); c != nil && c.Kind == yaml.MappingNode {
				for k := 0; k+1 < len(c.Content); k += 2 {
					if deref(c.Content[k]).Value == "nats" {
						d.natsClusters[name] = true
					}
				}
			}
		}
	}
	n := d.required(top, root, "jobs", "jobs", "a list of at least one job")
	if n == nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "jobs", "expected a list of jobs, found %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		d.errorf(n, "jobs", "empty (a list of at least one job)")
	}
	names := map[string]int{}
	for i, jn := range n.Content {
		field := fmt.Sprintf("jobs[%d]", i)
		if j, ok := d.job(deref(jn), field, defined, names); ok {
			f.Jobs = append(f.Jobs, j)
		}
	}
	for name, nj := range d.natsJobs {
		f.NATS[name] = nj
	}
}

// required returns m[key]. When the key is missing (reported at the
// mapping n) or has no value (reported at the value) it returns nil.
func (d *decoder) required(m map[string]*yaml.Node, n *yaml.Node, key, field, what string) *yaml.Node {
	v, ok := m[key]
	switch {
	case !ok && d.misspelt[n][key]:
		// Reported as an unknown key with a suggestion of this one.
	case !ok:
		d.errorf(n, field, "missing (%s)", what)
	case isNull(v):
		d.errorf(v, field, "empty (%s)", what)
	default:
		return v
	}
	return nil
}

// requiredStr is required for a single value.
func (d *decoder) requiredStr(m map[string]*yaml.Node, n *yaml.Node, key, field, what string) (string, *yaml.Node, bool) {
	v := d.required(m, n, key, field, what)
	if v == nil {
		return "", nil, false
	}
	s, ok := d.str(v, field)
	return s, v, ok
}

func (d *decoder) cluster(key, n *yaml.Node) (Cluster, bool) {
	c := Cluster{Name: key.Value}
	field := "clusters." + c.Name
	ok := true
	if !nameRE.MatchString(c.Name) {
		d.errorf(key, field, "bad cluster name (%s)", nameHelp)
		ok = false
	}
	if isNull(n) {
		d.errorf(key, field, "empty (give bootstrap: or consul:)")
		return c, false
	}
	m, isMap := d.mapping(n, field, clusterKeys...)
	if !isMap {
		return c, false
	}
	nerr := len(d.p.list)
	if b := m["bootstrap"]; b != nil {
		c.Bootstrap = d.bootstrap(b, field+".bootstrap")
	}
	if cn := m["consul"]; cn != nil {
		c.Consul = d.consul(cn, field+".consul", c.Name)
	}
	switch {
	case m["nats"] != nil:
		c.NATS = d.natsCluster(m["nats"], field+".nats")
		for _, key := range []string{"bootstrap", "consul", "client_id", "version", "security"} {
			if m[key] != nil {
				d.errorf(m[key], join(field, key), "given with nats: (a NATS cluster takes its settings inside nats:)")
			}
		}
		return c, ok && len(d.p.list) == nerr
	case m["bootstrap"] != nil && m["consul"] != nil:
		d.errorf(m["consul"], field+".consul", "both bootstrap and consul given (use one)")
	case m["bootstrap"] == nil && m["consul"] == nil:
		d.errorf(n, field, "no bootstrap (give bootstrap: [host:port, ...], consul: {cluster: NAME} or nats: {servers: [...]})")
	}
	if v := m["client_id"]; v != nil {
		c.ClientID, _ = d.str(v, field+".client_id")
	}
	if v := m["version"]; v != nil {
		if s, sok := d.str(v, field+".version"); sok {
			if !versionRE.MatchString(s) {
				d.errorf(v, field+".version", "bad Kafka version %q (dotted numbers, such as 2.8.0)", s)
			}
			c.Version = s
		}
	}
	if v := m["security"]; v != nil {
		c.Security = d.security(v, field+".security")
	}
	return c, ok && len(d.p.list) == nerr
}

// bootstrap reads a list of addresses, or one comma-separated string; each
// list element may itself be comma-separated (a variable holding several).
func (d *decoder) bootstrap(n *yaml.Node, field string) []string {
	var raw []string
	var nodes []*yaml.Node
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		raw, nodes = []string{n.Value}, []*yaml.Node{n}
	} else {
		raw, nodes = d.strs(n, field, "[host:9092]")
	}
	nerr := len(d.p.list)
	var addrs []string
	for i, r := range raw {
		for _, a := range strings.Split(r, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			if err := checkAddr(a); err != nil {
				d.errorf(nodes[i], field, "%v", err)
				continue
			}
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 && len(d.p.list) == nerr {
		d.errorf(n, field, "no addresses (give host:port, such as 127.0.0.1:9092)")
	}
	return addrs
}

func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("bad address %q (host:port, such as 127.0.0.1:9092)", a)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("bad port in %q (1-65535)", a)
	}
	return nil
}

func (d *decoder) consul(n *yaml.Node, field, name string) *ConsulRef {
	ref := &ConsulRef{Cluster: name}
	if isNull(n) {
		return ref
	}
	m, ok := d.mapping(n, field, consulKeys...)
	if !ok {
		return ref
	}
	if v := m["cluster"]; v != nil {
		if s, ok := d.str(v, field+".cluster"); ok {
			if s == "" {
				d.errorf(v, field+".cluster", "empty (omit it to use %q)", name)
			}
			ref.Cluster = s
		}
	}
	if v := m["datacenter"]; v != nil {
		ref.Datacenter, _ = d.str(v, field+".datacenter")
	}
	return ref
}

func (d *decoder) security(n *yaml.Node, field string) Security {
	var s Security
	if isNull(n) {
		return s
	}
	m, ok := d.mapping(n, field, securityKeys...)
	if !ok {
		return s
	}
	if v := m["tls"]; v != nil && !isNull(v) {
		s.TLS = d.tls(v, field+".tls")
	}
	if v := m["sasl"]; v != nil && !isNull(v) {
		s.SASL = d.sasl(v, field+".sasl")
	}
	return s
}

// tls reads tls: true|false or a mapping of TLS settings.
func (d *decoder) tls(n *yaml.Node, field string) *TLS {
	if n.Kind == yaml.ScalarNode {
		if on, ok := d.boolean(n, field); ok && on {
			return &TLS{}
		}
		return nil
	}
	m, ok := d.mapping(n, field, tlsKeys...)
	if !ok {
		return nil
	}
	t := &TLS{}
	for key, dst := range map[string]*string{"ca_file": &t.CAFile, "cert_file": &t.CertFile, "key_file": &t.KeyFile, "server_name": &t.ServerName} {
		if v := m[key]; v != nil {
			*dst, _ = d.str(v, join(field, key))
		}
	}
	if v := m["insecure_skip_verify"]; v != nil {
		t.InsecureSkipVerify, _ = d.boolean(v, field+".insecure_skip_verify")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		d.errorf(n, field, "cert_file and key_file go together (give both for a client certificate, or neither)")
	}
	return t
}

func (d *decoder) sasl(n *yaml.Node, field string) *SASL {
	m, ok := d.mapping(n, field, saslKeys...)
	if !ok {
		return nil
	}
	s := &SASL{}
	if v := m["mechanism"]; v != nil {
		s.Mechanism, _ = enum(d, v, field+".mechanism",
			[]string{SASLPlain, SASLScramSHA256, SASLScramSHA512},
			[]string{SASLPlain, SASLScramSHA256, SASLScramSHA512})
	} else {
		d.errorf(n, field+".mechanism", "missing (%s, %s or %s)", SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	for _, key := range []string{"username", "password"} {
		v := m[key]
		if v == nil {
			d.errorf(n, join(field, key), "missing")
			continue
		}
		val, _ := d.str(v, join(field, key))
		if val == "" {
			d.errorf(v, join(field, key), "empty")
		}
		if key == "username" {
			s.Username = val
		} else {
			s.Password = val
		}
	}
	return s
}

// job reads one job. defined holds the file's cluster names; names maps the
// job names seen so far to their lines.
func (d *decoder) job(n *yaml.Node, field string, defined map[string]bool, names map[string]int) (mirror.JobSpec, bool) {
	j := mirror.JobSpec{TopicSync: mirror.TopicSync{Create: true, AddPartitions: true}}
	m, ok := d.mapping(n, field, jobKeys...)
	if !ok {
		return j, false
	}
	nerr := len(d.p.list)

	if s, v, ok := d.requiredStr(m, n, "name", field+".name", "a unique name: "+nameHelp); ok {
		switch first, dup := names[s]; {
		case !nameRE.MatchString(s):
			d.errorf(v, field+".name", "bad job name %q (%s)", s, nameHelp)
		case dup:
			d.errorf(v, field+".name", "duplicate job name %q (first at line %d)", s, first)
		default:
			names[s] = d.origLine(v)
		}
		j.Name = s
	}

	sourceClusters := map[string]bool{}
	switch v := d.required(m, n, "sources", field+".sources", "a list of {cluster: NAME, topics: [PATTERN, ...]}"); {
	case v == nil:
		// Reported by required.
	case v.Kind != yaml.SequenceNode:
		d.errorf(v, field+".sources", "expected a list of {cluster: NAME, topics: [PATTERN, ...]}, found %s", kindName(v))
	default:
		if len(v.Content) == 0 {
			d.errorf(v, field+".sources", "empty (at least one source)")
		}
		for i, sn := range v.Content {
			sf := fmt.Sprintf("%s.sources[%d]", field, i)
			if s, ok := d.source(deref(sn), sf, defined, sourceClusters); ok {
				j.Sources = append(j.Sources, s)
			}
		}
	}

	if v := m["rename"]; v != nil {
		j.Rename, _ = d.rename(v, field+".rename")
	}

	if v := d.required(m, n, "targets", field+".targets", "a list of cluster names, such as [central]"); v != nil {
		targets, nodes := d.strs(v, field+".targets", "[central]")
		if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			d.errorf(v, field+".targets", "empty (at least one target cluster)")
		}
		seen := map[string]bool{}
		for i, t := range targets {
			tf := fmt.Sprintf("%s.targets[%d]", field, i)
			switch {
			case t == "":
				d.errorf(nodes[i], tf, "empty cluster name")
			case !defined[t]:
				d.errorf(nodes[i], tf, "unknown cluster %q (defined: %s)", t, definedList(defined))
			case seen[t]:
				d.errorf(nodes[i], tf, "duplicate target %q", t)
			case sourceClusters[t]:
				d.errorf(nodes[i], tf, "target %q is also a source cluster: a flow never mirrors a cluster into itself (mirror within a cluster is not supported)", t)
			}
			seen[t] = true
			j.Targets = append(j.Targets, t)
		}
	}

	if v := m["partitioning"]; v != nil {
		j.Partitioning, _ = enum(d, v, field+".partitioning",
			[]string{"preserve", "key-hash", "round-robin"},
			[]mirror.Partitioning{mirror.PartitionPreserve, mirror.PartitionKeyHash, mirror.PartitionRoundRobin})
	}
	if v := m["start"]; v != nil {
		j.Start, _ = d.start(v, field+".start")
	}
	if v := m["rate_limit"]; v != nil {
		j.RateLimitBytes, _ = d.size(v, field+".rate_limit")
	}
	if v := m["oversized"]; v != nil {
		j.Oversized.Kind, _ = enum(d, v, field+".oversized",
			[]string{"fail", "skip", "dead-letter"},
			[]mirror.OversizedKind{mirror.OversizedFail, mirror.OversizedSkip, mirror.OversizedDeadLetter})
	}
	dlt := m["dead_letter_topic"]
	if dlt != nil {
		if s, ok := d.str(dlt, field+".dead_letter_topic"); ok {
			if msg := checkTopicName(s); msg != "" {
				d.errorf(dlt, field+".dead_letter_topic", "%s", msg)
			}
			j.Oversized.DeadLetterTopic = s
		}
	}
	switch over := m["oversized"]; {
	case j.Oversized.Kind == mirror.OversizedDeadLetter && isNull(dlt):
		d.errorf(over, field+".dead_letter_topic", "missing (oversized: dead-letter needs a topic on the target)")
	case dlt != nil && !isNull(dlt) && j.Oversized.Kind != mirror.OversizedDeadLetter && (over == nil || d.reportedNone(over)):
		d.errorf(dlt, field+".dead_letter_topic", "given without oversized: dead-letter (remove it, or set oversized: dead-letter)")
	}
	if v := m["topic_sync"]; v != nil {
		j.TopicSync = d.topicSync(v, field+".topic_sync")
	}
	if v := m["delivery"]; v != nil {
		j.Delivery, _ = enum(d, v, field+".delivery",
			[]string{"at-least-once", "exactly-once"},
			[]mirror.Delivery{mirror.AtLeastOnce, mirror.ExactlyOnce})
	}
	if j.Delivery == mirror.ExactlyOnce && j.Partitioning == mirror.PartitionRoundRobin {
		d.errorf(m["partitioning"], field+".partitioning", "round-robin with delivery: exactly-once (round-robin is not deterministic on replay; use preserve or key-hash)")
	}
	if v := m["tuning"]; v != nil {
		j.Tuning = d.tuning(v, field+".tuning")
	}
	if nj := d.natsJob(m, n, field, &j); nj != nil && j.Name != "" {
		d.natsJobs[j.Name] = nj
	}
	return j, len(d.p.list) == nerr
}

// reportedNone reports whether no problem has been reported at n, so that
// a bad oversized: value does not also make dead_letter_topic wrong.
func (d *decoder) reportedNone(n *yaml.Node) bool {
	line, col := d.x.origPosition(n.Line, n.Column)
	for _, e := range d.p.list {
		if e.Line == line && e.Column == col {
			return false
		}
	}
	return true
}

func definedList(defined map[string]bool) string {
	if len(defined) == 0 {
		return "none"
	}
	names := make([]string, 0, len(defined))
	for n := range defined {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (d *decoder) source(n *yaml.Node, field string, defined, seen map[string]bool) (mirror.SourceSpec, bool) {
	var s mirror.SourceSpec
	m, ok := d.mapping(n, field, sourceKeys...)
	if !ok {
		return s, false
	}
	nerr := len(d.p.list)
	if c, v, ok := d.requiredStr(m, n, "cluster", field+".cluster", "a cluster name from clusters:"); ok {
		switch {
		case !defined[c]:
			d.errorf(v, field+".cluster", "unknown cluster %q (defined: %s)", c, definedList(defined))
		case seen[c]:
			d.errorf(v, field+".cluster", "cluster %q is already a source of this job (list all its topics in one source)", c)
		}
		seen[c] = true
		s.Cluster = c
	}
	if v := d.required(m, n, "topics", field+".topics", "a list of topic patterns, such as [orders]"); v != nil {
		s.Include = d.patterns(v, field+".topics")
		if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			d.errorf(v, field+".topics", "empty (at least one topic pattern)")
		}
	}
	if v := m["exclude"]; v != nil {
		s.Exclude = d.patterns(v, field+".exclude")
	}
	return s, len(d.p.list) == nerr
}

func (d *decoder) patterns(n *yaml.Node, field string) []*regexp.Regexp {
	pats, nodes := d.strs(n, field, "[orders, 'orders\\..*']")
	var out []*regexp.Regexp
	for i, p := range pats {
		pf := fmt.Sprintf("%s[%d]", field, i)
		if p == "" {
			d.errorf(nodes[i], pf, "empty pattern")
			continue
		}
		re, err := mirror.CompilePattern(p)
		if err != nil {
			d.errorf(nodes[i], pf, "bad pattern %q: %v (a Go regular expression matching whole topic names)", p, unwrapRegexpErr(err))
			continue
		}
		out = append(out, re)
	}
	return out
}

// unwrapRegexpErr says what is wrong with a pattern without quoting the
// anchored expression CompilePattern built from it.
func unwrapRegexpErr(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return se.Code.String()
	}
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// rename reads identity | prefix | {prefix: P} | {template: T}.
func (d *decoder) rename(n *yaml.Node, field string) (mirror.Rename, bool) {
	const help = `identity, prefix, {prefix: "dc1."} or {template: "{cluster}.{topic}"}`
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "identity":
			return mirror.Rename{Kind: mirror.RenameIdentity}, true
		case "prefix":
			return mirror.Rename{Kind: mirror.RenamePrefix, Prefix: "{cluster}."}, true
		}
		d.errorf(n, field, "unknown value %q (allowed: %s)", n.Value, help)
		return mirror.Rename{}, false
	}
	m, ok := d.mapping(n, field, renameKeys...)
	if !ok {
		return mirror.Rename{}, false
	}
	if len(m) != 1 {
		if len(m) > 1 || len(n.Content) == 0 { // else an unknown key was reported
			d.errorf(n, field, "expected one of prefix: or template: (allowed: %s)", help)
		}
		return mirror.Rename{}, false
	}
	if v := m["prefix"]; v != nil {
		p, ok := d.str(v, field+".prefix")
		if !ok {
			return mirror.Rename{}, false
		}
		if msg := checkNamePart(p, "{cluster}"); msg != "" {
			d.errorf(v, field+".prefix", "%s", msg)
			return mirror.Rename{}, false
		}
		return mirror.Rename{Kind: mirror.RenamePrefix, Prefix: p}, true
	}
	v := m["template"]
	t, ok := d.str(v, field+".template")
	if !ok {
		return mirror.Rename{}, false
	}
	if msg := checkNamePart(t, "{cluster}", "{topic}"); msg != "" {
		d.errorf(v, field+".template", "%s", msg)
		return mirror.Rename{}, false
	}
	return mirror.Rename{Kind: mirror.RenameTemplate, Template: t}, true
}

// checkNamePart checks a prefix or template: non-empty, and made of topic
// name characters once its placeholders are removed.
func checkNamePart(s string, placeholders ...string) string {
	if s == "" {
		return "empty"
	}
	rest := s
	for _, p := range placeholders {
		rest = strings.ReplaceAll(rest, p, "")
	}
	if !topicChars.MatchString(rest) {
		return fmt.Sprintf("%q holds characters a topic name cannot (letters, digits, '.', '_', '-'; placeholders %s)", s, strings.Join(placeholders, " "))
	}
	return ""
}

func checkTopicName(s string) string {
	switch {
	case s == "":
		return "empty topic name"
	case len(s) > maxTopicName:
		return fmt.Sprintf("topic name longer than %d characters", maxTopicName)
	case s == "." || s == "..":
		return fmt.Sprintf("%q is not a topic name", s)
	case !topicChars.MatchString(s):
		return fmt.Sprintf("%q is not a topic name (letters, digits, '.', '_', '-')", s)
	}
	return ""
}

// start reads earliest | latest | an RFC 3339 timestamp.
func (d *decoder) start(n *yaml.Node, field string) (mirror.StartPosition, bool) {
	s, ok := d.str(n, field)
	if !ok {
		return mirror.StartPosition{}, false
	}
	switch s {
	case "earliest":
		return mirror.StartPosition{Kind: mirror.StartEarliest}, true
	case "latest":
		return mirror.StartPosition{Kind: mirror.StartLatest}, true
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		d.errorf(n, field, "unknown value %q (allowed: earliest, latest, or an RFC 3339 timestamp such as 2026-01-02T15:04:05Z)", s)
		return mirror.StartPosition{}, false
	}
	return mirror.StartPosition{Kind: mirror.StartTimestamp, Time: t}, true
}

func (d *decoder) size(n *yaml.Node, field string) (int64, bool) {
	s, ok := d.str(n, field)
	if !ok {
		return 0, false
	}
	v, err := parseSize(s)
	if err != nil {
		d.errorf(n, field, "%v", err)
		return 0, false
	}
	return v, true
}

func (d *decoder) duration(n *yaml.Node, field string) (time.Duration, bool) {
	s, ok := d.str(n, field)
	if !ok {
		return 0, false
	}
	v, err := parseDuration(s)
	if err != nil {
		d.errorf(n, field, "%v", err)
		return 0, false
	}
	return v, true
}

func (d *decoder) topicSync(n *yaml.Node, field string) mirror.TopicSync {
	ts := mirror.TopicSync{Create: true, AddPartitions: true}
	if isNull(n) {
		return ts
	}
	m, ok := d.mapping(n, field, topicSyncKeys...)
	if !ok {
		return ts
	}
	if v := m["create"]; v != nil {
		if b, ok := d.boolean(v, field+".create"); ok {
			ts.Create = b
		}
	}
	if v := m["add_partitions"]; v != nil {
		if b, ok := d.boolean(v, field+".add_partitions"); ok {
			ts.AddPartitions = b
		}
	}
	if v := m["configs"]; v != nil {
		names, nodes := d.strs(v, field+".configs", "[retention.ms, cleanup.policy]")
		for i, c := range names {
			if !topicConfigRE.MatchString(c) {
				d.errorf(nodes[i], fmt.Sprintf("%s.configs[%d]", field, i), "%q is not a topic config name (such as retention.ms)", c)
				continue
			}
			ts.Configs = append(ts.Configs, c)
		}
	}
	return ts
}

var topicConfigRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)

// tuning reads the tuning: mapping; fields left out stay zero, which the
// pipeline replaces with mirror.Default* values.
func (d *decoder) tuning(n *yaml.Node, field string) mirror.Tuning {
	var t mirror.Tuning
	if isNull(n) {
		return t
	}
	m, ok := d.mapping(n, field, tuningKeys...)
	if !ok {
		return t
	}
	positive := func(key string, v int64, ok bool, def string) {
		if ok && v == 0 {
			d.errorf(m[key], join(field, key), "must be more than 0 (leave it out for the default, %s)", def)
		}
	}
	if v := m["max_in_flight_bytes"]; v != nil {
		b, ok := d.size(v, field+".max_in_flight_bytes")
		positive("max_in_flight_bytes", b, ok, "64MiB")
		t.MaxInFlightBytes = b
	}
	if v := m["max_batch_bytes"]; v != nil {
		b, ok := d.size(v, field+".max_batch_bytes")
		positive("max_batch_bytes", b, ok, "4MiB")
		t.MaxBatchBytes = b
	}
	if v := m["max_batch_records"]; v != nil {
		if s, ok := d.str(v, field+".max_batch_records"); ok {
			r, err := strconv.ParseInt(s, 10, 32)
			switch {
			case err != nil:
				d.errorf(v, field+".max_batch_records", "%q is not a whole number of records", s)
			case r < 0:
				d.errorf(v, field+".max_batch_records", "%q is negative (a number of records, more than 0)", s)
			default:
				positive("max_batch_records", r, true, strconv.Itoa(mirror.DefaultMaxBatchRecords))
				t.MaxBatchRecords = int(r)
			}
		}
	}
	durations := []struct {
		key string
		dst *time.Duration
		def time.Duration
	}{
		{"linger", &t.Linger, mirror.DefaultLinger},
		{"metadata_refresh", &t.MetadataRefresh, mirror.DefaultMetadataRefresh},
		{"retry_backoff", &t.RetryBackoff, mirror.DefaultRetryBackoff},
		{"max_retry_backoff", &t.MaxRetryBackoff, mirror.DefaultMaxRetryBackoff},
	}
	for _, x := range durations {
		if v := m[x.key]; v != nil {
			dur, ok := d.duration(v, join(field, x.key))
			positive(x.key, int64(dur), ok, x.def.String())
			*x.dst = dur
		}
	}
	inFlight, batch := orDefault(t.MaxInFlightBytes, mirror.DefaultMaxInFlightBytes), orDefault(t.MaxBatchBytes, mirror.DefaultMaxBatchBytes)
	if batch > inFlight {
		d.errorf(n, field+".max_batch_bytes", "%d is more than max_in_flight_bytes %d (a batch must fit in flight)", batch, inFlight)
	}
	first, most := orDefault(t.RetryBackoff, mirror.DefaultRetryBackoff), orDefault(t.MaxRetryBackoff, mirror.DefaultMaxRetryBackoff)
	if first > most {
		d.errorf(n, field+".retry_backoff", "%v is more than max_retry_backoff %v", first, most)
	}
	return t
}

func orDefault[T int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}
