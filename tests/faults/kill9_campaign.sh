#!/bin/bash
# kill -9 campaign (manual, not part of make test: it needs PyTorch and takes minutes):
# `nmformer prune` writes a DeiT-small family file (~100 MB) over an existing one and is killed
# with SIGKILL at random moments. The destination always holds one of two complete families
# (A: 2:8,1:8; B: 2:4,4:8), so after every kill it must equal, byte for byte, the one it held
# before the run (the write was cut) or the one the run was writing (the rename happened):
# never a torn file. Temp files a killed run leaves behind are counted and removed.
#   usage: bash tests/faults/kill9_campaign.sh BUILD/nmformer WORKDIR [KILLS]
set -u
cli=${1:?usage: kill9_campaign.sh NMFORMER WORKDIR [KILLS]}
work=${2:?usage: kill9_campaign.sh NMFORMER WORKDIR [KILLS]}
kills=${3:-30}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$work"
src="$work/deit_small.safetensors"
if [ ! -f "$src" ]; then
  /usr/bin/python3 - "$src" "$here/tests/ref" <<'PY'
import json, sys, torch
sys.path.insert(0, sys.argv[2])
import vit_ref
cfg = dict(img_size=224, patch=16, in_chans=3, dim=384, depth=12, heads=6, mlp_ratio=4.0,
           num_classes=1000)
torch.manual_seed(0)
model = vit_ref.from_config(cfg)
vit_ref.write_safetensors(sys.argv[1], model.state_dict(),
                          {"nmformer.config": json.dumps(dict(cfg, arch="vit"))})
PY
fi
"$cli" prune "$src" "$work/A.nmf" --pattern 2:8,1:8 >/dev/null || exit 1
"$cli" prune "$src" "$work/B.nmf" --pattern 2:4,4:8 >/dev/null || exit 1
cp "$work/A.nmf" "$work/out.nmf"
# how long a whole run takes: kills are spread over 1.3 times that, so some runs complete
t0=$(date +%s%N); "$cli" prune "$src" "$work/full.nmf" --pattern 2:4,4:8 >/dev/null; t1=$(date +%s%N)
run_ms=$(( (t1 - t0) / 1000000 ))
old=0 new=0 torn=0 temps=0 cur=A
for ((k = 0; k < kills; k++)); do
  next=$([ $cur = A ] && echo B || echo A)
  pats=$([ $next = A ] && echo 2:8,1:8 || echo 2:4,4:8)
  "$cli" prune "$src" "$work/out.nmf" --pattern "$pats" >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v ms=$run_ms -v r=$RANDOM 'BEGIN { printf "%.3f", 1.3 * ms * (r / 32768.0) / 1000 }')"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  if cmp -s "$work/out.nmf" "$work/$cur.nmf"; then old=$((old + 1))
  elif cmp -s "$work/out.nmf" "$work/$next.nmf"; then new=$((new + 1)); cur=$next
  else torn=$((torn + 1)); cp "$work/$cur.nmf" "$work/out.nmf"; fi
  for t in "$work"/out.nmf.*.tmp; do
    [ -e "$t" ] && { temps=$((temps + 1)); rm -f "$t"; }
  done
done
echo "kill9: $kills kills of a ${run_ms} ms prune ($(stat -c %s "$work/A.nmf") / $(stat -c %s "$work/B.nmf") byte families): $old old file intact, $new new file complete, $torn torn, $temps temp files left by killed runs"
[ $torn -eq 0 ]
