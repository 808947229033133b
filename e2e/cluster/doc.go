// Package cluster starts real Tributary processes for end-to-end tests and
// ends them: the binary built once by `make test` (TRIBUTARY_BIN) or, when
// that is unset, built here once per test binary.
//
// Every process is started in its own process group with Pdeathsig set, so
// a test binary killed by its timeout leaks none, and t.Cleanup stops it.
// Only loopback addresses are used.
package cluster
