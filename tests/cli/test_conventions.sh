#!/bin/bash
# The conventions every command follows (issue 13, item 4; docs/CLI.md): --opt=value and `--`,
# short options, exit 0 / 1 (runtime failure) / 2 (usage error) with one stderr line, -V and the
# exit statuses in every --help, model inputs told apart by their magic bytes (not their
# extension), malformed NMF_* values refused, `eval --images/--labels` on any data (checked
# against `run`'s logits), and the summary line of prune and convert (sizes, bits per group).
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
SRC=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}
TINY=$SRC/tests/fixtures/vit_tiny.safetensors
FIX=$SRC/tests/fixtures/model
GPT2=$SRC/tests/fixtures/hf/gpt2_lm
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
. "$SRC/tests/cli_lib.sh" # failures, fail, expect_error
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
$PY -c 'import numpy' || { echo "test_conventions: needs python3 with numpy" >&2; exit 1; }
export NMF_THREADS=1

# expect_rc WANT DESCRIPTION -- command...: exit status WANT; for 1 and 2 exactly one stderr line
expect_rc() {
    local want=$1 what=$2
    shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -ne "$want" ]; then fail "$what: exit $rc, want $want: $(head -3 "$TMP/err")"; return; fi
    if [ "$want" -ne 0 ] && [ "$(wc -l <"$TMP/err")" -ne 1 ]; then
        fail "$what: stderr is not one line:"; cat "$TMP/err" >&2
    fi
}

# ---- every command: --opt=value, short options and `--` -------------------------------------
mkdir -p "$TMP/run" && cp "$SRC/tests/fixtures/report/summary.json" "$TMP/run/"
"$CLI" run "$FIX/vit_2to8.safetensors" --input "$FIX/vit_2to8.input.npy" --output "$TMP/logits.npy" ||
    fail "run with the old spellings"
expect_rc 0 "convert --dtype=f32 --" -- "$CLI" convert --dtype=f32 -- "$TINY" "$TMP/c.nmf"
expect_rc 0 "prune -p ... -q --" -- "$CLI" prune -p 2:8 --dtype=f32 -q -- "$TINY" "$TMP/p.nmf"
[ -s "$TMP/out" ] && fail "prune -q printed: $(cat "$TMP/out")"
expect_rc 0 "info --json --" -- "$CLI" info --json -- "$TMP/p.nmf"
expect_rc 0 "run -i -o -j --batch=" -- "$CLI" run -i "$FIX/vit_2to8.input.npy" -o "$TMP/r.npy" -j1 \
    --batch=32 -- "$FIX/vit_2to8.safetensors"
cmp -s "$TMP/r.npy" "$TMP/logits.npy" || fail "run -i/-o/--batch= gave other logits than run --input/--output"
expect_rc 0 "run -ovalue" -- "$CLI" run --input="$FIX/vit_2to8.input.npy" "-o$TMP/r2.npy" \
    "$FIX/vit_2to8.safetensors"
cmp -s "$TMP/r2.npy" "$TMP/logits.npy" || fail "run -oPATH wrote other logits"
expect_rc 0 "generate --tokens=" -- "$CLI" generate --input="$GPT2/input_ids.npy" --tokens=2 \
    --output="$TMP/g.npy" -q -- "$GPT2"
[ -s "$TMP/out" ] && fail "generate -q printed: $(cat "$TMP/out")"
expect_rc 0 "generate --json" -- "$CLI" generate -i "$GPT2/input_ids.npy" -n 2 -o "$TMP/g2.npy" --json "$GPT2"
$PY -c "import json,sys; d=json.load(open('$TMP/out')); assert d['new_tokens'] == 2, d" ||
    fail "generate --json: $(cat "$TMP/out")"
cmp -s "$TMP/g.npy" "$TMP/g2.npy" || fail "generate -n / --tokens= differ"
expect_rc 0 "bench gemm --opt=value" -- "$CLI" bench gemm --shapes=32x32 --tokens=1 --pattern=2:4 \
    --reps=1 -j1 --json
expect_rc 0 "bench gemm --patterns (alias)" -- "$CLI" bench gemm --shapes 32x32 --tokens 1 \
    --patterns dense --reps 1 --json
expect_rc 0 "bench model --" -- "$CLI" bench model --quick --reps=1 --threads=1 --json -- \
    "$FIX/vit_dense_fmnist.safetensors"
expect_rc 0 "sim --opt=value --" -- "$CLI" sim --no-functional --threads=1 --json -- "$FIX/vit_2to8.safetensors"
expect_rc 0 "sim --shape= -p" -- "$CLI" sim --shape=deit-tiny -p 2:8 --json
expect_rc 0 "report --output= -q --" -- "$CLI" report --output="$TMP/r.html" -q -- "$TMP/run"
[ -s "$TMP/r.html" ] || fail "report --output= wrote nothing"
expect_rc 2 "bench gemm -- operand" -- "$CLI" bench gemm --reps=1 -- extra
grep -q "unexpected argument 'extra'" "$TMP/err" || fail "bench gemm --: $(cat "$TMP/err")"
# train: no data needed to see that --output=, --config= and -- are parsed (usage errors after them)
expect_rc 2 "train --output= parsed" -- "$CLI" train --output="$TMP/t.nmf" --resume --steps=3
grep -q -- "--resume needs --checkpoint" "$TMP/err" || fail "train: $(cat "$TMP/err")"
expect_rc 2 "train --config=bogus" -- "$CLI" train --out "$TMP/t.nmf" --config=bogus
grep -q "bogus" "$TMP/err" || fail "train --config=bogus: $(cat "$TMP/err")"
expect_rc 2 "train -- operand" -- "$CLI" train -o "$TMP/t.nmf" --patterns 2:8 -- extra
grep -q "unexpected argument 'extra'" "$TMP/err" || fail "train --: $(cat "$TMP/err")"
# after --, a word that looks like an option is an operand
expect_rc 2 "-- then -x" -- "$CLI" info "$TINY" -- --json
grep -q "unexpected argument '--json'" "$TMP/err" || fail "info FILE -- --json: $(cat "$TMP/err")"

# ---- usage errors: exit 2, one line, for every command --------------------------------------
for cmd in convert prune train info run generate eval "bench gemm" "bench model" sim report bench; do
    # shellcheck disable=SC2086
    expect_rc 2 "$cmd --bogus" -- "$CLI" $cmd --bogus
    grep -q "bogus" "$TMP/err" || fail "$cmd --bogus: $(cat "$TMP/err")"
    # shellcheck disable=SC2086
    "$CLI" $cmd --help >"$TMP/help" 2>&1 || fail "$cmd --help exit status"
    grep -q "exit status: 0 success, 1 runtime failure, 2 usage error" "$TMP/help" ||
        fail "$cmd --help does not document the exit statuses"
done
expect_rc 2 "flag with a value" -- "$CLI" info --json=yes "$TINY"
expect_rc 2 "sim --shape unknown" -- "$CLI" sim --shape nope
expect_rc 2 "bench model --shape unknown" -- "$CLI" bench model --shape nope
expect_rc 2 "missing value" -- "$CLI" run "$TINY" --input
expect_rc 2 "bad number" -- "$CLI" eval "$TINY" --batch=zero
expect_rc 2 "bad dtype" -- "$CLI" convert "$TINY" "$TMP/x.nmf" --dtype=f64
expect_rc 2 "bad pattern" -- "$CLI" prune "$TINY" "$TMP/x.nmf" --pattern 9:8
expect_rc 2 "sim bad phase" -- "$CLI" sim --shape gpt2 --phase=later
expect_rc 2 "missing operand" -- "$CLI" convert "$TINY"
expect_rc 2 "no command" -- "$CLI"
expect_rc 2 "unknown command" -- "$CLI" frobnicate
expect_rc 2 "eval --images without --labels" -- "$CLI" eval "$TINY" --images "$FIX/vit_2to8.input.npy"

# ---- runtime failures: exit 1, one line, for every command that reads something -------------
echo "not a model" >"$TMP/text.nmf"
expect_rc 1 "convert missing" -- "$CLI" convert "$TMP/missing.safetensors" "$TMP/x.nmf"
expect_rc 1 "prune missing" -- "$CLI" prune "$TMP/missing.safetensors" "$TMP/x.nmf" -p 2:8
expect_rc 1 "info wrong contents" -- "$CLI" info "$TMP/text.nmf"
grep -q "not a model file" "$TMP/err" || fail "info on text: $(cat "$TMP/err")"
expect_rc 1 "run missing input" -- "$CLI" run "$FIX/vit_2to8.safetensors" -i "$TMP/missing.npy" -o "$TMP/x.npy"
expect_rc 1 "generate on a ViT" -- "$CLI" generate "$FIX/vit_2to8.safetensors" -i "$GPT2/input_ids.npy" \
    -n 1 -o "$TMP/x.npy"
expect_rc 1 "eval missing model" -- "$CLI" eval "$TMP/missing.nmf"
expect_rc 1 "train missing --init" -- "$CLI" train -o "$TMP/t.nmf" --init "$TMP/missing.safetensors"
expect_rc 1 "bench model missing" -- "$CLI" bench model "$TMP/missing.nmf"
expect_rc 1 "sim missing --hw" -- "$CLI" sim --shape deit-tiny --hw "$TMP/missing.ini"
expect_rc 1 "report missing dir" -- "$CLI" report "$TMP/missing"

# ---- -V / --version -------------------------------------------------------------------------
for v in -V --version "info -V" "prune --version" "bench -V"; do
    # shellcheck disable=SC2086
    "$CLI" $v >"$TMP/v" 2>/dev/null || fail "$v exit status"
    grep -q "^nmformer [0-9]" "$TMP/v" || fail "$v: $(cat "$TMP/v")"
done
"$CLI" --help >"$TMP/help" || fail "--help"
for word in NMF_THREADS NMF_ISA NMF_GEMM NMF_SPMM NMF_DATA_DIR "exit status" "--opt=VALUE\|--opt VALUE"; do
    grep -q -- "$word" "$TMP/help" || fail "nmformer --help lacks $word"
done

# ---- the file type comes from the magic bytes, not the extension -----------------------------
cp "$TINY" "$TMP/tiny.bin"
cp "$TMP/p.nmf" "$TMP/family.safetensors"
"$CLI" info --json "$TMP/tiny.bin" >"$TMP/i1" || fail "info on safetensors named .bin"
grep -q '"format":[[:space:]]*"safetensors"' "$TMP/i1" || fail "tiny.bin not read as safetensors: $(head -c 200 "$TMP/i1")"
"$CLI" info --json "$TMP/family.safetensors" >"$TMP/i2" || fail "info on a family named .safetensors"
grep -q '"format":[[:space:]]*"nmf"' "$TMP/i2" || fail "family.safetensors not read as nmf: $(head -c 200 "$TMP/i2")"
"$CLI" prune "$TMP/tiny.bin" "$TMP/from_bin.nmf" -p 2:8 -q || fail "prune from a .bin safetensors"
"$CLI" convert "$TMP/family.safetensors" "$TMP/back.safetensors" -m 2:8 -q ||
    fail "convert from a family named .safetensors"
cp "$FIX/vit_2to8.safetensors" "$TMP/model.nmf"
"$CLI" run "$TMP/model.nmf" -i "$FIX/vit_2to8.input.npy" -o "$TMP/r3.npy" || fail "run a safetensors named .nmf"
cmp -s "$TMP/r3.npy" "$TMP/logits.npy" || fail "run on the renamed file gave other logits"
head -c 4 "$TINY" >"$TMP/short.safetensors"
expect_rc 1 "a 4-byte .safetensors" -- "$CLI" info "$TMP/short.safetensors"
expect_rc 1 "run on text named .nmf" -- "$CLI" run "$TMP/text.nmf" -i "$FIX/vit_2to8.input.npy" -o "$TMP/x.npy"
grep -q "not a model file" "$TMP/err" || fail "run on text: $(cat "$TMP/err")"

# ---- malformed NMF_* values are usage errors naming the variable ----------------------------
for kv in NMF_THREADS=abc NMF_THREADS=0 NMF_THREADS=4x NMF_ISA=foo NMF_GEMM=bar NMF_SPMM=wide \
          "NMF_DATA_DIR=$TMP/missing"; do
    expect_rc 2 "$kv" -- env "$kv" "$CLI" info "$TINY"
    grep -q "${kv%%=*}" "$TMP/err" || fail "$kv: the error does not name the variable: $(cat "$TMP/err")"
done
for kv in NMF_THREADS=2 NMF_ISA=scalar NMF_GEMM=openblas NMF_SPMM=panel NMF_THREADS= "NMF_DATA_DIR=$TMP"; do
    env "$kv" "$CLI" info "$TINY" >/dev/null 2>&1 || fail "$kv refused"
done

# ---- eval on any .npy pair: the count of correct labels is the one run's logits give ---------
$PY - "$TMP/logits.npy" "$TMP/labels.npy" "$TMP/bad_count.npy" "$TMP/bad_range.npy" <<'PY' || fail "labels"
import sys, numpy as np
logits = np.load(sys.argv[1])                       # (3, 7)
pred = logits.argmax(axis=1)
labels = pred.copy()
labels[1] = (pred[1] + 1) % logits.shape[1]         # one wrong: 2 of 3 correct
np.save(sys.argv[2], labels.astype(np.int64))
np.save(sys.argv[3], labels[:2].astype(np.int32))
np.save(sys.argv[4], np.array([0, 1, 7], dtype=np.int64))
PY
"$CLI" eval "$FIX/vit_2to8.safetensors" --images "$FIX/vit_2to8.input.npy" --labels "$TMP/labels.npy" \
    --json >"$TMP/e" || fail "eval --images --labels"
$PY -c "import json; d=json.load(open('$TMP/e')); assert d['images'] == 3 and d['correct'] == 2, d" ||
    fail "eval on the .npy pair: $(cat "$TMP/e")"
"$CLI" eval --images="$FIX/vit_2to8.input.npy" --labels="$TMP/labels.npy" --batch 2 --limit=1 -- \
    "$FIX/vit_2to8.safetensors" >"$TMP/e" || fail "eval --opt=value --limit"
grep -q "top-1 100.00% (1/1)" "$TMP/e" || fail "eval --limit 1: $(cat "$TMP/e")"
expect_rc 1 "eval label count" -- "$CLI" eval "$FIX/vit_2to8.safetensors" --images "$FIX/vit_2to8.input.npy" \
    --labels "$TMP/bad_count.npy"
expect_rc 1 "eval label range" -- "$CLI" eval "$FIX/vit_2to8.safetensors" --images "$FIX/vit_2to8.input.npy" \
    --labels "$TMP/bad_range.npy"
grep -q "label 7" "$TMP/err" || fail "eval label range: $(cat "$TMP/err")"
expect_rc 1 "eval image shape" -- "$CLI" eval "$FIX/vit_2to8.safetensors" --images "$FIX/vit_1to8.input.npy" \
    --labels "$TMP/labels.npy"

# ---- the summary line of prune and convert ---------------------------------------------------
size() { stat -c %s "$1"; }
"$CLI" prune "$TINY" "$TMP/s.nmf" --pattern 4:8,2:8,1:8 >"$TMP/sum" || fail "prune"
want="prune: $TINY (safetensors, $(size "$TINY") bytes) -> $TMP/s.nmf (nmf, $(size "$TMP/s.nmf") bytes,"
grep -qF "$want" "$TMP/sum" || fail "prune summary: $(cat "$TMP/sum") (want '$want')"
# index code bits per group: ceil(log2(C(8,4) = 70)) = 7, C(8,2) = 28 -> 5, C(8,1) = 8 -> 3
grep -qF "dense, 4:8 (7 bits/group), 2:8 (5 bits/group), 1:8 (3 bits/group); F32" "$TMP/sum" ||
    fail "prune summary candidates: $(cat "$TMP/sum")"
[ "$(wc -l <"$TMP/sum")" -eq 1 ] || fail "prune summary is not one line"
"$CLI" prune "$TINY" "$TMP/s.nmf" --pattern 2:4 --add --json >"$TMP/sum" || fail "prune --add --json"
$PY - "$TMP/sum" "$(size "$TMP/s.nmf")" <<'PY' || fail "prune --json: $(cat "$TMP/sum")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["command"] == "prune" and d["output_kind"] == "nmf" and d["output_bytes"] == int(sys.argv[2]), d
bits = {c["name"]: c["bits_per_group"] for c in d["candidates"]}
assert bits == {"dense": None, "4:8": 7, "2:8": 5, "1:8": 3, "2:4": 3}, bits
PY
"$CLI" convert "$TMP/s.nmf" "$TMP/one.safetensors" --model 2:8 --dtype bf16 >"$TMP/sum" || fail "convert"
want="convert: $TMP/s.nmf (nmf, $(size "$TMP/s.nmf") bytes) -> $TMP/one.safetensors (safetensors, $(size "$TMP/one.safetensors") bytes,"
grep -qF "$want" "$TMP/sum" || fail "convert summary: $(cat "$TMP/sum") (want '$want')"
grep -qF "2:8 (stored dense); BF16" "$TMP/sum" || fail "convert summary candidates: $(cat "$TMP/sum")"
"$CLI" convert "$TMP/one.safetensors" "$TMP/one.nmf" -q >"$TMP/sum" || fail "convert -q"
[ -s "$TMP/sum" ] && fail "convert -q printed: $(cat "$TMP/sum")"
# --dtype defaults to the source's: the bf16 file stays bf16 through convert and prune
"$CLI" info --json "$TMP/one.nmf" | grep -q '"dtype":[[:space:]]*"BF16"' || fail "convert of a bf16 file is not bf16"
"$CLI" prune "$TMP/one.safetensors" "$TMP/one_p.safetensors" -p 1:8 >"$TMP/sum" || fail "prune bf16"
grep -qF "; BF16" "$TMP/sum" || fail "prune of a bf16 file: $(cat "$TMP/sum")"

if [ $failures -ne 0 ]; then
    echo "test_conventions: $failures failures" >&2
    exit 1
fi
echo "test_conventions: ok"
