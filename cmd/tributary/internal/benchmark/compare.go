package benchmark

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Comparison defaults.
const (
	// DefaultJetStreamRecords is how many messages Compare sends through
	// JetStream when not told otherwise: file-backed JetStream is an order of
	// magnitude slower than the Kafka-protocol peers on small records, so it
	// gets fewer and the table compares rates, not totals.
	DefaultJetStreamRecords = 500_000
	// DefaultPeerStopTimeout bounds how long Compare waits for a peer to stop.
	DefaultPeerStopTimeout = 10 * time.Second
)

// The peers' names, as they appear in the comparison table.
const (
	PeerTributary = "tributary"
	PeerKfake     = "kfake"
	PeerJetStream = "jetstream"
)

// StartKafkaFunc starts a Kafka-protocol broker (or cluster) for one
// comparison, keeping any files under dataDir and logging to logger, and
// returns its bootstrap addresses and a function that stops it.
type StartKafkaFunc func(ctx context.Context, dataDir string, logger *slog.Logger) (brokers []string, stop func(context.Context) error, err error)

// A Peer is a system Compare starts, runs the workload against, and stops.
// Build one with KafkaPeer, JetStreamPeer, KfakePeer or TributaryPeer.
type Peer struct {
	Name       string
	startKafka StartKafkaFunc // nil for JetStream
}

// KafkaPeer is a Kafka-protocol peer that start brings up.
func KafkaPeer(name string, start StartKafkaFunc) Peer { return Peer{Name: name, startKafka: start} }

// JetStreamPeer is an embedded nats-server with file-backed JetStream.
func JetStreamPeer() Peer { return Peer{Name: PeerJetStream} }

// KfakePeer is franz-go's in-memory kfake cluster with one broker.
func KfakePeer() Peer { return KafkaPeer(PeerKfake, StartKfake) }

// DefaultPeers are the peers `tributary bench compare` measures, in order.
func DefaultPeers() []Peer { return []Peer{TributaryPeer(), KfakePeer(), JetStreamPeer()} }

// StartKfake starts a one-broker kfake cluster on 127.0.0.1. dataDir is not
// used: kfake keeps everything in memory.
func StartKfake(context.Context, string, *slog.Logger) ([]string, func(context.Context) error, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, nil, fmt.Errorf("kfake: %w", err)
	}
	return c.ListenAddrs(), func(context.Context) error { c.Close(); return nil }, nil
}

// CompareConfig says what Compare runs.
type CompareConfig struct {
	// Workload is run against every Kafka-protocol peer, produce then
	// consume. Its Label is set per peer.
	Workload Workload
	// JetStreamRecords is the record count for JetStream peers; default
	// DefaultJetStreamRecords, and never more than Workload.Records.
	JetStreamRecords int64
	// Peers to measure, one after the other; default DefaultPeers().
	Peers []Peer
	// TempDir is where peers' data directories are made (and removed);
	// default os.TempDir().
	TempDir string
}

// PeerResult is what Compare measured on one peer.
type PeerResult struct {
	Peer    string
	Records int64   // records the peer was asked to take
	Produce *Result // nil if the peer did not get that far
	Consume *Result // nil if the peer did not get that far
	Err     error   // why the peer's runs stopped short, if they did
}

// Comparison is the outcome of Compare.
type Comparison struct {
	Machine          Machine
	Workload         Workload // with defaults applied
	JetStreamRecords int64
	Peers            []PeerResult
}

// Compare runs cfg.Workload against each peer in turn and returns what it
// measured. A peer that fails is reported in its PeerResult and the next one
// runs; the returned error joins every peer's failure. When ctx is cancelled
// Compare stops and returns what it has, with ctx's error.
func Compare(ctx context.Context, cfg CompareConfig) (*Comparison, error) {
	w := cfg.Workload.withDefaults()
	jsRecords := cfg.JetStreamRecords
	if jsRecords <= 0 {
		jsRecords = DefaultJetStreamRecords
	}
	jsRecords = min(jsRecords, w.Records)
	peers := cfg.Peers
	if peers == nil {
		peers = DefaultPeers()
	}
	cmp := &Comparison{Machine: CurrentMachine(), Workload: w, JetStreamRecords: jsRecords}
	var errs []error
	for _, p := range peers {
		if ctx.Err() != nil {
			break
		}
		pw := w
		pw.Label = p.Name
		if p.startKafka == nil {
			pw.Records = jsRecords
		}
		w.Logger.Info("bench peer", "peer", p.Name, "records", pw.Records)
		pr := runPeer(ctx, p, pw, cfg.TempDir)
		cmp.Peers = append(cmp.Peers, pr)
		if pr.Err != nil && ctx.Err() == nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name, pr.Err))
		}
	}
	if err := ctx.Err(); err != nil {
		return cmp, err
	}
	return cmp, errors.Join(errs...)
}

// runPeer starts p in a fresh data directory, produces then consumes w, and
// stops p.
func runPeer(ctx context.Context, p Peer, w Workload, tempDir string) (pr PeerResult) {
	pr = PeerResult{Peer: p.Name, Records: w.Records}
	dir, err := os.MkdirTemp(tempDir, "tributary-bench-"+p.Name+"-")
	if err != nil {
		pr.Err = fmt.Errorf("data dir: %w", err)
		return pr
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil && pr.Err == nil {
			pr.Err = fmt.Errorf("remove data dir: %w", err)
		}
	}()

	var produce, consume func(context.Context, Workload) (*Result, error)
	if p.startKafka != nil {
		brokers, stop, err := p.startKafka(ctx, dir, w.Logger.With("peer", p.Name))
		if err != nil {
			pr.Err = fmt.Errorf("start: %w", err)
			return pr
		}
		defer stopPeer(ctx, &pr, stop)
		produce = func(ctx context.Context, w Workload) (*Result, error) { return Produce(ctx, brokers, w) }
		consume = func(ctx context.Context, w Workload) (*Result, error) { return Consume(ctx, brokers, w) }
	} else {
		srv, err := StartJetStream(dir)
		if err != nil {
			pr.Err = fmt.Errorf("start: %w", err)
			return pr
		}
		defer srv.Shutdown()
		produce = func(ctx context.Context, w Workload) (*Result, error) { return ProduceJetStream(ctx, srv.URL(), w) }
		consume = func(ctx context.Context, w Workload) (*Result, error) { return ConsumeJetStream(ctx, srv.URL(), w) }
	}

	pr.Produce, pr.Err = produce(ctx, w)
	if pr.Err != nil {
		return pr
	}
	pr.Consume, pr.Err = consume(ctx, w)
	return pr
}

func stopPeer(ctx context.Context, pr *PeerResult, stop func(context.Context) error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultPeerStopTimeout)
	defer cancel()
	if err := stop(sctx); err != nil && pr.Err == nil {
		pr.Err = fmt.Errorf("stop: %w", err)
	}
}
