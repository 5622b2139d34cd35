#!/usr/bin/env bash
# The figures of issue 11 in one go: (1) ours (dense, 2:8, 1:8) against PyTorch dense on
# BERT-base at T tokens and GPT-2 small prefill T + decode G, at one thread then two, with the
# logits check at real size first (bench/lm_vs_peers.py); (2) the STA simulator's prefill and
# decode figures of the token shapes (nmformer sim). Prints markdown-ready tables.
#   bash bench/lm_figures.sh [build/nmformer] [REPS] [ROUNDS]      (defaults: 5, 2)
# Environment: THREADS (default "1 2"; "" skips the CPU tables), HW (default: the built-in mid design), TOKENS (128),
# NEW_TOKENS (128). On a shared machine run it when nothing else does (load average in the header).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli=${1:-$root/build/nmformer}
reps=${2:-5}
rounds=${3:-2}
tokens=${TOKENS:-128}
new=${NEW_TOKENS:-128}
hw=()
[ -n "${HW:-}" ] && hw=(--hw "$HW")

for t in ${THREADS-1 2}; do
  echo "## CPU, $t thread(s): $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo '```'
  /usr/bin/python3 "$root/bench/lm_vs_peers.py" --nmformer "$cli" --threads "$t" --tokens "$tokens" \
    --new-tokens "$new" --reps "$reps" --rounds "$rounds"
  echo '```'
done

echo "## STA (${HW:-built-in mid design}): prefill of $tokens tokens, decode of one token against a cache of $tokens"
echo "| shape | pattern | prefill ms | prefill tokens/s | decode ms/token | decode tokens/s |"
echo "|---|---|---:|---:|---:|---:|"
for shape in bert-base gpt2 gpt2-medium llama-small llama-1.1b; do
  for p in dense 2:8 1:8; do
    pat=()
    [ "$p" != dense ] && pat=(--pattern "$p")
    pre=$("$cli" sim --shape "$shape" "${pat[@]}" "${hw[@]}" --tokens "$tokens" --json |
          /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.4f | %.0f" % (j["total"]["time_ms"], j["tokens_per_s"]))')
    dec="- | -"
    if [ "$shape" != bert-base ]; then
      dec=$("$cli" sim --shape "$shape" "${pat[@]}" "${hw[@]}" --tokens "$tokens" --phase decode --json |
            /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.4f | %.1f" % (j["total"]["time_ms"], j["tokens_per_s"]))')
    fi
    echo "| $shape | $p | $pre | $dec |"
  done
done
