package runner

import (
	"errors"
	"strings"
	"testing"

	"github.com/tributary/tributary/mirror"
	"github.com/tributary/tributary/mirror/config"
)

const kvJob = `clusters:
  src: {bootstrap: ["127.0.0.1:9092"]}
  dst: {consul: {cluster: central, datacenter: dc2}}
jobs:
  - name: copy
    sources: [{cluster: src, topics: [a]}]
    targets: [dst]
`

func TestParseKVJob(t *testing.T) {
	f, err := ParseKVJob("copy", []byte(kvJob))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Jobs) != 1 || f.Jobs[0].Name != "copy" || f.Clusters["dst"].Consul.Datacenter != "dc2" {
		t.Fatalf("parsed %+v", f)
	}
	for _, tc := range []struct{ name, key, yaml, want string }{
		{"other name", "other", kvJob, `named "copy"`},
		{"env reference", "copy", strings.Replace(kvJob, "127.0.0.1:9092", "${SRC}", 1), "${SRC}"},
		{"two jobs", "copy", kvJob + "  - name: copy2\n    sources: [{cluster: src, topics: [b]}]\n    targets: [dst]\n", "2 jobs"},
		{"unknown key", "copy", strings.Replace(kvJob, "targets:", "targetz:", 1), "targetz"},
	} {
		_, err := ParseKVJob(tc.key, []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := ParseKVJob("copy", []byte(strings.Replace(kvJob, "${", "", 1))); err != nil && errors.Is(err, config.ErrInvalid) {
		t.Fatal(err)
	}
}

func TestMergeClusters(t *testing.T) {
	job := mirror.JobSpec{Name: "j", Sources: []mirror.SourceSpec{{Cluster: "a"}}, Targets: []string{"b"}}
	into := map[string]config.Cluster{}
	a := config.Cluster{Name: "a", Bootstrap: []string{"x:1"}}
	b := config.Cluster{Name: "b", Bootstrap: []string{"y:1"}}
	if err := mergeClusters(into, map[string]config.Cluster{"a": a, "b": b, "unused": {}}, job); err != nil {
		t.Fatal(err)
	}
	if len(into) != 2 {
		t.Fatalf("merged %v, want only the clusters the job uses", into)
	}
	if err := mergeClusters(into, map[string]config.Cluster{"a": a, "b": b}, job); err != nil {
		t.Fatalf("same definitions: %v", err)
	}
	other := config.Cluster{Name: "a", Bootstrap: []string{"z:1"}}
	if err := mergeClusters(into, map[string]config.Cluster{"a": other, "b": b}, job); err == nil {
		t.Fatal("a cluster defined differently merged without error")
	}
}
