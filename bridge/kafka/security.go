package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"

	"github.com/tributary/tributary/mirror"
)

// SASL mechanisms of SASL.Mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// minSASLVersion is the oldest Config.Version SASL is offered with: the
// first Kafka with SaslAuthenticate, whose framed exchange the bridge can
// follow on the wire.
var minSASLVersion = sarama.V1_0_0_0

// TLS configures TLS to the brokers. The zero value verifies the brokers'
// certificates against the system's roots, by the host of each address.
type TLS struct {
	// CAFile is a PEM file of the certificate authorities that sign the
	// brokers' certificates. Default: the system's roots.
	CAFile string
	// CertFile and KeyFile are PEM files of a client certificate and its
	// private key; both or neither. Default: no client certificate.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates must be valid for.
	// Default: the host part of each broker's address.
	ServerName string
	// InsecureSkipVerify accepts any broker certificate, which defeats
	// TLS's protection against impersonation; a warning is logged when a
	// Source or Sink starts with it.
	InsecureSkipVerify bool
}

// SASL configures SASL authentication (Kafka 1.0.0 or later).
type SASL struct {
	// Mechanism is SASLPlain, SASLScramSHA256 or SASLScramSHA512.
	Mechanism string
	// Username and Password are the credentials. The password is never
	// logged nor put in an error; String and LogValue leave it out.
	Username, Password string
}

// String describes s without its password.
func (s SASL) String() string { return fmt.Sprintf("SASL %s user %q", s.Mechanism, s.Username) }

// LogValue logs s without its password.
func (s SASL) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mechanism", s.Mechanism), slog.String("username", s.Username))
}

// AuthError reports a connection refused for its credentials or its
// certificate, by the broker (wrong SASL credentials, client certificate
// refused) or by this side (broker certificate not trusted). Retrying with
// the same settings fails the same way, so it matches mirror.ErrAuth, and
// it never holds a secret.
type AuthError struct {
	// Cluster is Config.Name.
	Cluster string
	// Broker is the address of the broker, when known.
	Broker string
	// Stage is what failed: `SASL SCRAM-SHA-256 authentication failed for
	// user "mirror"`, or "TLS".
	Stage string
	// Reason says why, in words, with the file or setting involved.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %s: %s: %s", e.Cluster, e.Stage, e.Reason)
	if e.Broker != "" {
		fmt.Fprintf(&b, " [broker %s]", e.Broker)
	}
	return b.String()
}

// Unwrap returns mirror.ErrAuth and the underlying error.
func (e *AuthError) Unwrap() []error {
	if e.Err == nil {
		return []error{mirror.ErrAuth}
	}
	return []error{mirror.ErrAuth, e.Err}
}

// security is what fill derives from Config.TLS and Config.SASL. It is
// shared by every client a Source or Sink (and its Consumers) opens.
type security struct {
	tls *tls.Config // nil: plaintext

	// refused is the first authentication failure seen. From then on no
	// client of this Source or Sink opens a connection: each attempt fails
	// with this error at once, so sarama's retries cost nothing and the
	// broker sees no storm of attempts.
	refused atomic.Pointer[AuthError]
}

// refuse records ae as the reason to stop connecting, unless one is
// already recorded, and returns the recorded one.
func (s *security) refuse(ae *AuthError) *AuthError {
	if s.refused.CompareAndSwap(nil, ae) {
		return ae
	}
	return s.refused.Load()
}

// fillSecurity validates c.TLS and c.SASL and loads the TLS files; c.Name
// and c.Version are valid.
func (c *Config) fillSecurity() error {
	c.sec = &security{}
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		default:
			return fmt.Errorf("cluster %s: SASL mechanism %q: want %s, %s or %s", c.Name, s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
		}
		if s.Username == "" || s.Password == "" {
			return fmt.Errorf("cluster %s: SASL %s needs a username and a password", c.Name, s.Mechanism)
		}
		if v, _ := c.kafkaVersion(); !v.IsAtLeast(minSASLVersion) {
			return fmt.Errorf("cluster %s: version %s: SASL needs at least 1.0.0 (SaslAuthenticate)", c.Name, c.Version)
		}
	}
	t := c.TLS
	if t == nil {
		return nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return fmt.Errorf("cluster %s: TLS: read ca_file: %w", c.Name, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("cluster %s: TLS: ca_file %s holds no PEM certificate", c.Name, t.CAFile)
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		// The error names neither file contents nor key material.
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return fmt.Errorf("cluster %s: TLS: client certificate (cert_file %s, key_file %s): %w", c.Name, t.CertFile, t.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case t.CertFile != "" || t.KeyFile != "":
		return fmt.Errorf("cluster %s: TLS: cert_file and key_file go together", c.Name)
	}
	c.sec.tls = tc
	return nil
}

// applySecurity sets sc's TLS and SASL from c. Connections go through
// c's dialer, which does the TLS handshake itself (so that it can tell a
// certificate problem from a network one) and watches the SASL exchange.
func (c *Config) applySecurity(sc *sarama.Config) {
	if c.TLS == nil && c.SASL == nil {
		return
	}
	d := &dialer{cfg: c, net: net.Dialer{Timeout: sc.Net.DialTimeout, KeepAlive: sc.Net.KeepAlive}}
	sc.Net.Proxy.Enable = true
	sc.Net.Proxy.Dialer = d
	// After an authentication failure, retry at once: the dialer fails
	// every attempt without connecting, and the caller gets the error
	// without waiting out sarama's backoffs.
	backoff := sc.Metadata.Retry.Backoff
	sc.Metadata.Retry.BackoffFunc = func(int, int) time.Duration {
		if c.sec.refused.Load() != nil {
			return 0
		}
		return backoff
	}
	if s := c.SASL; s != nil {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.Version = sarama.SASLHandshakeV1
		sc.Net.SASL.Mechanism = sarama.SASLMechanism(s.Mechanism)
		sc.Net.SASL.User = s.Username
		sc.Net.SASL.Password = s.Password
		switch s.Mechanism {
		case SASLScramSHA256:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{cfg: c, hash: scram.SHA256} }
		case SASLScramSHA512:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{cfg: c, hash: scram.SHA512} }
		}
	}
}

// warnInsecure logs, once per Source or Sink, settings that weaken TLS.
func (c *Config) warnInsecure(log *slog.Logger) {
	if c.TLS != nil && c.TLS.InsecureSkipVerify {
		log.Warn("TLS certificate verification is off (insecure_skip_verify): the brokers are not authenticated")
	}
}

// saslStage is the Stage of SASL AuthErrors.
func (c *Config) saslStage() string {
	return fmt.Sprintf("SASL %s authentication failed for user %q", c.SASL.Mechanism, c.SASL.Username)
}

// errorf wraps err with the cluster's name and what was being done, unless
// err is or stands for an authentication failure: then it returns that
// failure, an *AuthError that already names the cluster and the reason.
func (c *Config) errorf(err error, format string, args ...any) error {
	if ae := c.authFailure(err); ae != nil {
		return ae
	}
	return fmt.Errorf("cluster %s: %s: %w", c.Name, fmt.Sprintf(format, args...), err)
}

// authFailure returns the *AuthError err holds or stands for, nil if none.
// A broker that answers SaslAuthenticate with an error (Apache Kafka) makes
// sarama return ErrSASLAuthenticationFailed with the broker's message.
func (c *Config) authFailure(err error) *AuthError {
	if err == nil {
		return nil
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae
	}
	if c.SASL == nil || c.sec == nil {
		return nil
	}
	switch {
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed):
		// sarama words it "<KError>: <broker's message>".
		reason := "wrong credentials"
		msg, code := err.Error(), sarama.ErrSASLAuthenticationFailed.Error()+": "
		if i := strings.Index(msg, code); i >= 0 {
			reason += " (broker: " + msg[i+len(code):] + ")"
		}
		return c.sec.refuse(&AuthError{Cluster: c.Name, Stage: c.saslStage(), Reason: reason, Err: sarama.ErrSASLAuthenticationFailed})
	case errors.Is(err, sarama.ErrUnsupportedSASLMechanism):
		return c.sec.refuse(&AuthError{Cluster: c.Name, Stage: c.saslStage(),
			Reason: fmt.Sprintf("the broker does not enable mechanism %s", c.SASL.Mechanism), Err: sarama.ErrUnsupportedSASLMechanism})
	}
	return nil
}

// dialer opens connections for sarama: TCP, then the TLS handshake, then a
// watchConn. It implements golang.org/x/net/proxy.Dialer.
type dialer struct {
	cfg *Config
	net net.Dialer
}

func (d *dialer) Dial(network, addr string) (net.Conn, error) {
	if ae := d.cfg.sec.refused.Load(); ae != nil {
		return nil, ae
	}
	conn, err := d.net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	if tc := d.cfg.sec.tls; tc != nil {
		if tc.ServerName == "" {
			tc = tc.Clone()
			tc.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tconn := tls.Client(conn, tc)
		ctx, cancel := context.WithTimeout(context.Background(), d.net.Timeout)
		err := tconn.HandshakeContext(ctx)
		cancel()
		if err != nil {
			conn.Close()
			if ae := d.tlsFailure(addr, err); ae != nil {
				return nil, d.cfg.sec.refuse(ae)
			}
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		conn = tconn
	}
	return &watchConn{Conn: conn, d: d, addr: addr}, nil
}

// certAlerts are the TLS alerts by which a broker refuses a client
// certificate (or the lack of one), as Go's crypto/tls words them.
var certAlerts = []string{
	"tls: bad certificate", "tls: unsupported certificate", "tls: revoked certificate",
	"tls: expired certificate", "tls: unknown certificate", "tls: unknown certificate authority",
	"tls: access denied", "tls: certificate required",
}

// tlsFailure classifies a TLS error: an *AuthError when a certificate was
// refused, by either side, and nil for anything else.
func (d *dialer) tlsFailure(addr string, err error) *AuthError {
	t := d.cfg.TLS
	ae := &AuthError{Cluster: d.cfg.Name, Broker: addr, Stage: "TLS", Err: err}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		op        *net.OpError
	)
	switch {
	case errors.As(err, &unknownCA):
		roots := "the system's roots; set ca_file"
		if t.CAFile != "" {
			roots = "ca_file " + t.CAFile
		}
		ae.Reason = fmt.Sprintf("certificate signed by unknown authority (%s)", roots)
	case errors.As(err, &hostname):
		ae.Reason = strings.TrimPrefix(hostname.Error(), "x509: ")
		if t.ServerName != "" {
			ae.Reason += " (server_name " + t.ServerName + ")"
		} else {
			ae.Reason += " (set server_name to a name the certificate holds)"
		}
	case errors.As(err, &invalid):
		ae.Reason = "broker certificate: " + strings.TrimPrefix(invalid.Error(), "x509: ")
	case errors.As(err, &op) && op.Op == "remote error" && isCertAlert(op.Err):
		if t.CertFile == "" {
			ae.Reason = fmt.Sprintf("the broker requires a client certificate; set cert_file and key_file (%v)", op.Err)
		} else {
			ae.Reason = fmt.Sprintf("the broker refused the client certificate (cert_file %s): %v", t.CertFile, op.Err)
		}
	default:
		return nil
	}
	return ae
}

func isCertAlert(err error) bool {
	msg := err.Error()
	for _, a := range certAlerts {
		if msg == a {
			return true
		}
	}
	return false
}

// apiKeySASLAuthenticate is the Kafka API key of SaslAuthenticate.
const apiKeySASLAuthenticate = 36

// maxCapture bounds the SaslAuthenticate response a watchConn decodes.
const maxCapture = 64 << 10

// watchConn is a broker connection that follows the framing of the Kafka
// protocol to recognise a refused SaslAuthenticate — answered with an
// error code (Apache Kafka) or with the connection closed (kfake, and
// brokers that drop the connection rather than answer) — and the TLS
// alerts refusing a client certificate that TLS 1.3 delivers after the
// handshake. It records the refusal, so that no client of the Source or
// Sink connects again. Of the payload it decodes only SaslAuthenticate
// responses; other frames it skips after their 8-byte (request) or 4-byte
// (response) head.
type watchConn struct {
	net.Conn
	d    *dialer
	addr string

	mu       sync.Mutex // guards the fields below
	out, in  framer
	awaiting []request // requests not yet answered, oldest first
	answers  request   // the request of the response being read
	closed   bool
}

// request is the API key and version of a request.
type request struct{ key, version int16 }

func (c *watchConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.out.feed(p[:n], 8, func(head []byte) bool {
		c.awaiting = append(c.awaiting, request{int16(binary.BigEndian.Uint16(head[4:6])), int16(binary.BigEndian.Uint16(head[6:8]))})
		return false
	}, nil)
	c.mu.Unlock()
	return n, err
}

func (c *watchConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.in.feed(p[:n], 4, func([]byte) bool {
		c.answers = request{key: -1}
		if len(c.awaiting) > 0 {
			c.answers, c.awaiting = c.awaiting[0], c.awaiting[1:]
		}
		return c.answers.key == apiKeySASLAuthenticate
	}, c.saslAnswer)
	if err == nil || c.closed {
		return n, err
	}
	if c.d.cfg.TLS != nil {
		if ae := c.d.tlsFailure(c.addr, err); ae != nil {
			return n, c.d.cfg.sec.refuse(ae)
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return n, err // no answer in time is not a refusal
	}
	if len(c.awaiting) > 0 && c.awaiting[0].key == apiKeySASLAuthenticate && c.d.cfg.SASL != nil {
		return n, c.d.cfg.sec.refuse(&AuthError{Cluster: c.d.cfg.Name, Broker: c.addr, Stage: c.d.cfg.saslStage(),
			Reason: "wrong credentials (the broker closed the connection in answer to SaslAuthenticate)"})
	}
	return n, err
}

// saslAnswer decodes a SaslAuthenticate response (after its size) and
// records a SASL_AUTHENTICATION_FAILED. Sarama reads the same bytes and
// fails the connection itself. c.mu held.
func (c *watchConn) saslAnswer(frame []byte) {
	if len(frame) < 4 || c.d.cfg.SASL == nil {
		return
	}
	body := frame[4:] // after the correlation ID
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.Version = c.answers.version
	if resp.IsFlexible() { // skip the response header's tagged fields
		var ok bool
		if body, ok = skipTags(body); !ok {
			return
		}
	}
	if err := resp.ReadFrom(body); err != nil || resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		return
	}
	reason := "wrong credentials"
	if resp.ErrorMessage != nil && *resp.ErrorMessage != "" {
		reason += " (broker: " + *resp.ErrorMessage + ")"
	}
	c.d.cfg.sec.refuse(&AuthError{Cluster: c.d.cfg.Name, Broker: c.addr, Stage: c.d.cfg.saslStage(), Reason: reason,
		Err: sarama.ErrSASLAuthenticationFailed})
}

// skipTags returns b after the tagged fields it starts with; ok is false
// if b is too short.
func skipTags(b []byte) (rest []byte, ok bool) {
	n, used := binary.Uvarint(b)
	if used <= 0 {
		return nil, false
	}
	b = b[used:]
	for ; n > 0; n-- {
		if _, used = binary.Uvarint(b); used <= 0 { // tag
			return nil, false
		}
		b = b[used:]
		size, used := binary.Uvarint(b)
		if used <= 0 || size > uint64(len(b)-used) {
			return nil, false
		}
		b = b[used+int(size):]
	}
	return b, true
}

func (c *watchConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.Conn.Close()
}

// framer follows length-prefixed frames (a 4-byte big-endian size, then
// that many bytes) through a byte stream cut anywhere.
type framer struct {
	head    [8]byte
	nhead   int   // bytes of head collected
	remain  int64 // bytes of the current frame after its head
	capture bool  // collect the rest of the current frame into body
	body    []byte
}

// feed consumes p. Each time the first want bytes (4 to 8) of a frame are
// in, it calls onHead with them; if that returns true, the rest of the
// frame (up to maxCapture bytes) is handed to onBody once complete.
func (f *framer) feed(p []byte, want int, onHead func(head []byte) bool, onBody func(rest []byte)) {
	for len(p) > 0 {
		if f.remain > 0 {
			n := min(int64(len(p)), f.remain)
			if f.capture {
				f.body = append(f.body, p[:n]...)
			}
			p, f.remain = p[n:], f.remain-n
			if f.remain == 0 && f.capture {
				f.capture = false
				onBody(f.body)
				f.body = f.body[:0]
			}
			continue
		}
		n := copy(f.head[f.nhead:want], p)
		p, f.nhead = p[n:], f.nhead+n
		if f.nhead < want {
			return
		}
		f.nhead = 0
		f.remain = max(int64(int32(binary.BigEndian.Uint32(f.head[:4])))-int64(want-4), 0)
		f.capture = onHead(f.head[:want]) && f.remain > 0 && f.remain <= maxCapture
	}
}

// scramClient is sarama's SCRAM client, on github.com/xdg-go/scram.
type scramClient struct {
	cfg  *Config
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (s *scramClient) Begin(user, password, authzID string) error {
	cl, err := s.hash.NewClient(user, password, authzID)
	if err != nil {
		// SASLprep errors name the offending rune class, not the password.
		return fmt.Errorf("SCRAM: prepare credentials of user %q: %w", user, err)
	}
	s.conv = cl.NewConversation()
	return nil
}

// Step advances the exchange. A server-final message that reports an
// error or fails the server's signature check means the credentials were
// refused; other errors are protocol errors.
func (s *scramClient) Step(challenge string) (string, error) {
	resp, err := s.conv.Step(challenge)
	if err == nil || !s.conv.Done() {
		return resp, err
	}
	reason := "wrong credentials (" + err.Error() + ")"
	if err.Error() == "server validation failed" {
		reason = "the broker's SCRAM signature does not match: it does not hold these credentials"
	}
	return "", s.cfg.sec.refuse(&AuthError{Cluster: s.cfg.Name, Stage: s.cfg.saslStage(), Reason: reason})
}

func (s *scramClient) Done() bool { return s.conv.Done() }
