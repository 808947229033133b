package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/multierr"

	"github.com/tributary/tributary/mirror"
)

// TestNATSExamples checks that the two NATS examples say what README.md
// says they do.
func TestNATSExamples(t *testing.T) {
	dir := configsDir(t)
	env := envOf(map[string]string{"KAFKA_BOOTSTRAP": "127.0.0.1:9092", "NATS_URL": "nats://127.0.0.1:4222"})
	f, err := Load(filepath.Join(dir, "kafka-to-jetstream.yaml"), Options{LookupEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	j := f.Jobs[0]
	nj := f.NATS[j.Name]
	if ev := f.Clusters["events"]; ev.NATS == nil || ev.NATS.Servers[0] != "nats://127.0.0.1:4222" || ev.Bootstrap != nil {
		t.Errorf("events cluster %+v", ev)
	}
	if j.Delivery != mirror.ExactlyOnce || !j.Sources[0].Matches("orders") || j.Targets[0] != "events" ||
		nj == nil || nj.Stream != "ORDERS" || !nj.CreateStream || len(nj.Subjects) != 1 || nj.Subjects[0] != "orders.>" ||
		nj.DuplicateWindow != 10*time.Minute || nj.Subject != "orders.{key}" {
		t.Errorf("kafka-to-jetstream.yaml: job %+v, nats %+v", j, nj)
	}

	f, err = Load(filepath.Join(dir, "jetstream-to-kafka.yaml"), Options{LookupEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	j = f.Jobs[0]
	nj = f.NATS[j.Name]
	if j.Delivery != mirror.AtLeastOnce || j.Sources[0].Cluster != "events" || j.Targets[0] != "kafka" || j.Partitioning != mirror.PartitionKeyHash ||
		nj == nil || nj.Stream != "ORDERS" || nj.Topic != "orders" || nj.Durable != "tributary-orders" || nj.MaxAckPending != 25000 || nj.AckWait != 5*time.Minute {
		t.Errorf("jetstream-to-kafka.yaml: job %+v, nats %+v", j, nj)
	}
}

func TestNATSDefaults(t *testing.T) {
	f, err := Parse("f.yaml", []byte(`clusters:
  k: {bootstrap: 127.0.0.1:9092}
  n: {nats: {servers: "nats://127.0.0.1:4222, 127.0.0.1:4223", token: secret, tls: {ca_file: ca.pem}}}
jobs:
  - name: into-core
    sources: [{cluster: k, topics: [orders]}]
    targets: [n]
  - name: plain
    sources: [{cluster: k, topics: [orders]}]
    targets: [k2]
`+"  - name: x\n    sources: [{cluster: n, topics: [ORDERS]}]\n    targets: [k]\n    nats: {stream: ORDERS}\n"), Options{})
	if err == nil {
		t.Fatal("unknown cluster k2 accepted")
	}
	f, err = Parse("f.yaml", []byte(`clusters:
  k: {bootstrap: 127.0.0.1:9092}
  n: {nats: {servers: "nats://127.0.0.1:4222, 127.0.0.1:4223", token: secret, tls: {ca_file: ca.pem}}}
jobs:
  - name: into-core
    sources: [{cluster: k, topics: [orders]}]
    targets: [n]
  - name: from-stream
    sources: [{cluster: n, topics: [ORDERS]}]
    targets: [k]
    nats: {stream: ORDERS}
  - name: kafka-only
    sources: [{cluster: n2, topics: [a]}]
    targets: [k]
`), Options{})
	if err == nil || len(multierr.Errors(err)) != 1 || !strings.Contains(err.Error(), `unknown cluster "n2"`) {
		t.Fatalf("want only the unknown cluster n2: %v", err)
	}
	f, err = Parse("f.yaml", []byte(`clusters:
  k: {bootstrap: 127.0.0.1:9092}
  n: {nats: {servers: "nats://127.0.0.1:4222, 127.0.0.1:4223", token: secret, tls: {ca_file: ca.pem}}}
jobs:
  - name: into-core
    sources: [{cluster: k, topics: [orders]}]
    targets: [n]
  - name: from-stream
    sources: [{cluster: n, topics: [ORDERS]}]
    targets: [k]
    nats: {stream: ORDERS}
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := f.Clusters["n"].NATS
	if n == nil || len(n.Servers) != 2 || n.Token != "secret" || n.TLS == nil || n.TLS.CAFile != "ca.pem" {
		t.Errorf("nats cluster %+v", n)
	}
	if nj := f.NATS["into-core"]; nj == nil || nj.Stream != "" || nj.Subject != "" {
		t.Errorf("into-core mapping %+v (a job with a NATS target gets one, with defaults left zero)", nj)
	}
	if nj := f.NATS["from-stream"]; nj == nil || nj.Stream != "ORDERS" || nj.Topic != "" {
		t.Errorf("from-stream mapping %+v", nj)
	}
}

func TestNATSMistakes(t *testing.T) {
	const clusters = `clusters:
  k: {bootstrap: 127.0.0.1:9092}
  n: {nats: {servers: [nats://127.0.0.1:4222]}}
  n2: {nats: {servers: [nats://127.0.0.1:4223]}}
jobs:
`
	tests := []struct {
		name, jobs string
		want       []string // substrings, one per problem, in order
	}{
		{"exactly-once from core", `  - name: j
    sources: [{cluster: n, topics: [t]}]
    targets: [k]
    delivery: exactly-once
    nats: {subjects: [a.>], topic: t}
`, []string{"exactly-once with core NATS"}},
		{"exactly-once into core", `  - name: j
    sources: [{cluster: k, topics: [t]}]
    targets: [n]
    delivery: exactly-once
`, []string{"exactly-once with core NATS"}},
		{"nats without NATS endpoints", `  - name: j
    sources: [{cluster: k, topics: [t]}]
    targets: [k2]
    nats: {stream: S}
`, []string{`unknown cluster "k2"`, "no source or target of this job is a NATS cluster"}},
		{"both sides", `  - name: j
    sources: [{cluster: n, topics: [t]}]
    targets: [n2]
`, []string{"NATS clusters on both sides"}},
		{"core source without subjects or topic", `  - name: j
    sources: [{cluster: n, topics: [t]}]
    targets: [k]
`, []string{"subjects: missing", "topic: missing"}},
		{"topic not matched", `  - name: j
    sources: [{cluster: n, topics: [t]}]
    targets: [k]
    nats: {stream: ORDERS, subject: "x.{key}", durable: a.b}
`, []string{`presents one topic, "ORDERS"`, "subject: applies to a NATS target only", "durable: bad consumer name"}},
		{"one durable for several targets", `  - name: j
    sources: [{cluster: n, topics: [ORDERS]}]
    targets: [k, k2]
    nats: {stream: ORDERS, durable: mine}
`, []string{`unknown cluster "k2"`, "one durable consumer cannot serve 2 targets"}},
		{"target mistakes", `  - name: j
    sources: [{cluster: k, topics: [t]}]
    targets: [n]
    nats: {stream: S, create_stream: true, subject: "a..{nope}", key_header: "Nats-Key", topic: t, duplicate_window: 1m, restart_budget: 5m}
`, []string{"create_stream needs the stream's subjects", "unknown placeholder", "key_header: bad header name", "topic: applies to a NATS source only", "longer than duplicate_window"}},
		{"core target with stream options", `  - name: j
    sources: [{cluster: k, topics: [t]}]
    targets: [n]
    nats: {duplicate_window: 1m, subject: "a b"}
`, []string{"duplicate_window: needs a JetStream stream", "is not a subject template"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(clusters+tt.jobs), Options{})
			errs := multierr.Errors(err)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tt.want[i]) {
					t.Errorf("problem %d: %v\nwant it to contain %q", i, e, tt.want[i])
				}
			}
		})
	}

	_, err := Parse("f.yaml", []byte(`clusters:
  n: {nats: {servers: ["http://x:1", "nats://u:p@h:4222"], user: u, token: t}, bootstrap: 127.0.0.1:9092}
  m: {nats: {}}
jobs:
  - name: j
    sources: [{cluster: n, topics: [t]}]
    targets: [m]
`), Options{})
	for _, want := range []string{"scheme http", "NATS URL with credentials", "user and password go together", "more than one way to authenticate", "bootstrap: given with nats:", "servers: missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("cluster mistakes: want %q in %v", want, err)
		}
	}
}
