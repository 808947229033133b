package runner

import (
	"context"
	"encoding/json"
	"fmt"

	natsbridge "github.com/tributary/tributary/bridge/nats"
	"github.com/tributary/tributary/mirror"
	"github.com/tributary/tributary/mirror/config"
)

// natsConfig is how the NATS bridge reaches cluster c.
func (e *Endpoints) natsConfig(c config.Cluster) natsbridge.Config {
	n := c.NATS
	cfg := natsbridge.Config{Name: c.Name, Servers: n.Servers, User: n.User, Password: n.Password, Token: n.Token,
		NKeySeedFile: n.NKeySeedFile, CredsFile: n.CredsFile, Logger: e.Log, Metrics: e.NATSMetrics}
	if t := n.TLS; t != nil {
		cfg.TLS = &natsbridge.TLSConfig{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile,
			ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	}
	return cfg
}

// natsMapping is the NATS mapping of the job opening an endpoint. Without
// a job (tributary mirror plan) it is the first job's that reads cluster.
func (e *Endpoints) natsMapping(cluster string, use mirror.Use) (natsbridge.Mapping, error) {
	nj := e.NATS[use.Job]
	if nj == nil && use.Job == "" && len(e.NATS) == 1 {
		for _, only := range e.NATS {
			nj = only
		}
	}
	if nj == nil {
		return natsbridge.Mapping{}, fmt.Errorf("cluster %s is a NATS cluster but job %q has no NATS mapping", cluster, use.Job)
	}
	m := natsbridge.Mapping{Stream: nj.Stream, Subjects: nj.Subjects, CreateStream: nj.CreateStream,
		DuplicateWindow: nj.DuplicateWindow, RestartBudget: nj.RestartBudget, Subject: nj.Subject, KeyHeader: nj.KeyHeader,
		Topic: nj.Topic, Durable: nj.Durable, AckWait: nj.AckWait, MaxAckPending: nj.MaxAckPending, CheckpointBucket: nj.CheckpointBucket}
	if m.Durable == "" {
		// One durable consumer per flow: the flows of a job with several
		// targets each read the stream at their own pace.
		m.Durable = natsbridge.DurableName(use.Flow)
	}
	return m, nil
}

func (e *Endpoints) openNATSSource(ctx context.Context, c config.Cluster, use mirror.Use) (mirror.Source, error) {
	m, err := e.natsMapping(c.Name, use)
	if err != nil {
		return nil, err
	}
	return natsbridge.NewSource(ctx, e.natsConfig(c), m)
}

func (e *Endpoints) openNATSSink(ctx context.Context, c config.Cluster, use mirror.Use) (mirror.Sink, error) {
	m, err := e.natsMapping(c.Name, use)
	if err != nil {
		return nil, err
	}
	return natsbridge.NewSink(ctx, e.natsConfig(c), m)
}

// natsFingerprint identifies a job's NATS mapping, so that a reload
// restarts a job whose mapping changed.
func natsFingerprint(nj *config.NATSJob) string {
	if nj == nil {
		return ""
	}
	b, _ := json.Marshal(nj)
	return string(b)
}
