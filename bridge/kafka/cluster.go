package kafka

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/tributary/tributary/mirror"
)

// cluster is what Source and Sink share: a metadata/admin client for one
// cluster, and the calls made through it.
type cluster struct {
	cfg   Config
	log   *slog.Logger // with the "cluster" key
	conf  *sarama.Config
	admin sarama.ClusterAdmin // owns client
	cl    sarama.Client

	// calls tracks sarama calls a caller stopped waiting for; close waits.
	calls sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	closed  bool
	id      string
	configs map[string]cachedConfigs
}

type cachedConfigs struct {
	configs map[string]string // non-default
	maxMsg  int               // max.message.bytes; 0 unknown
	at      time.Time
}

// newCluster connects to cfg's cluster; cfg has been filled.
func newCluster(cfg Config) (*cluster, error) {
	conf := cfg.saramaConfig()
	cl, err := sarama.NewClient(cfg.Bootstrap, conf)
	if err != nil {
		return nil, cfg.errorf(err, "connect to %v", cfg.Bootstrap)
	}
	admin, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		cl.Close()
		return nil, cfg.errorf(err, "admin client")
	}
	log := cfg.Logger.With("cluster", cfg.Name)
	cfg.warnInsecure(log)
	return &cluster{cfg: cfg, log: log, conf: conf, admin: admin, cl: cl, configs: make(map[string]cachedConfigs)}, nil
}

// errorf wraps err with the cluster's name and what was being done; an
// authentication failure comes back as its *AuthError (Config.errorf).
func (c *cluster) errorf(err error, format string, args ...any) error {
	return c.cfg.errorf(err, format, args...)
}

// call runs fn, a blocking sarama call, and stops waiting when ctx ends.
// An abandoned fn keeps running until sarama's timeouts or close end it.
func (c *cluster) call(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ctx.Done() == nil {
		return fn()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.calls.Add(1)
	c.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		defer c.calls.Done()
		done <- fn()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *cluster) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	err := c.admin.Close() // closes c.cl, which ends abandoned calls
	c.calls.Wait()
	if err != nil {
		return c.errorf(err, "close")
	}
	return nil
}

// metadata asks one broker for the metadata of topics, or of every topic
// if none are named. It never creates topics.
func (c *cluster) metadata(ctx context.Context, topics ...string) (*sarama.MetadataResponse, error) {
	var resp *sarama.MetadataResponse
	err := c.call(ctx, func() error {
		b := c.cl.LeastLoadedBroker()
		if b == nil {
			return errors.New("no broker available")
		}
		if err := b.Open(c.conf); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
			return err
		}
		var err error
		req := sarama.NewMetadataRequest(c.conf.Version, topics)
		req.AllowAutoTopicCreation = false
		resp, err = b.GetMetadata(req)
		if err != nil {
			_ = b.Close() // the client reopens it
		}
		return err
	})
	if err != nil {
		return nil, c.errorf(err, "metadata")
	}
	return resp, nil
}

// clusterID returns the ID the cluster's Metadata reports, "" if none.
func (c *cluster) clusterID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.id
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	resp, err := c.metadata(ctx)
	if err != nil {
		return "", err
	}
	if resp.ClusterID != nil {
		id = *resp.ClusterID
	}
	c.mu.Lock()
	c.id = id
	c.mu.Unlock()
	return id, nil
}

// topics lists every topic with its partition count; with configs, also
// its non-default configs (cached for MetadataMaxAge).
func (c *cluster) topics(ctx context.Context, withConfigs bool) ([]mirror.TopicInfo, error) {
	resp, err := c.metadata(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]mirror.TopicInfo, 0, len(resp.Topics))
	var names []string
	for _, t := range resp.Topics {
		if !errors.Is(t.Err, sarama.ErrNoError) {
			continue // being created or deleted; the next refresh sees it
		}
		out = append(out, mirror.TopicInfo{Name: t.Name, Partitions: int32(len(t.Partitions))})
		names = append(names, t.Name)
	}
	if !withConfigs || c.cfg.MetadataMaxAge < 0 {
		return out, nil
	}
	cfgs, err := c.topicConfigs(ctx, names)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Configs = cfgs[out[i].Name].configs
	}
	return out, nil
}

// topicConfigs returns the configs of topics, asking the cluster in one
// DescribeConfigs request for those not cached or cached too long ago.
func (c *cluster) topicConfigs(ctx context.Context, topics []string) (map[string]cachedConfigs, error) {
	now := time.Now()
	out := make(map[string]cachedConfigs, len(topics))
	var stale []*sarama.ConfigResource
	c.mu.Lock()
	for _, t := range topics {
		cc, ok := c.configs[t]
		if ok && now.Sub(cc.at) < c.cfg.MetadataMaxAge {
			out[t] = cc
			continue
		}
		stale = append(stale, &sarama.ConfigResource{Type: sarama.TopicResource, Name: t})
	}
	c.mu.Unlock()
	if len(stale) == 0 {
		return out, nil
	}
	var results []*sarama.ConfigResourceResult
	err := c.call(ctx, func() error {
		var err error
		results, err = c.admin.DescribeConfigs(stale, sarama.DescribeConfigsOptions{})
		return err
	})
	if err != nil {
		return nil, c.errorf(err, "describe configs of %d topics", len(stale))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range results {
		if r.ErrorCode != 0 {
			continue // deleted meanwhile, or not allowed: no configs known
		}
		cc := cachedConfigs{configs: make(map[string]string), at: now}
		for _, e := range r.Configs {
			if e.Name == "max.message.bytes" {
				cc.maxMsg, _ = strconv.Atoi(e.Value)
			}
			if e.Source == sarama.SourceTopic || (e.Source == sarama.SourceUnknown && !e.Default) {
				cc.configs[e.Name] = e.Value
			}
		}
		c.configs[r.Name] = cc
		out[r.Name] = cc
	}
	return out, nil
}

// listOffsets asks each partition's leader, in one request per leader, for
// the offset at the given ListOffsets timestamp (-1 latest, -2 earliest,
// else milliseconds), read_committed: "latest" is the last stable offset.
// A partition the cluster reports no offset for (-1, no record at or after
// a timestamp) maps to -1.
func (c *cluster) listOffsets(ctx context.Context, tps []mirror.TopicPartition, ts int64) (map[mirror.TopicPartition]int64, error) {
	out := make(map[mirror.TopicPartition]int64, len(tps))
	pending := tps
	var lastErr error
	for attempt := 0; attempt < 3 && len(pending) > 0; attempt++ {
		if attempt > 0 {
			topics := make([]string, 0, len(pending))
			for _, tp := range pending {
				topics = append(topics, tp.Topic)
			}
			_ = c.call(ctx, func() error { return c.cl.RefreshMetadata(topics...) })
		}
		var retry []mirror.TopicPartition
		byLeader := make(map[*sarama.Broker][]mirror.TopicPartition)
		for _, tp := range pending {
			var leader *sarama.Broker
			err := c.call(ctx, func() error {
				var err error
				leader, err = c.cl.Leader(tp.Topic, tp.Partition)
				return err
			})
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				lastErr = c.errorf(err, "leader of %s", tp)
				retry = append(retry, tp)
				continue
			}
			byLeader[leader] = append(byLeader[leader], tp)
		}
		for leader, group := range byLeader {
			req := sarama.NewOffsetRequest(c.conf.Version)
			req.IsolationLevel = sarama.ReadCommitted
			for _, tp := range group {
				req.AddBlock(tp.Topic, tp.Partition, ts, 1)
			}
			var resp *sarama.OffsetResponse
			err := c.call(ctx, func() error {
				var err error
				resp, err = leader.GetAvailableOffsets(req)
				return err
			})
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				lastErr = c.errorf(err, "list offsets on broker %d", leader.ID())
				retry = append(retry, group...)
				continue
			}
			for _, tp := range group {
				blk := resp.GetBlock(tp.Topic, tp.Partition)
				switch {
				case blk == nil:
					lastErr = c.errorf(sarama.ErrIncompleteResponse, "list offsets of %s", tp)
					retry = append(retry, tp)
				case !errors.Is(blk.Err, sarama.ErrNoError):
					lastErr = c.errorf(blk.Err, "list offsets of %s", tp)
					retry = append(retry, tp)
				case len(blk.Offsets) > 0 && req.Version == 0:
					out[tp] = blk.Offsets[0]
				default:
					out[tp] = blk.Offset
				}
			}
		}
		pending = retry
	}
	if len(pending) > 0 {
		return nil, lastErr
	}
	return out, nil
}
