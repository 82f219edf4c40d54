# peerload: see README.md. `make run` starts a local demo, `make test` runs every test.
GO        ?= go
BIN       := bin
GOFLAGS   ?=
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
LDFLAGS   := -X github.com/peerload/peerload/internal/buildinfo.version=$(VERSION) -X github.com/peerload/peerload/internal/buildinfo.commit=$(COMMIT)
# Packages that need no external programs; test/ drives the built binaries.
UNIT_PKGS := ./agent/... ./plugin/... ./cmd/... ./internal/...

.PHONY: all build run test testrace unit integration fuzz fuzz-long bench soak lint tidy clean deps alerts deb test-deb

all: build

# Static binaries: no libc mapped into every agent (2 MB less resident).
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/peerload ./cmd/peerload
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/peerload-plot ./cmd/peerload-plot
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/coredns ./cmd/coredns
	CGO_ENABLED=0 $(GO) build -ldflags '-X github.com/caddyserver/caddy/v2.CustomVersion=peerload-$(VERSION)' -o $(BIN)/caddy ./cmd/caddy

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
	$(MAKE) test-deb

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
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBatch$$' -fuzztime 10s ./agent/report/

# fuzz-long runs every fuzz target of outside input for FUZZTIME each
# (default 10 minutes; about 100 minutes in all), one worker each so the
# machine stays usable. Crashers land in the package's testdata/fuzz/,
# which is committed with the fix.
FUZZTIME ?= 10m
FUZZ_TARGETS := \
	FuzzDecodeReport:./agent/report FuzzDecodeMeta:./agent/report FuzzDecodeState:./agent/report FuzzDecodeBatch:./agent/report \
	FuzzParseKeyring:./agent/gossip FuzzReadJoinFile:./agent/gossip FuzzAPIRequest:./agent/api \
	FuzzParseKeys:./plugin/rfc2136 FuzzSetup:./plugin/coredns FuzzServeDNS:./plugin/coredns \
	FuzzServeDNSWire:./plugin/coredns
fuzz-long:
	@failed=""; for t in $(FUZZ_TARGETS); do \
		echo "fuzz-long: $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}\$$" -fuzztime $(FUZZTIME) -parallel 1 $${t##*:} || failed="$$failed $${t%%:*}"; \
	done; if [ -n "$$failed" ]; then echo "fuzz-long: crashers in:$$failed"; exit 1; fi

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

# deb builds bin/peerload_VERSION_ARCH.deb (and the symlink bin/peerload.deb)
# from packaging/ with nfpm: stripped builds of cmd/peerload, cmd/peerload-plot
# and cmd/coredns, in bin/deb. See docs/deploying.md.
deb:
	@mkdir -p $(BIN)/deb
	@rm -f $(BIN)/deb/caddy
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS) -s -w' -o $(BIN)/deb/ ./cmd/peerload ./cmd/peerload-plot ./cmd/coredns
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) $(GO) run ./packaging/mkdeb --version '$(VERSION)' --bin-dir $(BIN)/deb --out-dir $(BIN)

# test-deb checks the package: contents, lintian, the units' security
# scores, and an install into a booted throwaway copy of this machine
# (packaging/deb_test.go; needs root).
test-deb: deb
	PEERLOAD_DEB=$(CURDIR)/$(BIN)/peerload.deb $(GO) test -count=1 -timeout 5m ./packaging/...
