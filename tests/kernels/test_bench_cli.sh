#!/bin/bash
# nmformer bench gemm: --help, --quick --json (keys present for every row), the peak of each
# precision, bad options.
set -u
cli="${NMF_CLI:?NMF_CLI not set}"
fail() { echo "test_bench_cli: $*" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$cli" bench gemm --help > "$tmp/help" || fail "--help exit status"
grep -q -- "--json" "$tmp/help" || fail "--help does not mention --json"

# tiny sweep: 2 shapes x 1 token count x 2 patterns = 4 rows
"$cli" bench gemm --quick --json --reps 3 --threads 1 --tokens 3 --patterns dense,2:4 \
    > "$tmp/out.json" 2> "$tmp/err" || { cat "$tmp/err" >&2; fail "--quick --json failed"; }
rows=$(grep -c '"pattern":' "$tmp/out.json")
[ "$rows" -eq 4 ] || fail "expected 4 rows, got $rows"
for key in out in tokens pattern threads ms ms_min speedup_vs_best_dense best_dense_ms best_dense_backend gflops_dense_equiv \
           gflops_useful weight_bytes bytes_ratio kernel peak_gflops frac_peak; do
    n=$(grep -c "\"$key\":" "$tmp/out.json")
    [ "$n" -eq 4 ] || fail "key $key appears $n times, expected 4"
done
head -c 1 "$tmp/out.json" | grep -q '\[' || fail "output is not a JSON array"
tail -n 1 "$tmp/out.json" | grep -q '\]' || fail "JSON array not closed"
grep -q '"pattern":[[:space:]]*"2:4"' "$tmp/out.json" || fail "no 2:4 row"
grep -q '"threads":[[:space:]]*1' "$tmp/out.json" || fail "threads not recorded"
# every ms is a positive number
if grep -E '"ms":[[:space:]]*(0[,}]|-|0\.0+[,}]|null)' "$tmp/out.json"; then fail "non-positive ms"; fi

# --precision: each pattern, dense too, once per precision (4 rows), each row names its
# precision and the kernel that ran it
"$cli" bench gemm --json --reps 3 --threads 1 --shapes 32x64 --tokens 3 --patterns dense,2:4 \
    --precision f32,int8 > "$tmp/prec.json" || fail "--precision f32,int8 failed"
[ "$(grep -c '"pattern":' "$tmp/prec.json")" -eq 4 ] || fail "--precision: expected 4 rows"
[ "$(grep -c '"precision":[[:space:]]*"int8"' "$tmp/prec.json")" -eq 2 ] || fail "no int8 rows"
grep -Eq '"kernel":[[:space:]]*"(avx512|avx2|scalar)-int8"' "$tmp/prec.json" || fail "int8 kernel name"
grep -Eq '"kernel":[[:space:]]*"(avx512-dense|avx2-dense|scalar)-int8"' "$tmp/prec.json" ||
    fail "dense int8 kernel name"
# at NMF_ISA=avx2 a dense int8 layer runs the dense AVX2 kernel (scalar on CPUs without AVX2)
NMF_ISA=avx2 "$cli" bench gemm --json --reps 3 --threads 1 --shapes 32x64 --tokens 3 \
    --patterns dense --precision int8 > "$tmp/prec2.json" || fail "NMF_ISA=avx2 int8 failed"
grep -Eq '"kernel":[[:space:]]*"(avx2-dense|scalar)-int8"' "$tmp/prec2.json" ||
    fail "dense int8 kernel name at NMF_ISA=avx2"
# int8 rows are reported against the int8 multiply-add peak, f32 rows against the FMA peak: one
# peak per precision, and every row's fraction is its useful rate over its own peak
python3 - "$tmp/prec.json" <<'PY' || fail "--precision f32,int8: peaks per precision"
import json, sys
rows = json.load(open(sys.argv[1]))
peak = {}
for r in rows:
    assert r["peak_gflops"] > 0 and r["frac_peak"] > 0, r
    assert abs(r["frac_peak"] * r["peak_gflops"] - r["gflops_useful"]) <= 1e-6 * r["gflops_useful"], r
    peak.setdefault(r["precision"], set()).add(r["peak_gflops"])
assert len(peak["f32"]) == 1 and len(peak["int8"]) == 1, peak
assert peak["f32"] != peak["int8"], peak
PY
"$cli" bench gemm --reps 3 --threads 1 --shapes 32x64 --tokens 3 --patterns 2:4 --precision int8 \
    > "$tmp/prec_table" || fail "int8 table run failed"
grep -Eq 'measured int8 multiply-add peak [0-9]+\.[0-9] GOP/s' "$tmp/prec_table" ||
    fail "int8 table: no int8 peak in the header"
"$cli" bench gemm --precision f16 > /dev/null 2> "$tmp/err" && fail "--precision f16 accepted"
grep -q "bad list" "$tmp/err" || fail "--precision f16: no clear error"

# the table form has a header and one line per row
"$cli" bench gemm --shapes 32x64 --tokens 1,5 --patterns 1:4 --reps 3 > "$tmp/table" \
    || fail "table run failed"
[ "$(grep -c '1:4' "$tmp/table")" -eq 2 ] || fail "table rows"
grep -Eq 'measured FMA peak [0-9]+\.[0-9] GFLOP/s' "$tmp/table" || fail "header lacks the peak"
if grep -q 'int8 multiply-add peak' "$tmp/table"; then fail "an f32 run measured the int8 peak"; fi
grep -q '% peak' "$tmp/table" || fail "no % peak column"
# the peak is a positive figure and every fraction of it is positive
if grep -E '"(peak_gflops|frac_peak)":[[:space:]]*(0[,}]|-|null)' "$tmp/out.json"; then
    fail "non-positive peak or fraction"
fi

# bad input: one line on stderr, non-zero status
for args in "--patterns 4:4" "--shapes 0x768" "--tokens abc" "--threads" "--bogus" \
            "--shapes 768" "--reps -3"; do
    if "$cli" bench gemm $args > /dev/null 2> "$tmp/err"; then fail "accepted: $args"; fi
    [ "$(wc -l < "$tmp/err")" -ge 1 ] || fail "no message for: $args"
done
echo "test_bench_cli: ok"
