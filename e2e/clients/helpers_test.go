package clients

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/e2e/cluster"
)

// opTimeout bounds one client operation (a produce run, a consume run, an
// admin request) so that a broker that stops answering fails the test with
// a message instead of hanging until the package timeout.
const opTimeout = 90 * time.Second

// record is one Kafka record as the tests compare it. Partition and Offset
// are filled in by consumers (and by producers that report them).
type record struct {
	Partition int32
	Offset    int64
	Key       []byte // nil is a null key
	Value     []byte
	Headers   []header

	// ProducerID is the producer ID of the record's batch (-1: not from an
	// idempotent producer), as far as the consuming client reports it.
	ProducerID int64
}

type header struct {
	Key   string
	Value []byte
}

// genOptions shapes the records makeRecords generates.
type genOptions struct {
	// nullKeyEvery gives every nth record (index%n == 0) a null key; 0: none.
	nullKeyEvery int
	// keySpace is how many distinct keys there are (records repeat them so
	// that per-key partitioning can be checked). Default 40.
	keySpace int
	// payload is the number of random binary bytes after the value's index
	// prefix. Default 24.
	payload int
	// exclude lists bytes that never appear in keys and values (delimiters
	// of a line-oriented client such as kcat).
	exclude []byte
	// staticHeaders gives every record the same headers (clients such as kcat
	// set headers per run, not per record); otherwise each record carries its
	// index and binary headers of its own.
	staticHeaders bool
}

// headerForbidden are bytes header values never contain: kcat prints
// headers as "k=v,k=v" lines, and argv cannot carry NUL.
var headerForbidden = []byte{0, ',', '=', '\n'}

// staticHeaders are the headers of every record generated with
// genOptions.staticHeaders.
var staticHeaders = []header{
	{Key: "origin", Value: []byte("static")},
	{Key: "bin", Value: []byte{0x01, 0x7f, 0x80, 0xfe, 0xff}},
}

// makeRecords returns n deterministic records whose values start with their
// eight-digit index (see recordIndex), followed by binary bytes that include
// 0x00, 0xff and '\n' unless excluded.
func makeRecords(n int, o genOptions) []record {
	if o.keySpace == 0 {
		o.keySpace = 40
	}
	if o.payload == 0 {
		o.payload = 24
	}
	rng := rand.New(rand.NewPCG(uint64(n), 0x7269627574617279))
	allowed := func(b byte, forbidden []byte) bool { return bytes.IndexByte(forbidden, b) < 0 }
	binary := func(size int, forbidden []byte) []byte {
		out := make([]byte, 0, size)
		for _, b := range []byte{0x00, 0xff, '\n', 0x80} {
			if allowed(b, forbidden) && len(out) < size {
				out = append(out, b)
			}
		}
		for len(out) < size {
			if b := byte(rng.UintN(256)); allowed(b, forbidden) {
				out = append(out, b)
			}
		}
		return out
	}
	keys := make([][]byte, o.keySpace)
	for i := range keys {
		keys[i] = append([]byte(fmt.Sprintf("key-%03d-", i)), binary(6, o.exclude)...)
	}
	recs := make([]record, n)
	for i := range recs {
		r := &recs[i]
		if o.nullKeyEvery == 0 || i%o.nullKeyEvery != 0 {
			r.Key = keys[i%o.keySpace]
		}
		r.Value = append([]byte(fmt.Sprintf("%08d", i)), binary(o.payload, o.exclude)...)
		if o.staticHeaders {
			r.Headers = staticHeaders
			continue
		}
		r.Headers = []header{
			{Key: "idx", Value: []byte(strconv.Itoa(i))},
			{Key: "bin", Value: binary(8, headerForbidden)},
			{Key: "empty", Value: []byte{}},
		}
	}
	return recs
}

// recordIndex is the index makeRecords put at the start of a value, or -1.
func recordIndex(value []byte) int {
	if len(value) < 8 {
		return -1
	}
	i, err := strconv.Atoi(string(value[:8]))
	if err != nil {
		return -1
	}
	return i
}

// checkRecords asserts that got (in the order a consumer delivered it)
// holds every record of want exactly once, byte for byte (key, null-ness of
// the key, value, headers), in want's order and with increasing offsets
// within each partition, and that records with the same key share a
// partition. It returns the end offset (last offset + 1) seen per partition.
func checkRecords(t testing.TB, want, got []record) map[int32]int64 {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("consumed %d records, want %d", len(got), len(want))
	}
	seen := make([]bool, len(want))
	lastIdx := map[int32]int{}
	end := map[int32]int64{}
	keyPartition := map[string]int32{}
	errs := 0
	fail := func(format string, args ...any) {
		errs++
		if errs <= 10 {
			t.Errorf(format, args...)
		}
	}
	for n, r := range got {
		i := recordIndex(r.Value)
		if i < 0 || i >= len(want) {
			fail("record #%d (p%d@%d): value %q has no valid index", n, r.Partition, r.Offset, r.Value)
			continue
		}
		if seen[i] {
			fail("record %d delivered twice (again at p%d@%d)", i, r.Partition, r.Offset)
			continue
		}
		seen[i] = true
		if err := sameRecord(want[i], r); err != nil {
			fail("record %d (p%d@%d): %v", i, r.Partition, r.Offset, err)
		}
		if prev, ok := lastIdx[r.Partition]; ok && i < prev {
			fail("partition %d: record %d delivered after record %d", r.Partition, i, prev)
		}
		lastIdx[r.Partition] = i
		if e, ok := end[r.Partition]; ok && r.Offset < e {
			fail("partition %d: offset %d delivered after offset %d", r.Partition, r.Offset, e-1)
		}
		end[r.Partition] = r.Offset + 1
		if r.Key != nil {
			if p, ok := keyPartition[string(r.Key)]; ok && p != r.Partition {
				fail("key %q in partitions %d and %d", r.Key, p, r.Partition)
			}
			keyPartition[string(r.Key)] = r.Partition
		}
	}
	missing := 0
	for i, ok := range seen {
		if !ok {
			if missing < 5 {
				t.Errorf("record %d never delivered", i)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d records never delivered", missing, len(want))
	}
	if errs > 10 {
		t.Errorf("... and %d more mismatches", errs-10)
	}
	return end
}

// sameRecord compares key (null-ness included), value and headers.
func sameRecord(want, got record) error {
	if (want.Key == nil) != (got.Key == nil) || !bytes.Equal(want.Key, got.Key) {
		return fmt.Errorf("key %s, want %s", showKey(got.Key), showKey(want.Key))
	}
	if !bytes.Equal(want.Value, got.Value) {
		return fmt.Errorf("value %q, want %q", got.Value, want.Value)
	}
	if len(want.Headers) != len(got.Headers) {
		return fmt.Errorf("headers %s, want %s", showHeaders(got.Headers), showHeaders(want.Headers))
	}
	for i := range want.Headers {
		if want.Headers[i].Key != got.Headers[i].Key || !bytes.Equal(want.Headers[i].Value, got.Headers[i].Value) {
			return fmt.Errorf("headers %s, want %s", showHeaders(got.Headers), showHeaders(want.Headers))
		}
	}
	return nil
}

func showKey(k []byte) string {
	if k == nil {
		return "null"
	}
	return fmt.Sprintf("%q", k)
}

func showHeaders(hs []header) string {
	var b bytes.Buffer
	for _, h := range hs {
		fmt.Fprintf(&b, "[%q=%q]", h.Key, h.Value)
	}
	return b.String()
}

// requireIdempotent asserts that every record came from an idempotent
// producer (its batch has a producer ID) and that there was only one.
func requireIdempotent(t testing.TB, got []record) {
	t.Helper()
	ids := map[int64]int{}
	for _, r := range got {
		ids[r.ProducerID]++
	}
	if len(ids) != 1 {
		t.Fatalf("records by producer ID: %v, want all from one idempotent producer", ids)
	}
	for id := range ids {
		if id < 0 {
			t.Fatalf("records carry producer ID %d: the producer was not idempotent", id)
		}
	}
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// --- franz-go ---------------------------------------------------------------

// newAdmin returns a kadm client of addr, closed at cleanup.
func newAdmin(t testing.TB, addr string) *kadm.Client {
	t.Helper()
	return kadm.NewClient(cluster.Client(t, addr))
}

func toKgo(topic string, r record) *kgo.Record {
	kr := &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return kr
}

func fromKgo(kr *kgo.Record) record {
	r := record{Partition: kr.Partition, Offset: kr.Offset, Key: kr.Key, Value: kr.Value, ProducerID: kr.ProducerID}
	for _, h := range kr.Headers {
		r.Headers = append(r.Headers, header{Key: h.Key, Value: h.Value})
	}
	return r
}

// produceKgo produces recs to topic with franz-go's default (idempotent,
// acks=all) producer and fails the test on any error.
func produceKgo(t testing.TB, addr, topic string, recs []record) {
	t.Helper()
	cl := cluster.Client(t, addr)
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = toKgo(topic, r)
	}
	if err := cl.ProduceSync(ctxFor(t), krs...).FirstErr(); err != nil {
		t.Fatalf("kgo produce to %s: %v", topic, err)
	}
}

// consumeKgo reads every partition of topic from the start, without a
// group, until n records arrived; it fails the test at opTimeout.
func consumeKgo(t testing.TB, addr, topic string, n int) []record {
	t.Helper()
	cl := cluster.Client(t, addr, kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	return pollKgo(t, cl, n)
}

// pollKgo polls cl until n records arrived.
func pollKgo(t testing.TB, cl *kgo.Client, n int) []record {
	t.Helper()
	ctx := ctxFor(t)
	var got []record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before %v", len(got), n, opTimeout)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(kr *kgo.Record) { got = append(got, fromKgo(kr)) })
	}
	return got
}

// committedKadm reads group's committed offsets for topic with kadm.
func committedKadm(t testing.TB, addr, group, topic string) map[int32]int64 {
	t.Helper()
	resp, err := newAdmin(t, addr).FetchOffsets(ctxFor(t), group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("kadm fetch offsets of group %s: %v", group, err)
	}
	out := map[int32]int64{}
	for p, o := range resp[topic] {
		out[p] = o.At
	}
	return out
}

// endOffsets lists the end (high watermark) offsets of topic with kadm.
func endOffsets(t testing.TB, addr, topic string) map[int32]int64 {
	t.Helper()
	listed, err := newAdmin(t, addr).ListEndOffsets(ctxFor(t), topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// requireOffsets asserts got equals want partition by partition.
func requireOffsets(t testing.TB, what string, got, want map[int32]int64) {
	t.Helper()
	if fmt.Sprint(sortedOffsets(got)) != fmt.Sprint(sortedOffsets(want)) {
		t.Fatalf("%s: got %v, want %v", what, sortedOffsets(got), sortedOffsets(want))
	}
}

func sortedOffsets(m map[int32]int64) []string {
	var out []string
	for p, o := range m {
		out = append(out, fmt.Sprintf("p%d=%d", p, o))
	}
	sort.Strings(out)
	return out
}

// --- processes --------------------------------------------------------------

// runCmd runs a client command to completion with stdin, returning stdout;
// it fails the test on a non-zero exit or after opTimeout, with stderr.
func runCmd(t testing.TB, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	ctx := ctxFor(t)
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v (context: %v)\nstderr:\n%s", name, args, err, ctx.Err(), tailString(stderr.String(), 4000))
	}
	return stdout.Bytes()
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// --- Python -----------------------------------------------------------------

// pyRecord is a record as the Python scripts read and print it: bytes in
// hex, a null key as null.
type pyRecord struct {
	P int32       `json:"p"`
	O int64       `json:"o"`
	K *string     `json:"k"`
	V string      `json:"v"`
	H [][2]string `json:"h"`
}

func toPy(r record) pyRecord {
	p := pyRecord{P: r.Partition, O: r.Offset, V: hex.EncodeToString(r.Value), H: [][2]string{}}
	if r.Key != nil {
		k := hex.EncodeToString(r.Key)
		p.K = &k
	}
	for _, h := range r.Headers {
		p.H = append(p.H, [2]string{h.Key, hex.EncodeToString(h.Value)})
	}
	return p
}

func fromPy(t testing.TB, p pyRecord) record {
	t.Helper()
	dec := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("python printed bad hex %q: %v", s, err)
		}
		return b
	}
	r := record{Partition: p.P, Offset: p.O, Value: dec(p.V)}
	if p.K != nil {
		r.Key = dec(*p.K)
		if r.Key == nil {
			r.Key = []byte{}
		}
	}
	for _, h := range p.H {
		r.Headers = append(r.Headers, header{Key: h[0], Value: dec(h[1])})
	}
	return r
}

// writeRecordsFile writes recs as JSON for a Python script to produce.
func writeRecordsFile(t testing.TB, recs []record) string {
	t.Helper()
	out := make([]pyRecord, len(recs))
	for i, r := range recs {
		out[i] = toPy(r)
	}
	data, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "records.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pyResult is what every script prints: the records it consumed (if any),
// how many it produced, and the client's own view of what it negotiated.
type pyResult struct {
	Produced int        `json:"produced"`
	Records  []pyRecord `json:"records"`
	Info     any        `json:"info"`
}

// runPython runs testdata/<script> with Debian's python3 and parses the
// JSON it prints.
func runPython(t testing.TB, script string, args ...string) pyResult {
	t.Helper()
	out := runCmd(t, nil, cluster.SystemPython, append([]string{filepath.Join("testdata", script)}, args...)...)
	var res pyResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s printed no JSON result (%v):\n%s", script, err, tailString(string(out), 2000))
	}
	t.Logf("%s: produced=%d records=%d info=%v", script, res.Produced, len(res.Records), res.Info)
	return res
}
