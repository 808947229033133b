package config

import (
	"errors"
	"fmt"
	"sort"

	"go.uber.org/multierr"
)

// ErrInvalid is matched (errors.Is) by every *Error: the job file is
// malformed or breaks a rule. Parse and Load return all of a file's
// problems at once, combined with go.uber.org/multierr; multierr.Errors
// splits them again.
var ErrInvalid = errors.New("invalid job file")

// Error is one problem of a job file, at the place it was found: a key's
// position for an unknown or misplaced key, a value's position for a bad
// value, the enclosing mapping's position for a missing key.
type Error struct {
	// File is the name given to Parse or the path given to Load.
	File string
	// Line and Column are 1-based, in the original file (before ${...}
	// expansion); Column counts characters.
	Line, Column int
	// Field is the path to the field, such as "jobs[0].sources[1].cluster";
	// "" for a problem of the file as a whole.
	Field string
	// Msg says what is wrong and, where it helps, what is allowed.
	Msg string
}

// Error formats the problem as "FILE:LINE:COL: field: msg".
func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Column, e.Field, e.Msg)
}

// Unwrap makes every Error match ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// problems collects a file's errors.
type problems struct {
	file string
	list []*Error
}

func (p *problems) add(line, col int, field, format string, args ...any) {
	p.list = append(p.list, &Error{File: p.file, Line: line, Column: col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// err returns the problems, ordered by position, as one multierr error, or
// nil if there are none.
func (p *problems) err() error {
	sort.SliceStable(p.list, func(i, j int) bool {
		a, b := p.list[i], p.list[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	var err error
	for _, e := range p.list {
		err = multierr.Append(err, e)
	}
	return err
}
