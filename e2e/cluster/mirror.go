package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// mirrorHTTPLine matches the line `tributary mirror run` logs once its
// status server listens: `... msg="serving metrics and status" http=ADDR`.
var mirrorHTTPLine = regexp.MustCompile(`serving metrics and status.*\bhttp=(\S+)`)

// Mirror is a `tributary mirror run` worker process.
type Mirror struct {
	*Process
	// Config is the job file the worker runs.
	Config string
	// HTTP is the address of its /metrics and /v1/jobs server.
	HTTP string
	args []string
	t    testing.TB
}

// StartMirror starts `tributary mirror run --config configPath --http
// 127.0.0.1:0` (plus extra flags) and waits until it logs its HTTP address.
func StartMirror(t testing.TB, configPath string, extra ...string) *Mirror {
	t.Helper()
	m := &Mirror{Config: configPath, t: t,
		args: append([]string{"mirror", "run", "--config", configPath, "--http", "127.0.0.1:0"}, extra...)}
	m.start()
	return m
}

func (m *Mirror) start() {
	m.t.Helper()
	m.Process = Start(m.t, "mirror "+filepath.Base(m.Config), Binary(m.t), m.args...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if sub := mirrorHTTPLine.FindStringSubmatch(m.Output()); sub != nil {
			m.HTTP = sub[1]
			return
		}
		if m.Exited() {
			m.t.Fatalf("mirror worker exited before serving HTTP:\n%s", tail(m.Output(), 4000))
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mirror worker logged no HTTP address within 30s:\n%s", tail(m.Output(), 4000))
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// Restart starts the worker again with the same arguments after it
// exited (SIGTERM, SIGKILL); it fails the test if it still runs.
func (m *Mirror) Restart() {
	m.t.Helper()
	if !m.Exited() {
		m.t.Fatalf("mirror worker restarted while still running")
	}
	m.start()
}

// Terminate sends SIGTERM and waits up to timeout for the worker to exit;
// it fails the test if the worker does not exit in time or exits non-zero.
func (m *Mirror) Terminate(timeout time.Duration) {
	m.t.Helper()
	m.Signal(syscall.SIGTERM)
	err, ok := m.Wait(timeout)
	if !ok {
		m.t.Fatalf("mirror worker did not exit within %v of SIGTERM:\n%s", timeout, tail(m.Output(), 4000))
	}
	if err != nil {
		m.t.Fatalf("mirror worker exited with %v after SIGTERM:\n%s", err, tail(m.Output(), 4000))
	}
}

// FlowStatus is one flow as GET /v1/jobs shows it (the fields tests use).
type FlowStatus struct {
	Job          string           `json:"job"`
	Target       string           `json:"target"`
	State        string           `json:"state"`
	LastError    string           `json:"last_error"`
	Records      int64            `json:"records"`
	Partitions   int              `json:"partitions"`
	LagRecords   int64            `json:"lag_records"`
	PartitionLag map[string]int64 `json:"partition_lag"`
}

// JobStatus is one job as GET /v1/jobs shows it.
type JobStatus struct {
	Name  string       `json:"name"`
	Flows []FlowStatus `json:"flows"`
}

// Jobs returns GET /v1/jobs of the worker.
func (m *Mirror) Jobs() ([]JobStatus, error) {
	body, err := m.get("/v1/jobs")
	if err != nil {
		return nil, err
	}
	var out struct {
		Jobs []JobStatus `json:"jobs"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode /v1/jobs: %w: %s", err, body)
	}
	return out.Jobs, nil
}

// Flow returns the status of job's flow into target, or false if the
// worker does not show it (yet).
func (m *Mirror) Flow(job, target string) (FlowStatus, bool, error) {
	jobs, err := m.Jobs()
	if err != nil {
		return FlowStatus{}, false, err
	}
	for _, j := range jobs {
		for _, f := range j.Flows {
			if j.Name == job && f.Target == target {
				return f, true, nil
			}
		}
	}
	return FlowStatus{}, false, nil
}

// Metrics returns GET /metrics of the worker (Prometheus text format).
func (m *Mirror) Metrics() (string, error) {
	body, err := m.get("/metrics")
	return string(body), err
}

func (m *Mirror) get(path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.HTTP+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s from mirror worker: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s from mirror worker: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s from mirror worker: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

// WriteFile writes content to name in a new temp dir of t and returns its
// path; tests use it for job files.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}
