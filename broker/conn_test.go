package broker

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsFrame is a v0 ApiVersions request frame with no client ID.
func apiVersionsFrame(corrID int32) []byte {
	b := binary.BigEndian.AppendUint32(nil, 10)
	b = binary.BigEndian.AppendUint16(b, uint16(kmsg.ApiVersions.Int16()))
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(corrID))
	return binary.BigEndian.AppendUint16(b, 0xffff)
}

// While a handler blocks, the connection reads ahead at most one request:
// the frame after it is not taken off the socket until the blocked request
// is answered. Pipelined requests are then all answered, in order.
func TestConnReadAheadIsOneRequest(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	b := &Broker{cfg: Config{MaxRequestBytes: 1 << 20}, log: slog.Default()}
	b.apis = map[int16]api{kmsg.ApiVersions.Int16(): {0, 4, func(c *conn, r *request) (kmsg.Response, error) {
		if calls++; calls == 1 {
			close(entered)
			<-release // a long poll
		}
		return kmsg.NewPtrApiVersionsResponse(), nil
	}}}
	client, server := net.Pipe() // synchronous: a Write returns once read
	defer client.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		newConn(b, server).serve()
	}()
	released := false
	unblock := func() {
		if !released {
			released = true
			close(release)
		}
	}
	defer func() { unblock(); client.Close(); <-served }()

	write := func(corrID int32, d time.Duration) error {
		client.SetWriteDeadline(time.Now().Add(d))
		n, err := client.Write(apiVersionsFrame(corrID))
		if err != nil && n != 0 {
			t.Fatalf("frame %d: partial write of %d bytes: %v", corrID, n, err)
		}
		return err
	}
	if err := write(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	<-entered
	if err := write(2, 10*time.Second); err != nil {
		t.Fatalf("the one read-ahead request: %v", err)
	}
	// Nothing takes a third frame off the socket while request 1 blocks.
	if err := write(3, 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third pipelined frame while a handler blocks: %v, want it left unread", err)
	}

	unblock()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	readCorrID := func() int32 {
		var hdr [8]byte
		if _, err := io.ReadFull(client, hdr[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, client, int64(binary.BigEndian.Uint32(hdr[:]))-4); err != nil {
			t.Fatal(err)
		}
		return int32(binary.BigEndian.Uint32(hdr[4:]))
	}
	if id := readCorrID(); id != 1 {
		t.Fatalf("first response for correlation ID %d, want 1", id)
	}
	writeErr := make(chan error, 1)
	go func() { writeErr <- write(3, 10*time.Second) }()
	for want := int32(2); want <= 3; want++ {
		if id := readCorrID(); id != want {
			t.Fatalf("response for correlation ID %d, want %d", id, want)
		}
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
}
