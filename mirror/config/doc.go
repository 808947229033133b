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
//	  events:                            # a NATS system instead of Kafka
//	    nats:
//	      servers: ["nats://127.0.0.1:4222"]       # URLs or host:port
//	      token: "${NATS_TOKEN}"         # or user+password | nkey_seed_file | creds_file
//	      tls: {ca_file: ca.pem}         # as for Kafka clusters; optional
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
//	  - name: orders-to-nats             # a job with a NATS source or target
//	    sources: [{cluster: east, topics: [orders]}]
//	    targets: [events]
//	    delivery: exactly-once           # JetStream only: by Nats-Msg-Id
//	    nats:
//	      stream: ORDERS                 # JetStream stream; omit for core NATS
//	      subjects: ["orders.>"]         # stream subjects if created; a core source's subscriptions
//	      create_stream: true            # targets: create the stream when missing
//	      duplicate_window: 10m          # targets: of a created stream
//	      restart_budget: 10m            # targets: warn if an existing stream's window is shorter
//	      subject: "orders.{key}"        # targets: {topic} {cluster} {partition} {key}
//	      key_header: Tributary-Key      # the header carrying the Kafka key
//	      checkpoint_bucket: tributary_checkpoints  # targets: key-value bucket of checkpoints
//	      # sources only: topic: orders (default: the stream's name), durable:
//	      # tributary-JOB_TARGET (one per flow), ack_wait: 5m, max_ack_pending: 25000
//
// Defaults: rename identity, partitioning preserve, start earliest, no rate
// limit, oversized fail, topic_sync {create: true, configs: [],
// add_partitions: true}, delivery at-least-once, and tuning values from the
// mirror.Default* constants. "prefix" alone means {prefix: "{cluster}."}.
// NATS: a cluster with nats: is a NATS system; a job reading or writing one
// takes its mapping from its nats: block (bridge/nats documents the
// encoding and the defaults left out here: subject "{topic}", key_header
// Tributary-Key, duplicate_window 10m, restart_budget the duplicate
// window, ack_wait 5m, max_ack_pending 25000). Rules: a nats: block needs a
// NATS source or target, and NATS may not be on both sides; options of the
// other direction are errors; core NATS (no stream:) is at-most-once, so
// delivery: exactly-once needs a stream; a NATS source presents one topic
// (topic:, default the stream's name), which its topics: must match; a
// core source needs subjects:, and create_stream needs subjects: too.
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
