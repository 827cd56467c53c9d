# cgw build, test, demo and benchmark entry points.
#
#   make build   build cgwd and cgwctl into ./bin
#   make test    install test dependencies, run unit tests, the netns
#                end-to-end tests against the simulated AWS side and the
#                packaging checks (install, .deb, image, unit, k8s) (root)
#   make demo    bring up the simulated AWS side and cgwd, show traffic
#   make bench   throughput, loss-free packet rate and CPU against strongSwan,
#                wireguard-go (BENCH_FLAGS: see test/bench/pps.go, README)
#   make bench-scale  100 connections (200 tunnels) in one cgwd: start-up,
#                RSS, idle CPU, status latency, rekey storm (docs/scale.md)
#   make soak    long rekey soak (issue: SA lifecycle), not part of `test`
#   make install install binaries, unit, man pages, completion (PREFIX, DESTDIR)
#   make release static linux/amd64 and linux/arm64 binaries + SHA256SUMS in ./dist
#   make deb     a Debian package in ./dist (dpkg-deb)
#   make image   the container image cgw:$(VERSION) and cgw:latest (podman)
#   make fuzz    run every Fuzz* target of the module in turn, FUZZTIME each

SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
# GOLDFLAGS adds linker flags (the .deb builds with "-s -w": stripped).
GOLDFLAGS ?=
LDFLAGS := $(GOLDFLAGS) -X github.com/cgwproject/cgw/internal/version.v=$(VERSION)
BIN     := $(CURDIR)/bin
DIST    := $(CURDIR)/dist
DOC     := $(CURDIR)/build/doc
export CGW_BIN := $(BIN)
# The image the container e2e test runs (built by `make image`).
export CGW_IMAGE := cgw:$(VERSION)

# Install layout (GNU conventions). The unit's ExecStart follows BINDIR.
PREFIX      ?= /usr/local
SYSCONFDIR  ?= /etc
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
DESTDIR     ?=

# Container engine for `make image` (podman, or buildah's `buildah bud`).
PODMAN ?= podman
export PODMAN

.PHONY: all build deps test unit e2e demo bench soak fuzz docker-check fresh-check clean \
	doc install release deb image pkg-check

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/cgwd ./cmd/cgwctl

deps:
	bash test/deps.sh

unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

e2e: build image
	$(GO) test -count=1 -tags e2e -timeout 45m -v ./test/e2e/

test: deps build unit e2e docker-check pkg-check

# Packaging checks: deps.sh in every state, make install into a temporary
# root, the .deb through lintian, the unit's systemd-analyze score, the
# Kubernetes manifest decoded into the API types.
pkg-check: build
	bash test/deps-check.sh
	bash test/pkg-check.sh

demo: deps build
	$(GO) run ./test/demo $(DEMO_FLAGS)

bench: deps build
	$(GO) run ./test/bench $(BENCH_FLAGS)

bench-scale: deps build
	CGW_BIN=$(CURDIR)/bin $(GO) test -count=1 -tags 'e2e benchscale' -timeout 20m -v -run BenchScale ./test/e2e/

soak: deps build
	$(GO) test -count=1 -tags 'e2e soak' -timeout 60m -v -run Soak ./test/e2e/

# Every fuzz target, discovered per package with `go test -list` (new targets
# are picked up without editing this file), run one at a time for FUZZTIME
# (go test accepts a duration or Nx). Stops at the first crash; the failing
# input is then in the package's testdata/fuzz/<Target>/ for a regression run.
# FUZZFLAGS passes more go test flags, e.g. -parallel=1 on a shared machine.
FUZZTIME ?= 30s
FUZZFLAGS ?=
fuzz:
	@set -eo pipefail; \
	for pkg in $$($(GO) list ./...); do \
		for fz in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$fz ($(FUZZTIME))"; \
			start=$$(date +%s); \
			out=$$(mktemp); \
			if ! $(GO) test -run '^$$' -fuzz "^$$fz\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$pkg 2>&1 | tee $$out; then \
				if grep -q 'Failing input written' $$out || ! grep -q 'context deadline exceeded' $$out; then rm -f $$out; exit 1; fi; \
				echo "   $$fz: go test reported only 'context deadline exceeded' at the end of FUZZTIME (a toolchain quirk, no failing input)"; \
			fi; \
			rm -f $$out; \
			echo "   $$fz: no crash in $(FUZZTIME) of fuzzing ($$(( $$(date +%s) - start ))s wall, build included)"; \
		done; \
	done

# The Dockerfile checked without a Docker engine (CI has none): lint, then
# the build stage's own RUN commands, and static binaries for the runtime stage.
docker-check:
	bash test/dockerfile-check.sh

# The front door on a fresh Debian container with policy-rc.d (not part of
# `make test`: about 20 minutes): make deps, make build and one e2e test.
fresh-check:
	bash test/fresh-check.sh

# Man pages and completion, generated from the built binaries' help.
doc: build
	$(GO) run ./internal/cmd/docgen -bin $(BIN) -out $(DOC) -version $(VERSION)

install: build doc
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0755 $(BIN)/cgwd $(BIN)/cgwctl $(DESTDIR)$(BINDIR)/
	sed 's|/usr/local/bin/|$(BINDIR)/|g' deploy/systemd/cgwd.service >$(DOC)/cgwd.service
	install -m 0644 $(DOC)/cgwd.service $(DESTDIR)$(UNITDIR)/cgwd.service
	install -m 0644 deploy/systemd/cgw.sysusers $(DESTDIR)$(SYSUSERSDIR)/cgw.conf
	install -m 0644 $(DOC)/cgwd.8 $(DOC)/cgwctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(DOC)/cgw.yaml.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(DOC)/cgwctl.bash $(DESTDIR)$(BASHCOMPDIR)/cgwctl
	install -m 0644 $(DOC)/cgwd.bash $(DESTDIR)$(BASHCOMPDIR)/cgwd
	install -m 0644 $(DOC)/_cgwctl $(DOC)/_cgwd $(DESTDIR)$(ZSHCOMPDIR)/
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/cgw

release:
	rm -rf $(DIST)/release && mkdir -p $(DIST)/release
	for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" \
			-o $(DIST)/release/ ./cmd/cgwd ./cmd/cgwctl || exit 1; \
		mv $(DIST)/release/cgwd $(DIST)/release/cgwd-$(VERSION)-linux-$$arch; \
		mv $(DIST)/release/cgwctl $(DIST)/release/cgwctl-$(VERSION)-linux-$$arch; \
	done
	cd $(DIST)/release && sha256sum cgw* >SHA256SUMS && cat SHA256SUMS

deb: build
	bash deploy/debian/build-deb.sh $(VERSION) $(DIST)

# The runtime image from the static binaries of `make build` (no registry
# pull: Containerfile.runtime starts FROM scratch).
image: build
	bash deploy/container/build-image.sh $(BIN) $(VERSION) cgw:$(VERSION) cgw:latest

clean:
	rm -rf $(BIN) $(DIST) build
