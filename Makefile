# Confine — build, test, run and benchmark.
# Every target installs the Debian packages it needs (as root) or names them (otherwise).

SWIFT        ?= swift
CONFIGURATION ?= debug
DEB_BUILD    := libseccomp-dev libsqlite3-dev pkg-config
DEB_RUNTIME  := bash python3 python3-venv coreutils curl
DEB_BENCH    := hyperfine bubblewrap wrk
BIN          := .build/$(CONFIGURATION)/confine

.PHONY: all deps build test test-cgroup2 run demo bench chaos chaos-postgres soak clean ui screenshots

all: build

deps:
	@scripts/ensure-deps.sh $(DEB_BUILD) $(DEB_RUNTIME)

build: deps
	$(SWIFT) build -c $(CONFIGURATION)

# The whole suite: containment tests run real hostile scripts under real limits (root needed
# for namespaces and cgroups; where the host lacks a feature the test says so and skips).
# Sandboxes run at the server's CPU weight during the tests (CONFINE_SANDBOX_CPU_WEIGHT=100): the
# test runner is the busiest "server" there is, and sandboxed tests' deadlines must measure the
# sandbox, not the runner's own load. Then the API's conformance: the OpenAPI document validated, every response the API tests got
# checked against it, a Python client generated from it (openapi-python-client) running a short
# script, and a bounded schemathesis run against a real server (zero 5xx allowed). Then the
# dashboard in headless Chromium (Debian's chromium + chromium-driver, Selenium from PyPI; about
# 20 s once installed): sign in, create, run and watch a job, cancel, a 422, an XSS probe.
# The tests run beside a throwaway PostgreSQL cluster (scripts/with-postgres.sh: initdb in a
# temporary folder, a unix socket there, removed at the end; Debian's postgresql installed when
# missing): the store suite runs against SQLite and PostgreSQL both, then the API suite once
# more with its servers on PostgreSQL (CONFINE_TEST_STORE=postgres), beside three real nodes.
API_RECORD   := .build/api-exchanges.jsonl

test: deps
	$(SWIFT) build --build-tests
	@rm -f $(API_RECORD)
	CONFINE_API_RECORD=$(CURDIR)/$(API_RECORD) CONFINE_SANDBOX_CPU_WEIGHT=100 CONFINE_TEST_SECRET=hunter2 \
	  scripts/with-postgres.sh sh -c '$(SWIFT) test --skip-build && CONFINE_TEST_STORE=postgres $(SWIFT) test --skip-build --filter "APITests|MultiNodeTests"'
	@scripts/check-leftovers.sh
	@scripts/api-check/check-all.sh .build/debug/confine $(API_RECORD)
	@scripts/browser/run.sh .build/debug/confine
	@scripts/cgroup2-guest/run.sh --optional

# The Sandbox and Engine suites, `confine doctor` and a `confine serve` end-to-end check on a
# real cgroup v2 kernel: Debian's linux-image-amd64 booted under QEMU (KVM; TCG emulation where
# the host's KVM cannot boot it) with this machine's root shared read-only, cgroup2 the only
# hierarchy. A failing guest stage fails the target; every stage has a timeout. CGROUP2_BENCH=1
# also runs the launch benchmark in the guest (build it first: swift build -c release --product
# confine-bench). See scripts/cgroup2-guest/run.sh.
test-cgroup2: deps
	$(SWIFT) build --build-tests
	@scripts/cgroup2-guest/run.sh

# The server on its embedded SQLite default (./var/confine.sqlite), on 127.0.0.1:8000; the
# dashboard at http://127.0.0.1:8000/ui/, API docs at /docs. Ctrl-C stops it gracefully.
run: build
	$(BIN) serve

# The dashboard's files (ui/) compiled into the binary: regenerates Sources/API/DashboardAssets.swift
# (the tests fail while it differs from ui/).
ui:
	@python3 scripts/embed-ui.py

# The README's screenshots of the dashboard (docs/screenshots/*.png), taken by the browser tests.
screenshots: build
	@mkdir -p docs/screenshots
	@scripts/browser/run.sh $(BIN) --screenshots $(CURDIR)/docs/screenshots

# A few programs under the shipped policies: what the sandbox allows, refuses and reports.
demo: build
	@scripts/demo.sh $(BIN)

bench: deps
	@scripts/ensure-deps.sh $(DEB_BENCH) || echo "bench: comparison tools unavailable; measuring Confine alone" >&2
	$(SWIFT) build -c release --product confine-spawner
	$(SWIFT) build -c release --product confine-bench
	.build/release/confine-bench
	$(SWIFT) build -c release --product confine
	@scripts/bench-api.sh .build/release/confine
	@scripts/bench-follow.sh .build/release/confine
	@scripts/with-postgres.sh python3 scripts/bench-nodes.py .build/release/confine

# kill -9 of confine serve, 20 times at random points under a steady submission load: every
# execution a client was given an id for must be found and end with a true reason, and nothing
# of a dead server (sandbox processes, run cgroups, mounts, temporary files) may survive the
# restart's cleanup (scripts/chaos.py says what it checks; CHAOS_CYCLES, CHAOS_SEED, CHAOS_KEEP=1).
chaos: build
	@python3 scripts/chaos.py $(BIN)

# The same with three nodes on one throwaway PostgreSQL database: each cycle kills one node
# (scripts/chaos.py, PostgreSQL mode).
chaos-postgres: build
	@CHAOS_POSTGRES=1 scripts/with-postgres.sh python3 scripts/chaos.py $(BIN)

# A steady mix of hostile and ordinary scripts for SOAK_SECONDS (180): the server's memory,
# descriptors and threads at the start and the end (bounds stated in scripts/soak.py),
# executions per second over time, and zero lost executions.
soak: build
	@python3 scripts/soak.py $(BIN)

clean:
	rm -rf .build
