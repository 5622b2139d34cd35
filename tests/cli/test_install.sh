#!/bin/bash
# The installed library as a user gets it: `cmake --install` into a temporary prefix, then a small
# program (tests/install/consumer.c) built four ways: pkg-config shared and static (--static), and
# find_package(nmformer) shared and static (nmformer_USE_STATIC_LIBS). Each must link the library
# it asked for and run a real 2:4 product. The shared library must be libnmformer.so.0 and export
# exactly the functions the installed headers declare (all nmf_, nothing internal); every public
# declaration must carry NMF_API (scripts/check_api.sh); each header must compile on its own.
set -u
src="${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}"
build="${NMF_BUILD_DIR:?NMF_BUILD_DIR not set}"
fail() { echo "test_install: $*" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cc="${CC:-cc}"
# Under ASan+UBSan (NMF_SANITIZED=1) the library is instrumented, so its users must be too.
san=""
if [ "${NMF_SANITIZED:-0}" = 1 ]; then san="-fsanitize=address,undefined"; fi

bash "$src/scripts/check_api.sh" > "$tmp/api" ||
    { cat "$tmp/api" >&2; fail "public functions without NMF_API"; }

prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }
for f in nmformer.h export.h version.h core.h nm.h kernels.h; do
    [ -f "$prefix/include/nmformer/$f" ] || fail "include/nmformer/$f not installed"
done
pc="$(find "$prefix" -name nmformer.pc)"; [ -n "$pc" ] || fail "no nmformer.pc installed"
libdir="$(dirname "$(dirname "$pc")")"
[ -f "$libdir/libnmformer.a" ] || fail "no libnmformer.a next to nmformer.pc"
[ -f "$libdir/cmake/nmformer/nmformerConfig.cmake" ] || fail "no CMake package in $libdir/cmake"
so="$libdir/libnmformer.so.0"; [ -e "$so" ] || fail "no libnmformer.so.0"
soname="$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$soname" = libnmformer.so.0 ] || fail "SONAME is '$soname', expected libnmformer.so.0"

# The version: one value in version.h, nmf_version(), the CLI, the .pc file and the CMake package.
ver="$(sed -n 's/^#define NMF_VERSION_STRING "\(.*\)"$/\1/p' "$prefix/include/nmformer/version.h")"
[[ "$ver" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "installed version.h: NMF_VERSION_STRING '$ver'"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
[ "$(pkg-config --modversion nmformer)" = "$ver" ] || fail "nmformer.pc version is not $ver"
"$prefix/bin/nmformer" --version 2>/dev/null | grep -q "^nmformer $ver " ||
    fail "nmformer --version does not say $ver"

# Exports: exactly the declared functions (so nothing internal, and nothing public left hidden).
nm -D --defined-only "$so" | awk '{print $NF}' | sort > "$tmp/exported"
bash "$src/scripts/check_api.sh" --names "$prefix"/include/nmformer/*.h | sort > "$tmp/declared"
bad="$(grep -v '^nmf_' "$tmp/exported")"
[ -z "$bad" ] || fail "libnmformer.so exports names without the nmf_ prefix: $(echo $bad)"
[ "$(wc -l < "$tmp/declared")" -gt 100 ] || fail "check_api.sh --names found too few declarations"
diff "$tmp/declared" "$tmp/exported" > "$tmp/diff" ||
    { sed 's/^</declared, not exported:/; s/^>/exported, not declared:/' "$tmp/diff" >&2;
      fail "export table differs from the public headers"; }

# Each installed header stands alone (C11, pedantic), and the umbrella one also compiles as C++.
for h in "$prefix"/include/nmformer/*.h; do
    printf '#include <nmformer/%s>\nint nmf_header_check_;\n' "$(basename "$h")" |
        $cc -std=c11 -pedantic -Wall -Wextra -Werror -I"$prefix/include" -fsyntax-only -x c - ||
        fail "installed $(basename "$h") does not compile on its own"
done
if command -v "${CXX:-c++}" > /dev/null; then
    printf '#include <nmformer/nmformer.h>\nint main() { return nmf_version()[0] == 0; }\n' |
        "${CXX:-c++}" -Wall -Wextra -Werror -I"$prefix/include" -fsyntax-only -x c++ - ||
        fail "<nmformer/nmformer.h> does not compile as C++"
fi

# check_consumer NAME EXE SHARED(1|0): runs a consumer, checks its line and whether it loads the .so.
check_consumer() {
    local name="$1" exe="$2" shared="$3"
    if readelf -d "$exe" | grep -q 'NEEDED.*\[libnmformer\.so\.0\]'; then
        [ "$shared" = 1 ] || fail "$name: linked the shared library, expected the static one"
    else
        [ "$shared" = 0 ] || fail "$name: does not load libnmformer.so.0"
    fi
    LD_LIBRARY_PATH="$libdir" "$exe" > "$tmp/$name.out" 2> "$tmp/$name.err" ||
        { cat "$tmp/$name.err" >&2; fail "$name: the consumer failed"; }
    grep -qx "nmformer $ver: 2:4 product ok (-20.5 76)" "$tmp/$name.out" ||
        fail "$name: unexpected output: $(cat "$tmp/$name.out")"
}

# pkg-config. `-lnmformer` would pick the .so when both are there, so the static build names the
# archive; everything else it needs must come from `pkg-config --static`.
consumer="$src/tests/install/consumer.c"
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Werror $san -o "$tmp/pc_shared" "$consumer" \
    $(pkg-config --cflags --libs nmformer) ||
    fail "pkg-config shared build failed"
check_consumer pc_shared "$tmp/pc_shared" 1
static_libs="$(pkg-config --static --libs nmformer | sed 's/-lnmformer\b/-l:libnmformer.a/')"
# shellcheck disable=SC2046,SC2086
$cc -std=c11 -Wall -Werror $san -o "$tmp/pc_static" "$consumer" \
    $(pkg-config --cflags nmformer) $static_libs ||
    fail "pkg-config --static build failed (libs: $static_libs)"
check_consumer pc_static "$tmp/pc_static" 0

# find_package(nmformer CONFIG): nmformer::nmformer, shared by default, static on request.
for kind in shared static; do
    use_static=OFF; [ $kind = static ] && use_static=ON
    cmake -S "$src/tests/install" -B "$tmp/cm_$kind" -DCMAKE_PREFIX_PATH="$prefix" \
          -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$san" -Dnmformer_USE_STATIC_LIBS=$use_static \
          > "$tmp/cm_$kind.log" 2>&1 &&
        cmake --build "$tmp/cm_$kind" >> "$tmp/cm_$kind.log" 2>&1 ||
        { cat "$tmp/cm_$kind.log" >&2; fail "find_package $kind build failed"; }
    check_consumer "cmake_$kind" "$tmp/cm_$kind/consumer" $([ $kind = shared ] && echo 1 || echo 0)
done
echo "test_install: ok ($ver; $(wc -l < "$tmp/exported") exports)"
