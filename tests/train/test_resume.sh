#!/usr/bin/env bash
# Kill-and-resume: a training run with checkpoints is stopped (once deterministically, then by
# SIGKILL at a random moment, as often as it takes), resumed each time, and must end with exactly
# the family file and the per-step losses of an uninterrupted run with the same seed; no
# half-written checkpoint, family or temporary file may be left behind.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
DATA=/usr/share/datasets/fashion-mnist
if [[ ! -r $DATA/train-images-idx3-ubyte.gz ]]; then
  echo "test_resume: skipped ($DATA absent; package dataset-fashion-mnist)"
  exit 0
fi
tmp=$(mktemp -d /tmp/nmf_test_resume.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check <description> <command...>
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

# tiny model, few steps; everything that shapes the trajectory is fixed here
steps=60; stage=30
if [[ ${NMF_SANITIZED:-0} == 1 ]]; then steps=24; stage=12; fi
args=(--dim 16 --depth 1 --heads 2 --mlp-ratio 2 --batch 16 --steps "$steps" --stage-steps "$stage"
      --patterns 4:8,2:8 --warmup 5 --stage-warmup 2 --holdout 200 --eval-every 10
      --checkpoint-every 7 --report-every 1 --seed 5 --threads 1 --test-limit 500 --quiet)

# 1. uninterrupted reference
"$CLI" train "${args[@]}" --out "$tmp/ref.nmf" --checkpoint "$tmp/ref.ckpt" --log "$tmp/ref.jsonl" \
  || { echo "FAIL: reference run"; exit 1; }

# 2. stopped after 25 steps (between checkpoints at 21 and 28), then resumed to the end
"$CLI" train "${args[@]}" --out "$tmp/a.nmf" --checkpoint "$tmp/a.ckpt" --log "$tmp/a.jsonl" \
  --max-steps-this-run 25 || { echo "FAIL: first part"; exit 1; }
check "no family before the run finishes" test ! -e "$tmp/a.nmf"
"$CLI" train "${args[@]}" --out "$tmp/a.nmf" --checkpoint "$tmp/a.ckpt" --log "$tmp/a.jsonl" --resume \
  || { echo "FAIL: resume"; exit 1; }
check "stop+resume: family identical to the uninterrupted run" cmp -s "$tmp/ref.nmf" "$tmp/a.nmf"

# 3. SIGKILL at random moments until a run completes: each attempt waits for a fresh checkpoint
#    (so the kill lands mid-training, with state on disk), then a random 0-90 ms more
kills=0
for attempt in 1 2 3 4 5; do
  resume=(); [[ $attempt -gt 1 ]] && resume=(--resume)
  touch "$tmp/marker"; sleep 0.01
  "$CLI" train "${args[@]}" --out "$tmp/k.nmf" --checkpoint "$tmp/k.ckpt" --log "$tmp/k.jsonl" \
    "${resume[@]}" &
  pid=$!
  for _ in $(seq 1 400); do
    [[ -e $tmp/k.ckpt && $tmp/k.ckpt -nt $tmp/marker ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  sleep "0.0$(( RANDOM % 10 ))"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null
    kills=$((kills + 1))
    # whatever the moment, the family is either absent or complete (never partial)
    if [[ -e $tmp/k.nmf ]]; then check "family after kill is complete" "$CLI" info "$tmp/k.nmf" >/dev/null; fi
  else
    wait "$pid"; rc=$?
    check "run $attempt finished cleanly" test "$rc" -eq 0
    break
  fi
done
if [[ ! -e $tmp/k.nmf ]]; then  # still unfinished after the kills: finish it
  "$CLI" train "${args[@]}" --out "$tmp/k.nmf" --checkpoint "$tmp/k.ckpt" --log "$tmp/k.jsonl" --resume \
    || { echo "FAIL: final resume"; exit 1; }
fi
echo "killed $kills time(s)"
check "kill+resume: family identical to the uninterrupted run" cmp -s "$tmp/ref.nmf" "$tmp/k.nmf"
check "no temporary files left" test -z "$(ls "$tmp" | grep '\.tmp$')"

# every logged step of the interrupted runs (re-run steps included) has the reference's loss
losses() { grep -o '"global_step":[0-9]*,"loss":[^,]*' "$1" | sort -u; }
losses "$tmp/ref.jsonl" > "$tmp/ref.losses"
total=$(wc -l < "$tmp/ref.losses")
check "reference logged every step ($total)" test "$total" -eq $((steps + 2 * stage))
for run in a k; do
  losses "$tmp/$run.jsonl" > "$tmp/$run.losses"
  check "$run: same per-step losses as the reference" cmp -s "$tmp/ref.losses" "$tmp/$run.losses"
done

# a checkpoint from different options is refused with a clear message
out=$("$CLI" train "${args[@]}" --seed 6 --out "$tmp/x.nmf" --checkpoint "$tmp/k.ckpt" --resume 2>&1)
check "resume with other options refused" test $? -ne 0
check "refusal names the reason" grep -q "different options" <<<"$out"
# a corrupt checkpoint is refused (CRC), not trusted
printf 'garbage' | dd of="$tmp/k.ckpt" bs=1 seek=200 conv=notrunc 2>/dev/null
out=$("$CLI" train "${args[@]}" --out "$tmp/y.nmf" --checkpoint "$tmp/k.ckpt" --resume 2>&1)
check "corrupt checkpoint refused" test $? -ne 0
check "refusal mentions the checksum" grep -qi "checksum\|crc" <<<"$out"
exit $fail
