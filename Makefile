# peerload: see README.md. `make run` starts a local demo, `make test` runs every test.
GO        ?= go
BIN       := bin
GOFLAGS   ?=
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
LDFLAGS   := -X github.com/peerload/peerload/internal/buildinfo.version=$(VERSION) -X github.com/peerload/peerload/internal/buildinfo.commit=$(COMMIT)
# The repository is several Go modules, tied together by go.work (README.md,
# "Modules"): the plugins' own go.mod files keep each server out of the other's
# build, and the tools' dependencies (chromedp, gonum/plot, nfpm) out of both.
# In the workspace a directory pattern such as ./... stops where a nested
# module begins, so commands over the whole tree name every module: MODULES
# are their directories as go.work's use block lists them, ALL_PKGS every
# package.
MODULES   := $(shell sed -n '/^use (/,/^)/s/^[[:space:]]*\([.][^[:space:]]*\).*/\1/p' go.work)
ALL_PKGS  := $(addsuffix /...,$(MODULES))
# Packages that need no external programs; test/ drives the built binaries,
# packaging/ checks the built package.
UNIT_PKGS := $(filter-out ./test/... ./packaging/...,$(ALL_PKGS))

.PHONY: all build run test testrace unit integration fuzz fuzz-long bench soak lint tidy clean deps alerts deb test-deb packages release

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
	$(GO) vet $(ALL_PKGS)
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
	$(GO) test -race -count=1 -timeout 20m $(ALL_PKGS)

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
	FuzzParseKeys:./agent/rfc2136 FuzzSetup:./plugin/coredns FuzzServeDNS:./plugin/coredns \
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

# lint also checks the modules (scripts/check-modules.sh): each one tidy on
# its own, every go.mod in go.work, and the workspace building each module's
# packages with the versions its own go.mod selects.
lint:
	$(GO) vet $(ALL_PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@scripts/check-modules.sh

# tidy tidies every module on its own go.mod, as its users see it.
tidy:
	@for m in $(MODULES); do echo "go mod tidy in $$m"; (cd $$m && GOWORK=off $(GO) mod tidy) || exit 1; done

clean:
	rm -rf $(BIN)

# packages builds the packages of PKG_FORMATS (deb, rpm) into PKG_OUT from
# packaging/nfpm.yaml with packaging/mkpkg, after stripped builds of
# cmd/peerload, cmd/peerload-plot and cmd/coredns into PKG_BIN. They are
# reproducible: the same commit gives the same bytes. -trimpath keeps this
# checkout's paths out of the binaries, -buildid= the linker's random build
# ID, and SOURCE_DATE_EPOCH (the commit's time) is every time stamp in the
# archives (packaging/reproducible_test.go checks it).
PKG_FORMATS ?= deb
PKG_BIN     ?= $(BIN)/deb
PKG_OUT     ?= $(BIN)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
packages:
	@mkdir -p $(PKG_BIN)
	@rm -f $(PKG_BIN)/caddy
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS) -s -w -buildid=' -o $(PKG_BIN)/ ./cmd/peerload ./cmd/peerload-plot ./cmd/coredns
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./packaging/mkpkg --version '$(VERSION)' --packagers $(PKG_FORMATS) --bin-dir $(PKG_BIN) --out-dir $(PKG_OUT)

# deb builds bin/peerload_VERSION_ARCH.deb (and the symlink bin/peerload.deb).
# See docs/deploying.md.
deb: packages

# release builds the release the tag on HEAD names (vMAJOR.MINOR.PATCH, with
# its section in CHANGELOG.md), or RELEASE=vX.Y.Z, from a clean tree: the
# .deb and the .rpm from the one nfpm configuration, with SHA256SUMS, in
# bin/release.
RELEASE_TAG := $(shell git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null)
release:
	@v='$(or $(RELEASE),$(RELEASE_TAG))'; \
	if [ -z "$$v" ]; then echo "make release: HEAD has no release tag (git tag -a vX.Y.Z), and RELEASE=vX.Y.Z is not set" >&2; exit 1; fi; \
	if ! echo "$$v" | grep -Eq '^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$$'; then echo "make release: $$v is not vMAJOR.MINOR.PATCH" >&2; exit 1; fi; \
	if ! grep -q "^## \[$${v#v}\]" CHANGELOG.md; then echo "make release: CHANGELOG.md has no section ## [$${v#v}]" >&2; exit 1; fi; \
	if ! git diff --quiet HEAD; then echo "make release: uncommitted changes; a release is built from a commit" >&2; exit 1; fi; \
	rm -rf $(BIN)/release && \
	$(MAKE) --no-print-directory packages VERSION=$$v PKG_FORMATS=deb,rpm PKG_BIN=$(BIN)/release/bin PKG_OUT=$(BIN)/release && \
	cd $(BIN)/release && rm -f peerload.deb peerload.rpm && sha256sum *.deb *.rpm > SHA256SUMS && cat SHA256SUMS

# test-deb checks the package: contents, licences, lintian, the units'
# security scores, an install into a booted throwaway copy of this machine
# (packaging/deb_test.go; needs root), and that two builds of the packages
# are the same bytes (packaging/reproducible_test.go).
test-deb: deb
	PEERLOAD_DEB=$(CURDIR)/$(BIN)/peerload.deb $(GO) test -count=1 -timeout 5m ./packaging/...
