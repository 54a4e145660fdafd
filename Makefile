# Confine — build, test, run and benchmark.
# Every target installs the Debian packages it needs (as root) or names them (otherwise).

SWIFT        ?= swift
CONFIGURATION ?= debug
DEB_BUILD    := libseccomp-dev libsqlite3-dev pkg-config
DEB_RUNTIME  := bash python3 coreutils
DEB_BENCH    := hyperfine bubblewrap
BIN          := .build/$(CONFIGURATION)/confine

.PHONY: all deps build test run demo bench clean

all: build

deps:
	@scripts/ensure-deps.sh $(DEB_BUILD) $(DEB_RUNTIME)

build: deps
	$(SWIFT) build -c $(CONFIGURATION)

# The whole suite: containment tests run real hostile scripts under real limits (root needed
# for namespaces and cgroups; where the host lacks a feature the test says so and skips).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	@scripts/check-leftovers.sh

# The server on its embedded SQLite default (./var/confine.sqlite), on 127.0.0.1:8000; API
# docs at http://127.0.0.1:8000/docs. Ctrl-C stops it gracefully.
run: build
	$(BIN) serve

# A few programs under the shipped policies: what the sandbox allows, refuses and reports.
demo: build
	@scripts/demo.sh $(BIN)

bench: deps
	@scripts/ensure-deps.sh $(DEB_BENCH) || echo "bench: comparison tools unavailable; measuring Confine alone" >&2
	$(SWIFT) build -c release --product confine-bench
	.build/release/confine-bench

clean:
	rm -rf .build
