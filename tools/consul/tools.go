//go:build tools

// Package tools records the Consul agent as a dependency of this module so
// that go.sum pins what `make tools` builds.
package tools

import _ "github.com/hashicorp/consul"
