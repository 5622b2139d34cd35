#!/bin/bash
# The dense backend choice: --version names it, NMF_GEMM forces it (the library and the gemm
# test honour it), an unknown value is a usage error of the CLI (exit 2, one line naming it).
set -u
cli="${NMF_CLI:?NMF_CLI not set}"
build="${NMF_BUILD_DIR:?NMF_BUILD_DIR not set}"
fail() { echo "test_gemm_backend: $*" >&2; exit 1; }

v=$(NMF_GEMM= "$cli" --version) || fail "--version exit status"
echo "$v" | grep -Eq 'dense: (onednn|openblas), ' || fail "--version does not name the dense backend: $v"

v=$(NMF_GEMM=openblas "$cli" --version 2>/dev/null) || fail "--version with NMF_GEMM=openblas"
echo "$v" | grep -q 'dense: openblas, OpenBLAS ' || fail "NMF_GEMM=openblas not honoured: $v"

err=$(NMF_GEMM=bogus "$cli" --version 2>&1 >/dev/null)
rc=$?
[ $rc -eq 2 ] || fail "NMF_GEMM=bogus: exit $rc, want 2"
[ "$(echo "$err" | wc -l)" -eq 1 ] && echo "$err" | grep -q "NMF_GEMM='bogus'" ||
    fail "NMF_GEMM=bogus: want one line naming it: $err"

# the whole gemm test on each backend forced (the default run is its own ctest), and the layer
# tests whose dense layers store their weights as that backend wants them (W on OpenBLAS, W^T on
# oneDNN: linear.c dense_layout_for): forward, backward and bf16 conversion against references
for be in openblas onednn; do
    if [ "$be" = onednn ] && ! NMF_GEMM= "$cli" --version | grep -q 'dense: onednn'; then
        echo "test_gemm_backend: oneDNN not built in, skipped"; continue
    fi
    for t in gemm spmm lowprec; do
        NMF_GEMM=$be "$build/kernels_test_$t" > /dev/null || fail "test_$t with NMF_GEMM=$be"
    done
done
echo "test_gemm_backend: ok"
