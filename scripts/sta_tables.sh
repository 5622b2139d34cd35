#!/usr/bin/env bash
# Tables of docs/STA.md, measured with the simulator:
#   bash scripts/sta_tables.sh [path/to/nmformer]
# 1. MAC efficiency of the sparse layers versus N:M (DeiT-small, mid-size design)
# 2. DeiT-tiny/small/base at 2:8 on the three preset designs
# 3. with a trained Fashion-MNIST family MODEL.nmf: fixed-point accuracy (int8, int16) of every
#    candidate next to f32, and the simulator-vs-reference bit-exactness
#      bash scripts/sta_tables.sh build/nmformer family.nmf [EVAL_IMAGES (default 10000)]
set -euo pipefail
cli=${1:-build/nmformer}
model=${2:-}
images=${3:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
hw=$root/configs/hw

# per-op lines of the text report: name kind cycles stall fetch useful_macs eff% ...
op() { awk -v n="$2" '$1 == n { print $'"$3"' }' <<<"$1"; }

echo "### MAC efficiency versus N:M (DeiT-small, configs/hw/mid.ini)"
echo
echo "| pattern | fc1 cycles | fc1 MAC eff. | fc2 cycles | fc2 MAC eff. | all sparse ops eff. | total ms | total MAC eff. |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for p in 2:4 4:8 2:8 1:8 1:16; do
  out=$("$cli" sim --shape deit-small --pattern "$p" --hw "$hw/mid.ini")
  sp=$(awk '$2 == "sparse" { c += $3; m += $6 } END { printf "%.1f%%", 100 * m / (c * 4096) }' <<<"$out")
  tot=$(awk '/^total:/ { print $5 " | " $NF }' <<<"$out")
  echo "| $p | $(op "$out" blocks.0.mlp.fc1 3) | $(op "$out" blocks.0.mlp.fc1 7)% | $(op "$out" blocks.0.mlp.fc2 3) | $(op "$out" blocks.0.mlp.fc2 7)% | $sp | $tot |"
done
echo
echo "### DeiT at 2:8 (and dense) on the preset designs"
echo
echo "| design | shape | pattern | cycles | time ms | MAC eff. | DRAM stall cycles | DRAM MiB read | sim wall s |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
for d in small mid large; do
  for s in deit-tiny deit-small deit-base; do
    for p in dense 2:8; do
      args=(--shape "$s" --hw "$hw/$d.ini")
      [ "$p" = dense ] || args+=(--pattern "$p")
      out=$("$cli" sim "${args[@]}")
      awk -v d="$d" -v s="$s" -v p="$p" '
        /^total:/ { cyc = $2; ms = $5; eff = $NF }
        /busy/ && /stall/ { for (i = 1; i <= NF; i++) { if ($i == "stall") st = $(i + 1); if ($i == "read") rd = $(i + 1) } }
        /^simulated in/ { w = $3 }
        END { gsub(",", "", st); printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", d, s, p, cyc, ms, eff, st, rd, w }' <<<"$out"
    done
  done
done

[ -n "$model" ] || exit 0
echo
echo "### Fixed point on Fashion-MNIST ($(basename "$model"), test images: ${images/#0/all})"
echo
echo "| candidate | data bits | f32 acc. | fixed acc. | drop (points) | top-1 agreement | sim vs reference | STA time ms (mid) |"
echo "|---|---:|---:|---:|---:|---:|---|---:|"
for cand in $("$cli" info "$model" | sed -n "s/^model '\(.*\)'$/\1/p"); do
  for ini in mid mid_int16; do
    out=$("$cli" sim "$model" --model "$cand" --hw "$hw/$ini.ini" --functional --eval-images "$images")
    awk -v c="$cand" '
      /^total:/ { ms = $5 }
      /^functional/ { bits = $2; gsub(/[^0-9]/, "", bits); exact = ($0 ~ /bit-identical/) ? "bit-identical" : "DIFFERENT" }
      /accuracy:/ { f = $3; x = $8; d = $10; a = $14; gsub(/[;,]/, "", a) }
      END { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", c, bits, f, x, d, a, exact, ms }' <<<"$out"
  done
done
