#!/usr/bin/env bash
# Figures of docs/STA.md §8 (the CPU in the accelerator's numbers), for a Fashion-MNIST family:
#   bash scripts/sta_cpu_figures.sh build/nmformer out/family.nmf [SIM_IMAGES (default 2000)] [REPS (3)]
# 1. accuracy of every candidate with `eval --precision int8 --sta HW.ini` on the whole test split
#    (int8: configs/hw/mid.ini, int16: mid_int16.ini), next to f32 (`eval`), and the simulator's
#    functional accuracy on the first SIM_IMAGES test images (`sim --functional`, which also runs
#    the CPU mode on each of them and reports whether its logits are bit-identical) against
#    `eval --sta --limit SIM_IMAGES`;
# 2. images/s at one thread: f32 (`eval`, batch 64), the CPU fixed-point mode (`eval --sta`) and
#    the functional simulator (sim's simulator_images_per_s), REPS interleaved runs, medians.
set -euo pipefail
cli=${1:?usage: bash scripts/sta_cpu_figures.sh NMFORMER FAMILY.nmf [SIM_IMAGES] [REPS]}
fam=${2:?family .nmf}
simn=${3:-2000}
reps=${4:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
hw=$root/configs/hw
cands=(dense 4:8 2:8 1:8)
jfield() { grep -o "\"$1\":[[:space:]]*[^,}]*" | head -1 | sed 's/.*:[[:space:]]*//'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| candidate | data bits | f32 acc. (10k) | CPU --sta acc. (10k) | simulator acc. ($simn) | CPU --sta acc. ($simn) | CPU logits vs simulator ($simn) |"
echo "|---|---:|---:|---:|---:|---:|---|"
for c in "${cands[@]}"; do
  f32=$("$cli" eval "$fam" --model "$c" --threads 2 --json | jfield top1)
  for d in mid mid_int16; do
    bits=$([[ $d == mid ]] && echo 8 || echo 16)
    full=$("$cli" eval "$fam" --model "$c" --precision int8 --sta "$hw/$d.ini" --threads 2 --json | jfield top1)
    part=$("$cli" eval "$fam" --model "$c" --precision int8 --sta "$hw/$d.ini" --threads 2 --limit "$simn" --json | jfield top1)
    sim=$("$cli" sim "$fam" --model "$c" --hw "$hw/$d.ini" --functional --eval-images "$simn" --threads 2 --json)
    simacc=$(jfield accuracy_fixed <<<"$sim")
    same=$(jfield cpu_bit_identical <<<"$sim")
    printf '| %s | %s | %.2f%% | %.2f%% | %.2f%% | %.2f%% | %s |\n' "$c" "$bits" \
      "$(awk -v a="$f32" 'BEGIN{print 100*a}')" "$(awk -v a="$full" 'BEGIN{print 100*a}')" \
      "$(awk -v a="$simacc" 'BEGIN{print 100*a}')" "$(awk -v a="$part" 'BEGIN{print 100*a}')" \
      "$([[ $same == true ]] && echo bit-identical || echo DIFFERENT)"
  done
done
echo
echo "images/s, one thread (medians of $reps; simulator on 500 images, the others on 10000):"
echo
echo "| candidate | f32 (eval) | CPU --sta int8 | CPU --sta int16 | simulator int8 | CPU int8 / simulator |"
echo "|---|---:|---:|---:|---:|---:|"
for c in "${cands[@]}"; do
  a=""; b=""; b16=""; s=""
  for ((r = 0; r < reps; r++)); do
    j=$("$cli" eval "$fam" --model "$c" --threads 1 --json)
    a+=" $(awk -v n="$(jfield images <<<"$j")" -v t="$(jfield seconds <<<"$j")" 'BEGIN{printf "%.0f", n/t}')"
    j=$("$cli" eval "$fam" --model "$c" --precision int8 --sta "$hw/mid.ini" --threads 1 --json)
    b+=" $(awk -v n="$(jfield images <<<"$j")" -v t="$(jfield seconds <<<"$j")" 'BEGIN{printf "%.0f", n/t}')"
    j=$("$cli" eval "$fam" --model "$c" --precision int8 --sta "$hw/mid_int16.ini" --threads 1 --json)
    b16+=" $(awk -v n="$(jfield images <<<"$j")" -v t="$(jfield seconds <<<"$j")" 'BEGIN{printf "%.0f", n/t}')"
    j=$("$cli" sim "$fam" --model "$c" --hw "$hw/mid.ini" --functional --eval-images 500 --threads 1 --json)
    s+=" $(jfield simulator_images_per_s <<<"$j" | awk '{printf "%.0f", $1}')"
  done
  ma=$(median <<<"$a"); mb=$(median <<<"$b"); mb16=$(median <<<"$b16"); ms=$(median <<<"$s")
  printf '| %s | %s | %s | %s | %s | %.1fx |\n' "$c" "$ma" "$mb" "$mb16" "$ms" "$(awk -v x="$mb" -v y="$ms" 'BEGIN{print x/y}')"
done
