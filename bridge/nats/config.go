package nats

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of Config and Mapping.
const (
	// DefaultConnectTimeout bounds connecting to a server.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultKeyHeader is the NATS header carrying the Kafka record key.
	DefaultKeyHeader = "Tributary-Key"
	// DefaultSubject is the subject template of records written to NATS:
	// the Kafka topic name.
	DefaultSubject = "{topic}"
	// DefaultDuplicateWindow is the duplicate window of a stream the bridge
	// creates (JetStream's own default is 2 minutes).
	DefaultDuplicateWindow = 10 * time.Minute
	// DefaultRestartBudget is the longest outage of a flow into JetStream
	// that deduplication is expected to cover; the bridge warns when an
	// existing stream's duplicate window is shorter.
	DefaultRestartBudget = DefaultDuplicateWindow
	// DefaultAckWait is the durable consumer's AckWait: far above the
	// pipeline's worst latency (a batch waits at most its linger, its write
	// and a checkpoint), so a slow sink causes no redelivery.
	DefaultAckWait = 5 * time.Minute
	// DefaultMaxAckPending bounds the messages a JetStream source holds
	// unacknowledged: the in-flight window of a flow in records (its
	// default batch of 10,000 records, twice, with room).
	DefaultMaxAckPending = 25000
	// DefaultFetchBatch is how many messages a JetStream source asks for in
	// one pull request.
	DefaultFetchBatch = 1000
	// DefaultPollMaxRecords bounds the records one Consumer.Poll returns.
	DefaultPollMaxRecords = 10000
	// DefaultCheckpointBucket is the JetStream key-value bucket holding the
	// checkpoints of flows into NATS.
	DefaultCheckpointBucket = "tributary_checkpoints"
	// DefaultPublishMaxPending bounds a JetStream sink's unacknowledged
	// asynchronous publishes; a batch larger than this waits for acks.
	DefaultPublishMaxPending = 16384
	// DefaultPublishTimeout bounds a JetStream sink's wait for the PubAcks
	// of a batch once it is published, and each wait for room under
	// DefaultPublishMaxPending.
	DefaultPublishTimeout = 30 * time.Second
	// DefaultCoreBuffer is how many core NATS messages a core source buffers
	// before the client drops them (a slow consumer: at-most-once).
	DefaultCoreBuffer = 65536
)

// Config says how to reach one NATS system.
type Config struct {
	// Name is the job file's name for the cluster; it prefixes errors and
	// is the "cluster" key of log lines. Required.
	Name string
	// Servers are NATS URLs (nats://host:4222, tls://host:4222) or
	// host:port. Required.
	Servers []string
	// At most one way of authenticating: User and Password, Token, an NKey
	// seed file, or a credentials (JWT) file. None: no authentication.
	User, Password string
	Token          string
	NKeySeedFile   string
	CredsFile      string
	// TLS is nil for plaintext (unless a tls:// URL asks for TLS).
	TLS *TLSConfig
	// ConnectTimeout bounds connecting. Default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Logger receives log lines. Default slog.Default().
	Logger *slog.Logger
	// Metrics receives the bridge's metrics; nil: none.
	Metrics *Metrics
}

// TLSConfig configures TLS to the servers. Empty fields take the system's
// roots and no client certificate.
type TLSConfig struct {
	CAFile, CertFile, KeyFile string
	ServerName                string
	InsecureSkipVerify        bool
}

// Mapping is a job's mapping between Kafka topics and NATS subjects; a
// source or sink uses the fields of its direction. Zero fields take the
// Default* values.
type Mapping struct {
	// Stream is the JetStream stream read or written; "" means core NATS.
	Stream string
	// Subjects are the stream's subjects when the bridge creates it, and the
	// subjects a core NATS source subscribes to.
	Subjects []string
	// CreateStream creates Stream when it is missing (a sink only).
	CreateStream bool
	// DuplicateWindow is the duplicate window of a stream the bridge
	// creates. Default DefaultDuplicateWindow.
	DuplicateWindow time.Duration
	// RestartBudget is the outage deduplication should cover: the bridge
	// warns when an existing stream's window is shorter. Default
	// DuplicateWindow (DefaultRestartBudget when that is left out too).
	RestartBudget time.Duration
	// Subject is the subject template of records written to NATS, with
	// placeholders {topic}, {cluster}, {partition} and {key}. Default
	// DefaultSubject.
	Subject string
	// KeyHeader is the header carrying the Kafka key. Default
	// DefaultKeyHeader.
	KeyHeader string
	// Topic is the topic name a NATS source presents its messages under
	// (one partition). Default: the stream's name.
	Topic string
	// Durable names a JetStream source's durable pull consumer. Required
	// for a JetStream source (see DurableName).
	Durable string
	// AckWait and MaxAckPending configure the durable consumer. Defaults
	// DefaultAckWait and DefaultMaxAckPending.
	AckWait       time.Duration
	MaxAckPending int
	// FetchBatch is the messages asked for per pull. Default
	// DefaultFetchBatch.
	FetchBatch int
	// PollMaxRecords bounds one Poll. Default DefaultPollMaxRecords.
	PollMaxRecords int
	// CheckpointBucket is the key-value bucket of a sink's checkpoints.
	// Default DefaultCheckpointBucket.
	CheckpointBucket string
}

// JetStream reports whether the mapping names a stream.
func (m *Mapping) JetStream() bool { return m.Stream != "" }

func (m *Mapping) fill() {
	if m.DuplicateWindow <= 0 {
		m.DuplicateWindow = DefaultDuplicateWindow
	}
	if m.RestartBudget <= 0 {
		m.RestartBudget = m.DuplicateWindow
	}
	if m.Subject == "" {
		m.Subject = DefaultSubject
	}
	if m.KeyHeader == "" {
		m.KeyHeader = DefaultKeyHeader
	}
	if m.Topic == "" {
		m.Topic = m.Stream
	}
	if m.AckWait <= 0 {
		m.AckWait = DefaultAckWait
	}
	if m.MaxAckPending <= 0 {
		m.MaxAckPending = DefaultMaxAckPending
	}
	if m.FetchBatch <= 0 {
		m.FetchBatch = DefaultFetchBatch
	}
	if m.PollMaxRecords <= 0 {
		m.PollMaxRecords = DefaultPollMaxRecords
	}
	if m.CheckpointBucket == "" {
		m.CheckpointBucket = DefaultCheckpointBucket
	}
}

// DurableName is the default durable consumer name of a flow's JetStream
// source: "tributary-" and the flow ID (job/target) with characters a
// consumer name cannot hold ('.', '*', '>', '/', blanks) replaced by '_'.
func DurableName(flow string) string {
	return "tributary-" + strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n', '/', '\\':
			return '_'
		}
		return r
	}, flow)
}

// ErrConfig is matched by errors of a Config or Mapping that cannot work.
var ErrConfig = errors.New("bad NATS bridge configuration")

func (c *Config) check() error {
	if c.Name == "" {
		return fmt.Errorf("%w: no cluster name", ErrConfig)
	}
	if len(c.Servers) == 0 {
		return fmt.Errorf("%w: cluster %s: no servers", ErrConfig, c.Name)
	}
	n := 0
	for _, set := range []bool{c.User != "" || c.Password != "", c.Token != "", c.NKeySeedFile != "", c.CredsFile != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%w: cluster %s: more than one of user/password, token, nkey seed file and creds file", ErrConfig, c.Name)
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	l := c.Logger
	if l == nil {
		l = slog.Default()
	}
	return l.With("cluster", c.Name)
}

// connect opens a connection. Credentials go to nats.go only; they are
// never logged or put into errors.
func connect(c *Config) (*nats.Conn, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	timeout := c.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	log := c.logger()
	opts := []nats.Option{
		nats.Name("tributary " + c.Name),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("NATS client error", "subject", subject, "err", err)
		}),
	}
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: read nkey seed file %s: %w", c.Name, c.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if t := c.TLS; t != nil {
		opts = append(opts, nats.Secure(&tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}))
		if t.CAFile != "" {
			opts = append(opts, nats.RootCAs(t.CAFile))
		}
		if t.CertFile != "" {
			opts = append(opts, nats.ClientCert(t.CertFile, t.KeyFile))
		}
	}
	// No reconnect buffer: a message published while the connection is
	// down would be stored after the reconnect, ahead of earlier ones
	// whose PubAck was lost with the connection (which the flow's rewind
	// then stores after it), breaking order per subject. Publishing fails
	// instead, and the flow rewinds.
	opts = append(opts, nats.ReconnectBufSize(-1))
	nc, err := nats.Connect(strings.Join(c.Servers, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: connect to %s: %w", c.Name, strings.Join(c.Servers, ","), err)
	}
	return nc, nil
}
