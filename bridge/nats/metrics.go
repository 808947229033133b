package nats

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the bridge's Prometheus metrics. Labels: cluster (the job
// file's name) and stream.
type Metrics struct {
	// Published counts messages JetStream acknowledged as stored.
	Published *prometheus.CounterVec
	// Duplicates counts publishes JetStream acknowledged as duplicates
	// (PubAck with the duplicate flag: a Nats-Msg-Id seen within the
	// stream's duplicate window), so dropped rather than stored again.
	Duplicates *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered anywhere, as in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tributary", Subsystem: "nats",
			Name: "published_total", Help: "Messages published to JetStream and stored (PubAck without the duplicate flag)."}, []string{"cluster", "stream"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tributary", Subsystem: "nats",
			Name: "duplicates_total", Help: "Messages JetStream dropped as duplicates of a Nats-Msg-Id within the stream's duplicate window (PubAck duplicate flag)."}, []string{"cluster", "stream"}),
	}
	if reg != nil {
		reg.MustRegister(m.Published, m.Duplicates)
	}
	return m
}
