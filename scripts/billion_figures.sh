#!/bin/bash
# The billion-parameter figures of docs/PERFORMANCE.md (issue 17): a random-weight LLaMA of
# TinyLlama-1.1B's shape as a bf16 Hugging Face folder in 4 shards, pruned (streaming) to a
# dense + 4:8,2:8,1:8 family, then `generate` from each candidate at 1 and 2 threads, with wall
# time and peak RSS (/usr/bin/time -v).
#   bash scripts/billion_figures.sh [NMFORMER] [WORKDIR]     (defaults: build/nmformer, /tmp/nmf-1b)
# Needs ~7 GB of disk in WORKDIR and /usr/bin/python3 with torch (to write the folder, once).
set -u
BIN=${1:-build/nmformer}; WORK=${2:-/tmp/nmf-1b}; G=${G:-32}
SRC=$WORK/llama-1.1b; FAM=$WORK/fam.nmf; PROMPT=$WORK/prompt16.npy
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"
if [ ! -f "$SRC/config.json" ]; then
  /usr/bin/python3 "$HERE/make_random_hf.py" "$SRC" llama '{"vocab_size":32000,"hidden_size":2048,
    "num_hidden_layers":22,"num_attention_heads":32,"num_key_value_heads":4,"intermediate_size":5632,
    "max_position_embeddings":2048,"rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":false}' \
    --shards 4 || exit 1
fi
[ -f "$PROMPT" ] || /usr/bin/python3 -c "import numpy as np; np.save('$PROMPT', (np.arange(16, dtype=np.int64) * 997 % 32000).reshape(1, 16))"
echo "## $(date -u) $(lscpu | grep 'Model name' | sed 's/ \+/ /g'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" --version
if [ ! -f "$FAM" ]; then
  /usr/bin/time -v "$BIN" prune "$SRC" "$FAM" --pattern 4:8,2:8,1:8 > "$WORK/prune.out" 2> "$WORK/prune.err"
  echo "prune rc=$? $(grep -E 'Elapsed|Maximum resident' "$WORK/prune.err" | tr -s ' ' | tr '\n' ' ')"
  cat "$WORK/prune.out"
fi
"$BIN" info "$FAM" | grep -E "^model|^  total|bytes"
for m in dense 4:8 2:8 1:8; do
  for j in 1 2; do
    /usr/bin/time -v "$BIN" generate "$FAM" --model "$m" --input "$PROMPT" --tokens "$G" \
        --output "$WORK/seq.npy" -j "$j" --json > "$WORK/gen.json" 2> "$WORK/gen.err"
    rc=$?
    echo "generate $m -j$j rc=$rc wall=$(grep Elapsed "$WORK/gen.err" | awk '{print $NF}')" \
         "maxrss_kb=$(grep 'Maximum resident' "$WORK/gen.err" | awk '{print $NF}') $(cat "$WORK/gen.json")"
  done
done
