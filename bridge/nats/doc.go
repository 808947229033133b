// Package nats connects the mirror pipeline to NATS, core and JetStream,
// through github.com/nats-io/nats.go (its jetstream package). It owns two
// endpoints, both configured by a Config (how to reach the servers) and a
// Mapping (the job's mapping between Kafka topics and NATS subjects).
//
//   - Source (NewSource) implements mirror.Source. A JetStream stream is
//     presented as one topic (Mapping.Topic, default the stream's name)
//     with one partition whose offsets are the stream's sequence numbers.
//     It reads through a durable pull consumer (Mapping.Durable), fetching
//     Mapping.FetchBatch messages per pull request, with AckPolicy all,
//     AckWait far above the pipeline's latency (DefaultAckWait) and
//     MaxAckPending sized to a flow's in-flight window
//     (DefaultMaxAckPending). A message is acked only when the flow calls
//     Consumer.Acknowledge, after the target acknowledged it and the
//     checkpoint holds, so a crash redelivers and loses nothing. The
//     target's checkpoint is the position: at each session start the
//     durable consumer is recreated at the checkpoint's sequence (messages
//     a crashed session left unacked would otherwise return only after
//     AckWait, out of order), and a redelivered message whose sequence was
//     already handed over is dropped, so stream order — and with it the
//     order of every subject — holds into the target partition the flow
//     chooses by key. Core NATS subjects (Mapping.Subjects) are read the
//     same way with synthetic offsets counting messages from the
//     checkpoint: at-most-once, since what is published while the bridge
//     is not subscribed, or overflows its buffer (DefaultCoreBuffer), is
//     lost.
//
//   - Sink (NewSink) implements mirror.Sink. Into JetStream it publishes
//     asynchronously, each message with a Nats-Msg-Id made of where the
//     record's provenance header says it was read — source cluster, topic,
//     partition and offset, "east-id:orders:3:1042" — and Write returns
//     only once every PubAck came back (at most DefaultPublishMaxPending
//     are outstanding; after a failed one Write publishes no more of the
//     batch and fails); a replay after a crash therefore
//     carries the same IDs and the stream drops what it already holds
//     (exactly-once within the stream's duplicate window; PubAcks with the
//     duplicate flag are counted in tributary_nats_duplicates_total). A
//     stream the sink creates (Mapping.CreateStream) gets
//     Mapping.DuplicateWindow (default 10 minutes, JetStream's own is 2);
//     for an existing stream whose window is shorter than
//     Mapping.RestartBudget the sink logs a warning. Into core NATS it
//     publishes and flushes before Write returns: at-most-once (a message
//     no subscriber was listening for is gone). NATS has no topics: the
//     subject of a record comes from the template Mapping.Subject
//     (default "{topic}"; placeholders {topic}, {cluster} — the source
//     cluster's name —, {partition} — the target partition the flow chose
//     — and {key}, the key as a subject token, below), and CreateTopic and
//     AddPartitions do nothing.
//
// # Checkpoints
//
// A Sink keeps flow checkpoints in the JetStream key-value bucket
// Mapping.CheckpointBucket (default "tributary_checkpoints", created when
// missing with history 1, file storage), under the flow ID ("job/target")
// as key, written after every PubAck (or flush) of the batch. The value is
// the checkpoint value of package mirror (mirror.EncodeCheckpoint, JSON,
// version 1; see the mirror package doc), the same the Kafka bridge keeps
// in its checkpoint topic.
//
// A flow out of NATS checkpoints in its target like any other (the stream
// sequence, or the core offset), and the durable consumer's acks only
// trim redelivery.
//
// # Encoding
//
// A Kafka record becomes a NATS message and back without loss, except
// that the order between headers of different names may change (NATS
// headers are a map; values of one name keep their order):
//
//   - Payload: the value. A null value (tombstone) is an empty payload with
//     the header "Tributary-Tombstone: true"; an empty payload without it
//     is an empty value.
//   - Key: the header Mapping.KeyHeader (default "Tributary-Key"), escaped
//     as below; always written, "~n" for a null key. A message without it
//     (published by a NATS client, not by Tributary) gets its subject as
//     key, so key-hash partitioning keeps each subject's order.
//   - Timestamp: "Tributary-Timestamp: <Unix milliseconds>". Without it a
//     JetStream message's stored time is used, and a core NATS message
//     gets the time it was received.
//   - Headers: each Kafka header becomes a NATS header; repeated names
//     become repeated values in order. Names and values are escaped.
//
// Escaping. NATS header values are printable ASCII (nats.go trims blanks
// and turns CR/LF into spaces) and subject tokens cannot hold '.', blanks,
// '*', '>' or binary, so a key, header value or header name is written as:
//
//	~n                      null (keys and header values)
//	~e                      empty
//	the bytes themselves    when they are plain and do not start with '~'
//	~b + base64url(bytes)   otherwise (RFC 4648 URL alphabet, no padding)
//
// where plain is: for header values (and the key header) printable ASCII
// 0x20-0x7E without a leading or trailing blank; for header names
// printable ASCII without blanks or ':', and not a name of the bridge or of
// NATS (any name starting with "Nats-" or "Tributary-", or the key header,
// compared without case); for the {key} subject token printable ASCII
// without blanks, '.', '*' or '>'. So the null key's token is "~n", the
// empty key's "~e", and a key "a.b" is "~bYS5i". Reading, text in none of
// the escaped forms is taken as it is, and headers whose names start with
// "Nats-" (NATS's own, such as Nats-Msg-Id) are not copied to Kafka.
//
// # Errors and logs
//
// Every error names the job file's cluster name (Config.Name). A record
// whose message exceeds the server's max_payload is reported wrapping
// mirror.ErrRecordTooLarge. Log lines use the keys "cluster", "stream",
// "subject", "durable" and "err". Credentials go to nats.go only and are
// never logged.
package nats
