package broker

import (
	"io"
	"net"
	"syscall"

	"github.com/tributary/tributary/broker/storage"
)

// copyChunk writes one file chunk to w. To a plain TCP connection from an OS
// file it uses sendfile(2) with an explicit offset, so concurrent fetches of
// one segment share its descriptor without seeking; anything else (tests'
// in-memory files, TLS later) is copied through a buffer.
func copyChunk(w io.Writer, ch storage.Chunk) error {
	if tcp, ok := w.(*net.TCPConn); ok {
		if sc, ok := ch.File.(syscall.Conn); ok {
			if handled, err := sendfileConn(tcp, sc, ch.Pos, ch.Len); handled {
				return err
			}
		}
	}
	_, err := io.Copy(w, io.NewSectionReader(ch.File, ch.Pos, ch.Len))
	return err
}

// sendfileConn sends n bytes of src from off to dst. handled is false when
// nothing was sent and the caller should copy instead.
func sendfileConn(dst *net.TCPConn, src syscall.Conn, off, n int64) (handled bool, err error) {
	srcRaw, err := src.SyscallConn()
	if err != nil {
		return false, nil
	}
	dstRaw, err := dst.SyscallConn()
	if err != nil {
		return false, nil
	}
	var werr error
	cerr := srcRaw.Control(func(srcFd uintptr) {
		for n > 0 && werr == nil {
			err := dstRaw.Write(func(dstFd uintptr) bool {
				for n > 0 {
					count := n
					if count > 1<<30 {
						count = 1 << 30
					}
					w, e := syscall.Sendfile(int(dstFd), int(srcFd), &off, int(count))
					if w > 0 {
						n -= int64(w)
					}
					switch {
					case e == syscall.EAGAIN:
						return false // wait until the socket is writable
					case e == syscall.EINTR:
						continue
					case e != nil:
						werr = e
						return true
					case w == 0:
						werr = io.ErrUnexpectedEOF // the file is shorter than the chunk
						return true
					}
				}
				return true
			})
			if err != nil {
				werr = err
			}
		}
	})
	if cerr != nil {
		return false, nil
	}
	handled = true
	return handled, werr
}
