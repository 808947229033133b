package config

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/tributary/tributary/mirror"
)

// TopicLister lists the topics of a cluster, named as in the job file.
type TopicLister func(ctx context.Context, cluster string) ([]mirror.TopicInfo, error)

// Plan is what a job file would do, worked out from the clusters' topics
// without moving data.
type Plan struct {
	// Flows holds one entry per job and target, in file order.
	Flows []FlowPlan
	// Collisions are target topics written from more than one source topic.
	Collisions []Collision
	// Cycles are loops of mirroring through the file's jobs.
	Cycles []Cycle
	// CyclesTruncated is set when there were more than MaxPlanCycles cycles,
	// or the topic graph grew past MaxPlanNodes (or the search took too
	// many steps), and not all are listed.
	CyclesTruncated bool
	// ListErrors maps each cluster whose topics could not be listed to the
	// error; its topics are missing from the plan.
	ListErrors map[string]error
}

// Limits of Plan's search for cycles.
const (
	// MaxPlanCycles is the most cycles a Plan lists.
	MaxPlanCycles = 100
	// MaxPlanNodes bounds the topics (existing or to be created) Plan
	// follows when looking for cycles.
	MaxPlanNodes = 10000
	// maxPlanSteps bounds the steps of the search for cycles, whose cost
	// can grow exponentially with the edges of a pathological file.
	maxPlanSteps = 1_000_000
)

// FlowPlan is the plan of one job's flow into one target.
type FlowPlan struct {
	Job, Target string
	// Topics are the matching source topics, ordered by source cluster
	// (in the job's order) and topic name.
	Topics []TopicPlan
}

// TopicPlan is one source topic of a flow and where it goes.
type TopicPlan struct {
	SourceCluster, SourceTopic string
	SourcePartitions           int32
	// TargetTopic is the source topic renamed by the job's policy.
	TargetTopic string
	// TargetExists reports whether the target already has the topic.
	TargetExists bool
	// TargetPartitions is the target topic's partition count if it exists,
	// else the count topic sync would create it with: the largest count
	// among the flow's source topics mapped to it. 0 when it does not
	// exist and topic sync does not create topics.
	TargetPartitions int32
	// Notes are warnings about this topic, such as a target with fewer
	// partitions than its source.
	Notes []string
}

// TopicRef names a topic of a cluster, and the job that reads it.
type TopicRef struct {
	Job, Cluster, Topic string
}

// Collision is a target topic written from more than one source topic.
type Collision struct {
	// Cluster and Topic name the target topic.
	Cluster, Topic string
	// Sources are the source topics written into it, sorted.
	Sources []TopicRef
	// Aggregation is set when the sources are the same topic name on
	// different clusters: records from several datacenters are merged into
	// one topic on purpose (identity names). Otherwise different topics, or
	// the same topic twice, are mixed into one.
	Aggregation bool
}

// Node is a topic of a cluster in the mirroring graph.
type Node struct {
	Cluster, Topic string
}

func (n Node) String() string { return n.Cluster + "/" + n.Topic }

// Cycle is a loop of the mirroring graph: records of Path[0] are mirrored
// to Path[1] and so on, and those of the last node back to Path[0]. The
// pipeline breaks it for each record with its provenance path.
type Cycle struct {
	Path []Node
}

// String formats the cycle as "east/orders -> west/orders -> east/orders:
// broken at run time by the provenance path check".
func (c Cycle) String() string {
	var b strings.Builder
	for _, n := range c.Path {
		b.WriteString(n.String())
		b.WriteString(" -> ")
	}
	if len(c.Path) > 0 {
		b.WriteString(c.Path[0].String())
	}
	b.WriteString(": broken at run time by the provenance path check")
	return b.String()
}

// Plan works out, for every job and target of the file, which source topics match,
// what they are called on the target, how many partitions target topics
// have or get, which target topics collide, and which cycles the jobs form
// (following also topics that topic sync would create). Each cluster is
// listed once; a cluster that cannot be listed is reported in
// Plan.ListErrors. Plan fails only when ctx ends.
func (f *File) Plan(ctx context.Context, list TopicLister) (*Plan, error) {
	p := &Plan{ListErrors: map[string]error{}}
	topics, err := listClusters(ctx, f, list, p.ListErrors)
	if err != nil {
		return nil, err
	}
	for _, j := range f.Jobs {
		for _, target := range j.Targets {
			p.Flows = append(p.Flows, planFlow(j, target, topics))
		}
	}
	p.Collisions = collisions(p.Flows)
	p.Cycles, p.CyclesTruncated = cycles(f.Jobs, topics)
	return p, nil
}

// listClusters lists every cluster the jobs read or write.
func listClusters(ctx context.Context, f *File, list TopicLister, failed map[string]error) (map[string]map[string]mirror.TopicInfo, error) {
	var names []string
	for _, j := range f.Jobs {
		for _, s := range j.Sources {
			names = append(names, s.Cluster)
		}
		names = append(names, j.Targets...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	out := make(map[string]map[string]mirror.TopicInfo, len(names))
	for _, c := range names {
		infos, err := list(ctx, c)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("plan: list topics of %s: %w", c, ctxErr)
		}
		if err != nil {
			failed[c] = err
			continue
		}
		byName := make(map[string]mirror.TopicInfo, len(infos))
		for _, t := range infos {
			byName[t.Name] = t
		}
		out[c] = byName
	}
	return out, nil
}

func sortedTopics(m map[string]mirror.TopicInfo) []mirror.TopicInfo {
	out := make([]mirror.TopicInfo, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b mirror.TopicInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func planFlow(j mirror.JobSpec, target string, topics map[string]map[string]mirror.TopicInfo) FlowPlan {
	fp := FlowPlan{Job: j.Name, Target: target}
	largest := map[string]int32{} // target topic -> largest source partition count
	for _, s := range j.Sources {
		for _, t := range sortedTopics(topics[s.Cluster]) {
			if !s.Matches(t.Name) {
				continue
			}
			tp := TopicPlan{
				SourceCluster:    s.Cluster,
				SourceTopic:      t.Name,
				SourcePartitions: t.Partitions,
				TargetTopic:      j.Rename.Target(s.Cluster, t.Name),
			}
			largest[tp.TargetTopic] = max(largest[tp.TargetTopic], t.Partitions)
			fp.Topics = append(fp.Topics, tp)
		}
	}
	targetTopics, targetListed := topics[target]
	for i := range fp.Topics {
		tp := &fp.Topics[i]
		if msg := checkTopicName(tp.TargetTopic); msg != "" {
			tp.Notes = append(tp.Notes, "bad target name: "+msg)
		}
		existing, ok := targetTopics[tp.TargetTopic]
		switch {
		case ok:
			tp.TargetExists, tp.TargetPartitions = true, existing.Partitions
			if j.Partitioning == mirror.PartitionPreserve && existing.Partitions < tp.SourcePartitions {
				if j.TopicSync.AddPartitions {
					tp.Notes = append(tp.Notes, fmt.Sprintf("target has %d partitions, source %d: topic sync adds partitions", existing.Partitions, tp.SourcePartitions))
				} else {
					tp.Notes = append(tp.Notes, fmt.Sprintf("target has %d partitions, source %d, and add_partitions is off", existing.Partitions, tp.SourcePartitions))
				}
			}
		case j.TopicSync.Create:
			tp.TargetPartitions = largest[tp.TargetTopic]
		case targetListed:
			tp.Notes = append(tp.Notes, "target topic missing and topic_sync.create is off")
		}
	}
	return fp
}

func collisions(flows []FlowPlan) []Collision {
	byTarget := map[Node][]TopicRef{}
	for _, fp := range flows {
		for _, tp := range fp.Topics {
			k := Node{fp.Target, tp.TargetTopic}
			byTarget[k] = append(byTarget[k], TopicRef{Job: fp.Job, Cluster: tp.SourceCluster, Topic: tp.SourceTopic})
		}
	}
	var out []Collision
	for k, refs := range byTarget {
		if len(refs) < 2 {
			continue
		}
		slices.SortFunc(refs, func(a, b TopicRef) int {
			return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Job, b.Job))
		})
		aggregation := true
		for i := 1; i < len(refs); i++ {
			if refs[i].Topic != refs[0].Topic || refs[i].Cluster == refs[i-1].Cluster {
				aggregation = false
			}
		}
		out = append(out, Collision{Cluster: k.Cluster, Topic: k.Topic, Sources: refs, Aggregation: aggregation})
	}
	slices.SortFunc(out, func(a, b Collision) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Topic, b.Topic))
	})
	return out
}

// cycles builds the graph of (cluster, topic) nodes with an edge for every
// mirroring of one to another, starting from the existing topics and
// following the topics mirroring would create, and lists its elementary
// cycles, each once, starting at its smallest node.
func cycles(jobs []mirror.JobSpec, topics map[string]map[string]mirror.TopicInfo) ([]Cycle, bool) {
	edges := map[Node][]Node{}
	seen := map[Node]bool{}
	var queue []Node
	visit := func(n Node) {
		if !seen[n] {
			seen[n] = true
			queue = append(queue, n)
		}
	}
	for c, ts := range topics {
		for name := range ts {
			visit(Node{c, name})
		}
	}
	truncated := false
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, j := range jobs {
			for _, s := range j.Sources {
				if s.Cluster != n.Cluster || !s.Matches(n.Topic) {
					continue
				}
				name := j.Rename.Target(n.Cluster, n.Topic)
				if len(name) > maxTopicName {
					continue // no such topic can exist
				}
				for _, t := range j.Targets {
					next := Node{t, name}
					if !slices.Contains(edges[n], next) {
						edges[n] = append(edges[n], next)
					}
					if len(seen) >= MaxPlanNodes && !seen[next] {
						truncated = true
						continue
					}
					visit(next)
				}
			}
		}
	}

	nodes := make([]Node, 0, len(seen))
	for n := range seen {
		nodes = append(nodes, n)
	}
	less := func(a, b Node) int { return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Topic, b.Topic)) }
	slices.SortFunc(nodes, less)
	index := make(map[Node]int, len(nodes))
	for i, n := range nodes {
		index[n] = i
	}
	for _, succ := range edges {
		slices.SortFunc(succ, less)
	}

	var out []Cycle
	onPath := map[Node]bool{}
	var path []Node
	steps := 0
	var walk func(start, n Node)
	walk = func(start, n Node) {
		for _, next := range edges[n] {
			if steps++; len(out) >= MaxPlanCycles || steps > maxPlanSteps {
				truncated = true
				return
			}
			switch {
			case next == start:
				out = append(out, Cycle{Path: slices.Clone(path)})
			case index[next] > index[start] && !onPath[next]:
				onPath[next] = true
				path = append(path, next)
				walk(start, next)
				path = path[:len(path)-1]
				onPath[next] = false
			}
		}
	}
	for _, start := range nodes {
		path = append(path[:0], start)
		walk(start, start)
	}
	return out, truncated
}

// FormatPlan prints p as tables: one per flow, then collisions, cycles and
// clusters that could not be listed.
func FormatPlan(w io.Writer, p *Plan) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for i, fp := range p.Flows {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "job %s -> %s\n", fp.Job, fp.Target)
		if len(fp.Topics) == 0 {
			fmt.Fprintln(tw, "  (no matching source topics)")
			continue
		}
		fmt.Fprintln(tw, "  SOURCE\tPARTITIONS\tTARGET\tPARTITIONS\tNOTES")
		for _, tp := range fp.Topics {
			target := "-"
			switch {
			case tp.TargetExists:
				target = fmt.Sprintf("%d (exists)", tp.TargetPartitions)
			case tp.TargetPartitions > 0:
				target = fmt.Sprintf("%d (create)", tp.TargetPartitions)
			}
			fmt.Fprintf(tw, "  %s/%s\t%d\t%s/%s\t%s\t%s\n", tp.SourceCluster, tp.SourceTopic, tp.SourcePartitions,
				fp.Target, tp.TargetTopic, target, strings.Join(tp.Notes, "; "))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	tables := strings.Split(b.String(), "\n")
	b.Reset()
	for i, line := range tables {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(strings.TrimRight(line, " "))
	}
	if len(p.Collisions) > 0 {
		b.WriteString("\ncollisions:\n")
		for _, c := range p.Collisions {
			srcs := make([]string, len(c.Sources))
			for i, s := range c.Sources {
				srcs[i] = fmt.Sprintf("%s/%s (job %s)", s.Cluster, s.Topic, s.Job)
			}
			kind := "COLLISION: different topics mixed into one"
			if c.Aggregation {
				kind = "aggregation (same topic from several clusters)"
			}
			fmt.Fprintf(&b, "  %s/%s <- %s: %s\n", c.Cluster, c.Topic, strings.Join(srcs, ", "), kind)
		}
	}
	b.WriteString("\ncycles:")
	if len(p.Cycles) == 0 {
		b.WriteString(" none\n")
	} else {
		b.WriteString("\n")
		for _, c := range p.Cycles {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	if p.CyclesTruncated {
		fmt.Fprintf(&b, "  (more not shown: the search stops at %d cycles or %d topics)\n", MaxPlanCycles, MaxPlanNodes)
	}
	if len(p.ListErrors) > 0 {
		b.WriteString("\nclusters not listed (their topics are missing above):\n")
		names := make([]string, 0, len(p.ListErrors))
		for c := range p.ListErrors {
			names = append(names, c)
		}
		sort.Strings(names)
		for _, c := range names {
			fmt.Fprintf(&b, "  %s: %v\n", c, p.ListErrors[c])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
