#!/usr/bin/env bash
# Body of `make run`, the main job: Fashion-MNIST -> a family of N:M ViTs, measured.
#   1. nmformer train --config demo --patterns 4:8,2:8,1:8   (IDP: dense -> 4:8 -> 2:8 -> 1:8)
#   2. nmformer eval of every candidate (test split, 10k images), in f32 and in int8
#   3. nmformer bench model of every candidate (latency of one image), f32 and int8
#   4. one table + out/summary.json (model, accuracy, bytes, latency_ms, speedup per candidate;
#      accuracy_int8, latency_ms_int8: the same candidate with --precision int8)
#   5. nmformer sim of every candidate on the mid-size accelerator design (out/sim_*.json, with
#      its timeline in out/sim_*.trace.json)
#   6. nmformer report: out/report.html (docs/REPORT.md)
# usage: bash scripts/run_main.sh BUILD/nmformer
# env:   NMF_OUT (default <repo>/out), NMF_THREADS (default: all cores), NMF_RESUME=1 to continue
#        an interrupted run from out/train.ckpt, NMF_TRAIN_ARGS extra flags for `train`.
set -euo pipefail
cli=${1:?usage: bash scripts/run_main.sh PATH/TO/nmformer}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${NMF_OUT:-$root/out}
threads=${NMF_THREADS:-$(nproc)}
mkdir -p "$out"
family="$out/family.nmf"
ckpt="$out/train.ckpt"
t0=$(date +%s)

resume=()
if [[ ${NMF_RESUME:-0} == 1 ]]; then resume=(--resume); else rm -f "$ckpt"; fi
echo "== train --config demo --patterns 4:8,2:8,1:8 ($threads threads) -> $family"
# shellcheck disable=SC2086
"$cli" train --config demo --patterns 4:8,2:8,1:8 --out "$family" --threads "$threads" \
  --checkpoint "$ckpt" --log "$out/train_metrics.jsonl" --summary "$out/train_summary.json" \
  "${resume[@]}" ${NMF_TRAIN_ARGS:-}
t_train=$(date +%s)

models=(dense 4:8 2:8 1:8)
declare -A acc bytes lat acc8 lat8
echo "== eval (test split) + bench model (batch 1, 1 thread, median of 50), f32 and int8"
top1() { grep -o '"top1": *[0-9.]*' | grep -o '[0-9.]*$'; }
for m in "${models[@]}"; do
  acc[$m]=$("$cli" eval "$family" --model "$m" --threads "$threads" --json | top1)
  acc8[$m]=$("$cli" eval "$family" --model "$m" --threads "$threads" --precision int8 --json | top1)
done
latency() { # candidate label -> its latency_ms in the bench JSON on stdin
  grep "\"candidate\": *\"$1\"" | grep -o '"latency_ms": *[0-9.]*' | head -1 | grep -o '[0-9.]*$'
}
bench=$("$cli" bench model "$family" --threads 1 --batch 1 --reps 50 --json)
bench8=$("$cli" bench model "$family" --threads 1 --batch 1 --reps 50 --precision int8 --json)
for m in "${models[@]}"; do
  lat[$m]=$(latency "$m" <<<"$bench")
  lat8[$m]=$(latency "$m@int8" <<<"$bench8")
done
# bytes each candidate stores (its tensors in the family file), from `info --json`
while read -r name b; do bytes[$name]=$b; done < <("$cli" info "$family" --json | awk '
  /^\t\t\t"name":/ { gsub(/[",]/, "", $2); name = $2 }
  /^\t\t\t"stored_bytes":/ { gsub(/,/, "", $2); print name, $2 }')
file_bytes=$(stat -c %s "$family")

printf '\n%-8s %10s %12s %12s %9s %10s %12s\n' candidate "test acc" bytes "latency ms" speedup \
  "int8 acc" "int8 ms"
json="["
sep=""
pct() { awk -v a="$1" 'BEGIN { print 100 * a }'; }
for m in "${models[@]}"; do
  for v in "${acc[$m]:-}" "${lat[$m]:-}" "${bytes[$m]:-}" "${acc8[$m]:-}" "${lat8[$m]:-}"; do
    [[ -n $v ]] || { echo "run_main: missing a measurement for $m" >&2; exit 1; }
  done
  speed=$(awk -v d="${lat[dense]}" -v x="${lat[$m]}" 'BEGIN { printf "%.2f", (x > 0 ? d / x : 0) }')
  printf '%-8s %9.2f%% %12d %12.4f %8sx %9.2f%% %12.4f\n' "$m" "$(pct "${acc[$m]}")" \
    "${bytes[$m]}" "${lat[$m]}" "$speed" "$(pct "${acc8[$m]}")" "${lat8[$m]}"
  json+="$sep{\"model\": \"$m\", \"accuracy\": ${acc[$m]}, \"bytes\": ${bytes[$m]}, \"latency_ms\": ${lat[$m]}, \"speedup\": $speed, \"accuracy_int8\": ${acc8[$m]}, \"latency_ms_int8\": ${lat8[$m]}}"
  sep=", "
done
json+="]"
t_end=$(date +%s)
# temp file + rename: a killed run never leaves a half-written summary
cat > "$out/summary.json.tmp" <<EOF
{"family": "$family", "file_bytes": $file_bytes, "threads_train": $threads,
 "train_seconds": $((t_train - t0)), "total_seconds": $((t_end - t0)),
 "latency": "batch 1, 1 thread, median of 50 forward passes",
 "candidates": $json}
EOF
sync "$out/summary.json.tmp" 2>/dev/null || true
mv -f "$out/summary.json.tmp" "$out/summary.json"

# the accelerator's view of each candidate (docs/STA.md): latency and per-unit timeline
for m in "${models[@]}"; do
  sim="$out/sim_${m/:/-}"
  "$cli" sim "$family" --model "$m" --hw "$root/configs/hw/mid.ini" --no-functional --json \
    --trace "$sim.trace.json" > "$sim.json.tmp"
  mv -f "$sim.json.tmp" "$sim.json"
done
"$cli" report "$out" -o "$out/report.html" --quiet

echo
echo "family file: $file_bytes bytes (shared tensors stored once); training $((t_train - t0)) s, total $((t_end - t0)) s"
echo "summary: $out/summary.json   metrics: $out/train_metrics.jsonl"
echo "report:  $out/report.html"
