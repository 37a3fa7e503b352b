# nines: the two commands are `make demo` and `make test` (README.md).
SHELL := /bin/bash
JOBS ?= $(shell nproc)
# ccache hits across clones in different folders (CI clones afresh each time).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps build test test-release test-asan test-e2e test-fuzz demo bench format clean

all: build

deps:
	@scripts/install-deps.sh build

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

# Every test: unit and integration tests in release and under ASan+UBSan, the end-to-end tests
# with the official openai npm SDK, and a short fuzzing run of each parser.
test:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory test-release test-asan test-e2e test-fuzz

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

format:
	@clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.hpp' 'tests/*.cpp' 'tests/*.hpp')

clean:
	rm -rf build build-debug build-asan
