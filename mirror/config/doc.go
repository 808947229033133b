// Package config reads mirror job files: it expands environment
// references, parses the YAML, checks every rule, and builds the
// mirror.JobSpec values the pipeline runs. It also plans a file (File.Plan):
// which topics would be mirrored where, and which collide or loop, without
// moving data.
//
// # The job file
//
//	clusters:                            # name -> how to reach it
//	  east:
//	    bootstrap: ["${EAST_BOOTSTRAP}"] # host:port list, or one "a:9092,b:9092" string
//	    client_id: tributary-mirror      # optional
//	    version: "2.8.0"                 # optional Kafka protocol version pin
//	    security:                        # optional; default plaintext
//	      tls: {ca_file: ca.pem, cert_file: c.pem, key_file: c.key, server_name: x, insecure_skip_verify: false}
//	      sasl: {mechanism: SCRAM-SHA-512, username: u, password: "${PASS}"}  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
//	  central:
//	    consul: {cluster: central, datacenter: dc1}  # instead of bootstrap
//	jobs:
//	  - name: aggregate-orders           # unique; lowercase letters, digits, - _ .
//	    sources:                         # one entry per cluster
//	      - cluster: east
//	        topics: [orders]             # patterns matching whole topic names
//	        exclude: ['.*\.tmp']         # optional
//	    targets: [central]               # one flow per target
//	    rename: identity                 # identity | prefix | {prefix: "dc1."} | {template: "{cluster}.{topic}"}
//	    partitioning: preserve           # preserve | key-hash | round-robin
//	    start: earliest                  # earliest | latest | 2026-01-02T15:04:05Z
//	    rate_limit: 50MiB                # bytes/s per flow; optional
//	    oversized: dead-letter           # fail | skip | dead-letter
//	    dead_letter_topic: orders.dlq    # with dead-letter only, on the target
//	    topic_sync: {create: true, configs: [retention.ms], add_partitions: true}
//	    delivery: at-least-once          # at-least-once | exactly-once
//	    tuning: {max_in_flight_bytes: 64MiB, max_batch_records: 10000, max_batch_bytes: 4MiB,
//	             linger: 5ms, metadata_refresh: 30s, retry_backoff: 200ms, max_retry_backoff: 10s}
//
// Defaults: rename identity, partitioning preserve, start earliest, no rate
// limit, oversized fail, topic_sync {create: true, configs: [],
// add_partitions: true}, delivery at-least-once, and tuning values from the
// mirror.Default* constants. "prefix" alone means {prefix: "{cluster}."}.
// Sizes are whole numbers with an optional unit (B, KiB, MiB, GiB, KB, MB,
// GB; none means bytes); durations are Go durations with a unit (5ms, 30s).
// Patterns are Go regular expressions matched against whole names; topics
// starting with "__" match only a pattern that is their literal name.
//
// # Environment
//
// Before parsing, ${VAR} is replaced with the variable's value and
// ${VAR:-default} with its value, or default when it is unset or empty; $$
// stands for a literal $. An unset variable without a default is an error,
// not an empty string. Values are inserted as they are, before YAML sees
// them, so quote a reference whose value could contain YAML syntax.
// References in comments (from a '#' at the start of a line or after a
// blank, outside a quoted scalar) are left alone. With Options.NoEnv (jobs
// that do not come from the local filesystem) every reference is an error.
//
// # Errors
//
// Parse reports every problem of a file at once: a multierr of *Error
// values, each matching ErrInvalid and formatted as
// "FILE:LINE:COL: path.to.field: what is wrong (what is allowed)", with the
// line and column of the original file, before expansion. Unknown keys are
// errors. A problem that follows from another one (a bad value where a
// variable was unset) is reported once.
package config
