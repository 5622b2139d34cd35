# NMF_FUZZ=ON: the whole build instrumented for libFuzzer + ASan + UBSan (clang only; the f32 N:M
# kernel files without ASan: CMakeLists.txt says why). Included
# from the top-level CMakeLists.txt before any target so the library is instrumented too; the
# harnesses themselves are in tests/fuzz/CMakeLists.txt. Driven by `make fuzz` / `make test`.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "NMF_FUZZ needs clang (configure with CC=clang; Debian: clang, libclang-rt-14-dev)")
endif()
include(CheckCSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
check_c_source_compiles("#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }" NMF_HAVE_LIBFUZZER)
unset(CMAKE_REQUIRED_FLAGS)
if(NOT NMF_HAVE_LIBFUZZER)
  message(FATAL_ERROR "clang cannot link -fsanitize=fuzzer (Debian: libclang-rt-14-dev)")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                    -fno-omit-frame-pointer -g)
add_link_options(-fsanitize=address,undefined)
