package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// sizeUnits are the units a size may carry; a bare number is bytes.
var sizeUnits = []struct {
	suffix string
	factor int64
}{
	// Longer suffixes first: "MiB" before "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"B", 1},
}

const sizeHelp = "a whole number of bytes with an optional unit: B, KiB, MiB, GiB, KB, MB, GB, e.g. 50MiB"

// parseSize parses a size such as "50MiB", "4 MB" or "1048576".
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num, factor := s, int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, factor = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.factor
			break
		}
	}
	if num == "" {
		return 0, fmt.Errorf("%q is not a size (%s)", s, sizeHelp)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (%s)", s, sizeHelp)
	}
	if n < 0 {
		return 0, fmt.Errorf("%q is negative (%s)", s, sizeHelp)
	}
	if n > math.MaxInt64/factor {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * factor, nil
}

const durationHelp = `a Go duration with a unit: ms, s, m, h, e.g. 5ms or 30s`

// parseDuration parses a duration such as "5ms" or "1m30s".
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (%s)", s, durationHelp)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative (%s)", s, durationHelp)
	}
	return d, nil
}
