package topology

import (
	"context"
	"errors"
	"sort"
	"strings"
)

// Names Tributary uses in Consul.
const (
	// ServiceBroker is the Consul service every Tributary broker registers.
	ServiceBroker = "tributary-broker"
	// ServiceWorker is the Consul service every mirror worker registers
	// with `mirror run --consul`; its TTL check binds the worker's session.
	ServiceWorker = "tributary-mirror"

	// KVJobs is the KV prefix of mirror jobs: KVJobs+NAME holds a job file
	// with exactly the job NAME.
	KVJobs = "tributary/jobs/"
	// KVJobStatus is the KV prefix where workers report on each job of
	// KVJobs: whether it was accepted, and why not.
	KVJobStatus = "tributary/job-status/"
	// KVLocks is the KV prefix of the locks deciding which worker runs a
	// job: KVLocks+NAME.
	KVLocks = "tributary/locks/"
)

// Keys of a broker's service meta in Consul (tags carry the same facts as
// "key=value").
const (
	MetaCluster    = "cluster"
	MetaDatacenter = "datacenter"
	MetaNodeID     = "node_id"
	MetaClusterID  = "cluster_id"
	MetaKafkaAddr  = "kafka_addr"
)

// Health states of a broker, as Consul reports its checks.
const (
	HealthPassing  = "passing"
	HealthWarning  = "warning"
	HealthCritical = "critical"
)

// ErrUnknownCluster is returned by a Resolver that has never heard of a
// cluster (a static file without it). Consul returns no brokers instead:
// a cluster may register later.
var ErrUnknownCluster = errors.New("unknown cluster")

// ClusterRef names a cluster in a datacenter.
type ClusterRef struct {
	// Name is the cluster's name, as brokers give it with --cluster.
	Name string
	// Datacenter is the Consul datacenter; "" is the local agent's.
	Datacenter string
}

func (r ClusterRef) String() string {
	if r.Datacenter == "" {
		return r.Name
	}
	return r.Name + "@" + r.Datacenter
}

// Broker is one broker of a cluster.
type Broker struct {
	Cluster    string
	Datacenter string
	NodeID     int32
	// ClusterID is the UUID the cluster reports in Kafka's Metadata.
	ClusterID string
	// Addr is the advertised Kafka address, host:port.
	Addr string
	// Health is HealthPassing, HealthWarning or HealthCritical. Resolvers
	// return only passing brokers; Consul.Catalog returns them all.
	Health string
	// ServiceID is the broker's Consul service ID; "" for static brokers.
	ServiceID string
}

// Resolver finds the live brokers of clusters.
type Resolver interface {
	// Brokers returns the cluster's live brokers now, ordered by address.
	Brokers(ctx context.Context, ref ClusterRef) ([]Broker, error)
	// Watch reports the cluster's live brokers: first the current set, then
	// each change, until ctx ends, when the channel closes. A receiver
	// that falls behind gets only the latest set. While the backend is
	// unreachable nothing is sent: the last set received stays the best
	// knowledge.
	Watch(ctx context.Context, ref ClusterRef) <-chan []Broker
}

// Addrs returns the brokers' Kafka addresses, sorted and without repeats.
func Addrs(bs []Broker) []string {
	out := make([]string, 0, len(bs))
	seen := make(map[string]bool, len(bs))
	for _, b := range bs {
		if b.Addr != "" && !seen[b.Addr] {
			seen[b.Addr] = true
			out = append(out, b.Addr)
		}
	}
	sort.Strings(out)
	return out
}

// sortBrokers orders brokers by datacenter, cluster, node ID and address.
func sortBrokers(bs []Broker) {
	sort.Slice(bs, func(i, j int) bool {
		a, b := bs[i], bs[j]
		if a.Datacenter != b.Datacenter {
			return a.Datacenter < b.Datacenter
		}
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.NodeID != b.NodeID {
			return a.NodeID < b.NodeID
		}
		return a.Addr < b.Addr
	})
}

// sameBrokers reports whether two sorted broker lists are equal.
func sameBrokers(a, b []Broker) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// validName reports whether s can be a cluster name in a Consul tag: no
// blanks, no '=' or '/'.
func validName(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\n=/")
}
