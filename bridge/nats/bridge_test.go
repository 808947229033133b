package nats

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary/tributary/mirror"
)

// trickyRecords are records whose keys, values and headers need every rule
// of the encoding.
func trickyRecords(topic string) []mirror.OutRecord {
	ts := time.UnixMilli(1_700_000_000_123)
	bodies := []mirror.Record{
		{Key: []byte("k1"), Value: []byte("v1"), Headers: []mirror.Header{{Key: "trace", Value: []byte("abc")}}},
		{Key: nil, Value: []byte("null key")},
		{Key: []byte{}, Value: []byte{}},
		{Key: []byte("tomb"), Value: nil},
		{Key: []byte{0, 1, 0xfe, 0xff}, Value: []byte{0, 0xff, '\r', '\n'}},
		{Key: []byte("a.b c*>"), Value: []byte("x"), Headers: []mirror.Header{
			{Key: "dup", Value: []byte("1")}, {Key: "dup", Value: nil}, {Key: "dup", Value: []byte{}}, {Key: "dup", Value: []byte(" padded ")},
			{Key: "Nats-Msg-Id", Value: []byte("not mine")}, {Key: "Tributary-Key", Value: []byte("shadow")},
			{Key: "bin:ary name", Value: []byte("line1\r\nline2")}, {Key: "", Value: []byte("~n")}, {Key: "utf8-é", Value: []byte("é")},
		}},
		{Key: []byte("~e"), Value: []byte("tilde key")},
	}
	out := make([]mirror.OutRecord, len(bodies))
	for i, b := range bodies {
		b.Timestamp = ts.Add(time.Duration(i) * time.Millisecond)
		b.Source = mirror.SourcePosition{SourcePartition: mirror.SourcePartition{Cluster: "kafka", Topic: topic}, Offset: int64(i)}
		prov := mirror.Provenance{Path: []string{"kafka-id"}, Topic: topic, Offset: int64(i)}
		b.Headers = append(b.Headers, mirror.Header{Key: mirror.ProvenanceHeader, Value: prov.AppendTo(nil)})
		out[i] = mirror.OutRecord{Record: b, Topic: topic}
	}
	return out
}

// sameRecord compares key, value, timestamp and headers (order between
// different names aside), null and empty apart.
func sameRecord(t *testing.T, got mirror.Record, want mirror.Record) {
	t.Helper()
	eq := func(a, b []byte) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) }
	if !eq(got.Key, want.Key) || !eq(got.Value, want.Value) {
		t.Errorf("record %d: key %q value %q, want key %q value %q", want.Source.Offset, got.Key, got.Value, want.Key, want.Value)
	}
	if !got.Timestamp.Equal(want.Timestamp) {
		t.Errorf("record %d: timestamp %v, want %v", want.Source.Offset, got.Timestamp, want.Timestamp)
	}
	group := func(hs []mirror.Header) map[string][]string {
		m := map[string][]string{}
		for _, h := range hs {
			v := fmt.Sprintf("%q", h.Value)
			if h.Value == nil {
				v = "<null>"
			}
			m[h.Key] = append(m[h.Key], v)
		}
		return m
	}
	if g, w := fmt.Sprint(group(got.Headers)), fmt.Sprint(group(want.Headers)); g != w {
		t.Errorf("record %d: headers\n got %s\nwant %s", want.Source.Offset, g, w)
	}
}

func jetStreamMapping() Mapping {
	return Mapping{Stream: "ORDERS", Subjects: []string{"orders.>"}, CreateStream: true, Subject: "orders.{key}",
		Topic: "orders", Durable: "tributary-test"}
}

// TestJetStreamRoundTrip writes records with every encoding rule into a
// stream the sink creates, and reads them back through a JetStream source.
func TestJetStreamRoundTrip(t *testing.T) {
	ctx := context.Background()
	url := startServer(t, true)
	cfg, logs := testConfig(t, url)
	m := jetStreamMapping()
	sink, err := NewSink(ctx, cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	recs := trickyRecords("orders")
	cp := &mirror.Checkpoint{Flow: "job/events", Time: time.Now(), Positions: map[mirror.SourcePartition]int64{{Cluster: "kafka", Topic: "orders"}: int64(len(recs))}}
	if err := sink.Write(ctx, &mirror.Batch{Records: recs, Checkpoint: cp}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "shorter than the job's restart budget") {
		t.Errorf("warned about a stream the sink created:\n%s", logs)
	}
	got, err := sink.LoadCheckpoint(ctx, "job/events")
	if err != nil || got == nil || got.Positions[mirror.SourcePartition{Cluster: "kafka", Topic: "orders"}] != int64(len(recs)) {
		t.Fatalf("checkpoint %+v, %v", got, err)
	}
	if none, err := sink.LoadCheckpoint(ctx, "other/events"); none != nil || err != nil {
		t.Errorf("checkpoint of an unknown flow: %+v, %v", none, err)
	}

	// The stream was created with the job's duplicate window.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	if w := st.CachedInfo().Config.Duplicates; w != DefaultDuplicateWindow {
		t.Errorf("duplicate window %v, want %v", w, DefaultDuplicateWindow)
	}
	// Subjects follow the template with the key as a token.
	raw, err := st.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Subject != "orders.~n" || raw.Header.Get(HeaderMsgID) != "kafka-id:orders:0:1" {
		t.Errorf("message 2: subject %q, msg id %q", raw.Subject, raw.Header.Get(HeaderMsgID))
	}

	src, err := NewSource(ctx, cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tp := mirror.TopicPartition{Topic: "orders"}
	offs, err := src.Offsets(ctx, []mirror.TopicPartition{tp}, mirror.StartPosition{Kind: mirror.StartEarliest})
	if err != nil || offs[tp] != 1 {
		t.Fatalf("earliest %v, %v", offs, err)
	}
	ends, err := src.EndOffsets(ctx, []mirror.TopicPartition{tp})
	if err != nil || ends[tp] != int64(len(recs))+1 {
		t.Fatalf("end offsets %v, %v", ends, err)
	}
	cons, err := src.Consume(ctx, offs)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	read := pollN(t, cons, len(recs))
	for i, r := range read {
		if r.Source.Offset != int64(i)+1 || r.Source.Topic != "orders" || r.Source.Partition != 0 {
			t.Errorf("record %d at %+v", i, r.Source)
		}
		want := recs[i].Record
		want.Source.Offset = int64(i)
		r.Source.Offset = int64(i)
		sameRecord(t, r, want)
	}
}

func pollN(t *testing.T, cons mirror.Consumer, n int) []mirror.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []mirror.Record
	for len(out) < n {
		recs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after %d records: %v", len(out), err)
		}
		out = append(out, recs...)
	}
	if len(out) != n {
		t.Fatalf("polled %d records, want %d", len(out), n)
	}
	return out
}

// TestJetStreamDeduplicates replays a batch, as a flow does after a crash
// before its checkpoint: the stream keeps one copy and the sink counts the
// duplicates.
func TestJetStreamDeduplicates(t *testing.T) {
	ctx := context.Background()
	url := startServer(t, true)
	cfg, _ := testConfig(t, url)
	sink, err := NewSink(ctx, cfg, jetStreamMapping())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	recs := trickyRecords("orders")
	for i := 0; i < 2; i++ {
		if err := sink.Write(ctx, &mirror.Batch{Records: recs}); err != nil {
			t.Fatal(err)
		}
	}
	if got := sink.Duplicates(); got != int64(len(recs)) {
		t.Errorf("duplicates %d, want %d", got, len(recs))
	}
	nc, _ := nats.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, _ := js.Stream(ctx, "ORDERS")
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(recs)) {
		t.Errorf("stream holds %d messages, want %d", info.State.Msgs, len(recs))
	}
}

// TestExistingStreamWindowWarning: an existing stream whose duplicate
// window is shorter than the restart budget gets a warning; a missing
// stream without create_stream is an error.
func TestExistingStreamWindowWarning(t *testing.T) {
	ctx := context.Background()
	url := startServer(t, true)
	cfg, logs := testConfig(t, url)
	m := jetStreamMapping()
	m.CreateStream = false
	if _, err := NewSink(ctx, cfg, m); err == nil || !strings.Contains(err.Error(), "ORDERS") {
		t.Fatalf("missing stream without create_stream: %v", err)
	}
	nc, _ := nats.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Duplicates: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	sink, err := NewSink(ctx, cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	sink.Close()
	if !strings.Contains(logs.String(), "shorter than the job's restart budget") || !strings.Contains(logs.String(), "duplicate_window=2m0s") {
		t.Errorf("no warning about the 2m window:\n%s", logs)
	}
}

// TestJetStreamSourceAcks: messages are acked only when acknowledged, and
// a new session resumes at the position given, not where the durable
// consumer was.
func TestJetStreamSourceAcks(t *testing.T) {
	ctx := context.Background()
	url := startServer(t, true)
	cfg, _ := testConfig(t, url)
	nc, _ := nats.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"ev.>"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := js.Publish(ctx, fmt.Sprintf("ev.%d", i%4), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	m := Mapping{Stream: "EVENTS", Durable: "d1"}
	src, err := NewSource(ctx, cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tp := mirror.TopicPartition{Topic: "EVENTS"}
	if ts, _ := src.Topics(ctx); len(ts) != 1 || ts[0].Name != "EVENTS" || ts[0].Partitions != 1 {
		t.Fatalf("topics %+v", ts)
	}
	cons, err := src.Consume(ctx, map[mirror.TopicPartition]int64{tp: 1})
	if err != nil {
		t.Fatal(err)
	}
	recs := pollN(t, cons, 100)
	for i, r := range recs {
		// A message from a NATS client has its subject as key.
		if string(r.Value) != fmt.Sprint(i) || string(r.Key) != fmt.Sprintf("ev.%d", i%4) || r.Timestamp.IsZero() {
			t.Fatalf("record %d: %q=%q at %v", i, r.Key, r.Value, r.Timestamp)
		}
	}
	info := func() *jetstream.ConsumerInfo {
		c, err := js.Consumer(ctx, "EVENTS", "d1")
		if err != nil {
			t.Fatal(err)
		}
		ci, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ci
	}
	if ci := info(); ci.AckFloor.Stream != 0 || ci.Config.AckPolicy != jetstream.AckAllPolicy || ci.Config.MaxAckPending != DefaultMaxAckPending {
		t.Fatalf("before acknowledging: ack floor %d, config %+v", ci.AckFloor.Stream, ci.Config)
	}
	if err := cons.Acknowledge(ctx, map[mirror.TopicPartition]int64{tp: 41}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "ack floor 40", func() bool { return info().AckFloor.Stream == 40 })
	cons.Close()

	// The next session starts where the target's checkpoint says (61),
	// although the consumer's ack floor is 40.
	cons, err = src.Consume(ctx, map[mirror.TopicPartition]int64{tp: 61})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	recs = pollN(t, cons, 40)
	if recs[0].Source.Offset != 61 || recs[39].Source.Offset != 100 {
		t.Errorf("resumed at %d..%d, want 61..100", recs[0].Source.Offset, recs[39].Source.Offset)
	}
	latest, _ := src.Offsets(ctx, []mirror.TopicPartition{tp}, mirror.StartPosition{Kind: mirror.StartLatest})
	if latest[tp] != 101 {
		t.Errorf("latest %d, want 101", latest[tp])
	}
}

// TestCore: a core sink publishes and flushes; a core source receives,
// with offsets counting from the position given.
func TestCore(t *testing.T) {
	ctx := context.Background()
	url := startServer(t, false)
	cfg, logs := testConfig(t, url)
	m := Mapping{Subjects: []string{"orders.>"}, Subject: "orders.{key}", Topic: "orders"}
	src, err := NewSource(ctx, cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tp := mirror.TopicPartition{Topic: "orders"}
	cons, err := src.Consume(ctx, map[mirror.TopicPartition]int64{tp: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	sink, err := NewSink(ctx, cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if !strings.Contains(logs.String(), "keeps no checkpoint") {
		t.Errorf("no note that a core sink without JetStream keeps no checkpoint:\n%s", logs)
	}
	recs := trickyRecords("orders")
	if err := sink.Write(ctx, &mirror.Batch{Records: recs, Checkpoint: &mirror.Checkpoint{Flow: "j/events"}}); err != nil {
		t.Fatal(err)
	}
	if cp, err := sink.LoadCheckpoint(ctx, "j/events"); cp != nil || err != nil {
		t.Errorf("core sink without JetStream returned checkpoint %+v, %v", cp, err)
	}
	read := pollN(t, cons, len(recs))
	for i, r := range read {
		if r.Source.Offset != int64(500+i) {
			t.Errorf("record %d has offset %d", i, r.Source.Offset)
		}
		want := recs[i].Record
		r.Source, want.Source = mirror.SourcePosition{}, mirror.SourcePosition{}
		sameRecord(t, r, want)
	}
	ends, _ := src.EndOffsets(ctx, []mirror.TopicPartition{tp})
	if ends[tp] != int64(500+len(recs)) {
		t.Errorf("end offset %d", ends[tp])
	}
}

// TestRecordTooLarge: a record over max_payload fails the write with
// mirror.ErrRecordTooLarge.
func TestRecordTooLarge(t *testing.T) {
	ctx := context.Background()
	url := startServer(t, true)
	cfg, _ := testConfig(t, url)
	sink, err := NewSink(ctx, cfg, jetStreamMapping())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	max, _ := sink.MaxRecordBytes(ctx, "orders")
	rec := mirror.OutRecord{Record: mirror.Record{Key: []byte("k"), Value: make([]byte, max)}, Topic: "orders"}
	err = sink.Write(ctx, &mirror.Batch{Records: []mirror.OutRecord{rec}})
	if err == nil || !strings.Contains(err.Error(), "max_payload") || !errorsIs(err, mirror.ErrRecordTooLarge) {
		t.Fatalf("write of %d bytes: %v", max, err)
	}
}
