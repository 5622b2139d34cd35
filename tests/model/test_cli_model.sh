#!/bin/bash
# CLI of the model commands: run / eval / bench model. Help, success, and one clear line on
# stderr with a non-zero exit for bad input (wrong shape, NaN, config mismatch, unknown model).
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
FIX=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}/tests/fixtures/model
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
. "${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}/tests/cli_lib.sh" # failures, fail, expect_error


for cmd in "run" "eval" "bench model"; do
    $CLI $cmd --help >"$TMP/help" 2>&1 || fail "$cmd --help exit status"
    grep -q "usage: nmformer $cmd" "$TMP/help" || fail "$cmd --help text"
done

# run: success, output is written
$CLI run "$FIX/vit_2to8.safetensors" --input "$FIX/vit_2to8.input.npy" --output "$TMP/y.npy" \
    --batch 2 --threads 1 || fail "run exit status"
[ -s "$TMP/y.npy" ] || fail "run wrote no output"
# the logits file is a float32 (3, 7) .npy: 128-byte header + 84 bytes
[ "$(stat -c %s "$TMP/y.npy")" -eq 212 ] || fail "run output size $(stat -c %s "$TMP/y.npy")"

expect_error "wrong input shape" "model expects \[N,2,12,12\]" -- \
    $CLI run "$FIX/vit_2to8.safetensors" --input "$FIX/vit_1to8.input.npy" --output "$TMP/z.npy"
[ -e "$TMP/z.npy" ] && fail "wrong shape still wrote an output"
expect_error "NaN input" "non-finite" -- \
    $CLI run "$FIX/vit_2to8.safetensors" --input "$FIX/vit_2to8.nan.npy" --output "$TMP/z.npy"
[ -e "$TMP/z.npy" ] && fail "NaN input still wrote an output"
expect_error "file without a config" "nmformer.config" -- \
    $CLI run "$FIX/vit_dense_small.noconfig.safetensors" --input "$FIX/vit_dense_small.input.npy" \
    --output "$TMP/z.npy"
SMALL="--img-size 6 --patch 2 --in-chans 1 --dim 8 --depth 1 --heads 1 --mlp-ratio 1"
$CLI run "$FIX/vit_dense_small.noconfig.safetensors" $SMALL --classes 3 \
    --input "$FIX/vit_dense_small.input.npy" --output "$TMP/small.npy" || fail "run with config flags"
expect_error "config flags with the wrong class count" "head" -- \
    $CLI run "$FIX/vit_dense_small.noconfig.safetensors" $SMALL --classes 4 \
    --input "$FIX/vit_dense_small.input.npy" --output "$TMP/z.npy"
expect_error "a config flag that contradicts the file" "dim 32 contradicts" -- \
    $CLI run "$FIX/vit_2to8.safetensors" --dim 32 --input "$FIX/vit_2to8.input.npy" --output "$TMP/z.npy"
expect_error "unknown --model on safetensors" "4:8" -- \
    $CLI run "$FIX/vit_2to8.safetensors" --model 4:8 --input "$FIX/vit_2to8.input.npy" --output "$TMP/z.npy"
# unknown --model in a family file: the error lists the candidates it has
$CLI convert "$FIX/vit_2to8.safetensors" "$TMP/fam.nmf" || fail "convert to a family file"
expect_error "unknown --model in a family" "available: dense" -- \
    $CLI run "$TMP/fam.nmf" --model 4:8 --input "$FIX/vit_2to8.input.npy" --output "$TMP/z.npy"
[ -e "$TMP/z.npy" ] && fail "unknown --model still wrote an output"
expect_error "missing input file" "nope.npy" -- \
    $CLI run "$FIX/vit_2to8.safetensors" --input "$TMP/nope.npy" --output "$TMP/z.npy"
expect_error "missing --output" "need MODEL" -- $CLI run "$FIX/vit_2to8.safetensors" --input x.npy
expect_error "bad --batch" "--batch" -- $CLI run m --input a --output b --batch 0

# --precision: the 2:8 model packed (a family), run in bf16 and int8: every logit within 3 %
# of the largest f32 logit (int8: per-token / per-channel quantisation of the products and of
# attention's Q, K, V and probabilities; this random-weight model's logits move by up to 2.2 %;
# bf16 weights), not bit-identical to f32 for int8; a dense model runs int8 too (dense int8
# products), as close to its f32 logits; a bad value is a usage error
$CLI prune "$FIX/vit_2to8.safetensors" "$TMP/p28.nmf" --pattern 2:8 >/dev/null || fail "prune to 2:8"
for p in f32 bf16 int8; do
    $CLI run "$TMP/p28.nmf" --model 2:8 --precision $p --input "$FIX/vit_2to8.input.npy" \
        --output "$TMP/y_$p.npy" --threads 1 || fail "run --precision $p"
done
close_logits() { # max |a - b| <= 0.03 max |b| over the float32 payloads
    paste <(od -An -v -f -j128 -w4 "$1") <(od -An -v -f -j128 -w4 "$2") | awk '
        { d = $1 - $2; d = d < 0 ? -d : d; b = $2 < 0 ? -$2 : $2
          if (d > dmax) dmax = d; if (b > bmax) bmax = b; n++ }
        END { exit !(n == 21 && dmax <= 0.03 * bmax) }'
}
close_logits "$TMP/y_bf16.npy" "$TMP/y_f32.npy" || fail "run --precision bf16: logits off"
close_logits "$TMP/y_int8.npy" "$TMP/y_f32.npy" || fail "run --precision int8: logits off"
cmp -s "$TMP/y_int8.npy" "$TMP/y_f32.npy" && fail "run --precision int8: same bytes as f32"
for p in f32 int8; do
    $CLI run "$FIX/vit_2to8.safetensors" --precision $p --input "$FIX/vit_2to8.input.npy" \
        --output "$TMP/d_$p.npy" --threads 1 || fail "run a dense model --precision $p"
done
close_logits "$TMP/d_int8.npy" "$TMP/d_f32.npy" || fail "run a dense model --precision int8: logits off"
expect_error "bad --precision" "unknown (f32, bf16, int8)" -- $CLI run m --input a --output b --precision fp8
expect_error "bad --precision (eval)" "unknown (f32, bf16, int8)" -- $CLI eval m --precision int4
$CLI bench model "$TMP/p28.nmf" --model 2:8 --quick --precision int8 --json >"$TMP/bm" ||
    fail "bench model --precision int8"
grep -q '"candidate": "2:8@int8"' "$TMP/bm" || { fail "bench model --precision label"; cat "$TMP/bm" >&2; }

# eval: a Fashion-MNIST shaped model (random weights: only that it runs and reports)
if [ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    $CLI eval "$FIX/vit_dense_fmnist.safetensors" --limit 40 --threads 1 --json >"$TMP/eval" ||
        fail "eval exit status"
    grep -q '"images": 40' "$TMP/eval" || { fail "eval output"; cat "$TMP/eval" >&2; }
    expect_error "eval on a model of the wrong input shape" "Fashion-MNIST is 1x28x28" -- \
        $CLI eval "$FIX/vit_2to8.safetensors" --limit 5
fi
expect_error "eval missing data dir" "not-here" -- \
    $CLI eval "$FIX/vit_dense_fmnist.safetensors" --data "$TMP/not-here" --limit 5

# bench model: file and shape library, quick
$CLI bench model "$FIX/vit_dense_fmnist.safetensors" --quick --json >"$TMP/bench.json" ||
    fail "bench model file"
for key in '"model"' '"threads": 1' '"batch": 2' '"latency_ms"' '"images_per_s"' '"peak_rss_mb"' '"file_mb"'; do
    grep -q "$key" "$TMP/bench.json" || fail "bench json lacks $key"
done
$CLI bench model --shape deit-tiny --pattern 2:8 --quick --batch 1 >"$TMP/bench.txt" ||
    fail "bench model --shape"
grep -q "deit-tiny/2:8" "$TMP/bench.txt" || fail "bench table lacks deit-tiny/2:8"
expect_error "unknown shape" "deit-huge" -- $CLI bench model --shape deit-huge
expect_error "bad pattern" "--pattern" -- $CLI bench model --shape deit-tiny --pattern 9:8
expect_error "MODEL and --shape" "either" -- $CLI bench model x.safetensors --shape deit-tiny

if [ $failures -ne 0 ]; then
    echo "test_cli_model: $failures failures" >&2
    exit 1
fi
echo "test_cli_model: ok"
