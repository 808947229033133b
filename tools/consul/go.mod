// Module consul pins the Consul agent that e2e tests start. It is a module of
// its own so that the main module's dependency graph stays free of Consul's.
// Build with `make tools` (see the Makefile).
module github.com/tributary/tributary/tools/consul

go 1.26

require github.com/hashicorp/consul v1.14.11
