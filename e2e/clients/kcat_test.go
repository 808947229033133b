package clients

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tributary/tributary/e2e/cluster"
)

// kcat's producer splits stdin into records at kcatRecordDelim and a record
// into key and value at kcatKeyDelim; a record without kcatKeyDelim has a
// null key. Generated data never contains either byte.
const (
	kcatRecordDelim = 0x1e
	kcatKeyDelim    = 0x1f
)

// kcatFormat prints each record as a line "partition offset keylen
// valuelen" (keylen -1 for a null key), the raw key and value bytes, a
// newline and the headers as "k=v,k=v" (header values never contain ',',
// '=' or '\n').
const kcatFormat = `%p %o %K %S\n%k%s\n%h\n`

func kcat(t testing.TB) string {
	t.Helper()
	return cluster.RequireTool(t, "kcat", "apt-get install -y kcat")
}

// produceKcat pipes recs into `kcat -P`; each record gets staticHeaders.
func produceKcat(t testing.TB, addr, topic string, recs []record) {
	t.Helper()
	var in bytes.Buffer
	for _, r := range recs {
		if r.Key != nil {
			in.Write(r.Key)
			in.WriteByte(kcatKeyDelim)
		}
		in.Write(r.Value)
		in.WriteByte(kcatRecordDelim)
	}
	args := []string{"-b", addr, "-P", "-t", topic,
		"-K", fmt.Sprintf(`\x%02x`, kcatKeyDelim), "-D", fmt.Sprintf(`\x%02x`, kcatRecordDelim),
		"-X", "enable.idempotence=true", "-X", "linger.ms=5"}
	for _, h := range staticHeaders {
		args = append(args, "-H", h.Key+"="+string(h.Value))
	}
	runCmd(t, in.Bytes(), kcat(t), args...)
}

// parseKcat parses what kcat printed with kcatFormat.
func parseKcat(t testing.TB, out []byte) []record {
	t.Helper()
	var recs []record
	next := func(n int) []byte {
		if n > len(out) {
			t.Fatalf("kcat output ends inside a record (after %d records)", len(recs))
		}
		b := out[:n:n]
		out = out[n:]
		return b
	}
	line := func() string {
		i := bytes.IndexByte(out, '\n')
		if i < 0 {
			t.Fatalf("kcat output ends inside a line (after %d records): %q", len(recs), tailString(string(out), 200))
		}
		return string(next(i + 1)[:i])
	}
	for len(out) > 0 {
		var r record
		var klen, vlen int
		if _, err := fmt.Sscanf(line(), "%d %d %d %d", &r.Partition, &r.Offset, &klen, &vlen); err != nil {
			t.Fatalf("kcat record %d: bad prefix line: %v", len(recs), err)
		}
		if klen >= 0 {
			r.Key = bytes.Clone(next(klen))
			if r.Key == nil {
				r.Key = []byte{}
			}
		}
		if vlen >= 0 {
			r.Value = bytes.Clone(next(vlen))
		}
		if nl := next(1); nl[0] != '\n' {
			t.Fatalf("kcat record %d: no newline after the value", len(recs))
		}
		if hs := line(); hs != "" {
			for _, kv := range strings.Split(hs, ",") {
				k, v, _ := strings.Cut(kv, "=")
				r.Headers = append(r.Headers, header{Key: k, Value: []byte(v)})
			}
		}
		recs = append(recs, r)
	}
	return recs
}

// consumeKcat reads topic from the beginning to its end with `kcat -C -e`.
func consumeKcat(t testing.TB, addr, topic string) []record {
	t.Helper()
	return parseKcat(t, runCmd(t, nil, kcat(t), "-b", addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", kcatFormat))
}

// TestKcatList checks `kcat -L` lists the broker at its address and every
// topic with its partitions.
func TestKcatList(t *testing.T) {
	b := cluster.StartBroker(t)
	cluster.CreateTopic(t, b.Addr, "listed-a", 3, nil)
	cluster.CreateTopic(t, b.Addr, "listed-b", 1, nil)

	text := string(runCmd(t, nil, kcat(t), "-b", b.Addr, "-L"))
	for _, want := range []string{
		"1 brokers:",
		fmt.Sprintf("broker 0 at %s", b.Addr),
		`topic "listed-a" with 3 partitions:`,
		`topic "listed-b" with 1 partitions:`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("kcat -L output lacks %q:\n%s", want, text)
		}
	}

	var md struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	out := runCmd(t, nil, kcat(t), "-b", b.Addr, "-L", "-J")
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat -L -J: %v\n%s", err, out)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Name != b.Addr {
		t.Errorf("kcat -L -J brokers = %+v, want one at %s", md.Brokers, b.Addr)
	}
	partitions := map[string]int{}
	for _, tp := range md.Topics {
		for _, p := range tp.Partitions {
			if p.Leader != md.Brokers[0].ID {
				t.Errorf("%s/%d: leader %d, want %d", tp.Topic, p.Partition, p.Leader, md.Brokers[0].ID)
			}
		}
		partitions[tp.Topic] = len(tp.Partitions)
	}
	if partitions["listed-a"] != 3 || partitions["listed-b"] != 1 {
		t.Errorf("kcat -L -J topics: %v, want listed-a with 3 and listed-b with 1 partitions", partitions)
	}
}

// TestKcat100kAcrossRestart produces 100,000 records with kcat (the topic
// is auto-created), reads them back with kcat before and after a broker
// restart, and with franz-go.
func TestKcat100kAcrossRestart(t *testing.T) {
	b := cluster.StartBroker(t)
	const topic, n = "kcat-100k", 100_000
	want := makeRecords(n, genOptions{nullKeyEvery: 10, staticHeaders: true,
		exclude: []byte{kcatKeyDelim, kcatRecordDelim}})
	produceKcat(t, b.Addr, topic, want)

	check := func(when string, got []record) {
		t.Helper()
		ends := checkRecords(t, want, got)
		requireOffsets(t, "kcat end offsets "+when, ends, map[int32]int64{0: n})
		for i, r := range got {
			if r.Offset != int64(i) {
				t.Fatalf("%s: record %d at offset %d", when, i, r.Offset)
			}
		}
	}
	check("before restart", consumeKcat(t, b.Addr, topic))
	b.Restart()
	check("after restart", consumeKcat(t, b.Addr, topic))
	got := consumeKgo(t, b.Addr, topic, n)
	check("after restart, franz-go", got)
	requireIdempotent(t, got) // -X enable.idempotence=true
}

// TestKcatGroup produces with franz-go (binary keys, values and headers,
// null keys) and consumes with `kcat -G`, librdkafka's balanced group
// consumer, whose committed offsets kadm then reads.
func TestKcatGroup(t *testing.T) {
	b := cluster.StartBroker(t)
	const topic, group, n = "kcat-group", "kcat-group", 5000
	cluster.CreateTopic(t, b.Addr, topic, 3, nil)
	want := makeRecords(n, genOptions{nullKeyEvery: 6})
	produceKgo(t, b.Addr, topic, want)

	out := runCmd(t, nil, kcat(t), "-b", b.Addr, "-G", group, "-c", strconv.Itoa(n), "-q",
		"-X", "auto.offset.reset=earliest", "-f", kcatFormat, topic)
	got := parseKcat(t, out)
	ends := checkRecords(t, want, got)
	requireOffsets(t, "end offsets", endOffsets(t, b.Addr, topic), ends)
	requireOffsets(t, "committed offsets read with kadm", committedKadm(t, b.Addr, group, topic), ends)
}
