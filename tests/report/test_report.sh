#!/usr/bin/env bash
# `nmformer report` end to end: a run directory (the committed outputs of a real `make run` plus
# the simulator's JSON and trace of a small model, made here by the CLI) -> report.html, checked
# by tests/report/check_report.py (html.parser + xml.etree against the inputs); then a run
# directory with parts missing, hostile names, corrupt files and usage errors.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
SRC=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}
py=/usr/bin/python3
[ -x "$py" ] || py="$(command -v python3)" || { echo "test_report: no python3" >&2; exit 1; }
TMP=$(mktemp -d /tmp/nmf_test_report.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=../cli_lib.sh
. "$SRC/tests/cli_lib.sh"
check() { "$py" "$SRC/tests/report/check_report.py" "$@" || fail "check_report $*"; }

# ---- a whole run directory -------------------------------------------------------------------
run=$TMP/run
mkdir -p "$run"
cp "$SRC"/tests/fixtures/report/*.json "$SRC"/tests/fixtures/report/*.jsonl "$run/"
model=$SRC/tests/fixtures/vit_tiny.safetensors
for p in dense 2:8 1:8; do
  pat=(); [[ $p == dense ]] || pat=(--pattern "$p")
  "$CLI" sim "$model" "${pat[@]}" --hw "$SRC/configs/hw/mid.ini" --no-functional --json \
    --trace "$run/sim_${p/:/-}.trace.json" > "$run/sim_${p/:/-}.json" || fail "sim $p"
done
out=$("$CLI" report "$run" 2>"$TMP/err") || fail "report: exit $?"
[[ $out == "$run/report.html" ]] || fail "report prints '$out', want the path of the page"
[[ ! -s $TMP/err ]] || { fail "warnings with every part present:"; cat "$TMP/err" >&2; }
check "$run/report.html" "$run" --notes 0
grep -q "0.0000 ms" "$run/report.html" && fail "a simulated latency printed as 0"
# -o somewhere else, and - for standard output (the same page)
"$CLI" report "$run" -o "$TMP/other.html" --quiet > "$TMP/out" || fail "report -o"
[[ ! -s $TMP/out ]] || fail "--quiet printed something"
cmp -s "$run/report.html" "$TMP/other.html" || fail "-o wrote a different page"
"$CLI" report "$run" -o - > "$TMP/stdout.html" || fail "report -o -"
cmp -s "$run/report.html" "$TMP/stdout.html" || fail "-o - wrote a different page"
ls "$run" | grep -q '\.tmp' && fail "a temporary file was left behind"

# ---- parts missing: the sections that can be made, a note and a warning for each other -------
part=$TMP/part
mkdir -p "$part"
cp "$run/sim_2-8.json" "$part/"      # a simulation without its trace: no timeline
cp "$run/train_metrics.jsonl" "$part/"
"$CLI" report "$part" > /dev/null 2>"$TMP/err" || fail "report of a partial run: exit $?"
[[ $(grep -c '^nmformer report: warning: ' "$TMP/err") == 2 ]] ||
  { fail "want two warnings (no summary.json, no trace):"; cat "$TMP/err" >&2; }
grep -q 'summary.json' "$TMP/err" && grep -q 'sim_2-8.trace.json' "$TMP/err" ||
  fail "warnings do not name the missing files"
check "$part/report.html" "$part" --notes 3 # the two, and the timeline's own "no timeline" line
grep -q 'id="candidates"' "$part/report.html" && fail "candidates section without summary.json"

# ---- a resumed training log: the repeated steps replace the first ones -----------------------
res=$TMP/resumed
mkdir -p "$res"
for s in 100 200 300 200 300 400; do
  echo "{\"stage\":\"dense\",\"stage_index\":0,\"step\":$s,\"global_step\":$s,\"loss\":$((1000 - s))e-3,\"acc\":0.$s,\"stage_done\":false}"
done > "$res/train_metrics.jsonl"
echo '{"stage":"dense","stage_index":0,"step":400,"global_step":400,"heldout_acc":0.5,"stage_done":true}' >> "$res/train_metrics.jsonl"
"$CLI" report "$res" > /dev/null 2>&1 || fail "report of a resumed log"
check "$res/report.html" "$res"
grep -o 'points="[^"]*"' "$res/report.html" | head -1 | awk '{ if (NF != 4) exit 1 }' ||
  fail "resumed log: the loss line should have 4 points"

# ---- several logs (scripts/idp_compare.sh: one per method): a line per log and stage ---------
meth=$TMP/methods
mkdir -p "$meth"
cp "$SRC/tests/fixtures/report/train_metrics.jsonl" "$meth/idp_m8.jsonl"
grep -v '"stage_index":[23]' "$SRC/tests/fixtures/report/train_metrics.jsonl" > "$meth/srste_m8.jsonl"
"$CLI" report "$meth" > /dev/null 2>&1 || fail "report of several logs"
check "$meth/report.html" "$meth" --notes 2
grep -q 'srste_m8: 4:8' "$meth/report.html" || fail "several logs: no 'srste_m8: 4:8' in the legend"

# ---- hostile names: shown as text, never as markup; the SVG stays well-formed XML ------------
bad=$TMP/hostile
mkdir -p "$bad"
printf '%s\n' '{"candidates": [' \
  '{"model": "<script>alert(1)</script>", "accuracy": 0.5, "bytes": 1000, "latency_ms": 1.0, "speedup": 1.0},' \
  '{"model": "\"><svg onload=alert(2)>", "accuracy": 0.6, "bytes": 500, "latency_ms": 0.5, "speedup": 2.0},' \
  '{"model": "a\u0001b&c \u00e9", "accuracy": 0.7, "bytes": 250, "latency_ms": 0.25, "speedup": 4.0}]}' \
  > "$bad/summary.json"
printf '{"stage":"<b>x</b>\xff\xfe","stage_index":0,"global_step":1,"loss":1,"acc":0.1}\n' > "$bad/log.jsonl"
printf '{"stage":"<b>x</b>\xff\xfe","stage_index":0,"global_step":2,"loss":0.5,"acc":0.2}\n' >> "$bad/log.jsonl"
"$CLI" report "$bad" > /dev/null 2>&1 || fail "report with hostile names"
check "$bad/report.html" "$bad"
grep -qi '<script' "$bad/report.html" && fail "a <script> from the input reached the page"
grep -q '&lt;script&gt;alert(1)&lt;/script&gt;' "$bad/report.html" || fail "the hostile name is not shown escaped"
grep -qi '<svg onload' "$bad/report.html" && fail "an attribute from the input reached the page"

# ---- corrupt files: one stderr line naming the file and the line, no page -------------------
cor=$TMP/corrupt
mkdir -p "$cor"
printf '{"candidates": [\n  {"model": "dense", "accuracy": 0.9, "bytes": 10},\n  {"model": "2:8" "accuracy": 0.8}\n]}\n' > "$cor/summary.json"
expect_error "summary.json syntax" 'summary.json: line 3, column' -- "$CLI" report "$cor"
[[ -e $cor/report.html ]] && fail "a page was written from a corrupt summary"
printf '{"candidates": [{"model": "dense", "accuracy": "high", "bytes": 10}]}\n' > "$cor/summary.json"
expect_error "summary.json types" 'candidates\[0\].accuracy' -- "$CLI" report "$cor"
printf '{"candidates": [{"model": "dense", "accuracy": 0.9, "bytes": 10}]}\n' > "$cor/summary.json"
head -3 "$SRC/tests/fixtures/report/train_metrics.jsonl" > "$cor/m.jsonl"
echo '{"stage":"dense","global_step":4,' >> "$cor/m.jsonl"
expect_error "log syntax" 'm.jsonl: line 4' -- "$CLI" report "$cor"
head -3 "$SRC/tests/fixtures/report/train_metrics.jsonl" > "$cor/m.jsonl"
cp "$run/sim_1-8.json" "$cor/sim_x.json"
head -c 300 "$run/sim_1-8.trace.json" > "$cor/sim_x.trace.json"
expect_error "truncated trace" 'sim_x.trace.json: line' -- "$CLI" report "$cor"
rm "$cor/sim_x.trace.json"
echo '[1, 2]' > "$cor/sim_x.json"
expect_error "not a sim" 'sim_x.json' -- "$CLI" report "$cor"

# ---- nothing to report, usage ----------------------------------------------------------------
mkdir -p "$TMP/empty"
expect_error "empty run dir" 'nothing to report' -- "$CLI" report "$TMP/empty"
expect_error "missing run dir" 'nope' -- "$CLI" report "$TMP/nope"
"$CLI" report > /dev/null 2>&1; [[ $? == 2 ]] || fail "no RUN_DIR: want exit 2"
"$CLI" report "$run" --bogus > /dev/null 2>&1; [[ $? == 2 ]] || fail "unknown option: want exit 2"
"$CLI" report --help | grep -q 'usage: nmformer report' || fail "--help"

[[ $failures == 0 ]] && echo "test_report: ok"
exit $((failures > 0))
