// Package broker is Tributary's Kafka-protocol server for one node.
//
// It owns the TCP listener, request framing and dispatch, the topic registry
// and the data directory. Requests and responses are decoded and encoded with
// github.com/twmb/franz-go/pkg/kmsg; the one exception is the Fetch response,
// which is framed by hand around segment-file bytes so that they go from the
// page cache to the socket with sendfile(2) (fetchframe.go, tested
// byte-for-byte against kmsg's encoding for every version served).
//
// Each Kafka API lives in its own file, which opens with the versions it
// serves and how it behaves. Partition logs are broker/storage; consumer
// groups and committed offsets are broker/group; the transaction
// coordinator is broker/txn (its state in the internal topic
// __transaction_state, one partition; markers written by txn.go).
//
// # Data directory
//
//	<data-dir>/
//	  meta.json                  cluster ID (a UUID generated once) and node ID
//	  producer-ids               the producer ID counter (storage.ProducerIDAllocator)
//	  topics/<topic>.json        one file per topic: ID, partition count, config overrides;
//	                             written to a temp file, fsynced, renamed, directory fsynced
//	  <topic>-<partition>/       one storage.Log per partition
//
// A topic exists exactly when its topics/<topic>.json exists: creation makes
// the partition directories first and writes the file last; deletion removes
// the file first. Partition directories without a topic file are leftovers of
// an interrupted create or delete and are removed at start.
//
// # Guarantees
//
// A produce request with acks=1 or acks=-1 is answered only after its batches
// are appended to the partition log (and fsynced, with the always fsync
// policy). On one node acks=1 and acks=-1 are the same: the leader is the only
// replica. The high watermark and leader epoch are still kept explicit so that
// multi-node replication can build on them.
//
// # Connections
//
// Requests on one connection are handled one at a time, in order, and
// answered in order, as Kafka does. A frame larger than Config.MaxRequestBytes,
// a request that cannot be parsed, an unknown API key or an unserved version
// closes that connection (with a log line); every other connection is
// unaffected. The one exception is an ApiVersions request of a version we do
// not serve, which is answered with UNSUPPORTED_VERSION and our version ranges
// in a v0 response (KIP-511), so the client can retry with one we do.
package broker
