# Thin wrapper over CMake so that the quick start is `make run` and `make test`.
BUILD      ?= build
BUILD_SAN  ?= build-sanitize
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?= --output-on-failure -j $(JOBS)

.PHONY: all setup build test test-release test-sanitize test-fuzz-smoke fuzz run clean

all: build

setup:
	@bash scripts/setup.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD_SAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DNMF_SANITIZE=ON

# The whole suite twice: once optimised, once under ASan+UBSan; then every fuzzer for a few
# seconds on its seed corpus (skipped with a message where clang/libFuzzer are missing).
test: setup
	$(MAKE) test-release
	$(MAKE) test-sanitize
	$(MAKE) test-fuzz-smoke

test-release: build
	cd $(BUILD) && ctest $(CTEST_ARGS)

test-sanitize: $(BUILD_SAN)/CMakeCache.txt
	cmake --build $(BUILD_SAN) -j $(JOBS)
	cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 NMF_SANITIZED=1 ctest $(CTEST_ARGS)

# libFuzzer harnesses (tests/fuzz/): clang + ASan + UBSan, a build tree of their own.
$(BUILD_FUZZ)/CMakeCache.txt:
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNMF_FUZZ=ON -DNMF_WERROR=OFF

test-fuzz-smoke:
	@if bash tests/fuzz/have_libfuzzer.sh; then \
	  $(MAKE) $(BUILD_FUZZ)/CMakeCache.txt && cmake --build $(BUILD_FUZZ) --target fuzzers -j $(JOBS) && \
	  cd $(BUILD_FUZZ) && ctest -L fuzz $(CTEST_ARGS); \
	else echo "fuzz smoke: skipped (needs clang and libclang-rt-14-dev: scripts/setup.sh --fuzz)"; fi

# Every fuzzer for FUZZ_SECONDS, one after the other (make fuzz FUZZ_SECONDS=N).
fuzz:
	@bash scripts/setup.sh --fuzz
	$(MAKE) $(BUILD_FUZZ)/CMakeCache.txt
	cmake --build $(BUILD_FUZZ) --target fuzzers -j $(JOBS)
	bash tests/fuzz/run_fuzzers.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

run: setup build
	@bash scripts/run_main.sh $(BUILD)/nmformer

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ) out
