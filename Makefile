# Tributary. `make run` starts the embedded default, `make test` runs every test
# (installing what the tests need first).
GO        ?= go
BIN       := bin/tributary
E2E_FLAGS ?= -p 1 -count=1 -timeout 15m

.PHONY: build run test unit e2e bench tools setup clean

build:
	$(GO) build -o $(BIN) ./cmd/tributary

run: build
	./$(BIN) dev --demo

setup:
	./scripts/setup.sh

# tools: what the tests need. bin/consul is Consul v1.14.11 built from the Go
# module proxy through its own module (tools/consul, go.sum committed); two of
# its nested modules are missing from the checksum database, hence
# GOSUMDB=off. About 3 minutes the first time; nothing to do once built.
tools: setup bin/consul

bin/consul: tools/consul/go.mod tools/consul/go.sum
	cd tools/consul && GOSUMDB=off GOFLAGS=-mod=mod $(GO) build -o ../../bin/consul github.com/hashicorp/consul

# Unit tests with -race; then e2e packages one at a time against the binary
# built once here (TRIBUTARY_BIN).
test: tools build unit e2e

unit:
	$(GO) test -race -count=1 -timeout 10m $$($(GO) list ./... | grep -v /e2e)

e2e: build
	TRIBUTARY_BIN=$(CURDIR)/$(BIN) $(GO) test $(E2E_FLAGS) ./e2e/...

bench: build
	./$(BIN) bench compare

clean:
	rm -rf bin data
