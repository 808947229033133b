package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tributary/tributary/mirror"
)

// NATS is how to reach a NATS system named as a cluster (clusters.NAME.nats).
type NATS struct {
	// Servers are URLs (nats://host:4222, tls://host:4222) or host:port.
	Servers []string
	// At most one way of authenticating is set: User and Password, Token,
	// NKeySeedFile or CredsFile.
	User, Password string
	Token          string
	NKeySeedFile   string
	CredsFile      string
	// TLS is nil for plaintext.
	TLS *TLS
}

// NATSJob is a job's mapping between Kafka topics and NATS subjects (the
// job's nats: block), for the job's NATS source or NATS target. Zero
// fields take the NATS bridge's defaults (bridge/nats Default*).
type NATSJob struct {
	// Stream is the JetStream stream; "" means core NATS.
	Stream string
	// Subjects are the stream's subjects when it is created, or the
	// subjects a core NATS source subscribes to.
	Subjects []string
	// CreateStream creates Stream when it is missing (targets only).
	CreateStream bool
	// DuplicateWindow is the duplicate window of a created stream
	// (default 10m); RestartBudget the outage deduplication must cover,
	// warned about when an existing stream's window is shorter (default:
	// the duplicate window). Targets only.
	DuplicateWindow, RestartBudget time.Duration
	// Subject is the subject template of records written to NATS
	// ({topic}, {cluster}, {partition}, {key}; default "{topic}"). Targets
	// only.
	Subject string
	// KeyHeader is the header carrying the Kafka key (default
	// Tributary-Key).
	KeyHeader string
	// Topic is the topic a NATS source presents (default: the stream's
	// name); sources only.
	Topic string
	// Durable is a JetStream source's durable consumer (default
	// "tributary-" + job name); AckWait and MaxAckPending configure it.
	// Sources only.
	Durable       string
	AckWait       time.Duration
	MaxAckPending int
	// CheckpointBucket is the key-value bucket of a NATS target's
	// checkpoints (default tributary_checkpoints). Targets only.
	CheckpointBucket string
}

var (
	natsClusterKeys = []string{"servers", "user", "password", "token", "nkey_seed_file", "creds_file", "tls"}
	natsJobKeys     = []string{"stream", "subjects", "create_stream", "duplicate_window", "restart_budget", "subject",
		"key_header", "topic", "durable", "ack_wait", "max_ack_pending", "checkpoint_bucket"}
	natsSourceOnly = []string{"topic", "durable", "ack_wait", "max_ack_pending"}
	natsTargetOnly = []string{"create_stream", "duplicate_window", "restart_budget", "subject", "checkpoint_bucket"}
)

var (
	// natsNameRE is what stream and consumer names may be.
	natsNameRE = regexp.MustCompile(`^[^\s.*>/\\]+$`)
	// bucketRE is what key-value bucket names may be.
	bucketRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	// headerNameRE is what a NATS header name may be.
	headerNameRE = regexp.MustCompile(`^[!-9;-~]+$`)
)

// natsCluster reads clusters.NAME.nats.
func (d *decoder) natsCluster(n *yaml.Node, field string) *NATS {
	c := &NATS{}
	if isNull(n) {
		d.errorf(n, field, "empty (give servers: [nats://host:4222])")
		return c
	}
	m, ok := d.mapping(n, field, natsClusterKeys...)
	if !ok {
		return c
	}
	if v := d.required(m, n, "servers", field+".servers", "NATS URLs, such as [nats://127.0.0.1:4222]"); v != nil {
		var raw []string
		var nodes []*yaml.Node
		if v.Kind == yaml.ScalarNode {
			raw, nodes = []string{v.Value}, []*yaml.Node{v}
		} else {
			raw, nodes = d.strs(v, field+".servers", "[nats://127.0.0.1:4222]")
		}
		for i, r := range raw {
			for _, s := range strings.Split(r, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				if err := checkNATSServer(s); err != nil {
					d.errorf(nodes[i], field+".servers", "%v", err)
					continue
				}
				c.Servers = append(c.Servers, s)
			}
		}
		if len(c.Servers) == 0 && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			d.errorf(v, field+".servers", "empty (give nats://host:port)")
		}
	}
	for key, dst := range map[string]*string{"user": &c.User, "password": &c.Password, "token": &c.Token,
		"nkey_seed_file": &c.NKeySeedFile, "creds_file": &c.CredsFile} {
		if v := m[key]; v != nil {
			*dst, _ = d.str(v, join(field, key))
		}
	}
	if (c.User == "") != (c.Password == "") {
		d.errorf(n, field, "user and password go together")
	}
	kinds := 0
	for _, set := range []bool{c.User != "", c.Token != "", c.NKeySeedFile != "", c.CredsFile != ""} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		d.errorf(n, field, "more than one way to authenticate (give one of user/password, token, nkey_seed_file, creds_file)")
	}
	if v := m["tls"]; v != nil && !isNull(v) {
		c.TLS = d.tls(v, field+".tls")
	}
	return c
}

func checkNATSServer(s string) error {
	if !strings.Contains(s, "://") {
		return checkAddr(s)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad NATS URL %q (such as nats://127.0.0.1:4222)", s)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("bad NATS URL %q: scheme %s (nats, tls, ws or wss)", s, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("NATS URL with credentials (give user/password or token instead, so they are never logged)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("bad port in %q (1-65535)", s)
		}
	}
	return nil
}

// natsJob reads a job's nats: block and checks it against the job's
// endpoints. It returns nil for a job without NATS endpoints.
func (d *decoder) natsJob(m map[string]*yaml.Node, n *yaml.Node, field string, j *mirror.JobSpec) *NATSJob {
	var natsSources []mirror.SourceSpec
	for _, s := range j.Sources {
		if d.natsClusters[s.Cluster] {
			natsSources = append(natsSources, s)
		}
	}
	natsTarget := false
	for _, t := range j.Targets {
		natsTarget = natsTarget || d.natsClusters[t]
	}
	v := m["nats"]
	if len(natsSources) == 0 && !natsTarget {
		if v != nil {
			d.errorf(v, field+".nats", "given, but no source or target of this job is a NATS cluster (remove it, or name a cluster defined with nats:)")
		}
		return nil
	}
	field += ".nats"
	if len(natsSources) > 0 && natsTarget {
		d.errorf(n, field, "NATS clusters on both sides of a job (mirroring NATS into NATS is not supported)")
		return nil
	}
	nj := &NATSJob{}
	var nm map[string]*yaml.Node
	if v != nil && !isNull(v) {
		var ok bool
		if nm, ok = d.mapping(v, field, natsJobKeys...); !ok {
			return nil
		}
	}
	at := func(key string) *yaml.Node {
		if x := nm[key]; x != nil {
			return x
		}
		if v != nil {
			return v
		}
		return n
	}
	if x := nm["stream"]; x != nil {
		if s, ok := d.str(x, field+".stream"); ok {
			if !natsNameRE.MatchString(s) {
				d.errorf(x, field+".stream", "bad stream name %q (no blanks, '.', '*', '>', '/')", s)
			}
			nj.Stream = s
		}
	}
	if x := nm["subjects"]; x != nil {
		subs, nodes := d.strs(x, field+".subjects", `["orders.>"]`)
		for i, s := range subs {
			if !validSubject(s, true) {
				d.errorf(nodes[i], fmt.Sprintf("%s.subjects[%d]", field, i), "bad subject %q (tokens separated by dots; '*' and a final '>' as wildcards)", s)
				continue
			}
			nj.Subjects = append(nj.Subjects, s)
		}
	}
	if x := nm["create_stream"]; x != nil {
		nj.CreateStream, _ = d.boolean(x, field+".create_stream")
	}
	for key, dst := range map[string]*time.Duration{"duplicate_window": &nj.DuplicateWindow, "restart_budget": &nj.RestartBudget, "ack_wait": &nj.AckWait} {
		if x := nm[key]; x != nil {
			if dur, ok := d.duration(x, join(field, key)); ok {
				if dur == 0 {
					d.errorf(x, join(field, key), "must be more than 0 (leave it out for the default)")
				}
				*dst = dur
			}
		}
	}
	if x := nm["subject"]; x != nil {
		if s, ok := d.str(x, field+".subject"); ok {
			if msg := checkSubjectTemplate(s); msg != "" {
				d.errorf(x, field+".subject", "%s", msg)
			}
			nj.Subject = s
		}
	}
	if x := nm["key_header"]; x != nil {
		if s, ok := d.str(x, field+".key_header"); ok {
			if !headerNameRE.MatchString(s) || strings.HasPrefix(strings.ToLower(s), "nats-") {
				d.errorf(x, field+".key_header", "bad header name %q (printable ASCII without blanks or ':', not starting with Nats-)", s)
			}
			nj.KeyHeader = s
		}
	}
	if x := nm["topic"]; x != nil {
		if s, ok := d.str(x, field+".topic"); ok {
			if msg := checkTopicName(s); msg != "" {
				d.errorf(x, field+".topic", "%s", msg)
			}
			nj.Topic = s
		}
	}
	if x := nm["durable"]; x != nil {
		if s, ok := d.str(x, field+".durable"); ok {
			if !natsNameRE.MatchString(s) {
				d.errorf(x, field+".durable", "bad consumer name %q (no blanks, '.', '*', '>', '/')", s)
			}
			if len(j.Targets) > 1 {
				d.errorf(x, field+".durable", "one durable consumer cannot serve %d targets, which each read at their own pace: leave durable out (each flow then gets tributary-JOB_TARGET)", len(j.Targets))
			}
			nj.Durable = s
		}
	}
	if x := nm["max_ack_pending"]; x != nil {
		if s, ok := d.str(x, field+".max_ack_pending"); ok {
			if v, err := strconv.Atoi(s); err != nil || v <= 0 {
				d.errorf(x, field+".max_ack_pending", "%q is not a number of messages more than 0", s)
			} else {
				nj.MaxAckPending = v
			}
		}
	}
	if x := nm["checkpoint_bucket"]; x != nil {
		if s, ok := d.str(x, field+".checkpoint_bucket"); ok {
			if !bucketRE.MatchString(s) {
				d.errorf(x, field+".checkpoint_bucket", "bad bucket name %q (letters, digits, '-', '_')", s)
			}
			nj.CheckpointBucket = s
		}
	}

	core := nj.Stream == ""
	if j.Delivery == mirror.ExactlyOnce && core {
		d.errorf(at("stream"), field+".stream", "delivery: exactly-once with core NATS, which is at-most-once (name a JetStream stream, or use delivery: at-least-once)")
	}
	if len(natsSources) > 0 {
		for _, key := range natsTargetOnly {
			if x := nm[key]; x != nil {
				d.errorf(x, join(field, key), "applies to a NATS target only; this job reads from NATS")
			}
		}
		if core && len(nj.Subjects) == 0 {
			d.errorf(at("subjects"), field+".subjects", "missing (a core NATS source subscribes to subjects; or name a JetStream stream)")
		}
		topic := nj.Topic
		if topic == "" {
			topic = nj.Stream
		}
		switch {
		case topic == "":
			d.errorf(at("topic"), field+".topic", "missing (the topic name the NATS source's messages are read under)")
		case checkTopicName(topic) != "":
			d.errorf(at("stream"), field+".topic", "the stream's name %q is not a topic name: give topic:", topic)
		default:
			for _, s := range natsSources {
				if !s.Matches(topic) {
					d.errorf(at("topic"), field+".topic", "source %s presents one topic, %q, which its topics: patterns do not match", s.Cluster, topic)
				}
			}
		}
	} else {
		for _, key := range natsSourceOnly {
			if x := nm[key]; x != nil {
				d.errorf(x, join(field, key), "applies to a NATS source only; this job writes to NATS")
			}
		}
		if core {
			for _, key := range []string{"create_stream", "duplicate_window", "restart_budget"} {
				if x := nm[key]; x != nil {
					d.errorf(x, join(field, key), "needs a JetStream stream (give stream:)")
				}
			}
		}
		if nj.CreateStream && len(nj.Subjects) == 0 {
			d.errorf(at("create_stream"), field+".subjects", "missing (create_stream needs the stream's subjects)")
		}
		if nj.DuplicateWindow > 0 && nj.RestartBudget > nj.DuplicateWindow && nj.CreateStream {
			d.errorf(at("restart_budget"), field+".restart_budget", "%v is longer than duplicate_window %v of the stream created (deduplication would not cover it)", nj.RestartBudget, nj.DuplicateWindow)
		}
	}
	return nj
}

// validSubject checks a NATS subject; wildcards allows '*' tokens and a
// final '>'.
func validSubject(s string, wildcards bool) bool {
	if s == "" {
		return false
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		if t == "" {
			return false
		}
		if wildcards && (t == "*" || (t == ">" && i == len(toks)-1)) {
			continue
		}
		for _, c := range []byte(t) {
			if c <= 0x20 || c > 0x7e || c == '*' || c == '>' {
				return false
			}
		}
	}
	return true
}

// checkSubjectTemplate checks a subject template as bridge/nats does:
// placeholders {topic}, {cluster}, {partition}, {key}, each standing for
// at least one token's worth of text.
func checkSubjectTemplate(s string) string {
	sample := s
	for _, p := range []string{"{topic}", "{cluster}", "{partition}", "{key}"} {
		sample = strings.ReplaceAll(sample, p, "x")
	}
	if strings.ContainsAny(sample, "{}") {
		return fmt.Sprintf("%q has an unknown placeholder (allowed: {topic}, {cluster}, {partition}, {key})", s)
	}
	if !validSubject(sample, false) {
		return fmt.Sprintf("%q is not a subject template (tokens separated by single dots, no blanks, '*' or '>')", s)
	}
	return ""
}
