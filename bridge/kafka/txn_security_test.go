package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/tributary/tributary/mirror"
)

// openTxnWriter starts only the transactional producer of a Sink made
// from cfg and opts: NewSink connects with sarama first, which would meet
// a refusal before the franz-go client does.
func openTxnWriter(t *testing.T, cfg Config, opts SinkOptions) (*txnWriter, error) {
	t.Helper()
	if err := cfg.fill(); err != nil {
		t.Fatalf("fill config: %v", err)
	}
	opts.fill()
	s := &Sink{c: &cluster{cfg: cfg}, opts: opts, log: cfg.Logger}
	return newTxnWriter(s)
}

// checkTxnRoundTrip writes 100 records and a checkpoint through an
// exactly-once Sink made from cfg and reads them back read_committed with
// a franz-go client using clientOpts.
func checkTxnRoundTrip(t *testing.T, cfg Config, p peer, clientOpts ...kgo.Opt) {
	t.Helper()
	ctx := testContext(t)
	sink, err := NewSink(cfg, SinkOptions{TransactionalID: "tributary-job/secure"})
	if err != nil {
		t.Fatalf("new exactly-once sink: %v", err)
	}
	defer func() {
		if err := sink.Close(); err != nil {
			t.Errorf("close sink: %v", err)
		}
	}()
	createTopic(t, ctx, sink, "orders", 1, nil)
	if err := sink.Write(ctx, txnBatch("job/secure", 0, 100)); err != nil {
		t.Fatalf("exactly-once write: %v", err)
	}
	recs := consumeAll(t, ctx, p, "orders", 100, append(clientOpts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	for i, r := range recs {
		if string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("record %d is %q, want %q", i, r.Value, fmt.Sprint(i))
		}
	}
}

// TestTransactionalSASL writes exactly-once to kfake requiring
// SCRAM-SHA-256: the right credentials commit records visible
// read_committed; wrong ones make the transactional client fail with an
// AuthError matching mirror.ErrAuth, without the password in the error
// or the logs.
func TestTransactionalSASL(t *testing.T) {
	checkGoroutines(t)
	k := startSASLKfake(t, SASLScramSHA256)
	var logs logBuffer
	cfg := Config{Name: "legacy", Bootstrap: k.addrs, Logger: logs.logger(),
		SASL: &SASL{Mechanism: SASLScramSHA256, Username: testUser, Password: testPassword}}
	checkTxnRoundTrip(t, cfg, k.peer, kgo.SASL(scram.Auth{User: testUser, Pass: testPassword}.AsSha256Mechanism()))

	const wrong = "not-the-" + testPassword
	bad := cfg
	bad.SASL = &SASL{Mechanism: SASLScramSHA256, Username: testUser, Password: wrong}
	w, err := openTxnWriter(t, bad, SinkOptions{TransactionalID: "tributary-job/secure"})
	if err == nil {
		w.close()
		t.Fatal("the transactional producer started with wrong credentials")
	}
	t.Logf("%v", err)
	var ae *AuthError
	if !errors.As(err, &ae) || !errors.Is(err, mirror.ErrAuth) {
		t.Fatalf("error %v (%T) is no AuthError matching mirror.ErrAuth", err, err)
	}
	want := `cluster legacy: SASL SCRAM-SHA-256 authentication failed for user "mirror": wrong credentials`
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error\n\t%v\nwant it to start with\n\t%s", err, want)
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(logs.String(), wrong) || strings.Contains(logs.String(), testPassword) {
		t.Fatalf("a password is in the error or the logs: %v\n%s", err, logs.String())
	}

	// The whole Sink fails the same way.
	if s, err := NewSink(bad, SinkOptions{TransactionalID: "tributary-job/secure"}); err == nil {
		s.Close()
		t.Fatal("NewSink succeeded with wrong credentials")
	} else if !errors.Is(err, mirror.ErrAuth) {
		t.Fatalf("NewSink: %v, want mirror.ErrAuth", err)
	}
}

// TestTransactionalTLS writes exactly-once to kfake serving TLS and
// requiring a client certificate (and SCRAM-SHA-512 on top): the right CA
// and certificate commit records; a wrong CA makes the transactional
// client fail with a TLS AuthError.
func TestTransactionalTLS(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	other := newTestCA(t, dir, "other-ca")
	serverCert, _, _ := ca.issue(t, dir, "broker", true)
	clientPair, clientCert, clientKey := ca.issue(t, dir, "client", false)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.cert)
	k := startSASLKfake(t, SASLScramSHA512, kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientCAs: clientCAs, ClientAuth: tls.RequireAndVerifyClientCert}))
	sasl := &SASL{Mechanism: SASLScramSHA512, Username: testUser, Password: testPassword}

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	checkTxnRoundTrip(t, Config{Name: "legacy", Bootstrap: k.addrs, Logger: quietLogger(), SASL: sasl,
		TLS: &TLS{CAFile: ca.file, CertFile: clientCert, KeyFile: clientKey}}, k.peer,
		kgo.DialTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientPair}}),
		kgo.SASL(scram.Auth{User: testUser, Pass: testPassword}.AsSha512Mechanism()))

	w, err := openTxnWriter(t, Config{Name: "legacy", Bootstrap: k.addrs, Logger: quietLogger(), SASL: sasl,
		TLS: &TLS{CAFile: other.file, CertFile: clientCert, KeyFile: clientKey}}, SinkOptions{TransactionalID: "tributary-job/secure"})
	if err == nil {
		w.close()
		t.Fatal("the transactional producer started trusting the wrong CA")
	}
	t.Logf("%v", err)
	want := "cluster legacy: TLS: certificate signed by unknown authority (ca_file " + other.file + ")"
	if !errors.Is(err, mirror.ErrAuth) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v\nwant one matching mirror.ErrAuth starting with\n\t%s", err, want)
	}
}

// TestTransactionalSASLErrorCode has the broker answer SaslAuthenticate
// with SASL_AUTHENTICATION_FAILED and a message, as Apache Kafka does: the
// transactional client fails with an AuthError quoting the broker.
func TestTransactionalSASLErrorCode(t *testing.T) {
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
	w, err := openTxnWriter(t, Config{Name: "legacy", Bootstrap: k.addrs, Logger: quietLogger(),
		SASL: &SASL{Mechanism: SASLPlain, Username: testUser, Password: testPassword}}, SinkOptions{TransactionalID: "tributary-job/secure"})
	if err == nil {
		w.close()
		t.Fatal("the transactional producer started although the broker refused its credentials")
	}
	want := `cluster legacy: SASL PLAIN authentication failed for user "mirror": wrong credentials (broker: Authentication failed: Invalid username or password)`
	if !strings.HasPrefix(err.Error(), want) || !errors.Is(err, mirror.ErrAuth) || strings.Contains(err.Error(), testPassword) {
		t.Fatalf("error %v\nwant one matching mirror.ErrAuth starting with\n\t%s", err, want)
	}
}
