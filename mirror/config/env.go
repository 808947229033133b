package config

import (
	"fmt"
	"sort"
	"unicode/utf8"
)

// expansion is a job file after ${...} expansion, with what is needed to
// map a position in the expanded text back to the original file.
type expansion struct {
	out []byte
	// spans cover out in order; see span.
	spans []span
	// orig and expanded index the line starts of both texts.
	orig, expanded lineIndex
	// problems are the expansion's errors, at original offsets.
	problems []offsetProblem
}

// span is a run of the expanded text. A literal span was copied from the
// original at origStart; a substituted span replaced the reference that
// starts at origStart, and every offset inside it maps there.
type span struct {
	outStart, origStart, outLen int
	substituted                 bool
}

// offsetProblem is an error at a byte offset of the original text.
type offsetProblem struct {
	offset int
	msg    string
}

// expand replaces ${VAR} and ${VAR:-default} in data with values from
// lookup, and $$ with $. Comments (a '#' at the start of a line or after a
// blank, outside a quoted scalar on that line) are copied unchanged. With
// noEnv every reference is a problem. A reference that cannot be resolved
// is replaced by nothing and reported.
func expand(data []byte, lookup func(string) (string, bool), noEnv bool) *expansion {
	e := &expansion{out: make([]byte, 0, len(data)), orig: newLineIndex(data)}
	literalFrom := 0 // start of the pending literal run in data
	flush := func(to int) {
		if to > literalFrom {
			e.spans = append(e.spans, span{outStart: len(e.out), origStart: literalFrom, outLen: to - literalFrom})
			e.out = append(e.out, data[literalFrom:to]...)
		}
	}
	substitute := func(at, end int, value string) {
		flush(at)
		e.spans = append(e.spans, span{outStart: len(e.out), origStart: at, outLen: len(value), substituted: true})
		e.out = append(e.out, value...)
		literalFrom = end
	}

	var quote byte // the quote of the scalar open on this line, or 0
	inComment := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '\n':
			quote, inComment = 0, false
			continue
		case inComment:
			continue
		case quote != 0:
			if c == quote {
				if quote == '\'' && i+1 < len(data) && data[i+1] == '\'' {
					i++ // '' is an escaped quote
					continue
				}
				quote = 0
				continue
			}
			if quote == '"' && c == '\\' {
				i++ // skip the escaped character
				continue
			}
		case c == '#' && (i == 0 || data[i-1] == ' ' || data[i-1] == '\t' || data[i-1] == '\n'):
			inComment = true
			continue
		case (c == '"' || c == '\'') && startsScalar(data, i):
			quote = c
			continue
		}
		if c != '$' || i+1 >= len(data) {
			continue
		}
		switch data[i+1] {
		case '$':
			substitute(i, i+2, "$")
			i++
		case '{':
			end, value, msg := resolve(data, i, lookup, noEnv)
			if msg != "" {
				e.problems = append(e.problems, offsetProblem{offset: i, msg: msg})
			}
			substitute(i, end, value)
			i = end - 1
		}
	}
	flush(len(data))
	e.expanded = newLineIndex(e.out)
	return e
}

// startsScalar reports whether the quote at data[i] opens a quoted scalar:
// it follows the start of the line, a blank or a flow indicator.
func startsScalar(data []byte, i int) bool {
	if i == 0 {
		return true
	}
	switch data[i-1] {
	case ' ', '\t', '\n', '[', '{', ',', ':', '-':
		return true
	}
	return false
}

// resolve resolves the reference that starts with "${" at data[at]. It
// returns the offset just past the reference, its value and, when the
// reference cannot be resolved, what is wrong.
func resolve(data []byte, at int, lookup func(string) (string, bool), noEnv bool) (end int, value, problem string) {
	closeAt := -1
	for j := at + 2; j < len(data) && data[j] != '\n'; j++ {
		if data[j] == '}' {
			closeAt = j
			break
		}
	}
	if closeAt < 0 {
		return at + 2, "", `unterminated "${" (write ${VAR} or ${VAR:-default}; $$ is a literal $)`
	}
	ref := string(data[at : closeAt+1])
	body := string(data[at+2 : closeAt])
	name, def, hasDefault := body, "", false
	for k := 0; k+1 < len(body); k++ {
		if body[k] == ':' && body[k+1] == '-' {
			name, def, hasDefault = body[:k], body[k+2:], true
			break
		}
	}
	end = closeAt + 1
	if !validVarName(name) {
		return end, "", fmt.Sprintf("bad variable reference %s (write ${VAR} or ${VAR:-default}; VAR is letters, digits and _, not starting with a digit)", ref)
	}
	if noEnv {
		return end, "", fmt.Sprintf("variable reference %s not allowed here (jobs held in the KV store are not expanded; write $$ for a literal $)", ref)
	}
	if v, ok := lookup(name); ok && (v != "" || !hasDefault) {
		return end, v, ""
	}
	if hasDefault {
		return end, def, ""
	}
	return end, "", fmt.Sprintf("environment variable %s is not set (set it, or give a default: ${%s:-value})", name, name)
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// origOffset maps an offset of the expanded text to the original's.
func (e *expansion) origOffset(out int) int {
	i := sort.Search(len(e.spans), func(i int) bool { return e.spans[i].outStart+e.spans[i].outLen > out })
	if i == len(e.spans) {
		return len(e.orig.data)
	}
	s := e.spans[i]
	if s.substituted || out < s.outStart {
		return s.origStart
	}
	return s.origStart + out - s.outStart
}

// origPosition maps a 1-based line and column (in characters) of the
// expanded text to the original file's.
func (e *expansion) origPosition(line, col int) (int, int) {
	return e.orig.position(e.origOffset(e.expanded.offset(line, col)))
}

// lineIndex converts between byte offsets and 1-based line:column
// positions, columns counted in characters as the YAML parser counts them.
type lineIndex struct {
	data   []byte
	starts []int
}

func newLineIndex(data []byte) lineIndex {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return lineIndex{data: data, starts: starts}
}

// offset returns the byte offset of line:col, clamped to the text.
func (x lineIndex) offset(line, col int) int {
	if line < 1 {
		return 0
	}
	if line > len(x.starts) {
		return len(x.data)
	}
	off := x.starts[line-1]
	for n := 1; n < col && off < len(x.data) && x.data[off] != '\n'; n++ {
		_, size := utf8.DecodeRune(x.data[off:])
		off += size
	}
	return off
}

// position returns the 1-based line:col of a byte offset.
func (x lineIndex) position(off int) (int, int) {
	line := sort.Search(len(x.starts), func(i int) bool { return x.starts[i] > off })
	start := x.starts[line-1]
	if off > len(x.data) {
		off = len(x.data)
	}
	return line, utf8.RuneCount(x.data[start:off]) + 1
}
