# cgw build, test, demo and benchmark entry points.
#
#   make build   build cgwd and cgwctl into ./bin
#   make test    install test dependencies, run unit tests and the netns
#                end-to-end tests against the simulated AWS side (root)
#   make demo    bring up the simulated AWS side and cgwd, show traffic
#   make bench   throughput/CPU comparison against strongSwan, wireguard-go
#   make soak    long rekey soak (issue: SA lifecycle), not part of `test`
#   make fuzz    run every Fuzz* target of the module in turn, FUZZTIME each

SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/cgwproject/cgw/internal/version.v=$(VERSION)
BIN     := $(CURDIR)/bin
export CGW_BIN := $(BIN)

.PHONY: all build deps test unit e2e demo bench soak fuzz docker-check clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/cgwd ./cmd/cgwctl

deps:
	bash test/deps.sh

unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

e2e: build
	$(GO) test -count=1 -tags e2e -timeout 45m -v ./test/e2e/

test: deps build unit e2e docker-check

demo: deps build
	$(GO) run ./test/demo $(DEMO_FLAGS)

bench: deps build
	$(GO) run ./test/bench $(BENCH_FLAGS)

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

clean:
	rm -rf $(BIN)
