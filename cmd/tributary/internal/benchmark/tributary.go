package benchmark

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tributary/tributary/broker"
)

// TributaryPeer is the Tributary broker, started in this process on
// 127.0.0.1 with its data in the comparison's data directory.
func TributaryPeer() Peer { return KafkaPeer(PeerTributary, StartTributary) }

// StartTributary starts a Tributary broker in-process on a random
// 127.0.0.1 port with its log under dataDir and topic auto-creation on; the
// rest of its configuration is broker.DefaultConfig's.
func StartTributary(_ context.Context, dataDir string, logger *slog.Logger) ([]string, func(context.Context) error, error) {
	cfg := broker.DefaultConfig()
	cfg.DataDir = dataDir
	cfg.Listen = "127.0.0.1:0"
	cfg.AutoCreateTopics = true
	cfg.Logger = logger
	b, err := broker.New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("tributary broker in %s: %w", dataDir, err)
	}
	if err := b.Start(); err != nil {
		_ = b.Shutdown(context.Background())
		return nil, nil, fmt.Errorf("tributary broker start: %w", err)
	}
	return []string{b.Addr()}, b.Shutdown, nil
}
