package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	kafkabridge "github.com/tributary/tributary/bridge/kafka"
	"github.com/tributary/tributary/cmd/tributary/internal/runner"
	"github.com/tributary/tributary/mirror"
)

func groupsCommand() *cli.Command {
	return &cli.Command{
		Name:  "groups",
		Usage: "consumer groups across mirrored clusters",
		Subcommands: []*cli.Command{{
			Name:  "translate",
			Usage: "translate a group's committed offsets from a job's source to its target, and optionally commit them there",
			Description: "For each partition the group committed on the job's source, finds the target offset where a consumer\n" +
				"continues with no gap: just after the last mirrored record that came from before the committed offset,\n" +
				"read from the records' provenance headers (exact, not sampled). Refuses while the mirror's checkpoint\n" +
				"is behind the group's position. Needs partitioning: preserve.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "config", Required: true, Usage: "job `FILE`"},
				&cli.StringFlag{Name: "job", Required: true, Usage: "job `NAME`"},
				&cli.StringFlag{Name: "group", Required: true, Usage: "consumer `GROUP`"},
				&cli.StringFlag{Name: "target", Usage: "target cluster (default: the job's only target)"},
				&cli.BoolFlag{Name: "write", Usage: "commit the translated offsets for the group on the target (only if it has no active members there)"},
			},
			Action: groupsTranslate,
		}},
	}
}

// translation is one partition's translated offset.
type translation struct {
	Source       mirror.SourcePartition
	SourceOffset int64
	Target       mirror.TopicPartition
	TargetOffset int64
}

func groupsTranslate(c *cli.Context) error {
	f, err := loadJobFile(c.String("config"))
	if err != nil {
		return err
	}
	spec, ok := f.Job(c.String("job"))
	if !ok {
		return fmt.Errorf("no job %q in %s", c.String("job"), c.String("config"))
	}
	target := c.String("target")
	if target == "" {
		if len(spec.Targets) != 1 {
			return fmt.Errorf("job %s has %d targets: name one with --target", spec.Name, len(spec.Targets))
		}
		target = spec.Targets[0]
	}
	ctx, cancel := context.WithTimeout(c.Context, 5*time.Minute)
	defer cancel()
	ep := &runner.Endpoints{Clusters: f.Clusters, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ts, err := translateGroup(ctx, ep, spec, target, c.String("group"))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tCOMMITTED\tTARGET\tTRANSLATED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%d\t%s/%s\t%d\n", t.Source, t.SourceOffset, target, t.Target, t.TargetOffset)
	}
	tw.Flush()
	if !c.Bool("write") {
		return nil
	}
	if err := commitTranslated(ctx, ep, target, c.String("group"), ts); err != nil {
		return err
	}
	fmt.Printf("committed %d offset(s) for group %s on %s\n", len(ts), c.String("group"), target)
	return nil
}

// kgoClient connects to a job file's cluster with its TLS and SASL
// settings.
func kgoClient(ctx context.Context, ep *runner.Endpoints, name string) (*kgo.Client, error) {
	cfg, err := ep.KafkaConfig(ctx, name)
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(cfg.FranzOpts()...)
}

// translateGroup translates group's committed offsets on each source of
// the job into offsets on target, using only committed checkpoints and the
// mirrored records' provenance.
func translateGroup(ctx context.Context, ep *runner.Endpoints, spec mirror.JobSpec, target, group string) ([]translation, error) {
	if spec.Partitioning != mirror.PartitionPreserve {
		return nil, errors.New("offset translation needs partitioning: preserve (each source partition maps to one target partition)")
	}
	tcfg, err := ep.KafkaConfig(ctx, target)
	if err != nil {
		return nil, err
	}
	sink, err := kafkabridge.NewSink(tcfg, kafkabridge.SinkOptions{})
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	cp, err := sink.LoadCheckpoint(ctx, mirror.FlowID(spec.Name, target))
	if err != nil {
		return nil, fmt.Errorf("load checkpoint of job %s on %s: %w", spec.Name, target, err)
	}
	if cp == nil {
		return nil, fmt.Errorf("job %s has no checkpoint on %s yet: nothing has been mirrored", spec.Name, target)
	}
	tgt, err := kgo.NewClient(tcfg.FranzOpts()...)
	if err != nil {
		return nil, err
	}
	defer tgt.Close()
	var out []translation
	for _, ss := range spec.Sources {
		src, err := kgoClient(ctx, ep, ss.Cluster)
		if err != nil {
			return nil, err
		}
		sadm := kadm.NewClient(src)
		committed, err := sadm.FetchOffsets(ctx, group)
		if err == nil {
			err = committed.Error()
		}
		var sourceID string
		if err == nil {
			var meta kadm.Metadata
			if meta, err = sadm.Metadata(ctx); err == nil {
				sourceID = meta.Cluster
			}
		}
		src.Close()
		if err != nil {
			return nil, fmt.Errorf("group %s on %s: %w", group, ss.Cluster, err)
		}
		if sourceID == "" {
			sourceID = ss.Cluster
		}
		var behind []string
		committed.Each(func(o kadm.OffsetResponse) {
			if !ss.Matches(o.Topic) || o.At < 0 {
				return
			}
			sp := mirror.SourcePartition{Cluster: ss.Cluster, Topic: o.Topic, Partition: o.Partition}
			pos, ok := cp.Positions[sp]
			if !ok || o.At > pos {
				behind = append(behind, fmt.Sprintf("%s: group at %d, mirror checkpointed up to %d", sp, o.At, pos))
				return
			}
			out = append(out, translation{Source: sp, SourceOffset: o.At,
				Target: mirror.TopicPartition{Topic: spec.Rename.Target(ss.Cluster, o.Topic), Partition: o.Partition}})
		})
		if len(behind) > 0 {
			sort.Strings(behind)
			return nil, fmt.Errorf("refusing: the mirror has not yet acknowledged past group %s's committed position (wait for lag 0):\n  %s", group, joinLines(behind))
		}
		for i := range out {
			t := &out[i]
			if t.Source.Cluster != ss.Cluster {
				continue
			}
			if t.TargetOffset, err = findTargetOffset(ctx, tgt, tcfg.FranzOpts(), t.Target, sourceID, t.Source, t.SourceOffset); err != nil {
				return nil, err
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source.String() < out[j].Source.String() })
	return out, nil
}

func joinLines(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += "\n  "
		}
		out += s
	}
	return out
}

// findTargetOffset scans the target partition and returns the offset just
// after the last record mirrored from src with a source offset below
// committed; if there is none, the first record mirrored from src at or
// after it; if there is none either, the partition's end.
func findTargetOffset(ctx context.Context, cl *kgo.Client, connect []kgo.Opt, tp mirror.TopicPartition, sourceID string, src mirror.SourcePartition, committed int64) (int64, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, tp.Topic)
	if err != nil {
		return 0, fmt.Errorf("end offsets of %s: %w", tp, err)
	}
	end, ok := ends.Lookup(tp.Topic, tp.Partition)
	if !ok || end.Err != nil {
		return 0, fmt.Errorf("end offset of %s: %v", tp, end.Err)
	}
	starts, err := adm.ListStartOffsets(ctx, tp.Topic)
	if err != nil {
		return 0, fmt.Errorf("start offsets of %s: %w", tp, err)
	}
	start, _ := starts.Lookup(tp.Topic, tp.Partition)
	if start.Offset >= end.Offset {
		return end.Offset, nil
	}
	// read_uncommitted, with control records: every offset below the high
	// watermark is delivered (a commit marker is usually the last), so the
	// scan ends. Records of aborted transactions are harmless here: each
	// is followed by the committed copy the flow wrote after rewinding,
	// and the committed checkpoint (checked above) covers the group.
	reader, err := kgo.NewClient(append(connect,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tp.Topic: {tp.Partition: kgo.NewOffset().At(start.Offset)}}),
		kgo.KeepControlRecords())...)
	if err != nil {
		return 0, err
	}
	defer reader.Close()
	lastBelow, firstAtOrAfter := int64(-1), int64(-1)
	for next := start.Offset; next < end.Offset; {
		fetches := reader.PollFetches(ctx)
		if err := fetches.Err0(); err != nil {
			return 0, fmt.Errorf("read %s: %w", tp, err)
		}
		var ferr error
		fetches.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if r.Offset >= end.Offset || r.Attrs.IsControl() {
				return
			}
			var hs []mirror.Header
			for _, h := range r.Headers {
				if h.Key == mirror.ProvenanceHeader {
					hs = append(hs, mirror.Header{Key: h.Key, Value: h.Value})
				}
			}
			p := mirror.ProvenanceOf(hs)
			if p == nil || p.Source() != sourceID || p.Topic != src.Topic || p.Partition != src.Partition {
				return
			}
			if p.Offset < committed {
				lastBelow = r.Offset
			} else if firstAtOrAfter < 0 || lastBelow > firstAtOrAfter {
				firstAtOrAfter = r.Offset
			}
		})
		if ferr != nil {
			return 0, ferr
		}
	}
	switch {
	case lastBelow >= 0:
		return lastBelow + 1, nil
	case firstAtOrAfter >= 0:
		return firstAtOrAfter, nil
	default:
		return end.Offset, nil
	}
}

// commitTranslated commits the translated offsets for group on the target,
// refusing while the group has active members there.
func commitTranslated(ctx context.Context, ep *runner.Endpoints, target, group string, ts []translation) error {
	client, err := kgoClient(ctx, ep, target)
	if err != nil {
		return err
	}
	defer client.Close()
	adm := kadm.NewClient(client)
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %s on %s: %w", group, target, err)
	}
	if g, ok := described[group]; ok && len(g.Members) > 0 {
		return fmt.Errorf("refusing: group %s has %d active member(s) on %s (state %s); stop them first", group, len(g.Members), target, g.State)
	}
	offs := make(kadm.Offsets)
	for _, t := range ts {
		offs.Add(kadm.Offset{Topic: t.Target.Topic, Partition: t.Target.Partition, At: t.TargetOffset, LeaderEpoch: -1})
	}
	resp, err := adm.CommitOffsets(ctx, group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("commit offsets of group %s on %s: %w", group, target, err)
	}
	return nil
}
