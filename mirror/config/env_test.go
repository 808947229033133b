package config

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/multierr"
)

func envOf(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func TestExpand(t *testing.T) {
	env := envOf(map[string]string{"A": "alpha", "EMPTY": "", "LIST": "h1:1,h2:2"})
	tests := []struct {
		name, in, want string
		problems       []string // substrings, in order
	}{
		{name: "set", in: "x: ${A}\n", want: "x: alpha\n"},
		{name: "twice on a line", in: "x: ${A}-${A}\n", want: "x: alpha-alpha\n"},
		{name: "default unused", in: "x: ${A:-beta}\n", want: "x: alpha\n"},
		{name: "default for unset", in: "x: ${NOPE:-beta}\n", want: "x: beta\n"},
		{name: "default with colon", in: "x: ${NOPE:-127.0.0.1:9094}\n", want: "x: 127.0.0.1:9094\n"},
		{name: "default for empty", in: "x: ${EMPTY:-beta}\n", want: "x: beta\n"},
		{name: "empty default", in: "x: ${NOPE:-}\n", want: "x: \n"},
		{name: "set but empty", in: "x: ${EMPTY}\n", want: "x: \n"},
		{name: "unset", in: "x: ${NOPE}\n", want: "x: \n", problems: []string{"environment variable NOPE is not set"}},
		{name: "escape", in: "x: $${A} $$ $5\n", want: "x: ${A} $ $5\n"},
		{name: "lone dollar", in: "x: a$b$\n", want: "x: a$b$\n"},
		{name: "in quotes", in: "x: \"${A}\"\ny: '${A}'\n", want: "x: \"alpha\"\ny: 'alpha'\n"},
		{name: "comment line", in: "# see ${NOPE}\nx: 1\n", want: "# see ${NOPE}\nx: 1\n"},
		{name: "trailing comment", in: "x: ${A} # or ${NOPE}\n", want: "x: alpha # or ${NOPE}\n"},
		{name: "hash in quotes is no comment", in: "x: \"a #${A}\"\n", want: "x: \"a #alpha\"\n"},
		{name: "hash inside word is no comment", in: "x: a#${A}\n", want: "x: a#alpha\n"},
		{name: "unterminated", in: "x: ${A\n", want: "x: A\n", problems: []string{`unterminated "${"`}},
		{name: "bad name", in: "x: ${1A}\n", want: "x: \n", problems: []string{"bad variable reference ${1A}"}},
		{name: "no dash form", in: "x: ${A-b}\n", want: "x: \n", problems: []string{"bad variable reference ${A-b}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := expand([]byte(tt.in), env, false)
			if got := string(x.out); got != tt.want {
				t.Errorf("expanded to %q, want %q", got, tt.want)
			}
			if len(x.problems) != len(tt.problems) {
				t.Fatalf("problems %v, want %d", x.problems, len(tt.problems))
			}
			for i, p := range tt.problems {
				if !strings.Contains(x.problems[i].msg, p) {
					t.Errorf("problem %d is %q, want it to contain %q", i, x.problems[i].msg, p)
				}
			}
		})
	}
}

func TestExpandNoEnv(t *testing.T) {
	called := false
	lookup := func(string) (string, bool) { called = true; return "x", true }
	x := expand([]byte("a: ${A}\nb: ${B:-d}\nc: $$\n# ${C}\n"), lookup, true)
	if called {
		t.Error("NoEnv looked up a variable")
	}
	if len(x.problems) != 2 {
		t.Fatalf("problems %v, want 2 (one per reference outside comments)", x.problems)
	}
	for _, p := range x.problems {
		if !strings.Contains(p.msg, "not allowed") {
			t.Errorf("problem %q does not say references are not allowed", p.msg)
		}
	}
	if got, want := string(x.out), "a: \nb: \nc: $\n# ${C}\n"; got != want {
		t.Errorf("expanded to %q, want %q", got, want)
	}
}

func TestExpandPositions(t *testing.T) {
	// The value of LONG spans lines, and shifts everything after it.
	in := "a: ${LONG}\nb: ${S} c\nd: x\n"
	x := expand([]byte(in), envOf(map[string]string{"LONG": "1\n2\n3", "S": "ssssssssss"}), false)
	tests := []struct{ line, col, wantLine, wantCol int }{
		{1, 1, 1, 1},  // "a"
		{1, 4, 1, 4},  // start of the substitution
		{3, 1, 1, 4},  // "3", inside the substituted value
		{4, 1, 2, 1},  // "b"
		{4, 14, 2, 8}, // "c" after S's long value
		{5, 4, 3, 4},  // "x"
	}
	for _, tt := range tests {
		if l, c := x.origPosition(tt.line, tt.col); l != tt.wantLine || c != tt.wantCol {
			t.Errorf("expanded %d:%d maps to %d:%d, want %d:%d", tt.line, tt.col, l, c, tt.wantLine, tt.wantCol)
		}
	}
}

func TestParseEnv(t *testing.T) {
	const file = `clusters:
  east:
    bootstrap: ["${EAST}"]
    client_id: "cost$$"
  central:
    bootstrap: "${CENTRAL:-127.0.0.1:9094}"
jobs:
  - name: ${JOB}
    sources: [{cluster: east, topics: [price]}]
    targets: [central]
`
	t.Run("set and default", func(t *testing.T) {
		f, err := Parse("env.yaml", []byte(file), Options{LookupEnv: envOf(map[string]string{"EAST": "10.0.0.1:9092,10.0.0.2:9092", "JOB": "j1"})})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(f.Clusters["east"].Bootstrap, " "); got != "10.0.0.1:9092 10.0.0.2:9092" {
			t.Errorf("east bootstrap %q", got)
		}
		if got := strings.Join(f.Clusters["central"].Bootstrap, " "); got != "127.0.0.1:9094" {
			t.Errorf("central bootstrap %q, want the default", got)
		}
		if f.Jobs[0].Name != "j1" {
			t.Errorf("job name %q", f.Jobs[0].Name)
		}
		if got := f.Clusters["east"].ClientID; got != "cost$" {
			t.Errorf("client_id %q: $$ did not become a literal $", got)
		}
	})
	t.Run("unset", func(t *testing.T) {
		_, err := Parse("env.yaml", []byte(file), Options{LookupEnv: envOf(map[string]string{"JOB": "j1"})})
		want := []string{`env.yaml:3:18: environment variable EAST is not set`}
		checkErrors(t, err, want)
	})
	t.Run("NoEnv", func(t *testing.T) {
		_, err := Parse("kv:jobs/x", []byte(file), Options{NoEnv: true})
		checkErrors(t, err, []string{
			"kv:jobs/x:3:18: variable reference ${EAST} not allowed",
			"kv:jobs/x:6:17: variable reference ${CENTRAL:-127.0.0.1:9094} not allowed",
			"kv:jobs/x:8:11: variable reference ${JOB} not allowed",
		})
	})
	t.Run("default lookup is the environment", func(t *testing.T) {
		t.Setenv("EAST", "127.0.0.1:1")
		t.Setenv("JOB", "from-env")
		f, err := Parse("env.yaml", []byte(file), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if f.Jobs[0].Name != "from-env" {
			t.Errorf("job name %q, want the environment's", f.Jobs[0].Name)
		}
	})
}

// checkErrors asserts that err holds exactly one problem per prefix, in
// order, each *Error matching ErrInvalid.
func checkErrors(t *testing.T, err error, prefixes []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %d problems", len(prefixes))
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error does not match ErrInvalid: %v", err)
	}
	errs := multierr.Errors(err)
	if len(errs) != len(prefixes) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(prefixes), err)
	}
	for i, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Errorf("problem %d is %T, not *Error", i, e)
		}
		if !strings.HasPrefix(e.Error(), prefixes[i]) {
			t.Errorf("problem %d:\n  %s\nwant prefix\n  %s", i, e, prefixes[i])
		}
	}
}
