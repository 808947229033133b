package kafka

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/mirror"
)

const (
	testUser     = "mirror"
	testPassword = "Tr1but4ry-s3cret-pw"
)

// saslKfake starts kfake with SASL, the user testUser/testPassword under
// mech, and counters of the SASL requests it receives.
type saslKfake struct {
	peer
	c                *kfake.Cluster
	handshakes, auth atomic.Int32
}

func startSASLKfake(t *testing.T, mech string, opts ...kfake.Opt) *saslKfake {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.ClusterID("legacy-id"),
		kfake.EnableSASL(), kfake.Superuser(mech, testUser, testPassword)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	k := &saslKfake{peer: peer{name: "legacy", addrs: c.ListenAddrs(), clusterID: "legacy-id"}, c: c}
	count := func(n *atomic.Int32) func(kmsg.Request) (kmsg.Response, error, bool) {
		return func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			n.Add(1)
			return nil, nil, false // observe only: kfake handles it
		}
	}
	c.ControlKey(int16(kmsg.SASLHandshake), count(&k.handshakes))
	c.ControlKey(int16(kmsg.SASLAuthenticate), count(&k.auth))
	return k
}

// logBuffer collects log output for inspection.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// roundTrip writes records through a Sink and reads them back through a
// Source, both made from cfg.
func roundTrip(t *testing.T, ctx context.Context, cfg Config, topic string) {
	t.Helper()
	sink, err := NewSink(cfg, SinkOptions{})
	if err != nil {
		t.Fatalf("new sink: %v", err)
	}
	defer func() {
		if err := sink.Close(); err != nil {
			t.Errorf("close sink: %v", err)
		}
	}()
	createTopic(t, ctx, sink, topic, 1, nil)
	var out []mirror.OutRecord
	for i := range 3 {
		out = append(out, mirror.OutRecord{Topic: topic, Record: mirror.Record{
			Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)), Timestamp: time.Now()}})
	}
	pos := mirror.SourcePartition{Cluster: "east", Topic: topic}
	if err := sink.Write(ctx, &mirror.Batch{Records: out,
		Checkpoint: &mirror.Checkpoint{Flow: "orders/legacy", Time: time.Now(), Positions: map[mirror.SourcePartition]int64{pos: 3}}}); err != nil {
		t.Fatalf("write: %v", err)
	}
	if cp, err := sink.LoadCheckpoint(ctx, "orders/legacy"); err != nil || cp == nil || cp.Positions[pos] != 3 {
		t.Fatalf("LoadCheckpoint = %+v, %v; want position 3", cp, err)
	}

	src, err := NewSource(cfg)
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	defer func() {
		if err := src.Close(); err != nil {
			t.Errorf("close source: %v", err)
		}
	}()
	if id, err := src.ClusterID(ctx); err != nil || id != "legacy-id" {
		t.Fatalf("ClusterID = %q, %v", id, err)
	}
	cons, err := src.Consume(ctx, map[mirror.TopicPartition]int64{{Topic: topic}: 0})
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	defer cons.Close()
	got := pollN(t, ctx, cons, 3)
	for i, r := range got {
		if string(r.Key) != fmt.Sprintf("k%d", i) || string(r.Value) != fmt.Sprintf("v%d", i) || r.Source.Offset != int64(i) {
			t.Errorf("record %d = %q=%q at %d", i, r.Key, r.Value, r.Source.Offset)
		}
	}
}

// TestSASL mirrors records through a Sink and a Source authenticated with
// each mechanism, and with the oldest version SASL is offered with.
func TestSASL(t *testing.T) {
	checkGoroutines(t)
	for _, tc := range []struct{ mech, version string }{
		{SASLScramSHA256, ""},
		{SASLScramSHA512, ""},
		{SASLPlain, ""},
		{SASLScramSHA256, "1.0.0"},
	} {
		t.Run(tc.mech+"/"+tc.version, func(t *testing.T) {
			k := startSASLKfake(t, tc.mech)
			var logs logBuffer
			cfg := Config{Name: "legacy", Bootstrap: k.addrs, Version: tc.version, Logger: logs.logger(),
				SASL: &SASL{Mechanism: tc.mech, Username: testUser, Password: testPassword}}
			roundTrip(t, testContext(t), cfg, "orders")
			if k.auth.Load() == 0 {
				t.Fatal("kfake saw no SaslAuthenticate request")
			}
			if strings.Contains(logs.String(), testPassword) {
				t.Fatalf("the password is in the logs:\n%s", logs.String())
			}
		})
	}
}

// TestSASLRefused opens Sources and Sinks with wrong credentials: each fails
// at once with one AuthError naming the cluster, mechanism, user and
// reason, after at most one SASL exchange; the password appears in no
// error and no log line.
func TestSASLRefused(t *testing.T) {
	checkGoroutines(t)
	k := startSASLKfake(t, SASLScramSHA256)
	for _, tc := range []struct {
		name, user, password, mech string
		want                       string
	}{
		{"wrong password", testUser, "not-the-" + testPassword, SASLScramSHA256,
			`cluster legacy: SASL SCRAM-SHA-256 authentication failed for user "mirror": wrong credentials`},
		{"unknown user", "nobody", testPassword, SASLScramSHA256,
			`cluster legacy: SASL SCRAM-SHA-256 authentication failed for user "nobody": wrong credentials`},
		{"other mechanism", testUser, testPassword, SASLScramSHA512,
			`cluster legacy: SASL SCRAM-SHA-512 authentication failed for user "mirror": `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			cfg := Config{Name: "legacy", Bootstrap: k.addrs, Logger: logs.logger(),
				SASL: &SASL{Mechanism: tc.mech, Username: tc.user, Password: tc.password}}
			for _, open := range []struct {
				what string
				fn   func() (func() error, error)
			}{
				{"source", func() (func() error, error) { s, err := NewSource(cfg); return closer(s, err) }},
				{"sink", func() (func() error, error) { s, err := NewSink(cfg, SinkOptions{}); return closer(s, err) }},
			} {
				before := k.auth.Load() + k.handshakes.Load()
				start := time.Now()
				closeFn, err := open.fn()
				if err == nil {
					closeFn()
					t.Fatalf("%s opened with wrong credentials", open.what)
				}
				t.Logf("%s: %v (after %v)", open.what, err, time.Since(start).Round(time.Millisecond))
				var ae *AuthError
				if !errors.As(err, &ae) || !errors.Is(err, mirror.ErrAuth) {
					t.Fatalf("%s: error %v (%T) is no AuthError matching mirror.ErrAuth", open.what, err, err)
				}
				if !strings.HasPrefix(err.Error(), tc.want) {
					t.Fatalf("%s: error\n\t%v\nwant it to start with\n\t%s", open.what, err, tc.want)
				}
				if strings.Contains(err.Error(), tc.password) {
					t.Fatalf("%s: the password is in the error: %v", open.what, err)
				}
				// One exchange: a handshake and at most two authenticate
				// requests; sarama's metadata retries make none.
				if n := k.auth.Load() + k.handshakes.Load() - before; n > 3 || n < 1 {
					t.Fatalf("%s: %d SASL requests for one open, want 1 to 3", open.what, n)
				}
			}
			if strings.Contains(logs.String(), tc.password) {
				t.Fatalf("the password is in the logs:\n%s", logs.String())
			}
		})
	}
}

func closer[T interface{ Close() error }](s T, err error) (func() error, error) {
	if err != nil {
		return nil, err
	}
	return s.Close, nil
}

// TestSASLErrorCode has the broker answer SaslAuthenticate with
// SASL_AUTHENTICATION_FAILED and a message, as Apache Kafka does, rather
// than close the connection.
func TestSASLErrorCode(t *testing.T) {
	checkGoroutines(t)
	k := startSASLKfake(t, SASLPlain)
	k.c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.c.KeepControl()
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed: Invalid username or password"
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
	_, err := NewSource(Config{Name: "legacy", Bootstrap: k.addrs, Logger: quietLogger(),
		SASL: &SASL{Mechanism: SASLPlain, Username: testUser, Password: testPassword}})
	want := `cluster legacy: SASL PLAIN authentication failed for user "mirror": wrong credentials (broker: Authentication failed: Invalid username or password)`
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, mirror.ErrAuth) {
		t.Fatalf("NewSource: %v\nwant %s, matching mirror.ErrAuth", err, want)
	}
	if n := k.auth.Load(); n != 1 {
		t.Fatalf("%d SaslAuthenticate requests, want 1", n)
	}
}

// TestSecurityConfig checks what fill refuses before connecting anywhere.
func TestSecurityConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"mechanism", Config{SASL: &SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}}, `cluster c: SASL mechanism "GSSAPI": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{"no password", Config{SASL: &SASL{Mechanism: SASLPlain, Username: "u"}}, "cluster c: SASL PLAIN needs a username and a password"},
		{"old version", Config{Version: "0.11.0.2", SASL: &SASL{Mechanism: SASLPlain, Username: "u", Password: "p"}}, "cluster c: version 0.11.0.2: SASL needs at least 1.0.0 (SaslAuthenticate)"},
		{"too old", Config{Version: "0.10.2.0"}, "cluster c: version 0.10.2.0: at least 0.11.0 is needed for headers, idempotence and read_committed"},
		{"ca file missing", Config{TLS: &TLS{CAFile: filepath.Join(dir, "none.pem")}}, "cluster c: TLS: read ca_file: open " + filepath.Join(dir, "none.pem") + ": no such file or directory"},
		{"ca file not PEM", Config{TLS: &TLS{CAFile: notPEM}}, "cluster c: TLS: ca_file " + notPEM + " holds no PEM certificate"},
		{"cert without key", Config{TLS: &TLS{CertFile: notPEM}}, "cluster c: TLS: cert_file and key_file go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Name, cfg.Bootstrap = "c", []string{"127.0.0.1:1"}
			_, err := NewSource(cfg)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("NewSource: %v\nwant %s", err, tc.want)
			}
		})
	}
	if s := fmt.Sprintf("%v %+v", SASL{Mechanism: SASLPlain, Username: "u", Password: "hunter2"}, &SASL{Password: "hunter2"}); strings.Contains(s, "hunter2") {
		t.Fatalf("formatting SASL shows the password: %s", s)
	}
}

// testCA is a certificate authority made for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of cert
}

var serial atomic.Int64

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+".pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue makes a certificate for 127.0.0.1 (server) or a client, and
// writes it and its key to dir as name.pem and name.key.
func (ca *testCA) issue(t *testing.T, dir, name string, server bool) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"broker.legacy.test"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLS talks to kfake serving TLS and requiring a client certificate:
// the right CA and client certificate mirror records (also with SASL on
// top); a wrong CA, a foreign or missing client certificate and a wrong
// server name each fail with one clear AuthError, without retries.
func TestTLS(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	other := newTestCA(t, dir, "other-ca")
	serverCert, _, _ := ca.issue(t, dir, "broker", true)
	_, clientCert, clientKey := ca.issue(t, dir, "client", false)
	_, foreignCert, foreignKey := other.issue(t, dir, "foreign-client", false)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.cert)
	var handshakes atomic.Int32
	serverTLS := &tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientCAs: clientCAs, ClientAuth: tls.RequireAndVerifyClientCert,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { handshakes.Add(1); return nil, nil },
	}
	k := startSASLKfake(t, SASLScramSHA512, kfake.TLS(serverTLS))
	sasl := &SASL{Mechanism: SASLScramSHA512, Username: testUser, Password: testPassword}

	t.Run("right CA", func(t *testing.T) {
		var logs logBuffer
		roundTrip(t, testContext(t), Config{Name: "legacy", Bootstrap: k.addrs, Logger: logs.logger(), SASL: sasl,
			TLS: &TLS{CAFile: ca.file, CertFile: clientCert, KeyFile: clientKey}}, "by-address")
		roundTrip(t, testContext(t), Config{Name: "legacy", Bootstrap: k.addrs, Logger: logs.logger(), SASL: sasl,
			TLS: &TLS{CAFile: ca.file, CertFile: clientCert, KeyFile: clientKey, ServerName: "broker.legacy.test"}}, "by-name")
		if strings.Contains(logs.String(), testPassword) {
			t.Fatalf("the password is in the logs:\n%s", logs.String())
		}
	})
	for _, tc := range []struct {
		name string
		tls  TLS
		want string
	}{
		{"wrong CA", TLS{CAFile: other.file, CertFile: clientCert, KeyFile: clientKey},
			"cluster legacy: TLS: certificate signed by unknown authority (ca_file " + other.file + ")"},
		{"system roots", TLS{CertFile: clientCert, KeyFile: clientKey},
			"cluster legacy: TLS: certificate signed by unknown authority (the system's roots; set ca_file)"},
		{"server name", TLS{CAFile: ca.file, CertFile: clientCert, KeyFile: clientKey, ServerName: "kafka.example"},
			"cluster legacy: TLS: certificate is valid for broker.legacy.test, not kafka.example (server_name kafka.example)"},
		{"foreign client certificate", TLS{CAFile: ca.file, CertFile: foreignCert, KeyFile: foreignKey},
			"cluster legacy: TLS: the broker refused the client certificate (cert_file " + foreignCert + "): tls: "},
		{"no client certificate", TLS{CAFile: ca.file},
			"cluster legacy: TLS: the broker requires a client certificate; set cert_file and key_file (tls: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := handshakes.Load()
			saslBefore := k.auth.Load()
			_, err := NewSink(Config{Name: "legacy", Bootstrap: k.addrs, Logger: quietLogger(), SASL: sasl, TLS: &tc.tls}, SinkOptions{})
			if err == nil {
				t.Fatal("NewSink succeeded")
			}
			t.Logf("%v", err)
			if !errors.Is(err, mirror.ErrAuth) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("NewSink: %v\nwant an error matching mirror.ErrAuth starting with\n\t%s", err, tc.want)
			}
			if n := handshakes.Load() - before; n != 1 {
				t.Fatalf("%d TLS handshakes, want 1", n)
			}
			if n := k.auth.Load() - saslBefore; n != 0 {
				t.Fatalf("%d SASL requests over a refused TLS connection", n)
			}
		})
	}
}
