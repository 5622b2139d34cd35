#!/usr/bin/env bash
# `nmformer train` refuses, before any training step, an --out or --checkpoint it cannot write:
# otherwise the error would come only after the whole run, and the training would be lost.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
DATA=/usr/share/datasets/fashion-mnist
if [[ ! -r $DATA/train-images-idx3-ubyte.gz ]]; then
  echo "test_train_cli: skipped ($DATA absent; package dataset-fashion-mnist)"
  exit 0
fi
tmp=$(mktemp -d /tmp/nmf_test_train_cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
args=(--dim 16 --depth 1 --heads 2 --batch 8 --steps 40 --stage-steps 10 --patterns 2:8
      --holdout 100 --eval-every 20 --report-every 1 --threads 1 --test-limit 100)
for bad in "--out $tmp/missing-dir/f.nmf" "--checkpoint $tmp/missing-dir/c.ckpt --out $tmp/f.nmf"; do
  # shellcheck disable=SC2086
  "$CLI" train "${args[@]}" $bad > "$tmp/out.txt" 2> "$tmp/err.txt"
  rc=$?
  if [[ $rc -eq 0 ]]; then echo "FAIL: '$bad' exited 0"; fail=1; fi
  if grep -q "step" "$tmp/out.txt" "$tmp/err.txt"; then
    echo "FAIL: '$bad' trained before failing:"; cat "$tmp/err.txt"; fail=1
  fi
  if [[ $(wc -l < "$tmp/err.txt") -ne 1 ]] || ! grep -q "missing-dir" "$tmp/err.txt"; then
    echo "FAIL: '$bad' error is not one line naming the path:"; cat "$tmp/err.txt"; fail=1
  fi
  [[ -e $tmp/f.nmf ]] && { echo "FAIL: family written"; fail=1; }
done
if [[ $fail -eq 0 ]]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $fail
