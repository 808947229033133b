package nats

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary/tributary/mirror"
)

func TestParsePubAck(t *testing.T) {
	noResponders := &nats.Msg{Header: nats.Header{"Status": []string{"503"}}}
	cases := []struct {
		name   string
		msg    *nats.Msg
		stream string
		dup    bool
		err    error // matched with errors.Is; nil: no error
		anyErr bool
	}{
		{name: "stored", msg: &nats.Msg{Data: []byte(`{"stream":"ORDERS","seq":7}`)}, stream: "ORDERS"},
		{name: "domain", msg: &nats.Msg{Data: []byte(`{"stream":"ORDERS","seq":7,"domain":"hub"}`)}, stream: "ORDERS"},
		{name: "duplicate", msg: &nats.Msg{Data: []byte(`{"stream":"ORDERS","seq":7,"duplicate":true}`)}, stream: "ORDERS", dup: true},
		{name: "duplicate blank", msg: &nats.Msg{Data: []byte(`{"stream":"ORDERS","seq":7,"duplicate": true}`)}, stream: "ORDERS", dup: true},
		{name: "not duplicate", msg: &nats.Msg{Data: []byte(`{"stream":"ORDERS","seq":7,"duplicate":false}`)}, stream: "ORDERS"},
		{name: "other stream", msg: &nats.Msg{Data: []byte(`{"stream":"OTHER","seq":1}`)}, stream: "OTHER"},
		{name: "other order", msg: &nats.Msg{Data: []byte(`{"seq":1, "stream":"ORDERS", "duplicate":true}`)}, stream: "ORDERS", dup: true},
		{name: "api error", msg: &nats.Msg{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`)}, anyErr: true},
		{name: "error with stream", msg: &nats.Msg{Data: []byte(`{"stream":"ORDERS","error":{"code":400,"err_code":10071,"description":"wrong last sequence"}}`)}, anyErr: true},
		{name: "no responders", msg: noResponders, err: jetstream.ErrNoStreamResponse},
		{name: "empty", msg: &nats.Msg{}, err: jetstream.ErrInvalidJSAck},
		{name: "garbage", msg: &nats.Msg{Data: []byte(`not json`)}, err: jetstream.ErrInvalidJSAck},
		{name: "no stream", msg: &nats.Msg{Data: []byte(`{"seq":1}`)}, err: jetstream.ErrInvalidJSAck},
	}
	for _, c := range cases {
		stream, dup, err := parsePubAck(c.msg, "ORDERS")
		switch {
		case c.err != nil || c.anyErr:
			if err == nil || (c.err != nil && !errors.Is(err, c.err)) {
				t.Errorf("%s: err %v, want %v", c.name, err, c.err)
			}
			var apiErr *jetstream.APIError
			if c.anyErr && !errors.As(err, &apiErr) {
				t.Errorf("%s: err %v is not a JetStream API error", c.name, err)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case stream != c.stream || dup != c.dup:
			t.Errorf("%s: stream %q duplicate %v, want %q %v", c.name, stream, dup, c.stream, c.dup)
		}
	}
}

func TestParseReplyToken(t *testing.T) {
	for tok, want := range map[string][2]int{"1-0": {1, 0}, "42-9999": {42, 9999}} {
		b, i, ok := parseReplyToken(tok)
		if !ok || int(b) != want[0] || i != want[1] {
			t.Errorf("parseReplyToken(%q) = %d, %d, %v", tok, b, i, ok)
		}
	}
	for _, tok := range []string{"", "-", "1-", "-1", "x-1", "1-x", "1-2-3", "12"} {
		if _, _, ok := parseReplyToken(tok); ok {
			t.Errorf("parseReplyToken(%q) accepted", tok)
		}
	}
}

// TestPublisherWindow publishes a batch far larger than the window: every
// message is stored once, and a replay of the batch is all duplicates.
func TestPublisherWindow(t *testing.T) {
	ctx := context.Background()
	url := startServer(t, true)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "W", Subjects: []string{"w.>"}, Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	p, err := newPublisher(nc, "events", "W", 3, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	const n = 200
	next := func(i int) (*nats.Msg, error) {
		return &nats.Msg{Subject: "w." + strconv.Itoa(i%7), Data: []byte("x"),
			Header: nats.Header{HeaderMsgID: []string{"id-" + strconv.Itoa(i)}}}, nil
	}
	var a msgArena
	tally, err := p.publish(ctx, n, next, &a)
	if err != nil || tally.stored != n || tally.duplicates != 0 {
		t.Fatalf("first batch: stored %d duplicates %d err %v, want %d stored", tally.stored, tally.duplicates, err, n)
	}
	tally, err = p.publish(ctx, n, next, &a)
	if err != nil || tally.stored != 0 || tally.duplicates != n {
		t.Fatalf("replay: stored %d duplicates %d err %v, want %d duplicates", tally.stored, tally.duplicates, err, n)
	}
	// A failing next ends the batch with its error.
	boom := errors.New("boom")
	_, err = p.publish(ctx, n, func(i int) (*nats.Msg, error) {
		if i == 5 {
			return nil, boom
		}
		return next(i + n)
	}, &a)
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want %v", err, boom)
	}
}

// TestJetStreamWrongStream: a subject another stream stores, and a
// subject no stream stores, fail the write instead of counting as written.
func TestJetStreamWrongStream(t *testing.T) {
	ctx := context.Background()
	url := startServer(t, true)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	recs := []mirror.OutRecord{{Record: mirror.Record{Key: []byte("k"), Value: []byte("v"),
		Source: mirror.SourcePosition{SourcePartition: mirror.SourcePartition{Cluster: "kafka", Topic: "orders"}, Offset: 1}}, Topic: "orders"}}
	for subject, want := range map[string]string{"other.{key}": "stored by stream OTHER", "nowhere.{key}": "no response from stream"} {
		cfg, _ := testConfig(t, url)
		m := jetStreamMapping()
		m.Subject = subject
		sink, err := NewSink(ctx, cfg, m)
		if err != nil {
			t.Fatal(err)
		}
		err = sink.Write(ctx, &mirror.Batch{Records: recs})
		sink.Close()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("subject %s: err %v, want one saying %q", subject, err, want)
		}
	}
}
