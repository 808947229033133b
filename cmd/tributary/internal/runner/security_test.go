package runner

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/mirror/config"
)

const legacyPassword = "Leg4cy-Kafka-s3cret"

// lockedBuffer collects log output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// securityFixture is a kfake "legacy" cluster requiring SASL SCRAM-SHA-256
// (user mirror) holding topic orders with records, a plaintext Tributary
// broker "central", and a count of the SASL requests kfake received.
type securityFixture struct {
	legacy   []string
	central  string
	saslReqs atomic.Int32
}

func newSecurityFixture(t *testing.T, records int) *securityFixture {
	t.Helper()
	fx := &securityFixture{}
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("legacy-id"), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "mirror", legacyPassword), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(k.Close)
	for _, key := range []kmsg.Key{kmsg.SASLHandshake, kmsg.SASLAuthenticate} {
		k.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			k.KeepControl()
			fx.saslReqs.Add(1)
			return nil, nil, false
		})
	}
	fx.legacy = k.ListenAddrs()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(fx.legacy...), kgo.DefaultProduceTopic("orders"),
		kgo.SASL(scram.Auth{User: "mirror", Pass: legacyPassword}.AsSha256Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range records {
		if err := prod.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("order-%d", i))).FirstErr(); err != nil {
			t.Fatalf("produce to legacy: %v", err)
		}
	}

	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.AutoCreateTopics = true
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
	})
	fx.central = b.Addr()
	return fx
}

// jobFile is a job mirroring legacy's orders into central, legacy
// authenticated with the password in $LEGACY_PASSWORD. Its retry backoff
// is short, so a flow that retried authentication would storm.
func (fx *securityFixture) jobFile(t *testing.T, password string) *config.File {
	t.Helper()
	yaml := fmt.Sprintf(`clusters:
  legacy:
    bootstrap: [%q]
    version: "2.8.0"
    security:
      sasl: {mechanism: SCRAM-SHA-256, username: mirror, password: "${LEGACY_PASSWORD}"}
  central:
    bootstrap: [%q]
jobs:
  - name: migrate
    sources:
      - cluster: legacy
        topics: [orders]
    targets: [central]
    tuning: {retry_backoff: 10ms, max_retry_backoff: 50ms}
`, fx.legacy[0], fx.central)
	f, err := config.Parse("migrate.yaml", []byte(yaml), config.Options{LookupEnv: func(name string) (string, bool) {
		return password, name == "LEGACY_PASSWORD"
	}})
	if err != nil {
		t.Fatalf("parse job file: %v", err)
	}
	return f
}

// TestMirrorOverSCRAM runs a job whose source needs SASL SCRAM-SHA-256:
// every record arrives on the target, and the password is in no log line.
func TestMirrorOverSCRAM(t *testing.T) {
	const records = 50
	fx := newSecurityFixture(t, records)
	var logs lockedBuffer
	r := New(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r.Apply(ctx, fx.jobFile(t, legacyPassword))
	defer r.Stop()

	cl, err := kgo.NewClient(kgo.SeedBrokers(fx.central), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	for len(seen) < records {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("central holds %d of %d records; job status %+v", len(seen), records, r.Status())
		}
		fs.EachRecord(func(rec *kgo.Record) { seen[string(rec.Value)] = true })
	}
	for i := range records {
		if !seen[fmt.Sprintf("order-%d", i)] {
			t.Errorf("order-%d missing on central", i)
		}
	}
	if st := r.Status(); len(st) != 1 || st[0].Flows[0].State != "running" {
		t.Errorf("status %+v, want one running flow", st)
	}
	if strings.Contains(logs.String(), legacyPassword) {
		t.Fatalf("the password is in the logs:\n%s", logs.String())
	}
}

// TestMirrorWrongPassword runs the job with a wrong password: the flow
// fails for good with one clear error, kfake sees a handful of SASL
// requests and no more, and the password is in no log line nor status.
func TestMirrorWrongPassword(t *testing.T) {
	fx := newSecurityFixture(t, 1)
	var logs lockedBuffer
	r := New(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const wrong = "Wr0ng-" + legacyPassword
	base := fx.saslReqs.Load() // the fixture's producer authenticated too
	r.Apply(ctx, fx.jobFile(t, wrong))
	defer r.Stop()

	start := time.Now()
	var state, lastErr string
	for deadline := time.Now().Add(20 * time.Second); state != "failed"; {
		if time.Now().After(deadline) {
			t.Fatalf("flow state %q after 20s (last error %q), want failed", state, lastErr)
		}
		time.Sleep(10 * time.Millisecond) // polling the status, not synchronisation
		if st := r.Status(); len(st) == 1 && len(st[0].Flows) == 1 {
			state, lastErr = st[0].Flows[0].State, st[0].Flows[0].LastError
		}
	}
	t.Logf("failed after %v: %s", time.Since(start).Round(time.Millisecond), lastErr)
	want := `cluster legacy: SASL SCRAM-SHA-256 authentication failed for user "mirror": wrong credentials`
	if !strings.Contains(lastErr, want) {
		t.Fatalf("last error %q\nwant it to say %q", lastErr, want)
	}
	// Watch a while longer: a flow that retried would add requests.
	failedAt := fx.saslReqs.Load()
	for end := start.Add(10 * time.Second); time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond) // an observation window, not synchronisation
		if n := fx.saslReqs.Load(); n != failedAt {
			t.Fatalf("SASL requests grew from %d to %d after the flow failed", failedAt, n)
		}
	}
	if n := failedAt - base; n > 5 || n < 1 {
		t.Fatalf("%d SASL requests within 10s, want 1 to 5", n)
	}
	t.Logf("%d SASL requests in all", failedAt-base)
	for _, secret := range []string{wrong, legacyPassword} {
		if strings.Contains(logs.String(), secret) || strings.Contains(lastErr, secret) {
			t.Fatalf("a password is in the logs or the status:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "authentication failed") {
		t.Fatalf("the logs do not report the failure:\n%s", logs.String())
	}
}
