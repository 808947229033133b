package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tributary/tributary/mirror"
)

// configsDir is the repository's configs directory, found from this file.
func configsDir(t *testing.T) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Join(filepath.Dir(self), "..", "..", "configs")
}

// anyAddress resolves every variable to a loopback address, so that every
// file validates whichever variables it uses.
func anyAddress(string) (string, bool) { return "127.0.0.1:9092", true }

// TestExampleConfigs validates every job file in configs/, including files
// added later.
func TestExampleConfigs(t *testing.T) {
	dir := configsDir(t)
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	seen := map[string]bool{}
	for _, path := range files {
		seen[filepath.Base(path)] = true
		t.Run(filepath.Base(path), func(t *testing.T) {
			if _, err := Load(path, Options{LookupEnv: anyAddress}); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
	for _, name := range []string{"aggregate.yaml", "fanout.yaml", "migrate.yaml"} {
		if !seen[name] {
			t.Errorf("configs/%s is missing", name)
		}
	}
}

// TestExampleContents checks that the shipped examples say what they are
// documented to do.
func TestExampleContents(t *testing.T) {
	dir := configsDir(t)
	load := func(name string, vars map[string]string) *File {
		t.Helper()
		f, err := Load(filepath.Join(dir, name), Options{LookupEnv: envOf(vars)})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	plain := func(j mirror.JobSpec) bool {
		return j.Rename.Kind == mirror.RenameIdentity && j.Partitioning == mirror.PartitionPreserve &&
			j.Start.Kind == mirror.StartEarliest && j.Delivery == mirror.AtLeastOnce
	}

	f := load("aggregate.yaml", map[string]string{"EAST_BOOTSTRAP": "127.0.0.1:1", "WEST_BOOTSTRAP": "127.0.0.1:2", "CENTRAL_BOOTSTRAP": "127.0.0.1:3"})
	if len(f.Jobs) != 1 {
		t.Fatalf("aggregate.yaml has %d jobs", len(f.Jobs))
	}
	j := f.Jobs[0]
	if len(j.Sources) != 2 || j.Sources[0].Cluster != "east" || j.Sources[1].Cluster != "west" ||
		!j.Sources[0].Matches("orders") || !j.Sources[1].Matches("orders") || j.Sources[0].Matches("orders2") ||
		len(j.Targets) != 1 || j.Targets[0] != "central" || !plain(withDelivery(j, mirror.AtLeastOnce)) || j.Delivery != mirror.ExactlyOnce {
		t.Errorf("aggregate.yaml job: %+v", j)
	}
	if f.Clusters["west"].Bootstrap[0] != "127.0.0.1:2" {
		t.Errorf("west bootstrap %v", f.Clusters["west"].Bootstrap)
	}

	f = load("fanout.yaml", map[string]string{"EAST_BOOTSTRAP": "127.0.0.1:1", "WEST_BOOTSTRAP": "127.0.0.1:2", "CENTRAL_BOOTSTRAP": "127.0.0.1:3"})
	j = f.Jobs[0]
	if len(f.Jobs) != 1 || len(j.Sources) != 1 || j.Sources[0].Cluster != "central" || !j.Sources[0].Matches("announcements") ||
		len(j.Targets) != 2 || j.Targets[0] != "east" || j.Targets[1] != "west" || !plain(j) {
		t.Errorf("fanout.yaml: %+v", f.Jobs)
	}

	f = load("migrate.yaml", map[string]string{"LEGACY_BOOTSTRAP": "127.0.0.1:1,127.0.0.1:2", "TRIBUTARY_BOOTSTRAP": "127.0.0.1:3"})
	j = f.Jobs[0]
	if len(f.Jobs) != 1 || len(j.Sources) != 1 || j.Sources[0].Cluster != "legacy" || len(j.Targets) != 1 || j.Targets[0] != "tributary" || !plain(j) {
		t.Errorf("migrate.yaml: %+v", f.Jobs)
	}
	for topic, want := range map[string]bool{"orders": true, "a.b-c_d": true, "__consumer_offsets": false, "__transaction_state": false} {
		if got := j.Sources[0].Matches(topic); got != want {
			t.Errorf("migrate.yaml matches %q = %v, want %v", topic, got, want)
		}
	}
	if got := len(f.Clusters["legacy"].Bootstrap); got != 2 {
		t.Errorf("legacy has %d bootstrap addresses, want 2", got)
	}

	// Without the environment, each unset variable is reported.
	_, err := Load(filepath.Join(dir, "aggregate.yaml"), Options{LookupEnv: envOf(nil)})
	checkErrors(t, err, []string{
		filepath.Join(dir, "aggregate.yaml") + ":12:18: environment variable EAST_BOOTSTRAP is not set",
		filepath.Join(dir, "aggregate.yaml") + ":14:18: environment variable WEST_BOOTSTRAP is not set",
		filepath.Join(dir, "aggregate.yaml") + ":16:18: environment variable CENTRAL_BOOTSTRAP is not set",
	})
}

// TestDocExample parses the example of the package documentation, so that
// it stays valid.
func TestDocExample(t *testing.T) {
	data, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var example strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			example.WriteString(rest + "\n")
		}
	}
	if example.Len() == 0 {
		t.Fatal("no example in doc.go")
	}
	f, err := Parse("doc.go example", []byte(example.String()), Options{LookupEnv: anyAddress})
	if err != nil {
		t.Fatalf("%v\n%s", err, example.String())
	}
	if len(f.Jobs) != 2 || f.Jobs[0].Oversized.DeadLetterTopic != "orders.dlq" || f.Clusters["central"].Consul == nil ||
		f.Clusters["events"].NATS == nil || f.NATS["orders-to-nats"] == nil || f.NATS["orders-to-nats"].Stream != "ORDERS" {
		t.Errorf("doc example parsed to %+v", f)
	}
}

// withDelivery returns j with its delivery set to d.
func withDelivery(j mirror.JobSpec, d mirror.Delivery) mirror.JobSpec {
	j.Delivery = d
	return j
}
