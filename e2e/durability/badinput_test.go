package durability

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/storage"
	"github.com/tributary/tributary/e2e/cluster"
)

// Limits the bad-input broker runs with.
const (
	badInputMaxRequestBytes = 1 << 20
	badInputMaxMessageBytes = 64 << 10
)

// TestBadInputClosesOnlyItsConnection sends requests no client should send
// on raw TCP connections while a franz-go producer and consumer keep
// working on another topic: framing and protocol errors close their own
// connection, bad record batches get per-partition errors, and the other
// clients see no error and lose nothing.
func TestBadInputClosesOnlyItsConnection(t *testing.T) {
	b := cluster.StartBroker(t,
		"--max-request-bytes", fmt.Sprint(badInputMaxRequestBytes),
		"--max-message-bytes", fmt.Sprint(badInputMaxMessageBytes))
	cluster.CreateTopic(t, b.Addr, "traffic", 1, nil)
	cluster.CreateTopic(t, b.Addr, "raw", 1, nil)

	tr := startTraffic(t, b.Addr, "traffic")
	cluster.Eventually(t, 30*time.Second, "the background consumer to get records", func() bool { return tr.consumedCount() > 100 })

	// Each frame closes its connection, and the broker says why.
	closing := []struct {
		name  string
		log   string
		frame func(c *rawConn) []byte
	}{
		{"malformed Produce v7 body", "malformed Produce v7 request", func(c *rawConn) []byte {
			body := []byte{0xff, 0xff}                             // null transactional ID
			body = binary.BigEndian.AppendUint16(body, 0xffff)     // acks -1
			body = binary.BigEndian.AppendUint32(body, 1000)       // timeout
			body = binary.BigEndian.AppendUint32(body, 0x7ffffff0) // topic count, with no topic after it
			body = append(body, "garbage"...)
			f, _ := c.frame(kmsg.Produce.Int16(), 7, false, body)
			return f
		}},
		{"garbage header", "request header without client ID", func(*rawConn) []byte {
			// A frame of 9 bytes: key, version and correlation ID, then one
			// byte where the client ID length should be.
			return []byte{0, 0, 0, 9, 0, 3, 0, 9, 0, 0, 0, 1, 0xee}
		}},
		{"negative frame size", "size=-16", func(*rawConn) []byte { return []byte{0xff, 0xff, 0xff, 0xf0} }},
		{"frame size above --max-request-bytes", "size=1048577", func(*rawConn) []byte {
			return binary.BigEndian.AppendUint32(nil, badInputMaxRequestBytes+1)
		}},
		{"unknown API key", "unknown API key 9999", func(c *rawConn) []byte {
			f, _ := c.frame(9999, 0, false, []byte{0, 0, 0, 0})
			return f
		}},
		{"Produce v2 (below the served range)", "Produce v2 is not served", func(c *rawConn) []byte {
			req := kmsg.NewPtrProduceRequest()
			req.Version = 2
			req.Acks, req.TimeoutMillis = -1, 1000
			f, _ := c.frame(req.Key(), req.Version, false, req.AppendTo(nil))
			return f
		}},
		{"Fetch v99 (above the served range)", "Fetch v99 is not served", func(c *rawConn) []byte {
			f, _ := c.frame(kmsg.Fetch.Int16(), 99, true, []byte{0, 0, 0, 0})
			return f
		}},
	}
	for _, tc := range closing {
		c := dialRaw(t, b.Addr)
		c.write(tc.frame(c))
		c.requireClosed(tc.name)
		cluster.Eventually(t, 10*time.Second, fmt.Sprintf("the broker to log %q", tc.log), func() bool {
			return strings.Contains(b.Output(), tc.log)
		})
	}

	t.Run("ApiVersions v99", func(t *testing.T) {
		c := dialRaw(t, b.Addr)
		f, corr := c.frame(kmsg.ApiVersions.Int16(), 99, true, []byte{0, 0, 0})
		c.write(f)
		old := kmsg.NewPtrApiVersionsResponse()
		old.Version = 0
		c.recv(corr, old)
		if old.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("ApiVersions v99: error %v, want %v", kerr.ErrorForCode(old.ErrorCode), kerr.UnsupportedVersion)
		}
		// The connection stays open: a served version on it gets the same
		// ranges and no error.
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareName, req.ClientSoftwareVersion = "durability-raw", "1"
		corr = c.send(req)
		cur := kmsg.NewPtrApiVersionsResponse()
		cur.Version = 3
		c.recv(corr, cur)
		if cur.ErrorCode != 0 {
			t.Fatalf("ApiVersions v3 after v99: %v", kerr.ErrorForCode(cur.ErrorCode))
		}
		ranges := func(r *kmsg.ApiVersionsResponse) string {
			var s []string
			for _, k := range r.ApiKeys {
				s = append(s, fmt.Sprintf("%s:%d-%d", kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion))
			}
			return strings.Join(s, " ")
		}
		if got, want := ranges(old), ranges(cur); got != want {
			t.Fatalf("ApiVersions v99 answered ranges\n%s\nbut v3 answers\n%s", got, want)
		}
		for _, want := range []string{"Produce:3-12", "ApiVersions:0-4"} {
			if !strings.Contains(ranges(old), want) {
				t.Fatalf("ApiVersions v99 answered ranges %s, missing %s", ranges(old), want)
			}
		}
	})

	t.Run("bad batches", func(t *testing.T) {
		c := dialRaw(t, b.Addr)
		produce := func(batch []byte) kmsg.ProduceResponseTopicPartition {
			t.Helper()
			req := kmsg.NewPtrProduceRequest()
			req.Version = 9 // flexible
			req.Acks, req.TimeoutMillis = -1, 10000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "raw"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = batch
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			corr := c.send(req)
			resp := kmsg.NewPtrProduceResponse()
			resp.Version = req.Version
			c.recv(corr, resp)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("produce response with %d topics, want one topic with one partition", len(resp.Topics))
			}
			return resp.Topics[0].Partitions[0]
		}
		requireCode := func(what string, sp kmsg.ProduceResponseTopicPartition, want int16, wantOffset int64) {
			t.Helper()
			if sp.ErrorCode != want {
				t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(sp.ErrorCode), kerr.ErrorForCode(want))
			}
			if want == 0 && sp.BaseOffset != wantOffset {
				t.Fatalf("%s: base offset %d, want %d", what, sp.BaseOffset, wantOffset)
			}
		}

		big := storage.EncodeBatch(valueRecords(strings.Repeat("b", badInputMaxMessageBytes+1)), -1, -1, -1)
		requireCode("batch larger than max.message.bytes", produce(big), kerr.MessageTooLarge.Code, 0)
		requireCode("good batch after it", produce(storage.EncodeBatch(valueRecords("good-0"), -1, -1, -1)), 0, 0)

		corrupt := storage.EncodeBatch(valueRecords("corrupt-me"), -1, -1, -1)
		corrupt[len(corrupt)-3] ^= 0x20 // a byte of the value: the CRC no longer matches
		requireCode("batch with a wrong CRC", produce(corrupt), kerr.CorruptMessage.Code, 0)
		requireCode("good batch after it", produce(storage.EncodeBatch(valueRecords("good-1"), -1, -1, -1)), 0, 1)

		requireValues(t, readAll(t, b.Addr, "raw"), []string{"good-0", "good-1"})
	})

	// The other clients kept working throughout.
	during := tr.consumedCount()
	cluster.Eventually(t, 30*time.Second, "the background consumer to go on", func() bool { return tr.consumedCount() > during+100 })
	tr.stop(t)
}

// traffic is a franz-go producer and consumer working on one topic in the
// background; they record every error they see.
type traffic struct {
	cancelProduce, cancelConsume context.CancelFunc
	producerDone, consumerDone   chan struct{}

	mu       sync.Mutex
	produced int // acknowledged records, values traffic-0.. in order
	consumed int
	errs     []error
}

func (tr *traffic) fail(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.errs) < 20 {
		tr.errs = append(tr.errs, err)
	}
}

func (tr *traffic) consumedCount() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.consumed
}

// startTraffic starts a producer that sends batches of records synchronously
// and a consumer that reads them and checks that they come in order.
func startTraffic(t *testing.T, addr, topic string) *traffic {
	t.Helper()
	prod := cluster.Client(t, addr, kgo.DefaultProduceTopic(topic))
	cons := cluster.Client(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(500*time.Millisecond))
	tr := &traffic{producerDone: make(chan struct{}), consumerDone: make(chan struct{})}
	pctx, pcancel := context.WithCancel(context.Background())
	cctx, ccancel := context.WithCancel(context.Background())
	tr.cancelProduce, tr.cancelConsume = pcancel, ccancel
	t.Cleanup(func() { pcancel(); ccancel(); <-tr.producerDone; <-tr.consumerDone })

	go func() {
		defer close(tr.producerDone)
		for next := 0; ; next += 10 {
			recs := make([]*kgo.Record, 10)
			for i := range recs {
				recs[i] = kgo.StringRecord(fmt.Sprintf("traffic-%d", next+i))
			}
			err := prod.ProduceSync(pctx, recs...).FirstErr()
			if pctx.Err() != nil {
				return
			}
			if err != nil {
				tr.fail(fmt.Errorf("produce: %w", err))
				return
			}
			tr.mu.Lock()
			tr.produced += len(recs)
			tr.mu.Unlock()
		}
	}()
	go func() {
		defer close(tr.consumerDone)
		for {
			fs := cons.PollFetches(cctx)
			if cctx.Err() != nil {
				return
			}
			fs.EachError(func(topic string, p int32, err error) {
				if !errors.Is(err, context.Canceled) {
					tr.fail(fmt.Errorf("fetch %s-%d: %w", topic, p, err))
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				tr.mu.Lock()
				defer tr.mu.Unlock()
				if want := fmt.Sprintf("traffic-%d", tr.consumed); string(r.Value) != want || r.Offset != int64(tr.consumed) {
					if len(tr.errs) < 20 {
						tr.errs = append(tr.errs, fmt.Errorf("consumed %q at offset %d, want %q at %d", r.Value, r.Offset, want, tr.consumed))
					}
				}
				tr.consumed++
			})
		}
	}()
	return tr
}

// stop stops the producer, waits for the consumer to get everything it
// produced, stops the consumer and fails the test if either saw an error.
func (tr *traffic) stop(t *testing.T) {
	t.Helper()
	tr.cancelProduce()
	<-tr.producerDone
	tr.mu.Lock()
	produced := tr.produced
	tr.mu.Unlock()
	cluster.Eventually(t, 30*time.Second, fmt.Sprintf("the consumer to get all %d produced records", produced), func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.consumed >= produced || len(tr.errs) > 0
	})
	tr.cancelConsume()
	<-tr.consumerDone
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.errs) > 0 {
		t.Fatalf("the background clients saw errors: %v", tr.errs)
	}
	// The consumer can have read records whose produce was cancelled by
	// the stop after the broker appended them, never fewer.
	if tr.consumed < produced {
		t.Fatalf("background consumer got %d of %d records", tr.consumed, produced)
	}
	t.Logf("background clients: %d records produced and consumed", produced)
}
