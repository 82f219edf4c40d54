# peerload: see README.md. `make run` starts a local demo, `make test` runs every test.
GO        ?= go
BIN       := bin
GOFLAGS   ?=
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Packages that need no external programs; test/ drives the built binaries.
UNIT_PKGS := ./agent/... ./plugin/... ./cmd/... ./internal/...

.PHONY: all build run test testrace unit integration fuzz bench soak lint tidy clean deps alerts

all: build

# Static binaries: no libc mapped into every agent (2 MB less resident).
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/peerload ./cmd/peerload
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/coredns ./cmd/coredns

# deps installs the programs the tests and benchmarks drive (BIND's named,
# dig, nsupdate, tsig-keygen, dnsperf) when they are missing.
deps:
	@scripts/install-deps.sh

run: build
	@scripts/demo.sh

test: deps build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 10m $(UNIT_PKGS)
	PEERLOAD_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 15m ./test/...
	$(MAKE) fuzz
	$(MAKE) alerts

# alerts checks the Prometheus alert rules and runs their unit tests.
alerts:
	promtool check rules docs/alerts/peerload.rules.yml
	cd docs/alerts && promtool test rules peerload.rules.test.yml

testrace: deps build
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNS$$' -fuzztime 20s ./plugin/coredns/
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNSWire$$' -fuzztime 20s ./plugin/coredns/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeReport$$' -fuzztime 10s ./agent/report/

bench: deps build
	@scripts/bench.sh

# soak churns the namespace lab for 10 minutes (root) and records the memory
# and goroutine curves in BENCHMARKS.md; `make test` runs a 75 s version.
soak: deps build
	@scripts/soak.sh

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN)
