package broker

import (
	"errors"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/broker/storage"
)

// Fetch: v4–v12 (v13+ address topics by ID and are not served).
//
// Long poll: the response is sent once it holds MinBytes, or after MaxWait,
// or at once when a partition has an error; meanwhile the fetch sleeps on the
// partitions' change channels (their high watermark or last stable offset
// moving). MaxBytes bounds the response and each partition's MaxBytes its
// share, except that the first batch of the first partition with data is
// always sent whole even when it alone is larger (KIP-74), so consumers never
// stall on a large batch. read_uncommitted reads up to the high watermark,
// read_committed up to the last stable offset (equal while there are no
// transactions) and with the aborted transactions overlapping the records
// sent (from the partition's aborted-transaction index), so the consumer
// drops their batches; a commit or abort marker moves the last stable offset
// and wakes read_committed long polls. Fetch sessions (KIP-227) are not kept: session ID 0 tells
// clients to send full requests. A CurrentLeaderEpoch (v9+) above ours gets
// UNKNOWN_LEADER_EPOCH, below ours FENCED_LEADER_EPOCH. The records are sent
// from the segment files with sendfile (fetchframe.go).
func (b *Broker) handleFetch(c *conn, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.FetchRequest)
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	minBytes := int64(req.MinBytes)
	var timer *time.Timer
	for {
		resp, total, failed, waits := b.readFetch(req, r.version)
		wait := time.Until(deadline)
		if total >= minBytes || failed || wait <= 0 || len(waits) == 0 || c.ctx().Err() != nil {
			return nil, c.writeFetch(r.corrID, resp)
		}
		releaseFetch(resp)
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		if !waitAny(waits, timer.C, c.ctx().Done()) {
			resp, _, _, _ = b.readFetch(req, r.version)
			return nil, c.writeFetch(r.corrID, resp)
		}
	}
}

// waitAny blocks until one of chans is closed (true) or timeout or done
// fire (false).
func waitAny(chans []<-chan struct{}, timeout <-chan time.Time, done <-chan struct{}) bool {
	if len(chans) == 1 {
		select {
		case <-chans[0]:
			return true
		case <-timeout:
		case <-done:
		}
		return false
	}
	woke := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	for _, ch := range chans {
		go func(ch <-chan struct{}) {
			select {
			case <-ch:
				select {
				case woke <- struct{}{}:
				case <-stop:
				}
			case <-stop:
			}
		}(ch)
	}
	select {
	case <-woke:
		return true
	case <-timeout:
	case <-done:
	}
	return false
}

// readFetch reads what the request asks for as of now. It returns the
// response (holding references on log chunks: write or release it), the
// record bytes in it, whether a partition failed, and the change channels to
// wait on, taken before reading so no append is missed.
func (b *Broker) readFetch(req *kmsg.FetchRequest, version int16) (*fetchResponse, int64, bool, []<-chan struct{}) {
	resp := &fetchResponse{version: version}
	remaining := int64(req.MaxBytes)
	if version < 3 || remaining <= 0 {
		remaining = math.MaxInt32
	}
	var total int64
	var failed bool
	var waits []<-chan struct{}
	committed := req.IsolationLevel == 1
	for _, rt := range req.Topics {
		ft := fetchTopic{name: rt.Topic}
		for _, rp := range rt.Partitions {
			fp := fetchPartition{index: rp.Partition, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, preferredReplica: -1}
			if committed {
				fp.aborted = []abortedTxn{}
			}
			p := b.topics.partition(rt.Topic, rp.Partition)
			if p == nil {
				fp.errorCode = kerr.UnknownTopicOrPartition.Code
				failed = true
				ft.partitions = append(ft.partitions, fp)
				continue
			}
			l := p.log
			if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, l.LeaderEpoch()); code != 0 {
				fp.errorCode = code
				failed = true
				ft.partitions = append(ft.partitions, fp)
				continue
			}
			waits = append(waits, l.Changed())
			fp.highWatermark = l.HighWatermark()
			fp.lastStableOffset = l.LastStableOffset()
			fp.logStartOffset = l.LogStartOffset()
			upTo := fp.highWatermark
			if committed {
				upTo = fp.lastStableOffset
			}
			switch {
			case rp.FetchOffset < fp.logStartOffset || rp.FetchOffset > l.LogEndOffset():
				fp.errorCode = kerr.OffsetOutOfRange.Code
				failed = true
			case rp.FetchOffset >= upTo || remaining <= 0:
			default:
				limit := int64(rp.PartitionMaxBytes)
				if limit > remaining {
					limit = remaining
				}
				rr, err := l.Read(rp.FetchOffset, limit, total == 0, upTo)
				if err != nil {
					fp.errorCode = logErrorCode(err)
					if !errors.Is(err, storage.ErrOffsetOutOfRange) {
						b.log.Error("fetch read failed", "topic", rt.Topic, "partition", rp.Partition, "offset", rp.FetchOffset, "err", err)
					}
					failed = true
					break
				}
				fp.read = rr
				if committed && rr.Bytes > 0 {
					// Every aborted transaction overlapping what may be in
					// the records; the consumer drops their batches.
					for _, a := range l.AbortedTransactions(rp.FetchOffset, upTo) {
						fp.aborted = append(fp.aborted, abortedTxn{producerID: a.ProducerID, firstOffset: a.FirstOffset})
					}
				}
				total += rr.Bytes
				remaining -= rr.Bytes
			}
			ft.partitions = append(ft.partitions, fp)
		}
		resp.topics = append(resp.topics, ft)
	}
	return resp, total, failed, waits
}

// checkLeaderEpoch validates a client's idea of the leader epoch (-1: none).
func checkLeaderEpoch(clientEpoch, ours int32) int16 {
	switch {
	case clientEpoch < 0 || clientEpoch == ours:
		return 0
	case clientEpoch > ours:
		return kerr.UnknownLeaderEpoch.Code
	default:
		return kerr.FencedLeaderEpoch.Code
	}
}

func releaseFetch(resp *fetchResponse) {
	for i := range resp.topics {
		for j := range resp.topics[i].partitions {
			resp.topics[i].partitions[j].read.Release()
		}
	}
}

// writeFetch frames and writes resp, then releases its chunks.
func (c *conn) writeFetch(corrID int32, resp *fetchResponse) error {
	defer releaseFetch(resp)
	buf, splices := frameFetch(c.wbuf[:0], corrID, resp)
	c.wbuf = buf
	return writeFramed(c.nc, buf, splices)
}
