package nats

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tributary/tributary/mirror"
)

// Control headers the bridge writes besides the key header.
const (
	// HeaderTombstone marks a record whose value is null (a Kafka
	// tombstone); without it an empty payload is an empty value.
	HeaderTombstone = "Tributary-Tombstone"
	// HeaderTimestamp carries the record's timestamp in Unix milliseconds.
	HeaderTimestamp = "Tributary-Timestamp"
	// HeaderMsgID is JetStream's deduplication header.
	HeaderMsgID = "Nats-Msg-Id"
)

// Markers of the escaped forms of keys, header names and header values.
const (
	markerNull   = "~n"
	markerEmpty  = "~e"
	markerBase64 = "~b"
)

var b64 = base64.RawURLEncoding

// escape encodes b as printable text: "~n" for nil, "~e" for empty, b
// itself when plain says it is safe and it does not start with '~', else
// "~b" and its unpadded base64url form.
func escape(b []byte, plain func([]byte) bool) string {
	switch {
	case b == nil:
		return markerNull
	case len(b) == 0:
		return markerEmpty
	case b[0] != '~' && plain(b):
		return string(b)
	}
	return markerBase64 + b64.EncodeToString(b)
}

// unescape reverses escape. Text in none of the escaped forms (written by
// a NATS client, not by Tributary) is taken as it is.
func unescape(s string) []byte {
	switch {
	case s == markerNull:
		return nil
	case s == markerEmpty:
		return []byte{}
	case strings.HasPrefix(s, markerBase64):
		if b, err := b64.DecodeString(s[len(markerBase64):]); err == nil && len(b) > 0 {
			return b
		}
	}
	return []byte(s)
}

// plainValue: a header value NATS carries unchanged — printable ASCII
// without leading or trailing blanks (nats.go trims those).
func plainValue(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return b[0] != ' ' && b[len(b)-1] != ' '
}

// plainToken: a subject token — printable ASCII without blanks, '.', '*'
// or '>'.
func plainToken(b []byte) bool {
	for _, c := range b {
		if c <= 0x20 || c > 0x7e || c == '.' || c == '*' || c == '>' {
			return false
		}
	}
	return true
}

// plainName: a header name — printable ASCII without blanks or ':'.
func plainName(b []byte) bool {
	for _, c := range b {
		if c <= 0x20 || c > 0x7e || c == ':' {
			return false
		}
	}
	return true
}

// codec translates records to NATS messages and back under a Mapping.
type codec struct {
	keyHeader string
	subject   *subjectTemplate
}

func newCodec(m *Mapping) (*codec, error) {
	t, err := parseSubjectTemplate(m.Subject)
	if err != nil {
		return nil, err
	}
	return &codec{keyHeader: m.KeyHeader, subject: t}, nil
}

// reserved reports whether a header name belongs to the bridge or to NATS:
// a Kafka header with such a name is written escaped.
func (c *codec) reserved(name string) bool {
	return hasPrefixFold(name, "nats-") || hasPrefixFold(name, "tributary-") || strings.EqualFold(name, c.keyHeader)
}

// hasPrefixFold is strings.HasPrefix under Unicode case folding, without
// allocating.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func (c *codec) headerName(name string) string {
	if name != "" && name[0] != '~' && plainName([]byte(name)) && !c.reserved(name) {
		return name
	}
	return escape([]byte(name), func([]byte) bool { return false })
}

// message builds the NATS message of a record (without Nats-Msg-Id).
func (c *codec) message(r *mirror.OutRecord) *nats.Msg {
	var a msgArena
	return c.messageIn(&a, r)
}

// messageIn builds the NATS message of a record (without Nats-Msg-Id),
// taking its text and header value slices from a. The header map has room
// for Nats-Msg-Id.
func (c *codec) messageIn(a *msgArena, r *mirror.OutRecord) *nats.Msg {
	h := make(nats.Header, len(r.Headers)+4)
	h[c.keyHeader] = a.value(a.escape(r.Key, plainValue))
	data := r.Value
	if r.Value == nil {
		h[HeaderTombstone] = a.value("true")
	}
	if !r.Timestamp.IsZero() {
		a.scratch = strconv.AppendInt(a.scratch[:0], r.Timestamp.UnixMilli(), 10)
		h[HeaderTimestamp] = a.value(a.text(a.scratch))
	}
	for _, hd := range r.Headers {
		name := c.headerName(hd.Key)
		if vs, ok := h[name]; ok {
			h[name] = append(vs, a.escape(hd.Value, plainValue))
		} else {
			h[name] = a.value(a.escape(hd.Value, plainValue))
		}
	}
	return &nats.Msg{Subject: c.subject.expand(r), Header: h, Data: data}
}

// msgArena holds the text and the header value slices of a batch of
// messages, so that encoding a message takes a few allocations per batch
// instead of several per header. Strings it returned stay valid and
// unchanged for as long as they are referenced: the arena only appends.
// The zero value is ready to use.
type msgArena struct {
	buf     strings.Builder
	values  []string // backing of one-element header value slices
	scratch []byte
}

// grow makes room for n more messages of about size bytes of text each.
func (a *msgArena) grow(n, size int) {
	a.buf.Grow(n * size)
	if cap(a.values)-len(a.values) < 4*n {
		a.values = make([]string, 0, 4*n)
	}
}

// text returns b as a string kept in the arena.
func (a *msgArena) text(b []byte) string {
	start := a.buf.Len()
	a.buf.Write(b)
	return a.buf.String()[start:]
}

// value returns a one-element header value slice holding v; appending to
// it copies.
func (a *msgArena) value(v string) []string {
	if len(a.values) == cap(a.values) {
		a.values = make([]string, 0, 64)
	}
	a.values = append(a.values, v)
	n := len(a.values)
	return a.values[n-1 : n : n]
}

// escape is escape kept in the arena.
func (a *msgArena) escape(b []byte, plain func([]byte) bool) string {
	switch {
	case b == nil:
		return markerNull
	case len(b) == 0:
		return markerEmpty
	case b[0] != '~' && plain(b):
		return a.text(b)
	}
	a.scratch = append(a.scratch[:0], markerBase64...)
	a.scratch = b64.AppendEncode(a.scratch, b)
	return a.text(a.scratch)
}

// msgID is a record's Nats-Msg-Id (see msgID) kept in the arena.
func (a *msgArena) msgID(r *mirror.OutRecord) string {
	a.scratch = appendMsgID(a.scratch[:0], r)
	return a.text(a.scratch)
}

// record builds the record of a NATS message. A message without the key
// header (published by a NATS client) gets its subject as key. ts is the
// message's time on the NATS side, used when it carries no
// HeaderTimestamp.
func (c *codec) record(subject string, h nats.Header, data []byte, ts time.Time) mirror.Record {
	r := mirror.Record{Value: data, Timestamp: ts}
	if r.Value == nil {
		r.Value = []byte{}
	}
	if vs, ok := h[c.keyHeader]; ok && len(vs) > 0 {
		r.Key = unescape(vs[0])
	} else {
		r.Key = []byte(subject)
	}
	if _, ok := h[HeaderTombstone]; ok {
		r.Value = nil
	}
	if vs, ok := h[HeaderTimestamp]; ok && len(vs) > 0 {
		if ms, err := strconv.ParseInt(vs[0], 10, 64); err == nil {
			r.Timestamp = time.UnixMilli(ms)
		}
	}
	if len(h) == 0 {
		return r
	}
	names := make([]string, 0, len(h))
	for name := range h {
		if name == c.keyHeader || name == HeaderTombstone || name == HeaderTimestamp || strings.HasPrefix(strings.ToLower(name), "nats-") {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		key := string(unescape(name))
		for _, v := range h[name] {
			r.Headers = append(r.Headers, mirror.Header{Key: key, Value: unescape(v)})
		}
	}
	return r
}

// msgID is a record's Nats-Msg-Id: where its provenance says it was read
// (source cluster, topic, partition, offset), so a replay of the same
// source record carries the same ID.
func msgID(r *mirror.OutRecord) string { return string(appendMsgID(nil, r)) }

// appendMsgID appends a record's Nats-Msg-Id to dst.
func appendMsgID(dst []byte, r *mirror.OutRecord) []byte {
	var cluster, topic string
	var partition int32
	var offset int64
	if p := mirror.ProvenanceOf(r.Headers); p != nil {
		cluster, topic, partition, offset = p.Source(), p.Topic, p.Partition, p.Offset
	} else {
		s := r.Source
		cluster, topic, partition, offset = s.Cluster, s.Topic, s.Partition, s.Offset
	}
	dst = append(dst, cluster...)
	dst = append(dst, ':')
	dst = append(dst, topic...)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(partition), 10)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, offset, 10)
}

// msgSize approximates a message's size on the wire for the max_payload
// check: headers in their text form plus the payload.
func msgSize(m *nats.Msg) int {
	n := len("NATS/1.0\r\n\r\n") + len(m.Data)
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// ErrBadSubject is matched by errors of subject templates.
var ErrBadSubject = errors.New("bad subject template")

// subjectTemplate is a parsed subject template: literal parts and
// placeholders.
type subjectTemplate struct {
	parts []subjectPart
}

type subjectPart struct {
	literal     string
	placeholder string // topic, cluster, partition or key; "" for a literal
}

// Placeholders of subject templates.
var subjectPlaceholders = []string{"topic", "cluster", "partition", "key"}

// ParseSubject checks a subject template: placeholders {topic}, {cluster},
// {partition}, {key}; literal text of subject characters; no empty token.
func ParseSubject(s string) error {
	_, err := parseSubjectTemplate(s)
	return err
}

func parseSubjectTemplate(s string) (*subjectTemplate, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadSubject)
	}
	t := &subjectTemplate{}
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, subjectPart{literal: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, subjectPart{literal: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("%w: %q has an unclosed '{'", ErrBadSubject, s)
		}
		name := rest[i+1 : i+j]
		ok := false
		for _, p := range subjectPlaceholders {
			ok = ok || p == name
		}
		if !ok {
			return nil, fmt.Errorf("%w: %q has unknown placeholder {%s} (allowed: {topic}, {cluster}, {partition}, {key})", ErrBadSubject, s, name)
		}
		t.parts = append(t.parts, subjectPart{placeholder: name})
		rest = rest[i+j+1:]
	}
	// Check the shape with every placeholder standing for one token.
	var sample strings.Builder
	for _, p := range t.parts {
		if p.placeholder != "" {
			sample.WriteString("x")
		} else {
			sample.WriteString(p.literal)
		}
	}
	for _, tok := range strings.Split(sample.String(), ".") {
		if tok == "" {
			return nil, fmt.Errorf("%w: %q has an empty token (subjects are tokens separated by single dots)", ErrBadSubject, s)
		}
		if !plainToken([]byte(tok)) {
			return nil, fmt.Errorf("%w: %q holds characters a subject cannot (blanks, '*', '>', non-ASCII)", ErrBadSubject, s)
		}
	}
	return t, nil
}

func (t *subjectTemplate) expand(r *mirror.OutRecord) string {
	if len(t.parts) == 1 && t.parts[0].placeholder == "" {
		return t.parts[0].literal
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.placeholder {
		case "":
			b.WriteString(p.literal)
		case "topic":
			b.WriteString(r.Topic)
		case "cluster":
			b.WriteString(r.Source.Cluster)
		case "partition":
			b.WriteString(strconv.Itoa(int(r.Partition)))
		case "key":
			b.WriteString(escape(r.Key, plainToken))
		}
	}
	return b.String()
}
