// Package runner runs mirror jobs in a process: it opens their endpoints
// through the bridges, starts, reconfigures and stops jobs as their specs
// change, and serves their metrics and status over HTTP. Both
// `tributary mirror run` and `tributary dev` use it.
package runner
