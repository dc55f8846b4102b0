# Makefile for the smtp receiver and its otelcol-smtp distribution (GNU make).
#
# Tools (ocb, mdatagen) are pinned in internal/tools/go.mod and built into the
# project-local .tools/ folder; nothing is installed globally.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:

GO        ?= go
TOOLS_DIR := $(CURDIR)/.tools
BUILDER   := $(TOOLS_DIR)/builder
MDATAGEN  := $(TOOLS_DIR)/mdatagen
NFPM      := $(TOOLS_DIR)/nfpm

# The version of the distribution and of device2otel: the VERSION file.
VERSION     := $(shell cat VERSION)

DIST_NAME   := otelcol-smtp
BUILD_DIR   := _build
BIN_DIR     := bin
BINARY      := $(BIN_DIR)/$(DIST_NAME)
RUN_CONFIG  ?= examples/default.yaml

RECEIVER_DIR := receiver/smtpreceiver

# The binary is static (no cgo): it runs in a FROM scratch image and on any
# Linux. The flags are kept in a stamp file so a change of them rebuilds it.
GO_BUILD_ENV   := CGO_ENABLED=0
GO_BUILD_FLAGS := -trimpath -ldflags "-s -w"

# Everything the distribution binary depends on: a change to any of these
# makes `make build` rebuild; otherwise it is a no-op.
BUILD_INPUTS := $(shell find receiver internal -name '*.go' -type f) \
	go.mod go.sum builder-config.yaml VERSION

# Go sources checked by fmt-check (the builder output and tools are excluded).
GO_SOURCES = $(shell find . -name '*.go' -type f \
	-not -path './.git/*' -not -path './$(BUILD_DIR)/*' \
	-not -path './.tools/*' -not -path './.e2e/*' -not -path './dist/*')

.PHONY: all tools generate build run test compat fmt-check vet clean distclean help

all: build

help:
	@echo "Targets:"
	@echo "  tools         build ocb and mdatagen into .tools/ (only when missing or outdated)"
	@echo "  generate      regenerate the mdatagen code of $(RECEIVER_DIR)"
	@echo "  build         build $(BINARY) with ocb (no-op when nothing changed)"
	@echo "  run           build, then run $(BINARY) --config $(RUN_CONFIG)"
	@echo "  test          go test -race -count=1 ./..."
	@echo "  e2e           build, then drive the collector with real clients (swaks, curl, Python, smtp-source)"
	@echo "  reliability   crash, backpressure, shutdown, Postfix relay, soak (needs root; see docs/delivery.md)"
	@echo "  fuzz          run each fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "  differential  compare the MIME conversion with Python's email package"
	@echo "  bench         Go benchmarks and the load harness against Postfix's smtp-sink"
	@echo "  compat        compile and test the receiver against newer collector versions"
	@echo "  fmt-check     fail if gofmt would change any file"
	@echo "  vet           go vet ./..."
	@echo "  image         build the otelcol-smtp container image (FROM scratch) and test it in Docker"
	@echo "  deb           build dist/$(DIST_NAME)_<version>_amd64.deb with nfpm and test it (dpkg, systemd, lintian)"
	@echo "  scale         fleet tests: HAProxy + PROXY protocol failover with Postfix, agent → gateway (needs root)"
	@echo "  clean         remove $(BUILD_DIR)/ and $(BIN_DIR)/"
	@echo "  distclean     clean, and also remove .tools/"
	@echo "  help          this list"
	@echo "Version: $(VERSION) (the VERSION file)"

## ---------------------------------------------------------------- tools

tools: $(BUILDER) $(MDATAGEN)

$(BUILDER): internal/tools/go.mod internal/tools/go.sum
	@mkdir -p $(TOOLS_DIR)
	cd internal/tools && $(GO) build -o $@ go.opentelemetry.io/collector/cmd/builder

$(MDATAGEN): internal/tools/go.mod internal/tools/go.sum
	@mkdir -p $(TOOLS_DIR)
	cd internal/tools && $(GO) build -o $@ go.opentelemetry.io/collector/cmd/mdatagen

# nfpm v2.45.2: newer versions need modules the proxy here refuses.
$(NFPM): internal/tools/go.mod internal/tools/go.sum
	@mkdir -p $(TOOLS_DIR)
	cd internal/tools && $(GO) build -o $@ github.com/goreleaser/nfpm/v2/cmd/nfpm

## ---------------------------------------------------------------- generate

# metadata.yaml in the receiver folder is a symlink to the root metadata.yaml;
# mdatagen writes next to it (generated_*_test.go, documentation.md,
# internal/metadata, internal/metadatatest).
generate: $(MDATAGEN)
	cd $(RECEIVER_DIR) && $(MDATAGEN) metadata.yaml

## ---------------------------------------------------------------- build

build: $(BINARY) $(BIN_DIR)/device2otel $(BIN_DIR)/mailreplay

# ocb generates the distribution sources in $(BUILD_DIR) (and tidies its
# go.mod); the compilation is done here so the binary lands in $(BIN_DIR).
# The builder is an order-only prerequisite: rebuilding the tool alone does
# not force a rebuild of the distribution.
$(BINARY): $(BUILD_INPUTS) $(BIN_DIR)/.build-flags | $(BUILDER)
	@grep -qx '  version: $(VERSION)' builder-config.yaml || \
		{ echo "builder-config.yaml: dist.version must be $(VERSION), the VERSION file's"; exit 1; }
	$(BUILDER) --config=builder-config.yaml --skip-compilation
	@mkdir -p $(BIN_DIR)
	cd $(BUILD_DIR) && $(GO_BUILD_ENV) $(GO) build $(GO_BUILD_FLAGS) -o $(CURDIR)/$(BINARY) .
	@# go build leaves an up-to-date binary untouched; refresh its mtime for make.
	touch $@

# Rewritten only when the build flags differ from the last build's.
$(BIN_DIR)/.build-flags: FORCE
	@mkdir -p $(BIN_DIR)
	@echo '$(GO_BUILD_ENV) $(GO_BUILD_FLAGS)' | cmp -s - $@ || echo '$(GO_BUILD_ENV) $(GO_BUILD_FLAGS)' > $@

.PHONY: FORCE
FORCE:

# The device file → collector config converter.
$(BIN_DIR)/device2otel: $(shell find cmd/device2otel receiver -name '*.go' -type f) go.mod go.sum VERSION
	@mkdir -p $(BIN_DIR)
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $@ ./cmd/device2otel

# The mbox / Maildir / .eml replayer (docs/reports.md).
$(BIN_DIR)/mailreplay: $(shell find cmd/mailreplay -name '*.go' -type f) go.mod go.sum
	@mkdir -p $(BIN_DIR)
	$(GO) build -trimpath -o $@ ./cmd/mailreplay

run: $(BINARY)
	$(BINARY) --config $(RUN_CONFIG)

## ---------------------------------------------------------------- checks

# Some unit tests (cmd/device2otel's validate tests) run bin/otelcol-smtp when
# it exists: a binary that is there is brought up to date first (a no-op when
# nothing changed), so a stale one never fails them; without one they skip.
test: $(if $(wildcard $(BINARY)),$(BINARY))
	$(GO) test -race -count=1 ./...

compat:
	./scripts/compat.sh

fmt-check:
	@out="$$(gofmt -l $(GO_SOURCES) </dev/null)"; \
	if [ -n "$$out" ]; then \
		echo "gofmt needs to be run on:"; echo "$$out"; exit 1; \
	fi; \
	echo "gofmt: ok"

vet:
	$(GO) vet ./...

## ---------------------------------------------------------------- clean

clean:
	rm -rf $(BUILD_DIR) $(BIN_DIR)

distclean: clean
	rm -rf $(TOOLS_DIR)

## ---------------------------------------------------------------- fuzz

# Each fuzz target runs for FUZZTIME; the seed corpora under testdata/fuzz are
# committed, and so is any input a run finds that fails.
FUZZTIME ?= 30s
.PHONY: fuzz
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzConvert$$' -fuzztime $(FUZZTIME) ./internal/mailconv/
	$(GO) test -run '^$$' -fuzz '^FuzzSession$$' -fuzztime $(FUZZTIME) ./receiver/smtpreceiver/
	$(GO) test -run '^$$' -fuzz '^FuzzProxyHeader$$' -fuzztime $(FUZZTIME) ./receiver/smtpreceiver/
	$(GO) test -run '^$$' -fuzz '^FuzzPlainConnSplit$$' -fuzztime $(FUZZTIME) ./receiver/smtpreceiver/
	$(GO) test -run '^$$' -fuzz '^FuzzBodyReader$$' -fuzztime $(FUZZTIME) ./receiver/smtpreceiver/
	$(GO) test -run '^$$' -fuzz '^FuzzCheck$$' -fuzztime $(FUZZTIME) ./internal/senderauth/
	$(GO) test -run '^$$' -fuzz '^FuzzScanFields$$' -fuzztime $(FUZZTIME) ./internal/senderauth/
	$(GO) test -run '^$$' -fuzz '^FuzzFormatResults$$' -fuzztime $(FUZZTIME) ./internal/senderauth/
	$(GO) test -run '^$$' -fuzz '^FuzzExpand$$' -fuzztime $(FUZZTIME) ./internal/reports/
	$(GO) test -run '^$$' -fuzz '^FuzzDMARC$$' -fuzztime $(FUZZTIME) ./internal/reports/
	$(GO) test -run '^$$' -fuzz '^FuzzTLSRPT$$' -fuzztime $(FUZZTIME) ./internal/reports/
	$(GO) test -run '^$$' -fuzz '^FuzzFieldReports$$' -fuzztime $(FUZZTIME) ./internal/reports/

## ---------------------------------------------------------------- e2e

# End-to-end suite: builds the distribution, installs the real clients it
# drives (swaks, curl, python3, openssl, Postfix smtp-source; only what is
# missing, via apt-get) and runs ./e2e against bin/otelcol-smtp.
.PHONY: e2e
e2e: build
	bash scripts/e2e-deps.sh && $(GO) test -tags e2e -count=1 -v -timeout 20m ./e2e/...

## ---------------------------------------------------------------- bench

# Go benchmarks of the conversion path and the receiver, then the load
# harness (smtp-source against the collector and Postfix's smtp-sink; see
# docs/benchmarks.md). The harness measures and does not gate: it exits 0
# when a target is missed and non-zero only on a harness error.
.PHONY: bench
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./internal/mailconv/ ./receiver/...
	./bench/loadbench.sh

## ---------------------------------------------------------------- differential

# Compares the mailconv golden records with Python's email package, field by
# field (scripts/differential.py). It reports; it fails only when agreement on
# subject or attachment file names drops below 90%.
.PHONY: differential
differential:
	python3 scripts/differential.py

## ---------------------------------------------------------------- reliability

# Reliability suite (build tag `reliability`, kept out of `make e2e`): crash
# with a persistent queue, backpressure, shutdown under load, Postfix relaying
# through a receiver crash, and a bounded soak with RSS sampling. Needs root
# for the throwaway Postfix instance. See docs/delivery.md.
.PHONY: reliability
reliability: build
	bash scripts/e2e-deps.sh && $(GO) test -tags reliability -count=1 -v -timeout 30m ./e2e/...

## ---------------------------------------------------------------- packages

# Container image otelcol-smtp:$(VERSION) and :dev, FROM scratch (Dockerfile),
# built and then run read-only without capabilities to take one mail
# (scripts/image.sh; installs docker.io and starts dockerd when needed).
.PHONY: image
image: $(BINARY)
	VERSION=$(VERSION) bash scripts/image.sh

# Debian package dist/$(DIST_NAME)_<version>_amd64.deb (packaging/nfpm.yaml),
# then installed, verified, run and purged (scripts/deb-check.sh; needs root).
# nfpm turns a semver pre-release (1.0.0-dev.g1234) into 1.0.0~dev.g1234, which
# sorts before 1.0.0 as Debian requires.
DEB_VERSION := $(shell echo '$(VERSION)' | sed 's/-/~/')
DEB := dist/$(DIST_NAME)_$(DEB_VERSION)_amd64.deb
.PHONY: deb
deb: $(BINARY) $(NFPM)
	@mkdir -p dist/deb
	sed -e 's/@VERSION@/$(DEB_VERSION)/' \
	    -e "s/@COMMIT@/$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)/" \
	    -e "s/@DATE@/$$(git log -1 --format=%aD 2>/dev/null || date -R)/" \
	    packaging/deb/changelog | gzip -9n > dist/deb/changelog.gz
	VERSION=$(VERSION) $(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(DEB)
	bash scripts/deb-check.sh $(DEB)

## ---------------------------------------------------------------- scale

# Fleet tests (build tag `scale`, e2e/scale_test.go): HAProxy with
# send-proxy-v2 in front of two receivers while Postfix relays through it and
# one receiver is SIGKILLed; an agent → gateway pair with a persistent queue
# through a gateway outage and an agent crash. Prints a summary table and
# fails on any loss. Needs root (Postfix); installs HAProxy and Postfix when
# missing. Do not run it together with `make reliability` (both run a
# throwaway Postfix).
.PHONY: scale
scale: build
	bash scripts/e2e-deps.sh
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || bash scripts/scale-deps.sh
	$(GO) test -tags scale -count=1 -v -timeout 20m ./e2e/...
