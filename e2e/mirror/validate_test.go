package mirror

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/tributary/tributary/e2e/cluster"
)

// TestValidateReportsEveryMistake runs `tributary mirror validate` on
// testdata/five-mistakes.yaml, whose lines marked "MISTAKE n" each hold one
// mistake: it exits non-zero and reports all five, each at its line, and
// nothing else.
func TestValidateReportsEveryMistake(t *testing.T) {
	const file = "testdata/five-mistakes.yaml"
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// What each report must say besides its line.
	says := map[int]string{
		1: "TRIBUTARY_E2E_SURELY_UNSET",
		2: `"nowhere"`,
		3: `"sticky"`,
		4: `"yesterday"`,
		5: "renmae",
	}
	marker := regexp.MustCompile(`MISTAKE (\d)`)
	lines := map[int]int{} // mistake → line
	for i, line := range strings.Split(string(content), "\n") {
		if m := marker.FindStringSubmatch(line); m != nil && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			var n int
			fmt.Sscan(m[1], &n)
			lines[n] = i + 1
		}
	}
	if len(lines) != len(says) {
		t.Fatalf("%s marks %d mistakes, want %d", file, len(lines), len(says))
	}

	cmd := exec.Command(cluster.Binary(t), "mirror", "validate", file)
	cmd.Env = withoutEnv(os.Environ(), "TRIBUTARY_E2E_SURELY_UNSET")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted a file with 5 mistakes:\n%s", out)
	}
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("validate: %v", err)
	}
	t.Logf("validate output:\n%s", out)
	reports := map[int]string{} // line → report
	report := regexp.MustCompile(`^` + regexp.QuoteMeta(file) + `:(\d+):(\d+): (.*)$`)
	for _, line := range strings.Split(string(out), "\n") {
		if m := report.FindStringSubmatch(line); m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			if _, dup := reports[n]; dup {
				t.Errorf("line %d reported twice", n)
			}
			reports[n] = m[3]
		}
	}
	for mistake, line := range lines {
		got, ok := reports[line]
		if !ok {
			t.Errorf("mistake %d (line %d) not reported", mistake, line)
			continue
		}
		if !strings.Contains(got, says[mistake]) {
			t.Errorf("mistake %d reported at line %d as %q, which does not mention %s", mistake, line, got, says[mistake])
		}
		delete(reports, line)
	}
	for line, r := range reports {
		t.Errorf("line %d reported, but it holds no mistake: %s", line, r)
	}
	if !strings.Contains(string(out), "5 problem(s)") {
		t.Errorf("validate does not sum up 5 problems")
	}
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
