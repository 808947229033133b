package topology

import (
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/e2e/cluster"
	"github.com/tributary/tributary/topology"
)

// TestKVJobs: with the worker running, a job is added to Consul's KV store
// (it starts), changed (it restarts with the new topics), replaced by an
// invalid version (rejected with its errors in job-status; the running
// version keeps mirroring), and removed (it stops).
func TestKVJobs(t *testing.T) {
	c := cluster.StartConsul(t, cluster.ConsulOptions{})
	src := startBroker(t, c, "src", 1)
	dst := startBroker(t, c, "dst", 1)
	for _, topic := range []string{"a", "b"} {
		cluster.CreateTopic(t, src.Addr, topic, 1, nil)
	}
	m := cluster.StartConsulMirror(t, c.HTTP)

	// Added.
	putJob(t, c, "copy", jobYAML("copy", bootstrapDef(src.Addr), consulDef("dst", ""), "a"))
	produce(t, src.Addr, "a", "a", 0, 200)
	requireAll(t, dst.Addr, "a", "a", 200)
	if st, ok := jobStatus(c, "copy"); !ok || st.State != "accepted" {
		t.Fatalf("job-status of copy: %+v (present %v), want accepted", st, ok)
	}

	// Changed: b is mirrored too.
	putJob(t, c, "copy", jobYAML("copy", bootstrapDef(src.Addr), consulDef("dst", ""), "a", "b"))
	produce(t, src.Addr, "b", "b", 0, 200)
	requireAll(t, dst.Addr, "b", "b", 200)

	// Invalid versions: rejected with reasons; the running one goes on.
	for _, bad := range []struct{ what, yaml, reason string }{
		{"unknown key", strings.Replace(jobYAML("copy", bootstrapDef(src.Addr), consulDef("dst", ""), "a"), "targets:", "targetz:", 1), "targetz"},
		{"environment reference", jobYAML("copy", `{bootstrap: ["${SRC}"]}`, consulDef("dst", ""), "a"), "${"},
		{"job named otherwise", jobYAML("other", bootstrapDef(src.Addr), consulDef("dst", ""), "a"), "other"},
	} {
		putJob(t, c, "copy", bad.yaml)
		cluster.Eventually(t, 30*time.Second, "job-status of copy to report the "+bad.what, func() bool {
			st, ok := jobStatus(c, "copy")
			return ok && st.State == "rejected" && len(st.Errors) > 0 && strings.Contains(strings.Join(st.Errors, "\n"), bad.reason)
		})
		if st, _ := jobStatus(c, "copy"); st.RunningIndex == 0 {
			t.Fatalf("job-status after the %s names no running version: %+v", bad.what, st)
		}
		if !strings.Contains(m.Output(), "job in consul rejected") {
			t.Fatalf("worker did not log the rejection of the %s", bad.what)
		}
	}
	produce(t, src.Addr, "a", "a", 200, 100)
	produce(t, src.Addr, "b", "b", 200, 100)
	requireAll(t, dst.Addr, "a", "a", 300)
	requireAll(t, dst.Addr, "b", "b", 300)
	if strings.Count(m.Output(), "starting job") != 2 {
		t.Fatalf("the job started %d times, want 2 (added, changed; rejections restart nothing):\n%s",
			strings.Count(m.Output(), "starting job"), m.Output())
	}

	// Removed: the job stops, its status goes, nothing more is mirrored.
	c.Do("DELETE", "/v1/kv/"+topology.KVJobs+"copy", nil)
	cluster.Eventually(t, 30*time.Second, "the worker to stop the removed job", func() bool {
		jobs, err := m.Jobs()
		return err == nil && len(jobs) == 0
	})
	cluster.Eventually(t, 30*time.Second, "job-status of copy to go", func() bool {
		_, ok := jobStatus(c, "copy")
		return !ok
	})
	before, err := cluster.RecordCount(dst.Addr, "a")
	if err != nil {
		t.Fatal(err)
	}
	produce(t, src.Addr, "a", "a", 300, 100)
	// A running job would copy these within its 1 s metadata refresh;
	// give it several times that, then check that nothing came.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := cluster.RecordCount(dst.Addr, "a"); err == nil && n != before {
			t.Fatalf("a removed job still mirrors: %d records in a, had %d", n, before)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	m.Terminate(60 * time.Second)
}
