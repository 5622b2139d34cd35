#!/bin/bash
# bench/model_vs_peers.py, ours only (--peers none: needs neither torch nor ONNX Runtime), so the
# script cannot silently rot: the table has one row per pattern, the header names the CPU and our
# build, --json carries the same rows, and bad options are refused with a message.
set -u
cli="${NMF_CLI:?NMF_CLI not set}"
src="${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}"
script="$src/bench/model_vs_peers.py"
py=/usr/bin/python3
[ -x "$py" ] || py="$(command -v python3)" || { echo "test_peers_script: no python3" >&2; exit 1; }
fail() { echo "test_peers_script: $*" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

run() { "$py" "$script" --nmformer "$cli" --peers none --shape deit-tiny --reps 1 --batch 1 --threads 1 "$@"; }

# The default patterns; under ASan+UBSan (NMF_SANITIZED=1) two of them, as setting up an N:M model
# there takes 5-20 s each and the script under test is the same.
patterns="dense 2:4 2:8 1:8"; pattern_args=()
if [ "${NMF_SANITIZED:-0}" = 1 ]; then patterns="dense 1:8"; pattern_args=(--pattern dense,1:8); fi
run "${pattern_args[@]}" > "$tmp/table" 2> "$tmp/err" || { cat "$tmp/err" >&2; fail "--peers none run failed"; }
grep -q '^# cpu: ' "$tmp/table" || fail "no cpu header line"
grep -q '^# ours: nmformer ' "$tmp/table" || fail "no nmformer --version header line"
grep -q '^# note: no peers' "$tmp/table" || fail "no note that the peers were left out"
grep -q '^engine .*ms/image .*images/s .*vs fastest peer' "$tmp/table" || fail "no column header"
for p in $patterns; do
    n=$(grep -cE "^nmformer +deit-tiny/$p +1 +1 +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]+ " "$tmp/table")
    [ "$n" -eq 1 ] || fail "expected one deit-tiny/$p row at 1 thread, batch 1; got $n"
done
n=$(grep -c '^nmformer ' "$tmp/table"); [ "$n" -eq $(echo $patterns | wc -w) ] || fail "$n rows for: $patterns"
if grep -E '^nmformer .* 0\.00 ' "$tmp/table"; then fail "a zero time"; fi

# --json: the same rows, positive times, images/s consistent with ms/image, no baseline
run --pattern dense --json > "$tmp/out.json" || fail "--json run failed"
"$py" - "$tmp/out.json" <<'PY' || fail "--json content"
import json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
assert [r["pattern"] for r in rows] == ["dense"], rows
for r in rows:
    assert r["engine"] == "nmformer" and r["threads"] == 1 and r["batch"] == 1, r
    assert r["latency_ms"] > 0 and abs(r["images_per_s"] * r["ms_per_image"] - 1e3) < 1e-6 * 1e3, r
    assert r["speedup_vs_fastest_peer"] is None, r
assert any(h.startswith("cpu: ") for h in d["header"]), d["header"]
PY

# --precision: ours at each precision, the rows named and tagged by it (int8: "@int8")
run --pattern dense --precision f32,int8 --json > "$tmp/prec.json" || fail "--precision run failed"
"$py" - "$tmp/prec.json" <<'PY' || fail "--precision content"
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
got = sorted((r["precision"], r["model"]) for r in rows)
assert got == [("f32", "deit-tiny/dense"), ("int8", "deit-tiny/dense@int8")], got
assert all(r["latency_ms"] > 0 and r["speedup_vs_fastest_peer"] is None for r in rows), rows
PY

# bad input: a message on stderr and a non-zero status, never a traceback
for args in "--peers bogus" "--threads 0" "--batch x" "--reps 0" "--shape deit-huge" \
            "--precision fp8" "--nmformer $tmp/missing"; do
    if "$py" "$script" --nmformer "$cli" --peers none $args > /dev/null 2> "$tmp/err"; then
        fail "accepted: $args"
    fi
    [ -s "$tmp/err" ] || fail "no message for: $args"
    if grep -q Traceback "$tmp/err"; then cat "$tmp/err" >&2; fail "traceback for: $args"; fi
done
echo "test_peers_script: ok"
