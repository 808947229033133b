package config

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/tributary/tributary/mirror"
)

// fakeLister serves fixed topic lists; a cluster without one fails.
type fakeLister struct {
	topics map[string][]mirror.TopicInfo
	calls  map[string]int
}

func (l *fakeLister) list(_ context.Context, cluster string) ([]mirror.TopicInfo, error) {
	l.calls[cluster]++
	ts, ok := l.topics[cluster]
	if !ok {
		return nil, errors.New("connection refused")
	}
	return ts, nil
}

func topics(spec ...any) []mirror.TopicInfo {
	var out []mirror.TopicInfo
	for i := 0; i+1 < len(spec); i += 2 {
		out = append(out, mirror.TopicInfo{Name: spec[i].(string), Partitions: int32(spec[i+1].(int))})
	}
	return out
}

const planFile = `clusters:
  east: {bootstrap: [127.0.0.1:1]}
  west: {bootstrap: [127.0.0.1:2]}
  central: {bootstrap: [127.0.0.1:3]}
  south: {bootstrap: [127.0.0.1:4]}
jobs:
  - name: aggregate
    sources: [{cluster: east, topics: [orders]}, {cluster: west, topics: [orders]}]
    targets: [central]
  - name: fanout
    sources: [{cluster: central, topics: [announcements]}]
    targets: [east, west, south]
  - name: east-to-west
    sources: [{cluster: east, topics: [orders]}]
    targets: [west]
  - name: west-to-east
    sources: [{cluster: west, topics: [orders]}]
    targets: [east]
  - name: merge
    sources: [{cluster: east, topics: ['inv\..*']}]
    targets: [central]
    rename: {template: inventory}
    partitioning: key-hash
    topic_sync: {create: false}
  - name: backup
    sources: [{cluster: east, topics: ['.*']}]
    targets: [south]
    rename: prefix
`

func TestPlan(t *testing.T) {
	f, err := Parse("plan.yaml", []byte(planFile), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &fakeLister{calls: map[string]int{}, topics: map[string][]mirror.TopicInfo{
		"east":    topics("orders", 3, "inv.a", 1, "inv.b", 4, "__consumer_offsets", 50, "announcements", 1),
		"west":    topics("orders", 5),
		"central": topics("announcements", 2),
		// south fails to list
	}}
	p, err := f.Plan(context.Background(), l.list)
	if err != nil {
		t.Fatal(err)
	}
	for c, n := range l.calls {
		if n != 1 {
			t.Errorf("cluster %s listed %d times, want once", c, n)
		}
	}
	if len(p.ListErrors) != 1 || p.ListErrors["south"] == nil {
		t.Errorf("list errors %v, want south's", p.ListErrors)
	}

	type row struct {
		src, dst string
		parts    int32
		exists   bool
		notes    string
	}
	got := map[string][]row{}
	for _, fp := range p.Flows {
		key := fp.Job + "->" + fp.Target
		got[key] = []row{}
		for _, tp := range fp.Topics {
			got[key] = append(got[key], row{tp.SourceCluster + "/" + tp.SourceTopic, fp.Target + "/" + tp.TargetTopic, tp.TargetPartitions, tp.TargetExists, strings.Join(tp.Notes, "; ")})
		}
	}
	want := map[string][]row{
		// Preserve: created with the largest source's count.
		"aggregate->central": {{"east/orders", "central/orders", 5, false, ""}, {"west/orders", "central/orders", 5, false, ""}},
		"fanout->east":       {{"central/announcements", "east/announcements", 1, true, "target has 1 partitions, source 2: topic sync adds partitions"}},
		"fanout->west":       {{"central/announcements", "west/announcements", 2, false, ""}},
		"fanout->south":      {{"central/announcements", "south/announcements", 2, false, ""}},
		"east-to-west->west": {{"east/orders", "west/orders", 5, true, ""}},
		"west-to-east->east": {{"west/orders", "east/orders", 3, true, "target has 3 partitions, source 5: topic sync adds partitions"}},
		"merge->central": {
			{"east/inv.a", "central/inventory", 0, false, "target topic missing and topic_sync.create is off"},
			{"east/inv.b", "central/inventory", 0, false, "target topic missing and topic_sync.create is off"},
		},
		// Internal topics are not matched by '.*'.
		"backup->south": {
			{"east/announcements", "south/east.announcements", 1, false, ""},
			{"east/inv.a", "south/east.inv.a", 1, false, ""},
			{"east/inv.b", "south/east.inv.b", 4, false, ""},
			{"east/orders", "south/east.orders", 3, false, ""},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flows:\n got %+v\nwant %+v", got, want)
	}
	if order := fmt.Sprint(p.Flows[0].Job, p.Flows[1].Job, p.Flows[1].Target, p.Flows[3].Target); order != "aggregatefanouteastsouth" {
		t.Errorf("flows not in file order: %s", order)
	}

	wantCollisions := []Collision{
		{Cluster: "central", Topic: "inventory", Sources: []TopicRef{{"merge", "east", "inv.a"}, {"merge", "east", "inv.b"}}},
		{Cluster: "central", Topic: "orders", Aggregation: true, Sources: []TopicRef{{"aggregate", "east", "orders"}, {"aggregate", "west", "orders"}}},
	}
	if !reflect.DeepEqual(p.Collisions, wantCollisions) {
		t.Errorf("collisions:\n got %+v\nwant %+v", p.Collisions, wantCollisions)
	}

	if len(p.Cycles) != 1 || p.CyclesTruncated {
		t.Fatalf("cycles %v (truncated %v), want one", p.Cycles, p.CyclesTruncated)
	}
	if got, want := p.Cycles[0].String(), "east/orders -> west/orders -> east/orders: broken at run time by the provenance path check"; got != want {
		t.Errorf("cycle %q, want %q", got, want)
	}

	var b strings.Builder
	if err := FormatPlan(&b, p); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, " \n") {
		t.Errorf("FormatPlan output has trailing blanks:\n%s", out)
	}
	for _, line := range []string{
		"job aggregate -> central",
		"east/orders  3           central/orders  5 (create)\n",
		"central/announcements  2           east/announcements  1 (exists)  target has 1 partitions, source 2: topic sync adds partitions",
		"east/inv.a  1           central/inventory  -           target topic missing and topic_sync.create is off",
		"central/inventory <- east/inv.a (job merge), east/inv.b (job merge): COLLISION: different topics mixed into one",
		"central/orders <- east/orders (job aggregate), west/orders (job aggregate): aggregation (same topic from several clusters)",
		"east/orders -> west/orders -> east/orders: broken at run time by the provenance path check",
		"south: connection refused",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("FormatPlan output lacks %q:\n%s", line, out)
		}
	}
}

// TestPlanCycleThroughNewTopics finds a cycle that only exists once
// mirroring has created the topics on it.
func TestPlanCycleThroughNewTopics(t *testing.T) {
	const file = `clusters:
  a: {bootstrap: [127.0.0.1:1]}
  b: {bootstrap: [127.0.0.1:2]}
  c: {bootstrap: [127.0.0.1:3]}
jobs:
  - {name: ab, sources: [{cluster: a, topics: [x]}], targets: [b], rename: {template: y}}
  - {name: bc, sources: [{cluster: b, topics: [y]}], targets: [c], rename: {template: z}}
  - {name: ca, sources: [{cluster: c, topics: [z]}], targets: [a], rename: {template: x}}
  - {name: ba, sources: [{cluster: b, topics: [y]}], targets: [a], rename: {template: x}}
`
	f, err := Parse("cycle.yaml", []byte(file), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &fakeLister{calls: map[string]int{}, topics: map[string][]mirror.TopicInfo{"a": topics("x", 1), "b": nil, "c": nil}}
	p, err := f.Plan(context.Background(), l.list)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Cycles {
		got = append(got, c.String())
	}
	want := []string{
		"a/x -> b/y -> a/x: broken at run time by the provenance path check",
		"a/x -> b/y -> c/z -> a/x: broken at run time by the provenance path check",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cycles:\n got %q\nwant %q", got, want)
	}
}

// TestPlanGrowingNames checks that prefixing in both directions, which
// creates ever longer names rather than a cycle, ends.
func TestPlanGrowingNames(t *testing.T) {
	const file = `clusters:
  east: {bootstrap: [127.0.0.1:1]}
  west: {bootstrap: [127.0.0.1:2]}
jobs:
  - {name: ew, sources: [{cluster: east, topics: ['.*']}], targets: [west], rename: prefix}
  - {name: we, sources: [{cluster: west, topics: ['.*']}], targets: [east], rename: prefix}
`
	f, err := Parse("grow.yaml", []byte(file), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &fakeLister{calls: map[string]int{}, topics: map[string][]mirror.TopicInfo{"east": topics("orders", 1), "west": nil}}
	p, err := f.Plan(context.Background(), l.list)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Cycles) != 0 || p.CyclesTruncated {
		t.Errorf("cycles %v (truncated %v), want none", p.Cycles, p.CyclesTruncated)
	}
	if len(p.Flows) != 2 || len(p.Flows[0].Topics) != 1 || p.Flows[0].Topics[0].TargetTopic != "east.orders" {
		t.Errorf("flows %+v", p.Flows)
	}
}

func TestPlanCanceled(t *testing.T) {
	f, err := Parse("plan.yaml", []byte(planFile), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = f.Plan(ctx, func(ctx context.Context, _ string) ([]mirror.TopicInfo, error) { return nil, ctx.Err() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}
