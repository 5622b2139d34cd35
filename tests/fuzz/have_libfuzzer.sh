#!/bin/bash
# Exit 0 when clang can build a libFuzzer harness here (clang + libclang-rt-14-dev), 1 otherwise.
command -v clang >/dev/null 2>&1 || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$tmp/h.c"
clang -fsanitize=fuzzer "$tmp/h.c" -o "$tmp/h" >/dev/null 2>&1
