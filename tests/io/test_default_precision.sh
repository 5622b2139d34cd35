#!/bin/bash
# A candidate's default precision (convert --default-precision, metadata nmformer.precision):
# stored on every written candidate of an .nmf (in place too: atomic), shown by info, carried by
# a later convert, refused for other outputs and for unknown values; run, eval and bench model
# compute in it when no --precision is given (checked against --precision).
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
FIX=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}/tests/fixtures/model
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
. "${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}/tests/cli_lib.sh" # failures, fail, expect_error
IN=$FIX/vit_2to8.input.npy

"$CLI" prune "$FIX/vit_2to8.safetensors" "$TMP/fam.nmf" --pattern 2:8,1:8 --quiet || fail "prune"
precisions() { # the default precision of every model, one line
    "$CLI" info "$1" --json | /usr/bin/python3 -c '
import json, sys
print(" ".join(m.get("default_precision", "-") for m in json.load(sys.stdin)["models"]))'
}
[ "$(precisions "$TMP/fam.nmf")" = "- - -" ] || fail "a fresh family has defaults: $(precisions "$TMP/fam.nmf")"
"$CLI" convert "$TMP/fam.nmf" "$TMP/int8.nmf" --default-precision int8 --quiet || fail "convert int8"
[ "$(precisions "$TMP/int8.nmf")" = "int8 int8 int8" ] || fail "int8: $(precisions "$TMP/int8.nmf")"
"$CLI" info "$TMP/int8.nmf" | grep -q "model '2:8' (default precision int8)" || fail "info text"
# one candidate; in place (atomic rename over IN); a plain convert carries the key along
"$CLI" convert "$TMP/int8.nmf" "$TMP/one.nmf" -m 1:8 --default-precision bf16 --quiet || fail "-m"
[ "$(precisions "$TMP/one.nmf")" = "bf16" ] || fail "one candidate: $(precisions "$TMP/one.nmf")"
cp "$TMP/int8.nmf" "$TMP/inplace.nmf"
"$CLI" convert "$TMP/inplace.nmf" "$TMP/inplace.nmf" --default-precision f32 --quiet || fail "in place"
[ "$(precisions "$TMP/inplace.nmf")" = "f32 f32 f32" ] || fail "in place: $(precisions "$TMP/inplace.nmf")"
"$CLI" convert "$TMP/int8.nmf" "$TMP/again.nmf" --dtype bf16 --quiet || fail "carry"
[ "$(precisions "$TMP/again.nmf")" = "int8 int8 int8" ] || fail "not carried: $(precisions "$TMP/again.nmf")"
expect_error "safetensors OUT" "only" -- "$CLI" convert "$TMP/fam.nmf" "$TMP/x.safetensors" -m 2:8 \
    --default-precision int8
expect_error "unknown precision" "fp8" -- "$CLI" convert "$TMP/fam.nmf" "$TMP/y.nmf" --default-precision fp8
[ -e "$TMP/x.safetensors" ] || [ -e "$TMP/y.nmf" ] && fail "a refused convert wrote something"

# run computes a candidate in its default precision: the int8 family's 2:8 gives exactly what the
# plain family gives with --precision int8, and not the f32 output; --precision overrides it
run() { "$CLI" run "$1" -m 2:8 --threads 1 --input "$IN" --output "$2" "${@:3}"; }
run "$TMP/fam.nmf" "$TMP/f32.npy" --precision f32 || fail "run f32"
run "$TMP/fam.nmf" "$TMP/q.npy" --precision int8 || fail "run --precision int8"
run "$TMP/int8.nmf" "$TMP/default.npy" || fail "run on the default"
cmp -s "$TMP/q.npy" "$TMP/default.npy" || fail "the default int8 run differs from --precision int8"
cmp -s "$TMP/f32.npy" "$TMP/default.npy" && fail "the default int8 run equals the f32 one"
run "$TMP/int8.nmf" "$TMP/over.npy" --precision f32 || fail "run --precision f32 over the default"
cmp -s "$TMP/f32.npy" "$TMP/over.npy" || fail "--precision f32 did not override the default"
# eval reports it; bench model measures in it (the candidate's label says so)
/usr/bin/python3 -c "import numpy as np; np.save('$TMP/labels.npy', np.zeros(3, dtype=np.int64))" ||
    fail "labels"
"$CLI" eval "$TMP/int8.nmf" -m 2:8 --images "$IN" --labels "$TMP/labels.npy" --json --threads 1 \
    2>/dev/null | grep -q '"precision": "int8"' || fail "eval does not report int8"
"$CLI" bench model "$TMP/one.nmf" --quick --json 2>/dev/null | grep -q '1:8@bf16' ||
    fail "bench model did not run the bf16 default"

[ "$failures" -eq 0 ] && echo "test_default_precision: ok"
exit "$failures"
