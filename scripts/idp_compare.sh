#!/usr/bin/env bash
# IDP against one-shot, ASP and SR-STE-from-dense, at equal steps per candidate (docs/IDP.md).
#   1. one dense model:  train --config C --patterns 4:8 --stage-steps 0   (dense stage only)
#   2. from it, for each method and chain (M=8: 4:8,2:8,1:8; M=4: 2:4,1:4):
#        train --config C --init dense.nmf --method M --patterns CHAIN      (one thread each,
#        JOBS runs at a time)
#   3. a markdown table of test accuracy per candidate, and the steps each method needs.
#      CONFIG lm (the byte-level GPT-2 on the fortunes corpus) is the same flow; its table holds
#      the test perplexity of each candidate (lower is better) with its bits per byte.
# usage: bash scripts/idp_compare.sh PATH/TO/nmformer OUTDIR [CONFIG] [JOBS]
#        CONFIG: demo | full | lm (default full); JOBS: parallel runs (default: cores).
# env:   NMF_COMPARE_ARGS extra flags for every train run (e.g. "--seed 7");
#        NMF_COMPARE_DENSE_ARGS extra flags for the dense run only (e.g. "--steps 2000");
#        NMF_TABLE_ONLY=1 prints the table from an earlier run's OUTDIR without training.
# Each run keeps a checkpoint: rerunning the script resumes what an interrupted one left and
# skips what is finished (its summary exists).
set -euo pipefail
cli=${1:?usage: bash scripts/idp_compare.sh PATH/TO/nmformer OUTDIR [CONFIG] [JOBS]}
dir=${2:?usage: bash scripts/idp_compare.sh PATH/TO/nmformer OUTDIR [CONFIG] [JOBS]}
config=${3:-full}
jobs=${4:-$(nproc)}
methods=(oneshot asp srste idp)
declare -A chain=([m8]=4:8,2:8,1:8 [m4]=2:4,1:4)
mkdir -p "$dir"
cli=$(cd "$(dirname "$cli")" && pwd)/$(basename "$cli")
cd "$dir"

# one training run, resumable: NAME THREADS ARGS...
train() {
  local name=$1 threads=$2
  shift 2
  [[ -s $name.json ]] && return 0 # finished earlier
  local resume=()
  [[ -s $name.ckpt ]] && resume=(--resume)
  # shellcheck disable=SC2086
  "$cli" train --config "$config" "$@" --threads "$threads" --out "$name.nmf" \
    --checkpoint "$name.ckpt" --log "$name.jsonl" --summary "$name.json" --quiet \
    "${resume[@]}" ${NMF_COMPARE_ARGS:-} > "$name.out" 2>&1 ||
    { echo "idp_compare: $name failed, see $dir/$name.out" >&2; return 1; }
  echo "$(date +%T) $name done"
}

if [[ ${NMF_TABLE_ONLY:-0} != 1 ]]; then
  echo "== dense stage ($config, $jobs threads)"
  # shellcheck disable=SC2086
  train dense "$jobs" --patterns 4:8 --stage-steps 0 ${NMF_COMPARE_DENSE_ARGS:-}
  echo "== methods x chains from dense.nmf, $jobs at a time, one thread each"
  pids=()
  for m in "${methods[@]}"; do
    for c in m8 m4; do
      while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
      train "${m}_$c" 1 --init dense.nmf --method "$m" --patterns "${chain[$c]}" &
      pids+=($!)
    done
  done
  failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  ((failed == 0)) || exit 1
fi

# "model"/"accuracy" (LM: "perplexity", "bits_per_byte") of a summary (cJSON_Print layout: one
# key per line)
acc_of() { # FILE MODEL -> accuracy in % (2 decimals) or LM "perplexity (bits/byte)", "-" where
           # missing (a run not done yet)
  [[ -s $1 ]] || { printf -- "-"; return 0; }
  awk -v want="$2" -v lm="$([[ $config == lm ]] && echo 1 || echo 0)" -F'\t' '
    /"model":/ { gsub(/[",]/, "", $NF); model = $NF }
    !lm && /"accuracy":/ { gsub(/,/, "", $NF); if (model == want) { printf "%.2f", 100 * $NF; found = 1 } }
    lm && /"perplexity":/ { gsub(/,/, "", $NF); if (model == want) ppl = $NF }
    lm && /"bits_per_byte":/ { gsub(/,/, "", $NF); if (model == want) { printf "%.3f (%.3f)", ppl, $NF; found = 1 } }
    END { if (!found) printf "-" }' "$1"
}
steps_of() { # FILE -> total_steps
  [[ -s $1 ]] || { printf -- "-"; return 0; }
  awk -F'\t' '/"total_steps":/ { gsub(/,/, "", $NF); print $NF }' "$1"
}
dense_acc=$(acc_of dense.json dense)
echo
[[ $config == lm ]] && echo "test perplexity (bits per byte) on the corpus's test split; lower is better"
echo "| method | dense | 4:8 | 2:8 | 1:8 | 2:4 | 1:4 | steps for the N:M candidates (M=8 / M=4 chain) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for m in "${methods[@]}"; do
  row="| $m | $dense_acc"
  for p in 4:8 2:8 1:8; do row+=" | $(acc_of "${m}_m8.json" "$p")"; done
  for p in 2:4 1:4; do row+=" | $(acc_of "${m}_m4.json" "$p")"; done
  echo "$row | $(steps_of "${m}_m8.json") / $(steps_of "${m}_m4.json") |"
done
echo
echo "dense stage: $(steps_of dense.json) steps (shared by every method)"
