package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/multierr"

	"github.com/tributary/tributary/mirror"
)

const clustersYAML = `clusters:
  east:
    bootstrap: [127.0.0.1:9092]
  west:
    bootstrap: 127.0.0.1:9093, 127.0.0.1:9193
  central:
    bootstrap: ["127.0.0.1:9094"]
jobs:
`

func TestParseFull(t *testing.T) {
	const file = `clusters:
  east:
    bootstrap: [127.0.0.1:9092, "127.0.0.2:9092"]
    client_id: mirror-east
    version: "2.8.0"
    security:
      tls: {ca_file: ca.pem, cert_file: c.pem, key_file: c.key, server_name: east.example, insecure_skip_verify: true}
      sasl: {mechanism: SCRAM-SHA-512, username: u, password: p}
  west:
    consul: {cluster: west-1, datacenter: dc2}
  central:
    consul: {}
    security: {tls: true}
jobs:
  - name: aggregate.orders_v2
    sources:
      - cluster: east
        topics: [orders, 'orders\..*']
        exclude: ['.*\.tmp']
      - cluster: west
        topics: [orders]
    targets: [central]
    rename: {template: "{cluster}-{topic}"}
    partitioning: key-hash
    start: 2026-01-02T15:04:05+01:00
    rate_limit: 50MiB
    oversized: dead-letter
    dead_letter_topic: orders.dlq
    topic_sync: {create: false, configs: [retention.ms, cleanup.policy], add_partitions: false}
    delivery: exactly-once
    tuning: {max_in_flight_bytes: 128MiB, max_batch_records: 500, max_batch_bytes: 1MB, linger: 10ms, metadata_refresh: 1m, retry_backoff: 1s, max_retry_backoff: 30s}
  - name: defaults
    sources: [{cluster: central, topics: [announcements]}]
    targets: [east, west]
`
	f, err := Parse("full.yaml", []byte(file), Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantClusters := map[string]Cluster{
		"east": {
			Name: "east", Bootstrap: []string{"127.0.0.1:9092", "127.0.0.2:9092"},
			ClientID: "mirror-east", Version: "2.8.0",
			Security: Security{
				TLS:  &TLS{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "c.key", ServerName: "east.example", InsecureSkipVerify: true},
				SASL: &SASL{Mechanism: SASLScramSHA512, Username: "u", Password: "p"},
			},
		},
		"west":    {Name: "west", Consul: &ConsulRef{Cluster: "west-1", Datacenter: "dc2"}},
		"central": {Name: "central", Consul: &ConsulRef{Cluster: "central"}, Security: Security{TLS: &TLS{}}},
	}
	if !reflect.DeepEqual(f.Clusters, wantClusters) {
		t.Errorf("clusters:\n got %+v\nwant %+v", f.Clusters, wantClusters)
	}
	if len(f.Jobs) != 2 {
		t.Fatalf("%d jobs, want 2", len(f.Jobs))
	}
	j := f.Jobs[0]
	if j.Name != "aggregate.orders_v2" || !reflect.DeepEqual(j.Targets, []string{"central"}) {
		t.Errorf("name %q targets %v", j.Name, j.Targets)
	}
	if len(j.Sources) != 2 || j.Sources[0].Cluster != "east" || j.Sources[1].Cluster != "west" {
		t.Fatalf("sources %+v", j.Sources)
	}
	for topic, want := range map[string]bool{"orders": true, "orders.eu": true, "orders.eu.tmp": false, "ordersx": false, "__orders": false} {
		if got := j.Sources[0].Matches(topic); got != want {
			t.Errorf("east source matches %q = %v, want %v", topic, got, want)
		}
	}
	if got := j.Rename.Target("east", "orders"); got != "east-orders" {
		t.Errorf("rename gives %q", got)
	}
	start := time.Date(2026, 1, 2, 14, 4, 5, 0, time.UTC)
	if j.Start.Kind != mirror.StartTimestamp || !j.Start.Time.Equal(start) {
		t.Errorf("start %+v, want %v", j.Start, start)
	}
	if j.Partitioning != mirror.PartitionKeyHash || j.Delivery != mirror.ExactlyOnce {
		t.Errorf("partitioning %v delivery %v", j.Partitioning, j.Delivery)
	}
	if j.RateLimitBytes != 50<<20 {
		t.Errorf("rate limit %d", j.RateLimitBytes)
	}
	if want := (mirror.Oversized{Kind: mirror.OversizedDeadLetter, DeadLetterTopic: "orders.dlq"}); j.Oversized != want {
		t.Errorf("oversized %+v", j.Oversized)
	}
	if want := (mirror.TopicSync{Configs: []string{"retention.ms", "cleanup.policy"}}); !reflect.DeepEqual(j.TopicSync, want) {
		t.Errorf("topic sync %+v", j.TopicSync)
	}
	wantTuning := mirror.Tuning{MaxInFlightBytes: 128 << 20, MaxBatchRecords: 500, MaxBatchBytes: 1e6,
		Linger: 10 * time.Millisecond, MetadataRefresh: time.Minute, RetryBackoff: time.Second, MaxRetryBackoff: 30 * time.Second}
	if j.Tuning != wantTuning {
		t.Errorf("tuning %+v, want %+v", j.Tuning, wantTuning)
	}

	d := f.Jobs[1]
	if d.Rename != (mirror.Rename{}) || d.Partitioning != mirror.PartitionPreserve || d.Start != (mirror.StartPosition{}) ||
		d.RateLimitBytes != 0 || d.Oversized != (mirror.Oversized{}) || d.Delivery != mirror.AtLeastOnce || d.Tuning != (mirror.Tuning{}) {
		t.Errorf("defaults job: %+v", d)
	}
	if !reflect.DeepEqual(d.TopicSync, mirror.TopicSync{Create: true, AddPartitions: true}) {
		t.Errorf("default topic sync %+v", d.TopicSync)
	}
	if got, ok := f.Job("defaults"); !ok || got.Name != "defaults" {
		t.Errorf("Job(defaults) = %v, %v", got.Name, ok)
	}
}

// TestFiveMistakes checks that one parse reports every mistake, each at
// its line and column.
func TestFiveMistakes(t *testing.T) {
	const file = `clusters:
  east:
    bootstrap: [127.0.0.1:9092]
  west:
    bootstrap: [127.0.0.1:9093]
  central:
    bootstrap: [127.0.0.1:9094]
jobs:
  - name: aggregate-orders
    sources:
      - cluster: east
        topics: ['orders(']
      - cluster: north
        topics: [orders]
    targets: [central]
    partitioning: random
    rate_limit: 50MB/s
  - name: aggregate-orders
    sources: [{cluster: west, topics: [orders]}]
    targets: [central]
`
	_, err := Parse("five.yaml", []byte(file), Options{})
	checkErrors(t, err, []string{
		`five.yaml:12:18: jobs[0].sources[0].topics[0]: bad pattern "orders(": missing closing )`,
		`five.yaml:13:18: jobs[0].sources[1].cluster: unknown cluster "north" (defined: central, east, west)`,
		`five.yaml:16:19: jobs[0].partitioning: unknown value "random" (allowed: preserve, key-hash, round-robin)`,
		`five.yaml:17:17: jobs[0].rate_limit: "50MB/s" is not a size`,
		`five.yaml:18:11: jobs[1].name: duplicate job name "aggregate-orders" (first at line 9)`,
	})
}

// jobFile returns clustersYAML followed by job, and the line of job's line
// that holds the marker "#<" (0 if none).
func jobFile(job string) (string, int) {
	file := clustersYAML + job
	for i, l := range strings.Split(file, "\n") {
		if strings.Contains(l, "#<") {
			return file, i + 1
		}
	}
	return file, 0
}

func TestMistakes(t *testing.T) {
	tests := []struct {
		name, job string
		want      string // "field: message" prefix, at the line marked #<
	}{
		{"missing name", "  - sources: [{cluster: east, topics: [a]}] #<\n    targets: [central]\n", "jobs[0].name: missing"},
		{"empty name", "  - name: #<\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n", "jobs[0].name: empty"},
		{"bad name", "  - name: Orders #<\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n", `jobs[0].name: bad job name "Orders"`},
		{"name with slash", "  - name: a/b #<\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n", `jobs[0].name: bad job name "a/b"`},
		{"missing sources", "  - name: j #<\n    targets: [central]\n", "jobs[0].sources: missing"},
		{"empty sources", "  - name: j\n    sources: [] #<\n    targets: [central]\n", "jobs[0].sources: empty"},
		{"source not a mapping", "  - name: j\n    sources: [east] #<\n    targets: [central]\n", "jobs[0].sources[0]: expected a mapping"},
		{"source without topics", "  - name: j\n    sources:\n      - cluster: east #<\n    targets: [central]\n", "jobs[0].sources[0].topics: missing"},
		{"source with empty topics", "  - name: j\n    sources:\n      - cluster: east\n        topics: [] #<\n    targets: [central]\n", "jobs[0].sources[0].topics: empty"},
		{"topics not a list", "  - name: j\n    sources:\n      - cluster: east\n        topics: orders #<\n    targets: [central]\n", "jobs[0].sources[0].topics: expected a list"},
		{"empty pattern", "  - name: j\n    sources:\n      - cluster: east\n        topics: [''] #<\n    targets: [central]\n", "jobs[0].sources[0].topics[0]: empty pattern"},
		{"bad exclude", "  - name: j\n    sources:\n      - cluster: east\n        topics: [a]\n        exclude: ['*'] #<\n    targets: [central]\n", "jobs[0].sources[0].exclude[0]: bad pattern"},
		{"source twice", "  - name: j\n    sources:\n      - {cluster: east, topics: [a]}\n      - {cluster: east, topics: [b]} #<\n    targets: [central]\n", `jobs[0].sources[1].cluster: cluster "east" is already a source`},
		{"missing targets", "  - name: j #<\n    sources: [{cluster: east, topics: [a]}]\n", "jobs[0].targets: missing"},
		{"empty targets", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [] #<\n", "jobs[0].targets: empty"},
		{"targets not a list", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: central #<\n", "jobs[0].targets: expected a list"},
		{"unknown target", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central, south] #<\n", `jobs[0].targets[1]: unknown cluster "south"`},
		{"duplicate target", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central, central] #<\n", `jobs[0].targets[1]: duplicate target "central"`},
		{"identity into a source", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central, east] #<\n", `jobs[0].targets[1]: target "east" is also a source cluster`},
		{"template that keeps names into a source", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    rename: {template: '{topic}'}\n    targets: [east] #<\n", `jobs[0].targets[0]: target "east" is also a source cluster`},
		{"unknown rename", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    rename: suffix #<\n", `jobs[0].rename: unknown value "suffix"`},
		{"empty rename", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    rename: {} #<\n", `jobs[0].rename: expected one of prefix: or template:`},
		{"rename with two keys", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    rename: {prefix: a., template: b} #<\n", `jobs[0].rename: expected one of prefix: or template:`},
		{"rename unknown key", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    rename: {suffix: .x} #<\n", `jobs[0].rename.suffix: unknown key`},
		{"bad prefix", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    rename: {prefix: 'a/'} #<\n", `jobs[0].rename.prefix: "a/" holds characters`},
		{"bad template placeholder", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    rename: {template: '{dc}.{topic}'} #<\n", `jobs[0].rename.template: "{dc}.{topic}" holds characters`},
		{"empty template", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    rename: {template: ''} #<\n", `jobs[0].rename.template: empty`},
		{"bad start", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    start: 2026-13-01T00:00:00Z #<\n", `jobs[0].start: unknown value "2026-13-01T00:00:00Z" (allowed: earliest, latest, or an RFC 3339 timestamp`},
		{"date without time", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    start: 2026-01-01 #<\n", `jobs[0].start: unknown value "2026-01-01"`},
		{"negative rate", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    rate_limit: -5MiB #<\n", `jobs[0].rate_limit: "-5MiB" is negative`},
		{"bad unit", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    rate_limit: 5mb #<\n", `jobs[0].rate_limit: "5mb" is not a size`},
		{"fraction", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    rate_limit: 1.5MiB #<\n", `jobs[0].rate_limit: "1.5MiB" is not a size`},
		{"unknown oversized", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    oversized: truncate #<\n", `jobs[0].oversized: unknown value "truncate" (allowed: fail, skip, dead-letter)`},
		{"dead-letter without topic", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    oversized: dead-letter #<\n", `jobs[0].dead_letter_topic: missing`},
		{"topic without dead-letter", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    dead_letter_topic: dlq #<\n", `jobs[0].dead_letter_topic: given without oversized: dead-letter`},
		{"topic with skip", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    oversized: skip\n    dead_letter_topic: dlq #<\n", `jobs[0].dead_letter_topic: given without oversized: dead-letter`},
		{"bad dead-letter topic", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    oversized: dead-letter\n    dead_letter_topic: 'a b' #<\n", `jobs[0].dead_letter_topic: "a b" is not a topic name`},
		{"bad oversized with a topic", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    oversized: dlq #<\n    dead_letter_topic: dlq\n", `jobs[0].oversized: unknown value "dlq"`},
		{"name not a value", "  - name: [j] #<\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n", `jobs[0].name: expected a single value, found a list`},
		{"job not a mapping", "  - j #<\n", `jobs[0]: expected a mapping`},
		{"unknown delivery", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    delivery: at-most-once #<\n", `jobs[0].delivery: unknown value "at-most-once" (allowed: at-least-once, exactly-once)`},
		{"exactly-once round-robin", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    partitioning: round-robin #<\n    delivery: exactly-once\n", `jobs[0].partitioning: round-robin with delivery: exactly-once`},
		{"topic_sync bool", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    topic_sync: {create: maybe} #<\n", `jobs[0].topic_sync.create: "maybe" is not a boolean`},
		{"topic_sync config", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    topic_sync: {configs: ['Retention Ms']} #<\n", `jobs[0].topic_sync.configs[0]: "Retention Ms" is not a topic config name`},
		{"duration without unit", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    tuning: {linger: 5} #<\n", `jobs[0].tuning.linger: "5" is not a duration`},
		{"negative duration", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    tuning: {metadata_refresh: -1s} #<\n", `jobs[0].tuning.metadata_refresh: "-1s" is negative`},
		{"zero duration", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    tuning: {linger: 0s} #<\n", `jobs[0].tuning.linger: must be more than 0`},
		{"negative records", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    tuning: {max_batch_records: -3} #<\n", `jobs[0].tuning.max_batch_records: "-3" is negative`},
		{"negative bytes", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    tuning: {max_batch_bytes: -3} #<\n", `jobs[0].tuning.max_batch_bytes: "-3" is negative`},
		{"batch above in-flight", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    tuning: {max_in_flight_bytes: 1MiB, max_batch_bytes: 2MiB} #<\n", `jobs[0].tuning.max_batch_bytes: 2097152 is more than max_in_flight_bytes 1048576`},
		{"misspelt key", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    partitionning: preserve #<\n", `jobs[0].partitionning: unknown key; did you mean "partitioning"?`},
		{"misspelt required key", "  - name: j\n    source: [{cluster: east, topics: [a]}] #<\n    targets: [central]\n", `jobs[0].source: unknown key; did you mean "sources"?`},
		{"repeated key", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    targets: [west] #<\n", `jobs[0].targets: repeated key (first at line 11)`},
		{"duplicate names", "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n  - name: j #<\n    sources: [{cluster: west, topics: [a]}]\n    targets: [central]\n", `jobs[1].name: duplicate job name "j" (first at line 9)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, line := jobFile(tt.job)
			if line == 0 {
				t.Fatal("test case has no #< marker")
			}
			_, err := Parse("m.yaml", []byte(file), Options{})
			errs := multierr.Errors(err)
			if len(errs) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(errs), err)
			}
			var ce *Error
			if !errors.As(errs[0], &ce) {
				t.Fatalf("problem is %T", errs[0])
			}
			if ce.Line != line {
				t.Errorf("problem at line %d, want %d: %v", ce.Line, line, ce)
			}
			if got := ce.Field + ": " + ce.Msg; !strings.HasPrefix(got, tt.want) {
				t.Errorf("problem\n  %s\nwant prefix\n  %s", got, tt.want)
			}
		})
	}
}

func TestClusterMistakes(t *testing.T) {
	const job = "jobs:\n  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n"
	tests := []struct {
		name, clusters string
		want           string // at the line marked #<
	}{
		{"no bootstrap", "  east: {client_id: x} #<\n", "clusters.east: no bootstrap"},
		{"empty cluster", "  east: #<\n", "clusters.east: empty"},
		{"both", "  east:\n    bootstrap: [127.0.0.1:1]\n    consul: {cluster: e} #<\n", "clusters.east.consul: both bootstrap and consul"},
		{"bad address", "  east: {bootstrap: [localhost]} #<\n", `clusters.east.bootstrap: bad address "localhost"`},
		{"bad port", "  east: {bootstrap: 'a:1,b:99999'} #<\n", `clusters.east.bootstrap: bad port in "b:99999"`},
		{"empty bootstrap", "  east: {bootstrap: []} #<\n", `clusters.east.bootstrap: no addresses`},
		{"bad name", "  East: {bootstrap: [a:1]} #<\n  east: {bootstrap: [a:1]}\n", `clusters.East: bad cluster name`},
		{"repeated cluster", "  east: {bootstrap: [a:1]}\n  east: {bootstrap: [a:3]} #<\n", `clusters.east: repeated key (first at line 2)`},
		{"bad version", "  east: {bootstrap: [a:1], version: latest} #<\n", `clusters.east.version: bad Kafka version "latest"`},
		{"unknown key", "  east: {bootstrap: [a:1], brokers: [a:1]} #<\n", `clusters.east.brokers: unknown key`},
		{"sasl mechanism", "  east:\n    bootstrap: [a:1]\n    security: {sasl: {mechanism: GSSAPI, username: u, password: p}} #<\n", `clusters.east.security.sasl.mechanism: unknown value "GSSAPI" (allowed: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)`},
		{"sasl without password", "  east:\n    bootstrap: [a:1]\n    security:\n      sasl: {mechanism: PLAIN, username: u} #<\n", `clusters.east.security.sasl.password: missing`},
		{"cert without key", "  east:\n    bootstrap: [a:1]\n    security:\n      tls: {cert_file: c.pem} #<\n", `clusters.east.security.tls: cert_file and key_file go together`},
		{"tls not a bool", "  east:\n    bootstrap: [a:1]\n    security:\n      tls: yes-please #<\n", `clusters.east.security.tls: "yes-please" is not a boolean`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := "clusters:\n" + tt.clusters + "  central: {bootstrap: [a:2]}\n" + job
			line := 0
			for i, l := range strings.Split(file, "\n") {
				if strings.Contains(l, "#<") {
					line = i + 1
				}
			}
			_, err := Parse("c.yaml", []byte(file), Options{})
			errs := multierr.Errors(err)
			if len(errs) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(errs), err)
			}
			var ce *Error
			if !errors.As(errs[0], &ce) {
				t.Fatalf("problem is %T", errs[0])
			}
			if ce.Line != line {
				t.Errorf("problem at line %d, want %d: %v", ce.Line, line, ce)
			}
			if got := ce.Field + ": " + ce.Msg; !strings.HasPrefix(got, tt.want) {
				t.Errorf("problem\n  %s\nwant prefix\n  %s", got, tt.want)
			}
		})
	}
}

func TestFileMistakes(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"empty", "", "e.yaml:1:1: empty job file"},
		{"only comments", "# nothing\n", "e.yaml:1:1: empty job file"},
		{"not a mapping", "- a\n", "e.yaml:1:1: expected a mapping"},
		{"no jobs", "clusters: {east: {bootstrap: [a:1]}}\n", "e.yaml:1:1: jobs: missing"},
		{"no clusters", "jobs: []\n", "e.yaml:1:1: clusters: missing"},
		{"unknown top key", "clusters: {east: {bootstrap: [a:1]}}\njob: []\njobs: [{name: j, sources: [{cluster: east, topics: [a]}], targets: [east], rename: prefix}]\n", "e.yaml:2:1: job: unknown key; did you mean \"jobs\"?"},
		{"two documents", "clusters: {}\n---\njobs: []\n", "e.yaml:2:1: YAML syntax: a job file holds one YAML document"},
		// The syntax error is on the third line of the expanded text,
		// which is the second of the original file.
		{"syntax error after a multi-line value", "a: \"${TWO_LINES}\"\nb: [\n", "e.yaml:2:1: YAML syntax:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("e.yaml", []byte(tt.file), Options{LookupEnv: envOf(map[string]string{"TWO_LINES": "x\ny"})})
			if err == nil {
				t.Fatal("no error")
			}
			if first := multierr.Errors(err)[0].Error(); !strings.HasPrefix(first, tt.want) {
				t.Errorf("first problem\n  %s\nwant prefix\n  %s", first, tt.want)
			}
		})
	}
}

// TestEnums checks that each value of each enumerated field maps to its
// constant.
func TestEnums(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 800000000, time.UTC)
	tests := []struct {
		line  string
		check func(mirror.JobSpec) bool
	}{
		{"partitioning: preserve", func(j mirror.JobSpec) bool { return j.Partitioning == mirror.PartitionPreserve }},
		{"partitioning: key-hash", func(j mirror.JobSpec) bool { return j.Partitioning == mirror.PartitionKeyHash }},
		{"partitioning: round-robin", func(j mirror.JobSpec) bool { return j.Partitioning == mirror.PartitionRoundRobin }},
		{"start: earliest", func(j mirror.JobSpec) bool { return j.Start == mirror.StartPosition{Kind: mirror.StartEarliest} }},
		{"start: latest", func(j mirror.JobSpec) bool { return j.Start == mirror.StartPosition{Kind: mirror.StartLatest} }},
		{"start: 2026-03-04T05:06:07.8Z", func(j mirror.JobSpec) bool { return j.Start.Kind == mirror.StartTimestamp && j.Start.Time.Equal(ts) }},
		{"start: '2026-03-04T06:06:07.8+01:00'", func(j mirror.JobSpec) bool { return j.Start.Kind == mirror.StartTimestamp && j.Start.Time.Equal(ts) }},
		{"oversized: fail", func(j mirror.JobSpec) bool { return j.Oversized == mirror.Oversized{Kind: mirror.OversizedFail} }},
		{"oversized: skip", func(j mirror.JobSpec) bool { return j.Oversized == mirror.Oversized{Kind: mirror.OversizedSkip} }},
		{"oversized: dead-letter\n    dead_letter_topic: big", func(j mirror.JobSpec) bool {
			return j.Oversized == mirror.Oversized{Kind: mirror.OversizedDeadLetter, DeadLetterTopic: "big"}
		}},
		{"delivery: at-least-once", func(j mirror.JobSpec) bool { return j.Delivery == mirror.AtLeastOnce }},
		{"delivery: exactly-once", func(j mirror.JobSpec) bool { return j.Delivery == mirror.ExactlyOnce }},
		{"rename: identity", func(j mirror.JobSpec) bool { return j.Rename.Target("east", "orders") == "orders" }},
		{"rename: prefix", func(j mirror.JobSpec) bool { return j.Rename.Target("east", "orders") == "east.orders" }},
		{"rename: {prefix: dc1.}", func(j mirror.JobSpec) bool { return j.Rename.Target("east", "orders") == "dc1.orders" }},
		{"rename: {prefix: '{cluster}_'}", func(j mirror.JobSpec) bool { return j.Rename.Target("east", "orders") == "east_orders" }},
		{"rename: {template: '{topic}.from.{cluster}'}", func(j mirror.JobSpec) bool { return j.Rename.Target("east", "orders") == "orders.from.east" }},
		{"rate_limit: 1048576", func(j mirror.JobSpec) bool { return j.RateLimitBytes == 1<<20 }},
		{"rate_limit: 0", func(j mirror.JobSpec) bool { return j.RateLimitBytes == 0 }},
		{"rate_limit: 10B", func(j mirror.JobSpec) bool { return j.RateLimitBytes == 10 }},
		{"rate_limit: 2KiB", func(j mirror.JobSpec) bool { return j.RateLimitBytes == 2048 }},
		{"rate_limit: 3 GiB", func(j mirror.JobSpec) bool { return j.RateLimitBytes == 3<<30 }},
		{"rate_limit: 2KB", func(j mirror.JobSpec) bool { return j.RateLimitBytes == 2000 }},
		{"rate_limit: 5MB", func(j mirror.JobSpec) bool { return j.RateLimitBytes == 5e6 }},
		{"rate_limit: 1GB", func(j mirror.JobSpec) bool { return j.RateLimitBytes == 1e9 }},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			file := clustersYAML + "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    " + tt.line + "\n"
			f, err := Parse("enum.yaml", []byte(file), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(f.Jobs[0]) {
				t.Errorf("job %+v", f.Jobs[0])
			}
		})
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.yaml")
	file := clustersYAML + "  - name: j\n    sources: [{cluster: east, topics: [a]}]\n    targets: [central]\n    delivery: sometimes\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, Options{})
	checkErrors(t, err, []string{path + ":12:15: jobs[0].delivery: unknown value"})

	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"), Options{})
	if err == nil || errors.Is(err, ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loading a missing file: %v, want a not-exist error that is not ErrInvalid", err)
	}
}

func TestAliases(t *testing.T) {
	const file = `clusters:
  east: &plain {bootstrap: [127.0.0.1:1]}
  west: *plain
  central: {bootstrap: [127.0.0.1:3]}
jobs:
  - name: a
    sources: [{cluster: east, topics: &t [orders]}, {cluster: west, topics: *t}]
    targets: [central]
`
	f, err := Parse("alias.yaml", []byte(file), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Clusters["west"].Bootstrap; len(got) != 1 || got[0] != "127.0.0.1:1" {
		t.Errorf("west bootstrap %v", got)
	}
	if !f.Jobs[0].Sources[1].Matches("orders") {
		t.Error("west source does not match orders")
	}
}
