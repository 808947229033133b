package mirror

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of every job in a process. Labels:
// job, target (the flow's target cluster), source (source cluster), topic
// and partition (source topic and partition), kind (error kinds).
type Metrics struct {
	Records      *prometheus.CounterVec   // records written, by job, target
	Bytes        *prometheus.CounterVec   // key+value+header bytes written, by job, target
	Skipped      *prometheus.CounterVec   // records not written, by job, target, reason (loop, oversized, dead-letter)
	Errors       *prometheus.CounterVec   // flow errors by job, target, kind
	LagRecords   *prometheus.GaugeVec     // by job, target, source, topic, partition
	LagSeconds   *prometheus.GaugeVec     // by job, target
	Latency      *prometheus.HistogramVec // source timestamp to target acknowledgement, by job, target
	Checkpoints  *prometheus.CounterVec   // checkpoints written, by job, target
	FlowsRunning *prometheus.GaugeVec     // 1 while a flow runs, by job, target
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered anywhere, as in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tributary", Subsystem: "mirror",
			Name: "records_total", Help: "Records written to targets and acknowledged."}, []string{"job", "target"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tributary", Subsystem: "mirror",
			Name: "bytes_total", Help: "Key, value and header bytes written to targets and acknowledged."}, []string{"job", "target"}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tributary", Subsystem: "mirror",
			Name: "records_skipped_total", Help: "Records read but not written: reason loop (target already on the record's path), oversized (skip policy), dead_letter (written to the dead-letter topic instead)."}, []string{"job", "target", "reason"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tributary", Subsystem: "mirror",
			Name: "errors_total", Help: "Flow errors by kind: source, sink, oversized, config, fenced, checkpoint."}, []string{"job", "target", "kind"}),
		LagRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tributary", Subsystem: "mirror",
			Name: "lag_records", Help: "Records in the source partition not yet checkpointed on the target."}, []string{"job", "target", "source", "topic", "partition"}),
		LagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tributary", Subsystem: "mirror",
			Name: "lag_seconds", Help: "Age of the newest acknowledged record when the flow has lag, else 0: how far behind the target is in time."}, []string{"job", "target"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "tributary", Subsystem: "mirror",
			Name: "replication_latency_seconds", Help: "From a record's source timestamp to its acknowledgement by the target.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"job", "target"}),
		Checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tributary", Subsystem: "mirror",
			Name: "checkpoints_total", Help: "Checkpoints written to targets."}, []string{"job", "target"}),
		FlowsRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tributary", Subsystem: "mirror",
			Name: "flow_running", Help: "1 while a flow is running (not paused, stopped or failed)."}, []string{"job", "target"}),
	}
	if reg != nil {
		reg.MustRegister(m.Records, m.Bytes, m.Skipped, m.Errors, m.LagRecords, m.LagSeconds, m.Latency, m.Checkpoints, m.FlowsRunning)
	}
	return m
}
