package topology

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"

	"gopkg.in/yaml.v3"
)

// Static is a Resolver over a fixed list of brokers. Its file looks like:
//
//	clusters:
//	  east:
//	    datacenter: dc1            # optional
//	    brokers: ["10.0.0.1:9092", "10.0.0.2:9092"]
//
// Static brokers are always reported passing.
type Static struct {
	clusters map[string]staticCluster
}

type staticCluster struct {
	Datacenter string   `yaml:"datacenter"`
	Brokers    []string `yaml:"brokers"`
}

// NewStatic returns a Static resolver of the clusters given as name ->
// broker addresses, all in datacenter "".
func NewStatic(clusters map[string][]string) *Static {
	s := &Static{clusters: make(map[string]staticCluster, len(clusters))}
	for name, addrs := range clusters {
		s.clusters[name] = staticCluster{Brokers: append([]string(nil), addrs...)}
	}
	return s
}

// LoadStatic reads a static topology file (see Static).
func LoadStatic(path string) (*Static, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topology file: %w", err)
	}
	s, err := ParseStatic(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseStatic parses a static topology file (see Static). Unknown keys,
// clusters without brokers and addresses that are not host:port are
// errors.
func ParseStatic(data []byte) (*Static, error) {
	var doc struct {
		Clusters map[string]staticCluster `yaml:"clusters"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse topology: %w", err)
	}
	for name, c := range doc.Clusters {
		if !validName(name) {
			return nil, fmt.Errorf("cluster %q: a name has no blanks, '=' or '/'", name)
		}
		if len(c.Brokers) == 0 {
			return nil, fmt.Errorf("cluster %s: no brokers", name)
		}
		for _, a := range c.Brokers {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("cluster %s: broker %q is not host:port", name, a)
			}
		}
	}
	return &Static{clusters: doc.Clusters}, nil
}

// Brokers implements Resolver. A datacenter in ref must match the file's,
// when the file gives one.
func (s *Static) Brokers(_ context.Context, ref ClusterRef) ([]Broker, error) {
	c, ok := s.clusters[ref.Name]
	if !ok || (ref.Datacenter != "" && c.Datacenter != "" && ref.Datacenter != c.Datacenter) {
		return nil, fmt.Errorf("cluster %s: %w", ref, ErrUnknownCluster)
	}
	out := make([]Broker, 0, len(c.Brokers))
	for _, a := range c.Brokers {
		out = append(out, Broker{Cluster: ref.Name, Datacenter: c.Datacenter, NodeID: -1, Addr: a, Health: HealthPassing})
	}
	sortBrokers(out)
	return out, nil
}

// Watch implements Resolver: a static cluster never changes, so it sends
// the brokers once (nothing for an unknown cluster) and closes when ctx
// ends.
func (s *Static) Watch(ctx context.Context, ref ClusterRef) <-chan []Broker {
	ch := make(chan []Broker, 1)
	if bs, err := s.Brokers(ctx, ref); err == nil {
		ch <- bs
	}
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}
