package benchmark

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// Machine describes where a benchmark ran.
type Machine struct {
	CPUs      int    // runtime.NumCPU
	GOOS      string // runtime.GOOS
	GOARCH    string // runtime.GOARCH
	CPUModel  string // "model name" from /proc/cpuinfo; "unknown" elsewhere
	GoVersion string // runtime.Version
}

// CurrentMachine describes this machine.
func CurrentMachine() Machine {
	return Machine{
		CPUs:      runtime.NumCPU(),
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
		CPUModel:  cpuModel("/proc/cpuinfo"),
		GoVersion: runtime.Version(),
	}
}

func (m Machine) String() string {
	return fmt.Sprintf("%d cores, %s/%s, %s, %s", m.CPUs, m.GOOS, m.GOARCH, m.CPUModel, m.GoVersion)
}

// cpuModel returns the first "model name" in a /proc/cpuinfo style file.
func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}
