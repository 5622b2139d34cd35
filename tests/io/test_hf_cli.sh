#!/bin/bash
# prune / convert / info on Hugging Face model folders, end to end through the CLI, for every
# fixture of tests/fixtures/hf:
#  - prune FOLDER FAMILY.nmf --pattern 2:4,2:8,1:4 (a width that M does not divide: one clear
#    line naming the tensor); info shows the family, architecture, heads, kv heads, vocabulary and
#    the bytes of each candidate;
#  - convert FAMILY.nmf OUT_DIR --model NAME writes an HF folder in the source's dtype that
#    tests/ref/check_hf_folder.py (PyTorch, tests/ref/hf_models.py; skipped without torch) loads
#    and runs to the fixture's own outputs; our 2:4 / 2:8 of a dense fixture, written back, is its
#    N:M twin fixture (same weights, same logits);
#  - folder -> .nmf / .safetensors -> folder; --dtype; an OUT_DIR that is a file, a non-empty
#    folder, a ViT: one clear error line, nothing written;
#  - prune straight to a folder (magnitude, streamed) is the same folder as through .nmf;
#    --max-shard-size writes save_pretrained's shards + index, which read back (ours and the
#    PyTorch check) as the unsharded model.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
SRC=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}
FIX=$SRC/tests/fixtures/hf
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
. "$SRC/tests/cli_lib.sh" # failures, fail, expect_error

# the stored dtype of every tensor of a safetensors file (its JSON header), one line each
dtypes() { head -c 65536 "$1" | grep -ao '"dtype":"[A-Z0-9]*"' | sort | uniq -c; }

checks=() # OUT_DIR FIXTURE WEIGHTS triples for the PyTorch check
for dir in "$FIX"/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    pats=2:4,2:8,1:4
    if [ "$name" = gpt2_model_t1 ]; then # n_embd 20
        expect_error "$name 2:8" "input dimension 20 is not a multiple of M=8" -- \
            "$CLI" prune "$dir" "$TMP/x.nmf" --pattern 2:8
        expect_error "$name 2:8 names the tensor" "h.0.attn.c_attn.weight" -- \
            "$CLI" prune "$dir" "$TMP/x.nmf" --pattern 2:8
        pats=2:4,1:4
    fi
    "$CLI" prune "$dir" "$TMP/$name.nmf" --pattern $pats 2>"$TMP/err" || { fail "$name: prune: $(cat "$TMP/err")"; continue; }
    "$CLI" info "$TMP/$name.nmf" >"$TMP/info" 2>"$TMP/err" || fail "$name: info: $(cat "$TMP/err")"
    heads=$(sed -n 's/.*"\(num_attention_heads\|n_head\)":\s*\([0-9]*\).*/\2/p' "$dir/config.json" | head -1)
    grep -q "^model: .* $heads heads, [0-9]* kv heads, head_dim [0-9]*, .*vocab [0-9]*" "$TMP/info" \
        || fail "$name: info has no model line with $heads heads: $(grep '^model' "$TMP/info")"
    for p in dense ${pats//,/ }; do
        grep -q "^  $p  *[0-9]* bytes  [0-9.]*x dense f32" "$TMP/info" || fail "$name: info: no bytes for candidate $p"
    done
    "$CLI" info "$TMP/$name.nmf" --json >"$TMP/info.json" || fail "$name: info --json"
    grep -q '"kv_heads":' "$TMP/info.json" && grep -q '"vocab":' "$TMP/info.json" \
        || fail "$name: info --json lacks the model object"
    "$CLI" info "$dir" >"$TMP/info" 2>"$TMP/err" || fail "$name: info of the folder: $(cat "$TMP/err")"
    grep -q "^model: " "$TMP/info" || fail "$name: info of the folder has no model line"

    # back to an HF folder: the dense candidate is the fixture itself, in its own dtype
    "$CLI" convert "$TMP/$name.nmf" "$TMP/$name.dense" --model dense 2>"$TMP/err" \
        || { fail "$name: convert to a folder: $(cat "$TMP/err")"; continue; }
    [ "$(ls "$TMP/$name.dense")" = "$(printf 'config.json\nmodel.safetensors')" ] \
        || fail "$name: the folder holds $(ls "$TMP/$name.dense" | tr '\n' ' ')"
    src=$dir/model.safetensors
    [ -e "$src" ] || src=$dir/model-00001-of-00002.safetensors
    [ "$(dtypes "$TMP/$name.dense/model.safetensors" | awk '{print $2}' | sort -u)" = \
      "$(dtypes "$src" | awk '{print $2}' | sort -u)" ] || fail "$name: dtype not the source's"
    checks+=("$TMP/$name.dense" "$dir" "$dir")
    "$CLI" convert "$TMP/$name.nmf" "$TMP/$name.24" --model 2:4 || fail "$name: convert 2:4"
    # the folder reads back as the candidate: folder -> .nmf packs it again
    "$CLI" convert "$TMP/$name.24" "$TMP/$name.24.nmf" --model 2:4 || fail "$name: folder -> .nmf 2:4"
    "$CLI" convert "$TMP/$name.24.nmf" "$TMP/$name.24.safetensors" || fail "$name: .nmf -> safetensors"
    "$CLI" convert "$TMP/$name.24.safetensors" "$TMP/$name.24b" || fail "$name: safetensors -> folder"
    cmp -s "$TMP/$name.24/model.safetensors" "$TMP/$name.24b/model.safetensors" \
        || fail "$name: 2:4 through .nmf and .safetensors is not the same folder"
    cmp -s "$TMP/$name.24/config.json" "$TMP/$name.24b/config.json" || fail "$name: config.json changed"
done

# our pruning of a dense fixture, written back, is its N:M twin fixture
for twin in bert_cls_pad:bert_cls_pad_2to8:2:8 gpt2_lm:gpt2_lm_2to4:2:4 llama_gqa6x2:llama_gqa6x2_2to8:2:8; do
    IFS=: read -r dense nm n m <<<"$twin"
    "$CLI" convert "$TMP/$dense.nmf" "$TMP/$nm.ours" --model "$n:$m" || fail "$nm: convert"
    checks+=("$TMP/$nm.ours" "$FIX/$nm" "$FIX/$nm")
done

# prune by magnitude straight to a folder (streamed): the same twin, the same bytes as through .nmf
"$CLI" prune "$FIX/gpt2_lm" "$TMP/gpt2_lm_2to4.direct" --pattern 2:4 -q || fail "prune to a folder"
for f in config.json model.safetensors; do
    cmp -s "$TMP/gpt2_lm_2to4.direct/$f" "$TMP/gpt2_lm_2to4.ours/$f" || fail "prune to a folder: $f differs"
done
expect_error "prune --method wanda to a folder" "magnitude only" -- \
    "$CLI" prune "$FIX/gpt2_lm" "$TMP/x" --pattern 2:4 --method wanda
expect_error "prune to a folder, two patterns" "holds one pattern" -- \
    "$CLI" prune "$FIX/gpt2_lm" "$TMP/x" --pattern 2:4,1:4

# --max-shard-size: save_pretrained's shards and index, read back by us and by the PyTorch check
"$CLI" convert "$FIX/llama_gqa6x2" "$TMP/llama_shards" --max-shard-size 40KB -q || fail "convert to shards"
[ "$(ls "$TMP/llama_shards" | tr '\n' ' ')" = "config.json model-00001-of-00005.safetensors \
model-00002-of-00005.safetensors model-00003-of-00005.safetensors model-00004-of-00005.safetensors \
model-00005-of-00005.safetensors model.safetensors.index.json " ] || fail "shards: $(ls "$TMP/llama_shards" | tr '\n' ' ')"
"$CLI" convert "$TMP/llama_shards" "$TMP/llama_unsharded.safetensors" -q || fail "shards as a source"
"$CLI" convert "$FIX/llama_gqa6x2" "$TMP/llama_direct.safetensors" -q || fail "convert to safetensors"
cmp -s "$TMP/llama_unsharded.safetensors" "$TMP/llama_direct.safetensors" || fail "shards read back differ"
checks+=("$TMP/llama_shards" "$FIX/llama_gqa6x2" "$FIX/llama_gqa6x2")
# OUT may be IN (streamed: IN is read from the files it had while the new ones are staged)
cp -r "$TMP/llama_shards" "$TMP/self"
"$CLI" convert "$TMP/self" "$TMP/self" --force --dtype bf16 -q || fail "a folder onto itself"
"$CLI" convert "$TMP/self" "$TMP/self.safetensors" -q && "$CLI" convert "$TMP/self.safetensors" "$TMP/self.safetensors" --dtype f32 -q \
    || fail "a file onto itself"
"$CLI" convert "$FIX/llama_gqa6x2" "$TMP/direct_bf16.safetensors" --dtype bf16 -q && \
    "$CLI" convert "$TMP/direct_bf16.safetensors" "$TMP/direct_back.safetensors" --dtype f32 -q || fail "bf16 and back"
cmp -s "$TMP/self.safetensors" "$TMP/direct_back.safetensors" || fail "onto itself: not the direct conversion"
expect_error "--max-shard-size for a file OUT" "model folder OUT only" -- \
    "$CLI" convert "$FIX/gpt2_lm" "$TMP/x.safetensors" --max-shard-size 1GB
expect_error "--max-shard-size not a size" "not a size" -- \
    "$CLI" convert "$FIX/gpt2_lm" "$TMP/x" --max-shard-size 5XB

# --dtype: a BF16 fixture written as f32 doubles its weights; the default keeps BF16
"$CLI" convert "$FIX/llama_gqa4x1_tied_bf16" "$TMP/l32" --dtype f32 || fail "convert --dtype f32"
dtypes "$TMP/l32/model.safetensors" | grep -q BF16 && fail "--dtype f32 left BF16 tensors"
"$CLI" prune "$FIX/llama_gqa4x1_tied_bf16" "$TMP/lbf.nmf" --pattern 2:8 || fail "prune bf16"
"$CLI" info "$TMP/lbf.nmf" --json | grep -q '"dtype":\s*"F32"' && fail "prune of a BF16 source stored F32"

# outputs that must not be touched
echo keep >"$TMP/afile"
expect_error "OUT_DIR is a file" "not a folder" -- "$CLI" convert "$TMP/gpt2_lm.nmf" "$TMP/afile" --model 2:4
[ "$(cat "$TMP/afile")" = keep ] || fail "the file was changed"
mkdir "$TMP/mine" && echo notes >"$TMP/mine/notes.txt"
expect_error "non-empty folder" "not empty" -- "$CLI" convert "$FIX/gpt2_lm" "$TMP/mine"
expect_error "--force on a foreign folder" "holds no config.json" -- "$CLI" convert "$FIX/gpt2_lm" "$TMP/mine" --force
[ "$(ls "$TMP/mine")" = notes.txt ] || fail "a foreign folder was changed"
cp -r "$TMP/gpt2_lm.dense" "$TMP/again"
expect_error "an existing model folder without --force" "--force" -- \
    "$CLI" convert "$TMP/gpt2_lm.nmf" "$TMP/again" --model 2:4
cmp -s "$TMP/again/model.safetensors" "$TMP/gpt2_lm.dense/model.safetensors" || fail "refused, yet changed"
"$CLI" convert "$TMP/gpt2_lm.nmf" "$TMP/again" --model 2:4 --force || fail "--force on a model folder"
cmp -s "$TMP/again/model.safetensors" "$TMP/gpt2_lm.24/model.safetensors" || fail "--force did not replace"
expect_error "--force with a file OUT" "model folder OUT only" -- "$CLI" convert "$FIX/gpt2_lm" "$TMP/x.nmf" --force
expect_error "a ViT has no HF folder" "no Hugging Face folder form" -- \
    "$CLI" convert "$SRC/tests/fixtures/vit_tiny.safetensors" "$TMP/vitdir"
[ -e "$TMP/vitdir" ] && fail "a failed convert left $TMP/vitdir"
expect_error "a candidate the family lacks" "no model '1:8' (available: dense, 2:4, 2:8, 1:4)" -- \
    "$CLI" convert "$TMP/gpt2_lm.nmf" "$TMP/x" --model 1:8
[ -e "$TMP/x" ] && fail "a failed convert left $TMP/x"
ls "$TMP" | grep -q '\.tmp$' && fail "a temporary folder was left behind: $(ls "$TMP" | grep '\.tmp$')"

if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    /usr/bin/python3 "$SRC/tests/ref/check_hf_folder.py" "${checks[@]}" || fail "PyTorch check of the written folders"
else
    echo "test_hf_cli: PyTorch check skipped (/usr/bin/python3 has no torch: python3-torch)"
fi

if [ $failures -ne 0 ]; then echo "test_hf_cli: $failures failed" >&2; exit 1; fi
echo "test_hf_cli: ok"
