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
//	  <topic>-<p>.<topic-id>-delete/  a deleted partition awaiting removal
//
// A topic exists exactly when its topics/<topic>.json exists: creation makes
// the partition directories first and writes the file last; deletion removes
// the file first, then, still holding the topic registry's lock, closes each
// partition log and renames its directory to the -delete tombstone (data
// directory fsynced), so a create of the same name racing the delete starts
// from empty directories; the tombstones are removed after the lock is
// released. Partition directories without a topic file and tombstones are
// leftovers of an interrupted create or delete and are removed at start.
//
// # Memory per connection
//
// A connection reads ahead at most one request while another is handled, so
// it holds at most two request frames (each at most Config.MaxRequestBytes)
// plus a 64 KiB read buffer, even while a handler blocks (long-poll Fetch,
// JoinGroup).
//
// # Guarantees
//
// A produce request with acks=1 or acks=-1 is answered only after its batches
// are appended to the partition log (and fsynced, with the always fsync
// policy). On one node acks=1 and acks=-1 are the same: the leader is the only
// replica. The high watermark and leader epoch are still kept explicit so that
// multi-node replication can build on them.
//
// Transaction outcomes (the coordinator's state records in
// __transaction_state and the commit or abort markers in every partition of
// the transaction) survive a crash of the process under every fsync policy:
// each is in the page cache once its append returns, and the coordinator
// completes prepared transactions at start. They survive power loss only
// with the always fsync policy, under which every append returns after its
// fsync, so the prepared state is on disk before any marker is written and
// every marker before the complete state (broker/txn). With never or an
// interval, power loss can keep a marker but lose the prepared state, or the
// reverse, in different partitions.
//
// A failed fsync fails that partition's log (storage.ErrLogFailed, answered
// as KAFKA_STORAGE_ERROR): it refuses appends until the broker restarts and
// recovery keeps what reached the disk.
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
