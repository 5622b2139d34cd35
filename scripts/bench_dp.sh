#!/usr/bin/env bash
# Steps/s and communication share of data-parallel training, K = 1 and 2, default and
# --deterministic, interleaved (docs/IDP.md, "Data-parallel training"). Training steps only
# (no evaluation), from the --summary data_parallel fields. One thread per rank.
#   scripts/bench_dp.sh build/nmformer demo 40 3      # CLI, config, steps, repetitions
set -euo pipefail
CLI=${1:-build/nmformer}; cfg=${2:-demo}; n=${3:-40}; reps=${4:-3}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
A=(--config "$cfg" --steps "$n" --patterns 4:8 --stage-steps 0 --eval-every 100000 --holdout 1000
   --test-limit 100 --threads 1 --quiet --out "$tmp/o.nmf" --summary "$tmp/s.json")
M=(mpirun --mca btl self,vader)
[[ $(id -u) -eq 0 ]] && M+=(--allow-run-as-root)
one() { # label, command...
  local label=$1; shift
  "$@" >/dev/null 2>&1 || { echo "$label: failed"; return; }
  python3 - "$label" "$tmp/s.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))["data_parallel"]
n, t, c = d["steps_run"], d["step_seconds"], d["comm_seconds"]
print(f"{sys.argv[1]:<20} steps/s {n / t:6.2f}  step {1e3 * t / n:7.1f} ms  "
      f"communication {1e3 * c / n:6.2f} ms ({100 * c / t:4.1f}%)  {d['reduced_bytes_per_step']} B/step")
PY
}
for _ in $(seq "$reps"); do
  echo "# $(cut -d' ' -f1-3 /proc/loadavg) (load average)"
  one "$cfg K=1" "$CLI" train "${A[@]}"
  one "$cfg K=2" "${M[@]}" -np 2 "$CLI" train "${A[@]}"
  one "$cfg K=1 det" "$CLI" train "${A[@]}" --deterministic
  one "$cfg K=2 det" "${M[@]}" -np 2 "$CLI" train "${A[@]}" --deterministic
done
