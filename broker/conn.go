package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. A reader goroutine frames and parses
// requests; serve handles them one at a time, in order, and writes each
// response before taking the next request.
//
// Read-ahead is one request: the reader parses the next request while the
// current one is handled and then waits for serve to take it (an unbuffered
// hand-off). A connection thus holds at most two request frames (each up to
// Config.MaxRequestBytes) plus the read buffer, however long a handler
// blocks (long-poll Fetch, JoinGroup), while pipelined requests still
// overlap their parsing with the previous request's handling.
type conn struct {
	b          *Broker
	nc         net.Conn
	log        *slog.Logger
	clientHost string

	stopOnce sync.Once
	wbuf     []byte // response buffer; used only by the serving goroutine
}

// request is a parsed request frame.
type request struct {
	key      int16
	version  int16
	corrID   int32
	clientID string
	body     kmsg.Request

	// unsupported marks an ApiVersions request of a version we do not
	// serve (KIP-511): it gets a v0 UNSUPPORTED_VERSION answer.
	unsupported bool
}

// errCloseConn is returned by a handler to close its connection after a log
// line, as Kafka does with requests it cannot serve.
type errCloseConn struct{ reason string }

func (e errCloseConn) Error() string { return e.reason }

func newConn(b *Broker, nc net.Conn) *conn {
	host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	return &conn{b: b, nc: nc, clientHost: host, log: b.log.With("remote", nc.RemoteAddr().String())}
}

// stopReading makes the reader stop after the frame it is reading, so the
// requests already read are answered and the connection then closes.
func (c *conn) stopReading() {
	c.stopOnce.Do(func() { c.nc.SetReadDeadline(time.Now()) })
}

func (c *conn) serve() {
	defer c.nc.Close()
	reqs := make(chan *request) // unbuffered: see the read-ahead bound on conn
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(reqs)
		c.readLoop(reqs)
	}()
	for req := range reqs {
		if err := c.handle(req); err != nil {
			var cc errCloseConn
			switch {
			case errors.As(err, &cc):
				c.log.Warn("closing connection", "reason", cc.reason, "api_key", req.key, "api_version", req.version, "client_id", req.clientID)
			case errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF):
			default:
				c.log.Debug("closing connection", "err", err)
			}
			c.nc.Close()
			for range reqs { // let the reader finish
			}
			break
		}
	}
	<-readerDone
}

// readLoop frames requests and hands them to serve until the connection
// closes, a frame is bad, or stopReading.
func (c *conn) readLoop(reqs chan<- *request) {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isTimeout(err) {
				c.log.Debug("read failed", "err", err)
			}
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > c.b.cfg.MaxRequestBytes {
			c.log.Warn("closing connection: bad request frame size", "size", size, "max", c.b.cfg.MaxRequestBytes)
			c.nc.Close()
			return
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(br, frame); err != nil {
			c.log.Warn("closing connection: truncated request frame", "size", size, "err", err)
			return
		}
		req, err := c.parse(frame)
		if err != nil {
			var cc errCloseConn
			if errors.As(err, &cc) {
				c.log.Warn("closing connection", "reason", cc.reason)
			}
			c.nc.Close()
			return
		}
		reqs <- req
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// parse decodes a request frame. It returns errCloseConn for anything it
// cannot serve, except an ApiVersions request of an unserved version, which
// comes back marked unsupported.
func (c *conn) parse(frame []byte) (*request, error) {
	r := &request{
		key:     int16(binary.BigEndian.Uint16(frame[0:])),
		version: int16(binary.BigEndian.Uint16(frame[2:])),
		corrID:  int32(binary.BigEndian.Uint32(frame[4:])),
	}
	rest := frame[8:]
	if len(rest) < 2 {
		return nil, errCloseConn{"request header without client ID"}
	}
	if n := int16(binary.BigEndian.Uint16(rest)); n >= 0 {
		if len(rest) < 2+int(n) {
			return nil, errCloseConn{"request header: client ID past the frame"}
		}
		r.clientID = string(rest[2 : 2+int(n)])
		rest = rest[2+int(n):]
	} else {
		rest = rest[2:]
	}
	api, ok := c.b.apis[r.key]
	if !ok {
		return nil, errCloseConn{fmt.Sprintf("unknown API key %d", r.key)}
	}
	if r.version < api.min || r.version > api.max {
		if r.key == kmsg.ApiVersions.Int16() {
			r.unsupported = true // answered by serve, in order
			return r, nil
		}
		return nil, errCloseConn{fmt.Sprintf("%s v%d is not served (v%d-v%d)", kmsg.NameForKey(r.key), r.version, api.min, api.max)}
	}
	body := kmsg.RequestForKey(r.key)
	body.SetVersion(r.version)
	if body.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return nil, errCloseConn{"request header: " + err.Error()}
		}
	}
	if err := body.ReadFrom(rest); err != nil {
		return nil, errCloseConn{fmt.Sprintf("malformed %s v%d request: %v", kmsg.NameForKey(r.key), r.version, err)}
	}
	r.body = body
	return r, nil
}

// skipTags skips a tagged-field section (KIP-482).
func skipTags(b []byte) ([]byte, error) {
	n, m := binary.Uvarint(b)
	if m <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[m:]
	for i := uint64(0); i < n; i++ {
		if _, m = binary.Uvarint(b); m <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[m:]
		size, m := binary.Uvarint(b)
		if m <= 0 || uint64(len(b)-m) < size {
			return nil, errors.New("bad tag size")
		}
		b = b[m+int(size):]
	}
	return b, nil
}

// handle serves one request and writes its response, if it has one.
func (c *conn) handle(r *request) error {
	if r.unsupported {
		return c.writeUnsupportedApiVersions(r.corrID)
	}
	api := c.b.apis[r.key]
	resp, err := api.handle(c, r)
	if err != nil || resp == nil {
		return err
	}
	resp.SetVersion(r.version)
	return c.writeResponse(r, resp)
}

// writeResponse frames resp: size, correlation ID, the header's tag section
// for flexible responses (except ApiVersions, whose header is always v0),
// then the body.
func (c *conn) writeResponse(r *request, resp kmsg.Response) error {
	buf := append(c.wbuf[:0], 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(r.corrID))
	if resp.IsFlexible() && r.key != kmsg.ApiVersions.Int16() {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	c.wbuf = buf
	_, err := c.nc.Write(buf)
	if cap(c.wbuf) > 1<<20 {
		c.wbuf = nil // do not pin a large buffer per idle connection
	}
	return err
}

// writeUnsupportedApiVersions answers an ApiVersions request of a version we
// do not serve: a v0 response with UNSUPPORTED_VERSION and our ranges.
func (c *conn) writeUnsupportedApiVersions(corrID int32) error {
	resp := c.b.apiVersionsResponse(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	return c.writeResponse(&request{key: kmsg.ApiVersions.Int16(), corrID: corrID}, resp)
}

// ctx is the context of a request: cancelled when the broker shuts down.
func (c *conn) ctx() context.Context { return c.b.ctx }
