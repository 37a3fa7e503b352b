# nines: the two commands are `make demo` and `make test` (README.md).
SHELL := /bin/bash
JOBS ?= $(shell nproc)
# ccache hits across clones in different folders (CI clones afresh each time).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps build test test-release test-asan test-e2e test-fuzz demo bench reliability \
	reliability-quick format clean

all: build

deps:
	@scripts/install-deps.sh build

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

# Every test: unit and integration tests in release and under ASan+UBSan, the end-to-end tests
# with the official openai npm SDK, a short fuzzing run of each parser, and every reliability
# scenario through nines in its quick form (fails when nines misses an objective).
test:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory test-release test-asan test-e2e test-fuzz reliability-quick

test-release: build
	@ctest --preset release -j 2

test-asan:
	@cmake --preset asan-ubsan >/dev/null
	@cmake --build --preset asan-ubsan -j $(JOBS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --preset asan-ubsan -j 2

test-e2e: build
	@cd tests/e2e && npm test

# libFuzzer targets for the parsers that read outside bytes, FUZZ_SECONDS (20) each.
test-fuzz:
	@tests/fuzz/run.sh

demo: build
	@scripts/demo.sh

bench:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory build
	@bench/run.sh
	@bench/tls.sh | tee -a bench/results/latest.md
	@bench/lean.sh
	@bench/soak.sh
	@bench/edge.sh
	@bench/uploads.sh
	@bench/cache.sh
	@bench/devices.sh
	@bench/devices_blinks.sh
	@bench/devices_soak.sh
	@bench/agent_sim.sh
	@bench/shared_journal.sh

# The scenario suite through nines, nginx and HAProxy side by side: docs/reliability.md and .json.
reliability:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory build
	@build/nines scenario bench/scenarios/*.toml --proxies nines,nginx,haproxy \
	  --markdown docs/reliability.md --json docs/reliability.json

# Each scenario in its short form (under 20 s), through nines only: part of `make test`.
reliability-quick: build
	@build/nines scenario bench/scenarios/*.toml --quick --proxies nines \
	  --markdown build/reliability-quick.md --json build/reliability-quick.json

format:
	@clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.hpp' 'tests/*.cpp' 'tests/*.hpp')

clean:
	rm -rf build build-debug build-asan
