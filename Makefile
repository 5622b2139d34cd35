# Thin wrapper over CMake so that the quick start is `make run` and `make test`.
BUILD      ?= build
BUILD_SAN  ?= build-sanitize
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?= --output-on-failure -j $(JOBS)

.PHONY: all setup build test test-release test-sanitize run clean

all: build

setup:
	@bash scripts/setup.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD_SAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DNMF_SANITIZE=ON

# The whole suite twice: once optimised, once under ASan+UBSan.
test: setup
	$(MAKE) test-release
	$(MAKE) test-sanitize

test-release: build
	cd $(BUILD) && ctest $(CTEST_ARGS)

test-sanitize: $(BUILD_SAN)/CMakeCache.txt
	cmake --build $(BUILD_SAN) -j $(JOBS)
	cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 NMF_SANITIZED=1 ctest $(CTEST_ARGS)

run: setup build
	@bash scripts/run_main.sh $(BUILD)/nmformer

clean:
	rm -rf $(BUILD) $(BUILD_SAN) out
