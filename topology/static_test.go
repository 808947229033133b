package topology

import (
	"context"
	"errors"
	"testing"
)

func TestParseStatic(t *testing.T) {
	s, err := ParseStatic([]byte(`
clusters:
  east:
    datacenter: dc1
    brokers: ["10.0.0.2:9092", "10.0.0.1:9092"]
  west:
    brokers: ["w:9092"]
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bs, err := s.Brokers(ctx, ClusterRef{Name: "east", Datacenter: "dc1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := Addrs(bs); len(got) != 2 || got[0] != "10.0.0.1:9092" || got[1] != "10.0.0.2:9092" {
		t.Fatalf("east: %v", got)
	}
	if bs[0].Health != HealthPassing || bs[0].Datacenter != "dc1" {
		t.Fatalf("east broker: %+v", bs[0])
	}
	if _, err := s.Brokers(ctx, ClusterRef{Name: "east", Datacenter: "dc2"}); !errors.Is(err, ErrUnknownCluster) {
		t.Fatalf("east in dc2: %v, want ErrUnknownCluster", err)
	}
	if _, err := s.Brokers(ctx, ClusterRef{Name: "north"}); !errors.Is(err, ErrUnknownCluster) {
		t.Fatalf("north: %v, want ErrUnknownCluster", err)
	}
	for name, bad := range map[string]string{
		"unknown key":  "clusters: {east: {brokerz: [a:1]}}",
		"no brokers":   "clusters: {east: {datacenter: dc1}}",
		"not hostport": "clusters: {east: {brokers: [nohost]}}",
		"bad name":     "clusters: {\"a=b\": {brokers: [a:1]}}",
	} {
		if _, err := ParseStatic([]byte(bad)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestStaticWatch(t *testing.T) {
	s := NewStatic(map[string][]string{"east": {"a:1"}})
	ctx, cancel := context.WithCancel(context.Background())
	ch := s.Watch(ctx, ClusterRef{Name: "east"})
	if got := Addrs(<-ch); len(got) != 1 || got[0] != "a:1" {
		t.Fatalf("first set: %v", got)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("watch sent again instead of closing")
	}
}
