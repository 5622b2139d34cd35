#!/bin/bash
# `nmformer prune --method wanda|sparsegpt` on the command line: a ViT with a calibration file and
# with the default Fashion-MNIST set (when the package is installed), token models (GPT-2, LLaMA,
# BERT) with token ids; the candidates load and run; a .safetensors output (the streamed
# family's candidate runs alike); --add streamed; and the bad
# calibration inputs (wrong dtype, shape, NaN, empty, ids out of range, no --calib for a token
# model, calibration flags with magnitude), each one clear line.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
SRC=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}
HF=$SRC/tests/fixtures/hf
VIT=$SRC/tests/fixtures/model/vit_dense_fmnist.safetensors
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
. "$SRC/tests/cli_lib.sh" # failures, fail, expect_error
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
$PY -c 'import numpy' || { echo "test_prune_cli: needs python3 with numpy" >&2; exit 1; }
npy() { $PY -c "import numpy as np, sys; np.random.seed(0); np.save(sys.argv[1], $2)" "$1"; }

npy "$TMP/img.npy" "np.random.randn(10, 1, 28, 28).astype(np.float32)"
for method in wanda sparsegpt; do
  "$CLI" prune "$VIT" "$TMP/$method.nmf" --pattern 2:4,1:8 --method $method --calib "$TMP/img.npy" \
      --calib-samples 8 >"$TMP/out" 2>"$TMP/err" || { fail "$method vit"; cat "$TMP/err" >&2; continue; }
  grep -q "^prune: $method, 2 patterns: 8 calibration samples (136 tokens per pass)" "$TMP/err" ||
    { fail "$method summary line"; cat "$TMP/err" >&2; }
  # stdout: the one summary line every prune prints (docs/CLI.md), naming the output
  [ "$(wc -l <"$TMP/out")" -eq 1 ] && grep -q "$method.nmf" "$TMP/out" || fail "$method: stdout is not the summary line"
  for m in dense 2:4 1:8; do
    "$CLI" run "$TMP/$method.nmf" --model $m --input "$TMP/img.npy" --output "$TMP/y.npy" \
        2>"$TMP/err" || { fail "$method: run $m"; cat "$TMP/err" >&2; }
  done
  "$CLI" info "$TMP/$method.nmf" | grep -q "2:4" || fail "$method: info lists no 2:4"
done
# the two methods choose differently from magnitude (and from each other)
"$CLI" prune "$VIT" "$TMP/mag.safetensors" --pattern 2:4 || fail "magnitude"
"$CLI" prune "$VIT" "$TMP/wanda.safetensors" --pattern 2:4 --method wanda --calib "$TMP/img.npy" \
    >/dev/null || fail "wanda safetensors"
"$CLI" prune "$VIT" "$TMP/sgpt.safetensors" --pattern 2:4 --method sparsegpt --calib "$TMP/img.npy" \
    --damp 0.05 >/dev/null || fail "sparsegpt safetensors"
cmp -s "$TMP/mag.safetensors" "$TMP/wanda.safetensors" && fail "wanda = magnitude"
cmp -s "$TMP/wanda.safetensors" "$TMP/sgpt.safetensors" && fail "sparsegpt = wanda"

# the streamed family's candidate is the .safetensors output's model (pruned whole), run alike
"$CLI" prune "$VIT" "$TMP/w24.nmf" --pattern 2:4 --method wanda --calib "$TMP/img.npy" >/dev/null 2>&1 ||
  fail "wanda family 2:4"
"$CLI" convert "$TMP/wanda.safetensors" "$TMP/w24_st.nmf" --model 2:4 >/dev/null 2>&1 || fail "convert 2:4"
"$CLI" run "$TMP/w24.nmf" --model 2:4 --input "$TMP/img.npy" --output "$TMP/y_fam.npy" 2>/dev/null &&
  "$CLI" run "$TMP/w24_st.nmf" --model 2:4 --input "$TMP/img.npy" --output "$TMP/y_st.npy" 2>/dev/null &&
  cmp -s "$TMP/y_fam.npy" "$TMP/y_st.npy" || fail "streamed wanda family != whole-model safetensors"
# --add streams too: the family gains the candidate, the old ones kept
"$CLI" prune "$VIT" "$TMP/w24.nmf" --add --pattern 1:8 --method sparsegpt --calib "$TMP/img.npy" \
    >/dev/null 2>"$TMP/err" || { fail "sparsegpt --add"; cat "$TMP/err" >&2; }
"$CLI" info "$TMP/w24.nmf" | grep -q "1:8" && "$CLI" info "$TMP/w24.nmf" | grep -q "2:4" ||
  fail "--add: the family lacks a candidate"
expect_error "--add of a held name" "already holds a model named '2:4'" -- "$CLI" prune "$VIT" "$TMP/w24.nmf" --add --pattern 2:4 --method wanda --calib "$TMP/img.npy"

DATA=${NMF_DATA_DIR:-/usr/share/datasets/fashion-mnist}
if [[ -r $DATA/train-images-idx3-ubyte.gz || -r $DATA/train-images-idx3-ubyte ]]; then
  "$CLI" prune "$VIT" "$TMP/default.nmf" --pattern 2:8 --method wanda --calib-samples 16 >"$TMP/out" \
      2>"$TMP/err" || { fail "default calibration set"; cat "$TMP/err" >&2; }
  grep -q "16 calibration samples" "$TMP/err" || fail "default set: not 16 samples"
else
  echo "test_prune_cli: default calibration set skipped ($DATA absent)"
fi

for f in gpt2_lm llama_gqa6x2 bert_cls_pad; do
  for method in wanda sparsegpt; do
    "$CLI" prune "$HF/$f" "$TMP/$f.$method.nmf" --pattern 2:8 --method $method \
        --calib "$HF/$f/input_ids.npy" >/dev/null 2>"$TMP/err" || { fail "$f $method"; cat "$TMP/err" >&2; }
  done
done
"$CLI" run "$TMP/gpt2_lm.sparsegpt.nmf" --model 2:8 --input "$HF/gpt2_lm/input_ids.npy" \
    --output "$TMP/logits.npy" 2>"$TMP/err" || { fail "run pruned gpt2"; cat "$TMP/err" >&2; }
npy "$TMP/ids32.npy" "np.load('$HF/gpt2_lm/input_ids.npy').astype(np.int32)"
"$CLI" prune "$HF/gpt2_lm" "$TMP/g32.nmf" --pattern 2:8 --method wanda --calib "$TMP/ids32.npy" \
    >/dev/null || fail "int32 ids"

# bad calibration inputs: one line each
npy "$TMP/f64.npy" "np.zeros((2, 1, 28, 28))"
npy "$TMP/shape.npy" "np.zeros((2, 28, 28), np.float32)"
npy "$TMP/nan.npy" "np.where(np.arange(2*784).reshape(2, 1, 28, 28) == 900, np.nan, 0).astype(np.float32)"
npy "$TMP/empty.npy" "np.zeros((0, 1, 28, 28), np.float32)"
npy "$TMP/range.npy" "np.array([[1, 2, 67]], np.int64)"
npy "$TMP/noseq.npy" "np.zeros((3, 0), np.int64)"
expect_error "float64 images" "dtype" -- "$CLI" prune "$VIT" "$TMP/x.nmf" --pattern 2:4 --method wanda --calib "$TMP/f64.npy"
expect_error "3-D images" "(2, 28, 28)" -- "$CLI" prune "$VIT" "$TMP/x.nmf" --pattern 2:4 --method wanda --calib "$TMP/shape.npy"
expect_error "NaN image" "image 1 has a non-finite" -- "$CLI" prune "$VIT" "$TMP/x.nmf" --pattern 2:4 --method sparsegpt --calib "$TMP/nan.npy"
expect_error "no images" "no images" -- "$CLI" prune "$VIT" "$TMP/x.nmf" --pattern 2:4 --method wanda --calib "$TMP/empty.npy"
expect_error "ids for a ViT" "dtype" -- "$CLI" prune "$VIT" "$TMP/x.nmf" --pattern 2:4 --method wanda --calib "$TMP/range.npy"
expect_error "id out of range" "position 2: token id 67 is outside" -- "$CLI" prune "$HF/gpt2_lm" "$TMP/x.nmf" --pattern 2:4 --method wanda --calib "$TMP/range.npy"
expect_error "no tokens" "no tokens" -- "$CLI" prune "$HF/gpt2_lm" "$TMP/x.nmf" --pattern 2:4 --method wanda --calib "$TMP/noseq.npy"
expect_error "images for gpt2" "dtype" -- "$CLI" prune "$HF/gpt2_lm" "$TMP/x.nmf" --pattern 2:4 --method sparsegpt --calib "$TMP/img.npy"
expect_error "token model without --calib" "needs a calibration file" -- "$CLI" prune "$HF/gpt2_lm" "$TMP/x.nmf" --pattern 2:4 --method wanda
expect_error "missing file" "missing.npy" -- "$CLI" prune "$VIT" "$TMP/x.nmf" --pattern 2:4 --method wanda --calib "$TMP/missing.npy"
expect_error "unknown method" "unknown pruning method 'obs'" -- "$CLI" prune "$VIT" "$TMP/x.nmf" --pattern 2:4 --method obs
expect_error "--calib with magnitude" "are for --method wanda or sparsegpt" -- "$CLI" prune "$VIT" "$TMP/x.nmf" --pattern 2:4 --calib "$TMP/img.npy"
expect_error "--damp with wanda" "for --method sparsegpt" -- "$CLI" prune "$VIT" "$TMP/x.nmf" --pattern 2:4 --method wanda --calib "$TMP/img.npy" --damp 0.1
expect_error "negative damp" "--damp .-1.: expected a number in" -- "$CLI" prune "$VIT" "$TMP/x.nmf" --pattern 2:4 --method sparsegpt --calib "$TMP/img.npy" --damp -1
expect_error "zero samples" "expected an integer in 1.." -- "$CLI" prune "$VIT" "$TMP/x.nmf" --pattern 2:4 --method wanda --calib "$TMP/img.npy" --calib-samples 0
[ -e "$TMP/x.nmf" ] && fail "a failed prune wrote its output"
"$CLI" prune --help | grep -q -- "--method M" || fail "--help lacks --method"

if [ "$failures" -eq 0 ]; then echo "test_prune_cli: all passed"; else echo "test_prune_cli: $failures failed"; fi
[ "$failures" -eq 0 ]
