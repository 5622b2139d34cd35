#!/usr/bin/env bash
# The one-shot table of docs/IDP.md: a dense model pruned without retraining by magnitude, Wanda and
# SparseGPT at each pattern, its test figure from `nmformer eval`, calibration cost from `prune`.
# usage: bash scripts/oneshot_table.sh BUILD/nmformer DENSE_MODEL [OUTDIR] [vit|lm]
#   vit (default): test accuracy (%) on Fashion-MNIST, calibrated on its first training images
#   lm:            test perplexity on the text corpus, calibrated on windows of its train split
# env:   NMF_PATTERNS (default 4:8,2:4,2:8,1:8), NMF_CALIB_SAMPLES (default 128), NMF_THREADS,
#        NMF_EVAL_LIMIT (test images / windows; default all), NMF_CORPUS (lm: the corpus;
#        default the fortunes corpus)
# DENSE_MODEL: a .safetensors model or a family .nmf whose "dense" candidate is taken (e.g. the
# out/family.nmf of `make run`, or the family of `train --config lm`).
set -euo pipefail
usage="usage: bash scripts/oneshot_table.sh PATH/TO/nmformer DENSE_MODEL [OUTDIR] [vit|lm]"
cli=${1:?$usage}
dense=${2:?$usage}
out=${3:-out/oneshot}
mode=${4:-vit}
[[ $mode == vit || $mode == lm ]] || { echo "$usage" >&2; exit 2; }
patterns=${NMF_PATTERNS:-4:8,2:4,2:8,1:8}
samples=${NMF_CALIB_SAMPLES:-128}
threads=${NMF_THREADS:-$(nproc)}
limit=()
[[ -n ${NMF_EVAL_LIMIT:-} ]] && limit=(--limit "$NMF_EVAL_LIMIT")
mkdir -p "$out"

corpus=()
[[ $mode == lm && -n ${NMF_CORPUS:-} ]] && corpus=(--corpus "$NMF_CORPUS")

score() { # FILE MODEL -> vit: top-1 in %; lm: test perplexity
  if [[ $mode == lm ]]; then
    "$cli" eval "$1" --model "$2" --threads "$threads" --json "${limit[@]}" "${corpus[@]}" |
      grep -o '"perplexity": *[0-9.]*' | awk '{ printf "%.3f", $2 }'
  else
    "$cli" eval "$1" --model "$2" --threads "$threads" --json "${limit[@]}" |
      grep -o '"top1": *[0-9.]*' | awk '{ printf "%.2f", 100 * $2 }'
  fi
}

declare -A acc cost
for method in magnitude wanda sparsegpt; do
  calib=()
  [[ $method != magnitude ]] && calib=(--calib-samples "$samples" "${corpus[@]}")
  t0=$(date +%s.%N)
  line=$(NMF_THREADS=$threads "$cli" prune "$dense" "$out/$method.nmf" --pattern "$patterns" \
         --method "$method" "${calib[@]}" 2>&1 >/dev/null)
  t1=$(date +%s.%N)
  if [[ $method == magnitude ]]; then
    cost[$method]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "0 samples, %.2f s (whole command)", b - a }')
  else # "prune: M, K patterns: S calibration samples (T tokens per pass), F forward passes, X s"
    cost[$method]=$(sed -E 's/.*: ([0-9]+) calibration samples \(([0-9]+) tokens per pass\), ([0-9]+) forward pass(es)?, ([0-9.]+) s/\1 samples, \3 passes, \5 s/' <<<"$line")
  fi
  for p in ${patterns//,/ }; do acc[$method,$p]=$(score "$out/$method.nmf" "$p"); done
done
acc_dense=$(score "$out/magnitude.nmf" dense)

printf '\n| method | dense |'
for p in ${patterns//,/ }; do printf ' %s |' "$p"; done
printf ' calibration (all patterns) |\n| --- | --- |'
for p in ${patterns//,/ }; do printf ' --- |'; done
printf ' --- |\n'
for method in magnitude wanda sparsegpt; do
  printf '| %s | %s |' "$method" "$acc_dense"
  for p in ${patterns//,/ }; do printf ' %s |' "${acc[$method,$p]}"; done
  printf ' %s |\n' "${cost[$method]}"
done
