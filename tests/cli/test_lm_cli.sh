#!/bin/bash
# Token models on the command line (issue 11, item 4): `run` and `generate` on the Hugging Face
# fixtures (tests/fixtures/hf, PyTorch references) against their logits.npy /
# last_hidden_state.npy / generate.npy; `sim` and `bench model` on token models; the error cases
# (ids out of range, wrong dtype, too many tokens, a ViT or an encoder given to generate, missing
# --tokens) each one clear line; the --help texts.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
SRC=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}
HF=$SRC/tests/fixtures/hf
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
. "$SRC/tests/cli_lib.sh" # failures, fail, expect_error
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
# numpy only (no torch): write ids, compare outputs
$PY -c 'import numpy' || { echo "test_lm_cli: needs python3 with numpy" >&2; exit 1; }

# close FILE REF [TOL]: same shape, max |a - b| <= TOL * max |b| (default 1e-4)
close() {
    $PY - "$1" "$2" "${3:-1e-4}" <<'PY' || fail "$1 vs $2"
import sys, numpy as np
a, b, tol = np.load(sys.argv[1]), np.load(sys.argv[2]), float(sys.argv[3])
if a.shape != b.shape or a.dtype != np.float32:
    sys.exit(f"shape/dtype {a.shape} {a.dtype} vs {b.shape}")
err = float(np.abs(a - b).max()) / float(np.abs(b).max())
if not err <= tol:
    sys.exit(f"relative error {err:.3g} > {tol}")
PY
}
# same_ids FILE REF: int64 arrays, equal
same_ids() {
    $PY - "$1" "$2" <<'PY' || fail "$1 differs from $2"
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
if a.dtype != np.int64 or a.shape != b.shape or not (a == b).all():
    sys.exit(f"{a.dtype} {a.shape} {a.tolist()} vs {b.shape} {b.tolist()}")
PY
}
npy() { $PY -c "import numpy as np, sys; np.save(sys.argv[1], $2)" "$1"; }

# ---- run: every family, dense and N:M, with and without the BERT inputs ---------------------
for f in gpt2_lm gpt2_lm_2to4 gpt2_long_bf16 llama_gqa6x2 llama_gqa6x2_sharded llama_gqa6x2_2to8 \
         llama_gqa4x1_tied_bf16 llama_mha5_t1_f16; do
    "$CLI" run "$HF/$f" --input "$HF/$f/input_ids.npy" --output "$TMP/$f.npy" --threads 1 \
        || { fail "run $f"; continue; }
    close "$TMP/$f.npy" "$HF/$f/logits.npy"
done
for f in bert_cls_pad bert_cls_pad_2to8; do
    "$CLI" run "$HF/$f" --input "$HF/$f/input_ids.npy" --token-types "$HF/$f/token_type_ids.npy" \
        --attention-mask "$HF/$f/attention_mask.npy" --output "$TMP/$f.npy" || { fail "run $f"; continue; }
    close "$TMP/$f.npy" "$HF/$f/logits.npy"
done
for f in bert_long_f16 gpt2_model_t1; do
    "$CLI" run "$HF/$f" --input "$HF/$f/input_ids.npy" --output "$TMP/$f.npy" || { fail "run $f"; continue; }
    close "$TMP/$f.npy" "$HF/$f/last_hidden_state.npy"
done
# int32 ids read as the same tokens; one sequence (T) is a batch of one; --batch splits
npy "$TMP/ids32.npy" "np.load('$HF/gpt2_lm/input_ids.npy').astype(np.int32)"
"$CLI" run "$HF/gpt2_lm" --input "$TMP/ids32.npy" --output "$TMP/i32.npy" --threads 1 || fail "run int32 ids"
cmp -s "$TMP/i32.npy" "$TMP/gpt2_lm.npy" || fail "int32 ids changed the logits"
"$CLI" run "$HF/gpt2_lm" --input "$TMP/ids32.npy" --output "$TMP/b1.npy" --batch 1 || fail "run --batch 1"
close "$TMP/b1.npy" "$HF/gpt2_lm/logits.npy"
npy "$TMP/one.npy" "np.load('$HF/gpt2_lm/input_ids.npy')[1]"
"$CLI" run "$HF/gpt2_lm" --input "$TMP/one.npy" --output "$TMP/one_out.npy" || fail "run one sequence"
$PY -c "import numpy as np, sys; a = np.load('$TMP/one_out.npy'); b = np.load('$TMP/gpt2_lm.npy')
sys.exit(0 if a.shape == (1, 7, 67) and np.abs(a[0] - b[1]).max() <= 1e-5 * np.abs(b).max() else 1)" \
    || fail "a (T) input is not sequence 1 of the batch"
# without a mask BERT attends to the padding: the classification changes
"$CLI" run "$HF/bert_cls_pad" --input "$HF/bert_cls_pad/input_ids.npy" --output "$TMP/nomask.npy" \
    --token-types "$HF/bert_cls_pad/token_type_ids.npy" || fail "run bert without mask"
$PY -c "import numpy as np, sys; a = np.load('$TMP/nomask.npy'); b = np.load('$HF/bert_cls_pad/logits.npy')
sys.exit(0 if np.allclose(a[0], b[0], atol=1e-4) and not np.allclose(a[2], b[2], atol=1e-3) else 1)" \
    || fail "the mask (lengths 9/6/3) should change only the padded sequences"

# ---- generate: greedy with the cache equals the fixtures' full re-forward per step ----------
for f in gpt2_lm gpt2_long_bf16 llama_gqa6x2 llama_gqa6x2_2to8 llama_gqa4x1_tied_bf16 llama_mha5_t1_f16; do
    G=$($PY -c "import numpy as np; print(np.load('$HF/$f/generate.npy').shape[1] - np.load('$HF/$f/input_ids.npy').shape[1])")
    "$CLI" generate "$HF/$f" --input "$HF/$f/input_ids.npy" --tokens "$G" --output "$TMP/g_$f.npy" \
        >"$TMP/g_$f.txt" || { fail "generate $f"; continue; }
    same_ids "$TMP/g_$f.npy" "$HF/$f/generate.npy"
    grep -q "^prefill: .* tokens/s" "$TMP/g_$f.txt" && grep -q "^decode: .* tokens/s" "$TMP/g_$f.txt" \
        && grep -q "^cache: .* MiB" "$TMP/g_$f.txt" || fail "generate $f: no tokens/s figures"
done
# sampling: deterministic in the seed, ids in range, prompt kept; top-k 1 is greedy
for s in 1 2; do
    "$CLI" generate "$HF/gpt2_lm" --input "$HF/gpt2_lm/input_ids.npy" --tokens 8 --temperature 1.5 \
        --top-k 20 --seed 7 --output "$TMP/s$s.npy" >/dev/null || fail "generate sampling"
done
cmp -s "$TMP/s1.npy" "$TMP/s2.npy" || fail "sampling with one seed is not deterministic"
$PY -c "import numpy as np, sys; a = np.load('$TMP/s1.npy'); p = np.load('$HF/gpt2_lm/input_ids.npy')
sys.exit(0 if a.shape == (2, 15) and (a[:, :7] == p).all() and a.min() >= 0 and a.max() < 67 else 1)" \
    || fail "sampled sequences: shape, prompt or range"
"$CLI" generate "$HF/gpt2_lm" --input "$HF/gpt2_lm/input_ids.npy" --tokens 5 --temperature 0.7 \
    --top-k 1 --seed 3 --output "$TMP/k1.npy" >/dev/null || fail "generate --top-k 1"
same_ids "$TMP/k1.npy" "$HF/gpt2_lm/generate.npy"
# --output -: the .npy on stdout, the figures on stderr; --max-tokens bounds the cache
"$CLI" generate "$HF/gpt2_lm" --input "$HF/gpt2_lm/input_ids.npy" --tokens 5 --output - \
    --max-tokens 12 >"$TMP/stdout.npy" 2>"$TMP/stderr.txt" || fail "generate --output -"
same_ids "$TMP/stdout.npy" "$HF/gpt2_lm/generate.npy"
grep -q "12 positions" "$TMP/stderr.txt" || fail "generate: the cache size is not reported"

# ---- errors: one clear line each ---------------------------------------------------------------
npy "$TMP/big.npy" "np.array([[1, 2, 67]], dtype=np.int64)"
expect_error "id out of range" "67" -- "$CLI" run "$HF/gpt2_lm" --input "$TMP/big.npy" --output "$TMP/x.npy"
[ -e "$TMP/x.npy" ] && fail "an invalid run wrote its output"
npy "$TMP/neg.npy" "np.array([[1, -1]], dtype=np.int32)"
expect_error "negative id" "-1" -- "$CLI" generate "$HF/llama_gqa6x2" --input "$TMP/neg.npy" --tokens 2 --output "$TMP/x.npy"
npy "$TMP/float.npy" "np.zeros((1, 4), dtype=np.float32)"
expect_error "float ids" "float.npy" -- "$CLI" run "$HF/gpt2_lm" --input "$TMP/float.npy" --output "$TMP/x.npy"
npy "$TMP/long.npy" "np.zeros((1, 33), dtype=np.int64)"
expect_error "T > n_positions" "32" -- "$CLI" run "$HF/gpt2_lm" --input "$TMP/long.npy" --output "$TMP/x.npy"
expect_error "T + G > n_positions" "32" -- "$CLI" generate "$HF/gpt2_lm" --input "$HF/gpt2_lm/input_ids.npy" --tokens 26 --output "$TMP/x.npy"
expect_error "T + G > --max-tokens" "max" -- "$CLI" generate "$HF/gpt2_lm" --input "$HF/gpt2_lm/input_ids.npy" --tokens 6 --max-tokens 12 --output "$TMP/x.npy"
npy "$TMP/ids3d.npy" "np.zeros((1, 2, 3), dtype=np.int64)"
expect_error "3-D ids" "B,T" -- "$CLI" run "$HF/gpt2_lm" --input "$TMP/ids3d.npy" --output "$TMP/x.npy"
expect_error "ViT to generate" "causal language model" -- "$CLI" generate "$SRC/tests/fixtures/model/vit_2to8.safetensors" --input "$HF/gpt2_lm/input_ids.npy" --tokens 2 --output "$TMP/x.npy"
expect_error "BERT to generate" "language-model head" -- "$CLI" generate "$HF/bert_cls_pad" --input "$HF/bert_cls_pad/input_ids.npy" --tokens 2 --output "$TMP/x.npy"
expect_error "GPT2Model to generate" "language-model head" -- "$CLI" generate "$HF/gpt2_model_t1" --input "$HF/gpt2_model_t1/input_ids.npy" --tokens 2 --output "$TMP/x.npy"
expect_error "missing --tokens" "--tokens" -- "$CLI" generate "$HF/gpt2_lm" --input "$HF/gpt2_lm/input_ids.npy" --output "$TMP/x.npy"
expect_error "--tokens 0" "--tokens" -- "$CLI" generate "$HF/gpt2_lm" --input "$HF/gpt2_lm/input_ids.npy" --tokens 0 --output "$TMP/x.npy"
expect_error "--top-k without temperature" "temperature" -- "$CLI" generate "$HF/gpt2_lm" --input "$HF/gpt2_lm/input_ids.npy" --tokens 2 --top-k 3 --output "$TMP/x.npy"
expect_error "token types for GPT-2" "BERT" -- "$CLI" run "$HF/gpt2_lm" --input "$HF/gpt2_lm/input_ids.npy" --token-types "$HF/gpt2_lm/input_ids.npy" --output "$TMP/x.npy"
npy "$TMP/mask_bad.npy" "np.ones((3, 8), dtype=np.int64)"
expect_error "mask of another shape" "attention-mask" -- "$CLI" run "$HF/bert_cls_pad" --input "$HF/bert_cls_pad/input_ids.npy" --attention-mask "$TMP/mask_bad.npy" --output "$TMP/x.npy"
npy "$TMP/types_bad.npy" "np.full((3, 9), 2, dtype=np.int64)"
expect_error "token type out of range" "2" -- "$CLI" run "$HF/bert_cls_pad" --input "$HF/bert_cls_pad/input_ids.npy" --token-types "$TMP/types_bad.npy" --output "$TMP/x.npy"
expect_error "sim: decode of BERT" "decoders" -- "$CLI" sim --shape bert-base --phase decode
expect_error "sim: --functional on a token model" "ViT" -- "$CLI" sim "$HF/gpt2_lm" --functional
[ -e "$TMP/x.npy" ] && fail "a failed command wrote its output"

# ---- sim and bench model on token models -------------------------------------------------------
"$CLI" sim "$HF/llama_gqa6x2_2to8" --pattern 2:8 --tokens 5 >"$TMP/sim.txt" || fail "sim llama fixture"
grep -q "layers.1.mlp.down_proj *sparse" "$TMP/sim.txt" && grep -q "^prefill: 5 tokens" "$TMP/sim.txt" \
    || fail "sim of the 2:8 LLaMA fixture: no sparse down_proj or no prefill figure"
# GPT-2's Conv1D weights ([in, out]) packed N:M along their input: 5 x 96 x 24 x 2/4 MACs in c_fc
"$CLI" sim "$HF/gpt2_lm_2to4" --pattern 2:4 --tokens 5 >"$TMP/sim2.txt" || fail "sim gpt2 2:4 fixture"
grep -q "^h.1.mlp.c_fc *sparse .* 5760 " "$TMP/sim2.txt" || fail "sim of the 2:4 GPT-2 fixture: c_fc not sparse with 5760 MACs"
"$CLI" sim --shape gpt2 --pattern 1:8 --phase decode --tokens 64 --json >"$TMP/sim.json" || fail "sim gpt2 decode"
$PY -c "import json, sys; j = json.load(open('$TMP/sim.json'))
qk = [o for o in j['ops'] if o['name'] == 'h.0.attn.qk'][0]
sys.exit(0 if j['model']['phase'] == 'decode' and qk['shape'] == [12, 1, 65, 64] and j['tokens_per_s'] > 0 else 1)" \
    || fail "sim gpt2 decode JSON: phase, the qk of one token over 65 keys, tokens_per_s"
"$CLI" bench model "$HF/llama_gqa6x2" --quick --json >"$TMP/bench.json" || fail "bench model on an HF folder"
$PY -c "import json, sys; r = json.load(open('$TMP/bench.json'))[0]
sys.exit(0 if r['tokens'] == 16 and r['new_tokens'] == 4 and r['prefill_ms'] > 0 and r['decode_tokens_per_s'] > 0 else 1)" \
    || fail "bench model JSON of a decoder: tokens, new_tokens, prefill and decode figures"
expect_error "bench: too many positions" "positions" -- "$CLI" bench model "$HF/gpt2_lm" --quick --tokens 30
"$CLI" bench model "$HF/llama_gqa6x2_2to8" --quick --json --precision int8 >"$TMP/bench8.json" ||
    fail "bench model --precision int8 on an N:M decoder"
$PY -c "import json, sys; r = json.load(open('$TMP/bench8.json'))[0]
sys.exit(0 if r['candidate'].endswith('@int8') and r['prefill_ms'] > 0 else 1)" \
    || fail "bench model: a token model's row names its precision (CANDIDATE@int8)"

# ---- help ------------------------------------------------------------------------------------
"$CLI" run --help | grep -q "token ids" || fail "run --help does not describe token ids"
"$CLI" generate --help >"$TMP/h.txt" || fail "generate --help"
grep -q "2 \* layers \* B \* N \* kv_heads \* head_dim \* 4 bytes" "$TMP/h.txt" && grep -q "greedy" "$TMP/h.txt" \
    && grep -q -- "--max-tokens" "$TMP/h.txt" || fail "generate --help: the cache bound and the defaults"
"$CLI" bench model --help | grep -q "llama-small" || fail "bench model --help does not list the token shapes"
"$CLI" sim --help | grep -q "gpt2-medium" || fail "sim --help does not list the token shapes"
"$CLI" --help | grep -q "generate" || fail "nmformer --help does not list generate"

[ $failures -eq 0 ] || { echo "test_lm_cli: $failures failures" >&2; exit 1; }
echo "test_lm_cli: ok"
