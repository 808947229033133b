package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	"go.uber.org/multierr"

	"github.com/tributary/tributary/broker/storage"
)

// internalTopics are created and owned by the broker. They are compacted
// (cleanup.policy=compact) and never expire by retention, and Metadata marks
// them internal.
var internalTopics = map[string]bool{OffsetsTopic: true, TransactionStateTopic: true}

// maxTopicNameLen is Kafka's limit (249, leaving room for partition suffixes).
const maxTopicNameLen = 249

// topic is one topic; its partition slice only grows, under
// topicRegistry.mu.
type topic struct {
	name       string
	id         uuid.UUID
	internal   bool
	configs    map[string]string // overrides of the broker defaults
	partitions []*partition
}

type partition struct {
	topic *topic
	index int32
	log   *storage.Log
}

// topicFile is topics/<name>.json.
type topicFile struct {
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// topicRegistry holds every topic and writes their metadata files.
type topicRegistry struct {
	fsys     storage.FS
	dir      string
	defaults storage.Config
	log      *slog.Logger

	mu     sync.RWMutex // guards byName, byID, each topic's partitions and configs
	byName map[string]*topic
	byID   map[uuid.UUID]*topic
}

func openTopicRegistry(fsys storage.FS, dir string, defaults storage.Config, log *slog.Logger) (*topicRegistry, error) {
	r := &topicRegistry{fsys: fsys, dir: dir, defaults: defaults, log: log,
		byName: make(map[string]*topic), byID: make(map[uuid.UUID]*topic)}
	metaDir := filepath.Join(dir, "topics")
	if err := fsys.MkdirAll(metaDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", metaDir, err)
	}
	names, err := fsys.ReadDir(metaDir)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			fsys.Remove(filepath.Join(metaDir, n))
			continue
		}
		name, ok := strings.CutSuffix(n, ".json")
		if !ok {
			continue
		}
		if err := r.load(name); err != nil {
			r.close()
			return nil, err
		}
	}
	if err := r.removeOrphans(); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *topicRegistry) topicPath(name string) string {
	return filepath.Join(r.dir, "topics", name+".json")
}

func (r *topicRegistry) partitionDir(name string, p int32) string {
	return filepath.Join(r.dir, name+"-"+strconv.Itoa(int(p)))
}

func (r *topicRegistry) load(name string) error {
	data, err := storage.ReadFile(r.fsys, r.topicPath(name))
	if err != nil {
		return fmt.Errorf("read topic %s: %w", name, err)
	}
	var tf topicFile
	if err := json.Unmarshal(data, &tf); err != nil {
		return fmt.Errorf("read topic %s: %w", name, err)
	}
	id, err := uuid.Parse(tf.ID)
	if err != nil {
		return fmt.Errorf("read topic %s: bad ID: %w", name, err)
	}
	t := &topic{name: name, id: id, internal: internalTopics[name], configs: tf.Configs}
	if t.internal {
		t.configs = internalConfigs(t.configs)
	}
	cfg, err := topicLogConfig(r.defaults, t.configs, t.internal)
	if err != nil {
		return fmt.Errorf("topic %s: %w", name, err)
	}
	for p := int32(0); p < tf.Partitions; p++ {
		l, err := storage.Open(r.fsys, r.partitionDir(name, p), cfg, storage.Options{Logger: r.log.With("topic", name, "partition", p)})
		if err != nil {
			t.closeLogs()
			return fmt.Errorf("open partition %s-%d: %w", name, p, err)
		}
		t.partitions = append(t.partitions, &partition{topic: t, index: p, log: l})
	}
	r.byName[name] = t
	r.byID[id] = t
	return nil
}

// removeOrphans deletes partition directories that belong to no topic and
// the tombstones of deleted partitions (see delete): the leftovers of a
// create or delete interrupted by a crash.
func (r *topicRegistry) removeOrphans() error {
	names, err := r.fsys.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("list data dir: %w", err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, tombstoneSuffix) {
			r.log.Info("removing directory of deleted partition", "dir", n)
			if err := r.fsys.RemoveAll(filepath.Join(r.dir, n)); err != nil {
				return fmt.Errorf("remove deleted partition dir %s: %w", n, err)
			}
			continue
		}
		i := strings.LastIndexByte(n, '-')
		if i <= 0 {
			continue
		}
		p, err := strconv.Atoi(n[i+1:])
		if err != nil || p < 0 {
			continue
		}
		if t, ok := r.byName[n[:i]]; ok && p < len(t.partitions) {
			continue
		}
		r.log.Warn("removing partition directory of no topic", "dir", n)
		if err := r.fsys.RemoveAll(filepath.Join(r.dir, n)); err != nil {
			return fmt.Errorf("remove orphan %s: %w", n, err)
		}
	}
	return nil
}

func (r *topicRegistry) get(name string) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byName[name]
}

func (r *topicRegistry) getByID(id uuid.UUID) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byID[id]
}

// partition returns the named partition, or nil.
func (r *topicRegistry) partition(name string, p int32) *partition {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t := r.byName[name]
	if t == nil || p < 0 || int(p) >= len(t.partitions) {
		return nil
	}
	return t.partitions[p]
}

func (r *topicRegistry) partitionExists(name string, p int32) bool {
	return r.partition(name, p) != nil
}

// snapshot returns the topics sorted by name, with their partitions as of now.
func (r *topicRegistry) snapshot() []*topicView {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*topicView, 0, len(r.byName))
	for _, t := range r.byName {
		out = append(out, t.view())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// view returns a copy safe to use without the registry lock; mu held on entry.
func (t *topic) view() *topicView {
	cfg := make(map[string]string, len(t.configs))
	for k, v := range t.configs {
		cfg[k] = v
	}
	return &topicView{name: t.name, id: t.id, internal: t.internal, configs: cfg,
		partitions: append([]*partition(nil), t.partitions...)}
}

func (r *topicRegistry) view(name string) *topicView {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if t := r.byName[name]; t != nil {
		return t.view()
	}
	return nil
}

type topicView struct {
	name       string
	id         uuid.UUID
	internal   bool
	configs    map[string]string
	partitions []*partition
}

// Errors of topic administration, mapped to Kafka error codes by the APIs.
var (
	errTopicExists       = errors.New("topic already exists")
	errUnknownTopic      = errors.New("unknown topic")
	errInvalidTopic      = errors.New("invalid topic name")
	errInvalidPartitions = errors.New("invalid partition count")
	errInvalidConfig     = errors.New("invalid config")
	errPolicyViolation   = errors.New("not allowed for this topic")
)

func validateTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > maxTopicNameLen {
		return fmt.Errorf("%w %q: 1 to %d characters, not . or ..", errInvalidTopic, name, maxTopicNameLen)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w %q: only ASCII letters, digits, '.', '_' and '-'", errInvalidTopic, name)
		}
	}
	return nil
}

// create makes a topic durable: partition directories first, then the topic
// file, which is the commit point. validateOnly checks without creating.
func (r *topicRegistry) create(name string, partitions int32, configs map[string]string, validateOnly bool) (*topicView, error) {
	if err := validateTopicName(name); err != nil {
		return nil, err
	}
	if partitions <= 0 {
		return nil, fmt.Errorf("%w: %d, must be at least 1", errInvalidPartitions, partitions)
	}
	internal := internalTopics[name]
	if internal {
		configs = internalConfigs(configs)
	}
	cfg, err := topicLogConfig(r.defaults, configs, internal)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byName[name]; ok {
		return nil, fmt.Errorf("%w: %s", errTopicExists, name)
	}
	if validateOnly {
		return &topicView{name: name, partitions: make([]*partition, partitions), configs: configs}, nil
	}
	t := &topic{name: name, id: uuid.New(), internal: internal, configs: cloneConfigs(configs)}
	for p := int32(0); p < partitions; p++ {
		l, err := storage.Open(r.fsys, r.partitionDir(name, p), cfg, storage.Options{Logger: r.log.With("topic", name, "partition", p)})
		if err != nil {
			for _, part := range t.partitions {
				part.log.Delete()
			}
			return nil, fmt.Errorf("create partition %s-%d: %w", name, p, err)
		}
		t.partitions = append(t.partitions, &partition{topic: t, index: p, log: l})
	}
	if err := r.writeTopicFile(t); err != nil {
		for _, part := range t.partitions {
			part.log.Delete()
		}
		return nil, fmt.Errorf("create topic %s: %w", name, err)
	}
	r.byName[name] = t
	r.byID[t.id] = t
	r.log.Info("topic created", "topic", name, "partitions", partitions, "topic_id", t.id.String())
	return t.view(), nil
}

// writeTopicFile persists t; r.mu held on entry.
func (r *topicRegistry) writeTopicFile(t *topic) error {
	data, _ := json.MarshalIndent(topicFile{ID: t.id.String(), Partitions: int32(len(t.partitions)), Configs: t.configs}, "", "  ")
	return storage.WriteFileAtomic(r.fsys, r.topicPath(t.name), data)
}

// delete removes a topic: its file first (the commit point), then its logs.
// While r.mu is held, every partition log is closed and its directory renamed
// to a tombstone (see tombstoneDir) and the data dir fsynced, so a concurrent
// create of the same name starts from empty directories; the tombstones are
// removed after r.mu is released, or by removeOrphans at the next start.
func (r *topicRegistry) delete(name string) error {
	r.mu.Lock()
	t := r.byName[name]
	if t == nil {
		r.mu.Unlock()
		return fmt.Errorf("%w: %s", errUnknownTopic, name)
	}
	if t.internal {
		r.mu.Unlock()
		return fmt.Errorf("%w: %s is internal", errPolicyViolation, name)
	}
	if err := r.fsys.Remove(r.topicPath(name)); err != nil {
		r.mu.Unlock()
		return fmt.Errorf("delete topic %s: %w", name, err)
	}
	if err := r.fsys.SyncDir(filepath.Join(r.dir, "topics")); err != nil {
		r.log.Warn("fsync of topics directory failed", "err", err)
	}
	delete(r.byName, name)
	delete(r.byID, t.id)
	var err error
	var tombs []string
	for _, p := range t.partitions {
		if cerr := p.log.Close(); cerr != nil && !errors.Is(cerr, storage.ErrClosed) {
			r.log.Warn("closing log of deleted partition failed", "topic", name, "partition", p.index, "err", cerr)
		}
		dir, tomb := r.partitionDir(name, p.index), r.tombstoneDir(t, p.index)
		if rerr := r.fsys.Rename(dir, tomb); rerr != nil {
			// The name must not keep the old data: remove it now, lock held.
			if xerr := r.fsys.RemoveAll(dir); xerr != nil {
				err = multierr.Append(err, fmt.Errorf("delete partition %s-%d: rename (%v), remove: %w", name, p.index, rerr, xerr))
			}
			continue
		}
		tombs = append(tombs, tomb)
	}
	if serr := r.fsys.SyncDir(r.dir); serr != nil {
		r.log.Warn("fsync of data directory failed", "err", serr)
	}
	r.mu.Unlock()
	for _, tomb := range tombs {
		if rerr := r.fsys.RemoveAll(tomb); rerr != nil {
			err = multierr.Append(err, fmt.Errorf("remove deleted partition dir %s: %w", tomb, rerr))
		}
	}
	r.log.Info("topic deleted", "topic", name, "topic_id", t.id.String())
	return err
}

// tombstoneSuffix ends the name of a deleted partition's directory awaiting
// removal. A partition directory always ends in -<partition number>, so no
// live partition's directory ends in it.
const tombstoneSuffix = "-delete"

// tombstoneDir is where partition p of the deleted topic t is moved before
// its removal: <topic>-<p>.<topic ID>-delete, unique per incarnation of the
// topic name.
func (r *topicRegistry) tombstoneDir(t *topic, p int32) string {
	return filepath.Join(r.dir, t.name+"-"+strconv.Itoa(int(p))+"."+t.id.String()+tombstoneSuffix)
}

// addPartitions grows a topic to total partitions.
func (r *topicRegistry) addPartitions(name string, total int32, validateOnly bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.byName[name]
	if t == nil {
		return fmt.Errorf("%w: %s", errUnknownTopic, name)
	}
	have := int32(len(t.partitions))
	if total <= have {
		return fmt.Errorf("%w: topic %s has %d partitions; the new count %d must be larger", errInvalidPartitions, name, have, total)
	}
	if validateOnly {
		return nil
	}
	cfg, err := topicLogConfig(r.defaults, t.configs, t.internal)
	if err != nil {
		return err
	}
	added := make([]*partition, 0, total-have)
	for p := have; p < total; p++ {
		l, err := storage.Open(r.fsys, r.partitionDir(name, p), cfg, storage.Options{Logger: r.log.With("topic", name, "partition", p)})
		if err != nil {
			for _, a := range added {
				a.log.Delete()
			}
			return fmt.Errorf("create partition %s-%d: %w", name, p, err)
		}
		added = append(added, &partition{topic: t, index: p, log: l})
	}
	old := t.partitions
	t.partitions = append(append([]*partition(nil), old...), added...)
	if err := r.writeTopicFile(t); err != nil {
		t.partitions = old
		for _, a := range added {
			a.log.Delete()
		}
		return fmt.Errorf("add partitions to %s: %w", name, err)
	}
	r.log.Info("partitions added", "topic", name, "from", have, "to", total)
	return nil
}

// setConfigs replaces a topic's overrides (already validated by the caller
// through topicLogConfig) and applies them to its logs.
func (r *topicRegistry) setConfigs(name string, configs map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.byName[name]
	if t == nil {
		return fmt.Errorf("%w: %s", errUnknownTopic, name)
	}
	cfg, err := topicLogConfig(r.defaults, configs, t.internal)
	if err != nil {
		return err
	}
	old := t.configs
	t.configs = cloneConfigs(configs)
	if err := r.writeTopicFile(t); err != nil {
		t.configs = old
		return fmt.Errorf("alter configs of %s: %w", name, err)
	}
	for _, p := range t.partitions {
		p.log.SetConfig(cfg)
	}
	return nil
}

func (r *topicRegistry) enforceRetention() {
	for _, t := range r.snapshot() {
		for _, p := range t.partitions {
			if n, err := p.log.EnforceRetention(); err != nil {
				r.log.Error("retention failed", "topic", t.name, "partition", p.index, "err", err)
			} else if n > 0 {
				r.log.Info("retention deleted segments", "topic", t.name, "partition", p.index, "segments", n)
			}
		}
	}
}

// cleanLogs runs the log cleaner over every partition of a compacted
// topic, one at a time, until ctx is done.
func (r *topicRegistry) cleanLogs(ctx context.Context) {
	for _, t := range r.snapshot() {
		for _, p := range t.partitions {
			if ctx.Err() != nil {
				return
			}
			if p.log.Config().Cleanup&storage.CleanupCompact == 0 {
				continue
			}
			if _, err := p.log.Clean(ctx); err != nil && !errors.Is(err, storage.ErrClosed) && ctx.Err() == nil {
				r.log.Error("log cleaning failed", "topic", t.name, "partition", p.index, "err", err)
			}
		}
	}
}

// internalConfigs returns the configs of an internal topic: compacted, as
// Kafka's internal topics are, also for topics created before compaction
// existed.
func internalConfigs(configs map[string]string) map[string]string {
	out := cloneConfigs(configs)
	out[cfgCleanupPolicy] = "compact"
	return out
}

func (r *topicRegistry) syncAll() {
	for _, t := range r.snapshot() {
		for _, p := range t.partitions {
			if err := p.log.Sync(); err != nil {
				r.log.Error("fsync failed", "topic", t.name, "partition", p.index, "err", err)
			}
		}
	}
}

func (r *topicRegistry) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	for _, t := range r.byName {
		err = multierr.Append(err, t.closeLogs())
	}
	return err
}

func (t *topic) closeLogs() error {
	var err error
	for _, p := range t.partitions {
		if cerr := p.log.Close(); cerr != nil && !errors.Is(cerr, storage.ErrClosed) {
			err = multierr.Append(err, fmt.Errorf("close %s-%d: %w", t.name, p.index, cerr))
		}
	}
	return err
}

func cloneConfigs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
