package durability

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/e2e/cluster"
)

// requestTimeout bounds every single request or admin call a test makes:
// the harness's, as for its own helpers.
const requestTimeout = cluster.RequestTimeout

// Broker log messages the tests look for (broker/storage/recovery.go).
const (
	logTornTail       = "truncated torn log tail"
	logRebuildIndex   = "rebuilding indexes"
	logMarkerMismatch = "clean shutdown marker does not match"
)

// offsets returns the log start and end offsets of partition 0 of topic.
func offsets(t *testing.T, addr, topic string) (start, end int64) {
	t.Helper()
	cl := cluster.Dial(t, addr)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("list start offsets of %s: %v", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	s, ok1 := starts.Lookup(topic, 0)
	e, ok2 := ends.Lookup(topic, 0)
	if !ok1 || !ok2 {
		t.Fatalf("no offsets for %s-0 (start %v, end %v)", topic, ok1, ok2)
	}
	return s.Offset, e.Offset
}

// readAll consumes partition 0 of topic from its log start offset up to its
// current end offset with a fresh franz-go consumer and returns the records
// in offset order.
func readAll(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	start, end := offsets(t, addr, topic)
	if end <= start {
		return nil
	}
	cl := cluster.Dial(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) == 0 || recs[len(recs)-1].Offset < end-1 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: got offsets up to %d of [%d, %d) before %v", topic, lastOffset(recs), start, end, err)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("reading %s-%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func lastOffset(recs []*kgo.Record) int64 {
	if len(recs) == 0 {
		return -1
	}
	return recs[len(recs)-1].Offset
}

// requireContiguous fails unless recs hold exactly the offsets from..to-1 in
// order.
func requireContiguous(t *testing.T, recs []*kgo.Record, from, to int64) {
	t.Helper()
	if int64(len(recs)) != to-from {
		t.Fatalf("read %d records (offsets %d..%d), want offsets [%d, %d)", len(recs), firstOffset(recs), lastOffset(recs), from, to)
	}
	for i, r := range recs {
		if r.Offset != from+int64(i) {
			t.Fatalf("record %d has offset %d, want %d", i, r.Offset, from+int64(i))
		}
	}
}

func firstOffset(recs []*kgo.Record) int64 {
	if len(recs) == 0 {
		return -1
	}
	return recs[0].Offset
}

// initProducerID asks for an idempotent (non-transactional) producer ID.
func initProducerID(t *testing.T, cl *kgo.Client) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = -1
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("InitProducerID: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("InitProducerID: %v", err)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// produceBatch sends one hand-built record batch to partition 0 of topic
// with acks=all and returns that partition's response.
func produceBatch(t *testing.T, cl *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = int32(requestTimeout / time.Millisecond)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce to %s: response with %d topics, want one topic with one partition", topic, len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// valueRecords returns records with the given values.
func valueRecords(values ...string) []storage.Record {
	now := time.Now().UnixMilli()
	recs := make([]storage.Record, len(values))
	for i, v := range values {
		recs[i] = storage.Record{Timestamp: now, Value: []byte(v)}
	}
	return recs
}

// seqValues returns prefix-first..prefix-(first+n-1).
func seqValues(prefix string, first, n int) []string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf("%s-%d", prefix, first+i)
	}
	return vs
}

// values returns the record values of recs as strings.
func values(recs []*kgo.Record) []string {
	vs := make([]string, len(recs))
	for i, r := range recs {
		vs[i] = string(r.Value)
	}
	return vs
}

// requireValues fails unless recs carry exactly want, in order.
func requireValues(t *testing.T, recs []*kgo.Record, want []string) {
	t.Helper()
	got := values(recs)
	if len(got) != len(want) {
		t.Fatalf("read %d records %q, want %d %q", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record at offset %d is %q, want %q (all: %q)", recs[i].Offset, got[i], want[i], got)
		}
	}
}

// segmentFiles returns the .log files of partition 0 of topic in b's data
// dir, oldest first.
func segmentFiles(t *testing.T, b *cluster.Broker, topic string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(b.DataDir, topic+"-0", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no segment files of %s-0 in %s", topic, b.DataDir)
	}
	sort.Strings(files) // names are zero-padded base offsets
	return files
}

// segmentsSize is the total size of the .log files of partition 0 of topic.
func segmentsSize(t *testing.T, b *cluster.Broker, topic string) int64 {
	t.Helper()
	var total int64
	for _, f := range segmentFiles(t, b, topic) {
		fi, err := os.Stat(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted by retention since the listing
		}
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	return total
}

// rawConn is a Kafka connection without a client library: it writes frames
// as given and reads responses, so tests can send what no client would.
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

// write writes b as is.
func (c *rawConn) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(requestTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write %d bytes: %v", len(b), err)
	}
}

// frame builds a request frame: size, request header (v1, or v2 with an
// empty tag section when flexible) for key and version, then body.
func (c *rawConn) frame(key, version int16, flexible bool, body []byte) ([]byte, int32) {
	c.corr++
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(c.corr))
	clientID := "durability-raw"
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if flexible {
		b = append(b, 0)
	}
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b, c.corr
}

// send writes req, framed for its version, and returns its correlation ID.
func (c *rawConn) send(req kmsg.Request) int32 {
	c.t.Helper()
	f, corr := c.frame(req.Key(), req.GetVersion(), req.IsFlexible(), req.AppendTo(nil))
	c.write(f)
	return corr
}

// recv reads one response frame for corr into resp, whose version must be
// set. ApiVersions responses have a v0 header whatever their version.
func (c *rawConn) recv(corr int32, resp kmsg.Response) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(requestTimeout))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		c.t.Fatalf("read response size for %s: %v", kmsg.NameForKey(resp.Key()), err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, b); err != nil {
		c.t.Fatalf("read %d-byte %s response: %v", len(b), kmsg.NameForKey(resp.Key()), err)
	}
	if len(b) < 4 {
		c.t.Fatalf("%s response of %d bytes", kmsg.NameForKey(resp.Key()), len(b))
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		c.t.Fatalf("%s response has correlation ID %d, want %d", kmsg.NameForKey(resp.Key()), got, corr)
	}
	b = b[4:]
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		if len(b) == 0 || b[0] != 0 {
			c.t.Fatalf("%s response header: unexpected tag section %x", kmsg.NameForKey(resp.Key()), b[:min(len(b), 8)])
		}
		b = b[1:]
	}
	if err := resp.ReadFrom(b); err != nil {
		c.t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
}

// requireClosed fails unless the broker closes the connection (a read
// returns EOF) without sending anything first.
func (c *rawConn) requireClosed(what string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(requestTimeout))
	var buf [64]byte
	n, err := c.nc.Read(buf[:])
	switch {
	case n > 0:
		c.t.Fatalf("%s: broker answered %d bytes (%x), want the connection closed", what, n, buf[:n])
	case errors.Is(err, io.EOF):
	case isTimeout(err):
		c.t.Fatalf("%s: connection still open after %v, want it closed", what, requestTimeout)
	default:
		c.t.Fatalf("%s: read returned %v, want EOF", what, err)
	}
}

// waitFor polls cond every 50ms until it reports true, failing the test
// with what and cond's last description of the state after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, state)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
