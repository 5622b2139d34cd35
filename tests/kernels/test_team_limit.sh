#!/bin/bash
# Products planned for two threads whose OpenMP team comes out smaller (OMP_THREAD_LIMIT, or
# OMP_DYNAMIC): the token-vectorised forward and the chained MLP, planned to give each thread its
# own transposed x, fall back to one shared xT in the same scratch, and the int8 products too.
# The kernel tests run again under a team limit of one thread (test_mlp also of two, for its
# three-thread case): the same checks must pass.
set -u
build="${NMF_BUILD_DIR:?NMF_BUILD_DIR not set}"
fail=0
for run in "kernels_test_spmm 1" "kernels_test_mlp 1" "kernels_test_mlp 2" "kernels_test_lowprec 1"; do
  set -- $run
  [ -x "$build/$1" ] || { echo "test_team_limit: no $build/$1"; exit 1; }
  if OMP_THREAD_LIMIT=$2 "$build/$1" > /tmp/nmf_team_limit.$$ 2>&1; then
    echo "ok: $1 with OMP_THREAD_LIMIT=$2"
  else
    echo "FAIL: $1 with OMP_THREAD_LIMIT=$2"; tail -n 5 /tmp/nmf_team_limit.$$; fail=1
  fi
done
rm -f /tmp/nmf_team_limit.$$
exit $fail
