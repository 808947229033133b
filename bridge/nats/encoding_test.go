package nats

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tributary/tributary/mirror"
)

func TestEscape(t *testing.T) {
	cases := []struct {
		in    []byte
		value string
		token string
	}{
		{nil, "~n", "~n"},
		{[]byte{}, "~e", "~e"},
		{[]byte("abc"), "abc", "abc"},
		{[]byte("a b"), "a b", "~bYSBi"},
		{[]byte(" a"), "~bIGE", "~bIGE"},
		{[]byte("a.b"), "a.b", "~bYS5i"},
		{[]byte("~n"), "~bfm4", "~bfm4"},
		{[]byte{0, 0xff}, "~bAP8", "~bAP8"},
		{[]byte("x\r\n"), "~beA0K", "~beA0K"},
		{[]byte("a*"), "a*", "~bYSo"},
	}
	for _, c := range cases {
		if got := escape(c.in, plainValue); got != c.value {
			t.Errorf("escape(%q) value = %q, want %q", c.in, got, c.value)
		}
		if got := escape(c.in, plainToken); got != c.token {
			t.Errorf("escape(%q) token = %q, want %q", c.in, got, c.token)
		}
		for _, enc := range []string{c.value, c.token} {
			back := unescape(enc)
			if !bytes.Equal(back, c.in) || (back == nil) != (c.in == nil) {
				t.Errorf("unescape(%q) = %q, want %q", enc, back, c.in)
			}
		}
	}
	// Text that is not an escaped form stays as it is.
	for _, s := range []string{"~x", "~b!!", "plain", "~"} {
		if got := string(unescape(s)); got != s {
			t.Errorf("unescape(%q) = %q", s, got)
		}
	}
}

func TestSubjectTemplate(t *testing.T) {
	rec := &mirror.OutRecord{Record: mirror.Record{Key: []byte("a.b"), Source: mirror.SourcePosition{SourcePartition: mirror.SourcePartition{Cluster: "east"}}},
		Topic: "orders", Partition: 3}
	for tmpl, want := range map[string]string{
		"{topic}":                 "orders",
		"orders.{key}":            "orders.~bYS5i",
		"{cluster}.{topic}":       "east.orders",
		"x.{topic}-{partition}.y": "x.orders-3.y",
	} {
		st, err := parseSubjectTemplate(tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tmpl, err)
		}
		if got := st.expand(rec); got != want {
			t.Errorf("%q expands to %q, want %q", tmpl, got, want)
		}
	}
	null := &mirror.OutRecord{Topic: "orders"}
	st, _ := parseSubjectTemplate("orders.{key}")
	if got := st.expand(null); got != "orders.~n" {
		t.Errorf("null key subject %q", got)
	}
	for _, bad := range []string{"", "a..b", ".a", "a.", "a b", "a.>", "a.*", "{nope}", "{topic", "é"} {
		if err := ParseSubject(bad); !errors.Is(err, ErrBadSubject) {
			t.Errorf("ParseSubject(%q) = %v, want ErrBadSubject", bad, err)
		}
	}
}

func TestHeaderNames(t *testing.T) {
	c := &codec{keyHeader: DefaultKeyHeader}
	for name, escaped := range map[string]bool{
		"trace-id": false, "tributary.prov": false, "Nats-Msg-Id": true, "nats-expected-stream": true,
		"Tributary-Key": true, "tributary-timestamp": true, "a b": true, "a:b": true, "": true, "~x": true, "é": true,
	} {
		got := c.headerName(name)
		if (got != name) != escaped {
			t.Errorf("headerName(%q) = %q, escaped want %v", name, got, escaped)
		}
		if string(unescape(got)) != name {
			t.Errorf("headerName(%q) = %q does not decode back", name, got)
		}
	}
}
