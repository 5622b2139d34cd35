#!/usr/bin/env bash
# The figures of the performance issue in one go, on whatever CPU this is: the CPU and the
# kernels every library runs, then (1) `bench gemm` on BERT shapes at 1 and 2 threads (% of the
# measured FMA peak, speed-up over the best dense backend of the same run), and in int8 on BERT
# and DeiT shapes at one thread (% of the measured int8 multiply-add peak), (2) the tv kernel's
# shapes against the panel kernel on BERT and DeiT layers (build/tv_sweep), (3) DeiT-small
# batch 1 against the dense peers (bench/model_vs_peers.py; its venv: bench/setup_peers.sh), f32
# and int8 (ours int8 against ONNX Runtime's and OpenVINO's own int8 quantization).
# Prints markdown-ready blocks; run it when nothing else does (load averages are printed).
#   bash bench/kernel_figures.sh [BUILD_DIR] [REPS] [ROUNDS]        (defaults: build, 5, 2)
# Environment: PATTERNS (default dense,2:4,4:8,2:8,1:8,1:16), TOKENS (1,16,128,512),
# PRECISION (of (3), default f32,int8), SKIP_PEERS=1 skips (3).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
reps=${2:-5}
rounds=${3:-2}
cli=$build/nmformer
patterns=${PATTERNS:-dense,2:4,4:8,2:8,1:8,1:16}
tokens=${TOKENS:-1,16,128,512}
[ -x "$cli" ] || { echo "kernel_figures: no $cli (build first)" >&2; exit 1; }

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), $(nproc) cpus"
echo "# flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_vnni|avx512vbmi|avx512_bf16|avx512_fp16|amx_tile)$' | tr '\n' ' ')"
echo "# ours: $("$cli" --version)"
blas_core=$(OPENBLAS_VERBOSE=2 "$cli" bench gemm --shapes 16x16 --tokens 16 --patterns dense \
  --threads 1 --reps 1 2>&1 | grep -o 'Core: [A-Za-z0-9]*' | head -1 || true)
echo "# OpenBLAS (OPENBLAS_VERBOSE=2): ${blas_core:-core not reported}"

for t in 1 2; do
  echo "## bench gemm, $t thread(s): $(date -u '+%H:%M UTC'), load $(cut -d' ' -f1 /proc/loadavg)"
  echo '```'
  "$cli" bench gemm --shapes 768x768,3072x768,768x3072 --tokens "$tokens" --patterns "$patterns" \
    --threads "$t"
  echo '```'
done

echo "## bench gemm, int8, 1 thread: $(date -u '+%H:%M UTC'), load $(cut -d' ' -f1 /proc/loadavg)"
echo '```'
"$cli" bench gemm --shapes 768x768,3072x768,768x3072,1152x384,384x384,1536x384,384x1536 \
  --tokens 128,197 --patterns dense,2:4,2:8,1:8 --precision int8 --threads 1
echo '```'

echo "## tv kernel shapes (build/tv_sweep), one thread: $(date -u '+%H:%M UTC'), load $(cut -d' ' -f1 /proc/loadavg)"
echo '```'
for layer in "768x768 128" "3072x768 128" "384x384 197" "1536x384 197"; do
  for p in 2:8 1:8; do "$build/tv_sweep" $layer $p; done
done
echo '```'

if [ -z "${SKIP_PEERS:-}" ]; then
  echo "## DeiT-small against the dense peers: $(date -u '+%H:%M UTC'), load $(cut -d' ' -f1 /proc/loadavg)"
  echo '```'
  /usr/bin/python3 "$root/bench/model_vs_peers.py" --nmformer "$cli" --shape deit-small \
    --pattern dense,2:4,2:8,1:8 --threads 1,2 --batch 1 --reps "$reps" --rounds "$rounds" \
    --precision "${PRECISION:-f32,int8}"
  echo '```'
fi
echo "# done $(date -u '+%H:%M UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
