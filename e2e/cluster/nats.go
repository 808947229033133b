package cluster

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// NATSServer is a `nats-server` process with JetStream.
type NATSServer struct {
	*Process
	// URL is nats://127.0.0.1:PORT.
	URL      string
	StoreDir string
}

// StartNATS starts Debian's nats-server (`nats-server -js -sd DIR -a
// 127.0.0.1 -p PORT`) on a free loopback port with a new store directory,
// and waits until it accepts connections. It fails the test with how to
// install it when the binary is missing.
func StartNATS(t testing.TB) *NATSServer {
	t.Helper()
	bin := RequireTool(t, "nats-server", "apt-get install -y nats-server")
	port := FreePort(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &NATSServer{URL: "nats://" + addr, StoreDir: dir}
	s.Process = Start(t, "nats-server "+addr, bin, "-js", "-sd", dir, "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s
		}
		if s.Exited() {
			t.Fatalf("nats-server exited:\n%s", tail(s.Output(), 4000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server on %s not accepting connections within 30s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}
