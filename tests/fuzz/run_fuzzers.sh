#!/bin/bash
# Runs libFuzzer harnesses on their committed seed corpora.
#   tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS [NAME...]   (default: every fuzz_* in BUILD_DIR)
# New inputs go to a scratch corpus (never into the source tree); crashes, leaks and timeouts are
# saved under BUILD_DIR/fuzz-artifacts/ and make the script fail. One line per fuzzer:
# executions, coverage (cov = edges, ft = features), corpus size.
set -u
build=${1:?usage: run_fuzzers.sh BUILD_DIR SECONDS [NAME...]}
seconds=${2:?usage: run_fuzzers.sh BUILD_DIR SECONDS [NAME...]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for bin in "$build"/tests/fuzz/fuzz_*; do
        [ -x "$bin" ] && names+=("$(basename "$bin" | sed 's/^fuzz_//')")
    done
fi
[ ${#names[@]} -gt 0 ] || { echo "run_fuzzers: no fuzz_* binaries in $build/tests/fuzz" >&2; exit 1; }
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
export NMF_THREADS=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for name in "${names[@]}"; do
    bin="$build/tests/fuzz/fuzz_$name"
    base=${name%_nocrc} # the CRC-bypassing variant shares its reader's seeds and dictionary
    seeds="$here/corpus/$base"
    [ -x "$bin" ] || { echo "run_fuzzers: $bin missing" >&2; failed=1; continue; }
    [ -d "$seeds" ] || { echo "run_fuzzers: $seeds missing" >&2; failed=1; continue; }
    scratch=$(mktemp -d)
    dict=()
    [ -f "$here/dict/$base.dict" ] && dict=(-dict="$here/dict/$base.dict")
    log="$artifacts/$name.log"
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "${dict[@]}" \
        "$scratch" "$seeds" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(ls "$scratch" | wc -l)
    rm -rf "$scratch"
    if [ $rc -ne 0 ]; then
        echo "fuzz $name: FAILED (exit $rc) after ${execs:-?} executions; see $log" >&2
        grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -5 >&2
        failed=1
    else
        echo "fuzz $name: ${execs:-?} executions in ${seconds} s, cov ${cov:-?}, ft ${ft:-?}, new corpus ${corpus}, 0 crashes"
    fi
done
exit $failed
