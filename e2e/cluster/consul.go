package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ConsulBinary returns ./bin/consul of this checkout, failing the test
// (never skipping) when it was not built.
func ConsulBinary(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "bin", "consul")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("consul agent not found at %s: run `make tools` (builds Consul v1.14.11 into ./bin)", p)
	}
	return p
}

// ConsulOptions configure StartConsul.
type ConsulOptions struct {
	// Datacenter is the agent's datacenter. Default "dc1".
	Datacenter string
	// Server runs a real single-node server with a data directory
	// (-server -bootstrap-expect 1 -data-dir) instead of a -dev agent,
	// which keeps nothing across restarts.
	Server bool
	// JoinWAN is the serf WAN address (Consul.SerfWAN) of an agent of
	// another datacenter to federate with (-retry-join-wan).
	JoinWAN string
}

// Consul is a Consul agent process on loopback ports, every one of them
// free and chosen for it.
type Consul struct {
	*Process
	// HTTP is the HTTP API address, host:port.
	HTTP string
	// SerfWAN is the WAN gossip address another datacenter joins.
	SerfWAN    string
	Datacenter string
	Node       string
	DataDir    string // "" for -dev
	args       []string
	t          testing.TB
}

// StartConsul starts a Consul agent and waits until it has a leader and
// its own node is registered and healthy, so that sessions can be created.
func StartConsul(t testing.TB, opts ConsulOptions) *Consul {
	t.Helper()
	ConsulBinary(t) // fail early, with how to build it
	if opts.Datacenter == "" {
		opts.Datacenter = "dc1"
	}
	c := &Consul{t: t, Datacenter: opts.Datacenter, Node: "consul-" + opts.Datacenter}
	httpPort, serfLAN, serfWAN, server, dns, grpc, grpcTLS :=
		FreePort(t), FreePort(t), FreePort(t), FreePort(t), FreePort(t), FreePort(t), FreePort(t)
	c.HTTP = fmt.Sprintf("127.0.0.1:%d", httpPort)
	c.SerfWAN = fmt.Sprintf("127.0.0.1:%d", serfWAN)
	args := []string{"agent", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-datacenter", opts.Datacenter, "-node", c.Node,
		"-http-port", fmt.Sprint(httpPort), "-serf-lan-port", fmt.Sprint(serfLAN),
		"-serf-wan-port", fmt.Sprint(serfWAN), "-server-port", fmt.Sprint(server),
		"-dns-port", fmt.Sprint(dns), "-grpc-port", fmt.Sprint(grpc),
		"-hcl", fmt.Sprintf("ports { grpc_tls = %d }", grpcTLS),
		"-hcl", "performance { raft_multiplier = 1 }",
		"-log-level", "warn",
	}
	if opts.Server {
		c.DataDir = t.TempDir()
		args = append(args, "-server", "-bootstrap-expect", "1", "-data-dir", c.DataDir)
	} else {
		args = append(args, "-dev")
	}
	if opts.JoinWAN != "" {
		args = append(args, "-retry-join-wan", opts.JoinWAN, "-retry-interval-wan", "1s")
	}
	c.args = args
	c.start()
	return c
}

func (c *Consul) start() {
	c.t.Helper()
	c.Process = Start(c.t, "consul "+c.Datacenter, ConsulBinary(c.t), c.args...)
	Eventually(c.t, 60*time.Second, "consul "+c.Datacenter+" to elect a leader and register its node", func() bool {
		if c.Exited() {
			c.t.Fatalf("consul agent exited:\n%s", tail(c.Output(), 4000))
		}
		var leader string
		if err := c.GetJSON("/v1/status/leader", &leader); err != nil || leader == "" {
			return false
		}
		var checks []struct{ CheckID, Status string }
		if err := c.GetJSON("/v1/health/node/"+c.Node, &checks); err != nil {
			return false
		}
		for _, ch := range checks {
			if ch.CheckID == "serfHealth" && ch.Status == "passing" {
				return true
			}
		}
		return false
	})
}

// Stop stops the agent with SIGTERM and waits for it to exit.
func (c *Consul) Stop() {
	c.t.Helper()
	c.Signal(syscall.SIGTERM)
	if _, ok := c.Wait(30 * time.Second); !ok {
		c.t.Fatalf("consul %s did not exit within 30s of SIGTERM", c.Datacenter)
	}
}

// StartAgain starts a stopped agent again on the same ports and data dir.
func (c *Consul) StartAgain() {
	c.t.Helper()
	if !c.Exited() {
		c.t.Fatalf("consul %s: StartAgain while it is still running", c.Datacenter)
	}
	c.start()
}

// GetJSON GETs path from the agent's HTTP API and decodes the JSON body
// into v; a 404 is an error.
func (c *Consul) GetJSON(path string, v any) error {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + c.HTTP + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

// Do sends a request with body to the agent's HTTP API and fails the test
// unless it succeeds.
func (c *Consul) Do(method, path string, body []byte) []byte {
	c.t.Helper()
	req, err := http.NewRequest(method, "http://"+c.HTTP+path, strings.NewReader(string(body)))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatalf("%s %s on consul: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s %s on consul: %s: %s", method, path, resp.Status, out)
	}
	return out
}

// StartConsulMirror starts `tributary mirror run --consul ADDR --http
// 127.0.0.1:0` plus extra flags (such as --config, --worker-id) and waits
// until it serves HTTP.
func StartConsulMirror(t testing.TB, consulAddr string, extra ...string) *Mirror {
	t.Helper()
	m := &Mirror{Config: "consul " + consulAddr, t: t,
		args: append([]string{"mirror", "run", "--consul", consulAddr, "--http", "127.0.0.1:0"}, extra...)}
	m.start()
	return m
}
