package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// Binary returns the path of the tributary binary under test: TRIBUTARY_BIN,
// or one built from this checkout into a temp dir once per test binary.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TRIBUTARY_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "tributary-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "tributary")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/tributary")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building tributary: %v", buildErr)
	}
	return builtBin
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a child process with captured output.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start starts a command in its own process group, killed with the test
// binary (Pdeathsig) and at cleanup.
func Start(t testing.TB, name string, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, tail(p.Output(), 8000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// Output is everything the process wrote so far.
func (p *Process) Output() string { return p.out.String() }

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process group.
func (p *Process) Signal(sig syscall.Signal) {
	syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Kill SIGKILLs the process group and waits for the process to exit.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Wait waits up to timeout for the process to exit and returns its error.
func (p *Process) Wait(timeout time.Duration) (error, bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Broker is a tributary broker process.
type Broker struct {
	*Process
	Addr    string
	DataDir string
	args    []string
	t       testing.TB
}

// StartBroker starts `tributary broker` on a free loopback port with a new
// data dir (or the one given with --data-dir in extra) and waits until it
// answers Kafka requests.
func StartBroker(t testing.TB, extra ...string) *Broker {
	t.Helper()
	dir := ""
	for i, a := range extra {
		if a == "--data-dir" && i+1 < len(extra) {
			dir = extra[i+1]
		}
	}
	if dir == "" {
		dir = t.TempDir()
		extra = append([]string{"--data-dir", dir}, extra...)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	b := &Broker{Addr: addr, DataDir: dir, t: t,
		args: append([]string{"broker", "--listen", addr}, extra...)}
	b.start()
	return b
}

func (b *Broker) start() {
	b.t.Helper()
	b.Process = Start(b.t, "broker "+b.Addr, Binary(b.t), b.args...)
	WaitKafka(b.t, b.Addr, 30*time.Second)
}

// Restart stops the broker with SIGTERM (waiting for it to exit) and starts
// it again on the same address and data dir.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.start()
}

// Stop sends SIGTERM and waits for a clean exit.
func (b *Broker) Stop() {
	b.t.Helper()
	b.Signal(syscall.SIGTERM)
	err, ok := b.Wait(60 * time.Second)
	if !ok {
		b.t.Fatalf("broker %s did not exit within 60s of SIGTERM", b.Addr)
	}
	if err != nil {
		b.t.Fatalf("broker %s exited with %v after SIGTERM:\n%s", b.Addr, err, tail(b.Output(), 4000))
	}
}

// KillAndRestart SIGKILLs the broker and starts it again.
func (b *Broker) KillAndRestart() {
	b.t.Helper()
	b.Kill()
	b.start()
}

// WaitKafka polls addr with ApiVersions-backed pings until it answers.
func WaitKafka(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			lastErr = cl.Ping(ctx)
			cancel()
			cl.Close()
			if lastErr == nil {
				return
			}
		} else {
			lastErr = err
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
	t.Fatalf("no Kafka service at %s after %v: %v", addr, timeout, lastErr)
}

// Eventually polls cond every 50ms until it returns true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RequireTool fails the test (never skips) when a command is missing,
// saying how to install it.
func RequireTool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required: install it with `%s` (or run `make tools`)", name, install)
	}
	return p
}

// SystemPython is Debian's python3, for which python3-kafka and
// python3-confluent-kafka are installed; a pyenv python3 earlier on PATH
// lacks them.
const SystemPython = "/usr/bin/python3"

// RequirePythonModule fails the test when /usr/bin/python3 cannot import mod.
func RequirePythonModule(t testing.TB, mod, pkg string) {
	t.Helper()
	out, err := exec.Command(SystemPython, "-c", "import "+mod).CombinedOutput()
	if err != nil {
		t.Fatalf("%s cannot import %s (%v: %s): install it with `apt-get install -y %s` (or run `make tools`)",
			SystemPython, mod, err, strings.TrimSpace(string(out)), pkg)
	}
}
