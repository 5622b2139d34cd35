#!/usr/bin/env bash
# In-process A/B of the AVX-512 N:M kernels of this tree (src/kernels/spmm_tv_avx512.c, the
# token-vectorised kernel, src/kernels/spmm_avx512.c, the panel kernel, and
# src/kernels/spmm_q8_avx512.c, the int8 kernels, N:M and dense) against a git revision's: compiles the revision's two files with their entry points renamed (old_*), links
# them with bench/ab_spmm.c and BUILD/libnmformer.a (this tree, built first), and runs the cells,
# each alternating old and new call by call (a shared host's noise hits both alike).
#   bash bench/ab_spmm.sh REV [BUILD_DIR]
# The revision's files are compiled against this tree's headers: a REV whose kernels read a
# different layout fails to compile, or shows "OUTPUTS DIFFER" (each cell checks the bits).
# Environment: CELLS, ';'-separated ab_spmm arguments (default: the cells of docs/PERFORMANCE.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rev=${1:?usage: bash bench/ab_spmm.sh REV [BUILD_DIR]}
build=${2:-$root/build}
[ -f "$build/libnmformer.a" ] ||
  { echo "ab_spmm: no $build/libnmformer.a (build first)" >&2; exit 1; }
grep -qw avx512vbmi /proc/cpuinfo || { echo "ab_spmm: needs an AVX-512 CPU" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cflags="-O3 -DNDEBUG -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fopenmp
  -I$root/src -I$root/include -I$build/include"
isa="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx512vnni -mavx512vbmi -mfma"
git -C "$root" show "$rev:src/kernels/spmm_tv_avx512.c" > "$work/old_tv.c"
git -C "$root" show "$rev:src/kernels/spmm_avx512.c" > "$work/old_panel.c"
git -C "$root" show "$rev:src/kernels/spmm_q8_avx512.c" > "$work/old_q8.c"
# every external symbol of the old files renamed, so that they sit beside the library's
gcc $cflags $isa -c "$work/old_tv.c" -o "$work/old_tv.o" \
  -Dnmf_spmm_forward_tv_xt_avx512=old_tv_forward \
  -Dnmf_spmm_forward_tv_xt_xt_avx512=old_tv_forward_xt \
  -Dnmf_spmm_tv_transpose_avx512=old_tv_transpose -Dnmf_spmm_tv_avx512_supports=old_tv_supports
gcc $cflags $isa -c "$work/old_panel.c" -o "$work/old_panel.o" \
  -Dnmf_spmm_forward_avx512=old_panel_forward -Dnmf_spmm_backward_avx512=old_panel_backward
gcc $cflags $isa -c "$work/old_q8.c" -o "$work/old_q8.o" \
  -Dnmf_q8_forward_avx512=old_q8_forward -Dnmf_q8_forward_dense_avx512=old_q8_forward_dense \
  -Dnmf_q8_quantize_tokens_avx512=old_q8_quantize
# the libraries the CLI links (CMake's own link line)
libs=$(sed -e 's/.*-o tv_sweep//' -e 's/ libnmformer\.a//' \
  "$build/CMakeFiles/tv_sweep.dir/link.txt")
gcc $cflags "$root/bench/ab_spmm.c" "$work/old_tv.o" "$work/old_panel.o" "$work/old_q8.o" -o "$work/ab_spmm" \
  "$build/libnmformer.a" $libs

default="tv 768x768 2:8 128;tv 768x768 1:8 128;tv 3072x768 2:8 128;tv 3072x768 1:8 128;\
tv 768x3072 2:8 128;tv 768x3072 1:8 128;tv 384x384 2:8 128;tv 1536x384 2:8 128;\
tv 384x1536 1:8 128;tv 768x768 2:4 128;tv 1536x384 2:4 197;\
panel 768x768 2:4 16;panel 768x768 4:8 16;panel 768x768 2:8 16;panel 768x768 1:8 16;\
panel 768x768 3:7 16;panel 768x768 2:4 32;panel 768x768 2:4 64;panel 768x768 2:4 197;\
panel 768x768 1:8 197;\
q8 768x768 dense 128;q8 1536x384 dense 197;q8 768x768 2:8 128;q8 1536x384 1:8 197"
echo "# ab_spmm: $rev (old) vs the working tree (new), $(date -u '+%Y-%m-%d %H:%M UTC'),\
 load $(cut -d' ' -f1 /proc/loadavg); cpu:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
IFS=';' read -ra cells <<< "${CELLS:-$default}"
for c in "${cells[@]}"; do
  # shellcheck disable=SC2086
  "$work/ab_spmm" $c
done
