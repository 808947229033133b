package kafka

import "github.com/twmb/franz-go/pkg/kgo"

// FranzOpts returns franz-go client options that reach c's cluster the way
// this package's own clients do: its bootstrap addresses, client ID, TLS
// and SASL. Tools that read or administer a mirrored cluster with
// franz-go (offset translation) use it, so a secured cluster works for
// them too.
func (c *Config) FranzOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Bootstrap...)}
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	return append(opts, c.kgoSecurityOpts()...)
}
