package mirror

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/e2e/cluster"
)

// devDeadline is how soon records produced into `tributary dev` must
// appear where its embedded jobs copy them (the promise).
const devDeadline = 30 * time.Second

// TestDev runs `tributary dev` on free ports: 1,000 lines piped into kcat
// for orders on east and 1,000 on west appear in central's orders (2,000)
// within 30 s, and 500 for announcements on central appear once in east
// and once in west.
func TestDev(t *testing.T) {
	kcat := cluster.RequireTool(t, "kcat", "apt-get install -y kcat")
	base := freePortRun(t, 3)
	cluster.Start(t, "tributary dev", cluster.Binary(t), "dev", "--base-port", fmt.Sprint(base),
		"--data-dir", t.TempDir(), "--http", "127.0.0.1:0")
	addr := map[string]string{}
	for i, name := range []string{"east", "west", "central"} {
		addr[name] = fmt.Sprintf("127.0.0.1:%d", base+i)
		cluster.WaitKafka(t, addr[name], 30*time.Second)
	}

	const orders, announcements = 1000, 500
	for _, name := range []string{"east", "west"} {
		kcatProduce(t, kcat, addr[name], "orders", name, orders)
	}
	produced := time.Now()
	waitCount(t, addr["central"], "orders", 2*orders, devDeadline)
	t.Logf("central holds all %d orders %v after kcat finished", 2*orders, time.Since(produced).Round(time.Millisecond))
	requireLines(t, addr["central"], "orders", map[string]int{"east": orders, "west": orders})

	kcatProduce(t, kcat, addr["central"], "announcements", "central", announcements)
	produced = time.Now()
	for _, name := range []string{"east", "west"} {
		waitCount(t, addr[name], "announcements", announcements, devDeadline-time.Since(produced))
	}
	for _, name := range []string{"east", "west"} {
		requireLines(t, addr[name], "announcements", map[string]int{"central": announcements})
	}
	stableCount(t, addr["central"], "orders", 2*orders, 2*time.Second)
	for _, name := range []string{"east", "west"} {
		stableCount(t, addr[name], "announcements", announcements, time.Second)
	}
}

// kcatProduce pipes n lines "prefix-i" into `kcat -P` for topic.
func kcatProduce(t *testing.T, kcat, addr, topic, prefix string, n int) {
	t.Helper()
	var in bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "%s-%d\n", prefix, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-b", addr, "-P", "-t", topic)
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P -t %s to %s: %v\n%s", topic, addr, err, out)
	}
}

// requireLines reads topic and fails unless it holds, for each prefix,
// exactly the lines prefix-0 .. prefix-(n-1) once each.
func requireLines(t *testing.T, addr, topic string, want map[string]int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range cluster.ReadTopic(t, addr, topic, false).Records {
		seen[string(r.Value)]++
	}
	total := 0
	for prefix, n := range want {
		total += n
		for i := 0; i < n; i++ {
			if v := fmt.Sprintf("%s-%d", prefix, i); seen[v] != 1 {
				t.Fatalf("%s on %s holds %q %d times, want once", topic, addr, v, seen[v])
			}
		}
	}
	if len(seen) != total {
		var extra []string
		for v := range seen {
			if i := strings.LastIndexByte(v, '-'); i < 0 || want[v[:i]] == 0 {
				extra = append(extra, v)
			}
		}
		t.Fatalf("%s on %s holds %d distinct values, want %d; unexpected: %v", topic, addr, len(seen), total, extra)
	}
}

// freePortRun returns the first of n consecutive free loopback ports.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for attempt := 0; attempt < 100; attempt++ {
		base := cluster.FreePort(t)
		if base+n > 65535 {
			continue
		}
		ok := true
		var ls []net.Listener
		for p := base; p < base+n; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("found no %d consecutive free ports", n)
	return 0
}
