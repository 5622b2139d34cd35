#!/usr/bin/env bash
# Issue 6: functional mode bit-identical to the fixed-point reference on a *trained*
# Fashion-MNIST model (the other functional tests use random weights): a tiny ViT is trained
# with IDP (dense -> 2:8), then `sim --json` runs its 2:8 candidate on real test images, int8
# and int16, and must report zero mismatching logits. Then the CPU's fixed-point mode
# (`eval --precision int8 --sta HW.ini`) on the same images must score exactly the simulator's
# fixed-point accuracy (same quantiser, calibration images and numbers).
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
SRC=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}
DATA=/usr/share/datasets/fashion-mnist
if [[ ! -r $DATA/train-images-idx3-ubyte.gz ]]; then
  echo "test_trained: skipped ($DATA absent; package dataset-fashion-mnist)"
  exit 0
fi
tmp=$(mktemp -d /tmp/nmf_test_sta_trained.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
steps=300; images=200
if [[ ${NMF_SANITIZED:-0} == 1 ]]; then steps=120; images=60; fi

"$CLI" train --dim 16 --depth 1 --heads 2 --mlp-ratio 2 --batch 32 --steps "$steps" \
  --stage-steps 30 --patterns 2:8 --warmup 10 --stage-warmup 2 --holdout 200 --eval-every 30 \
  --test-limit 100 --threads 1 --quiet --out "$tmp/fam.nmf" || { echo "FAIL: training"; exit 1; }

for hw in mid mid_int16; do
  if ! "$CLI" sim "$tmp/fam.nmf" --model 2:8 --hw "$SRC/configs/hw/$hw.ini" \
      --eval-images "$images" --threads 1 --json > "$tmp/$hw.json"; then
    echo "FAIL: $hw: sim exit status"; fail=1; continue
  fi
  field() { grep -o "\"$1\":[[:space:]]*[^,}]*" "$tmp/$hw.json" | head -1 | sed 's/.*:[[:space:]]*//'; }
  [[ $(field inputs) == '"fashion-mnist test split"' ]] || { echo "FAIL: $hw: inputs $(field inputs)"; fail=1; }
  [[ $(field images) == "$images" ]] || { echo "FAIL: $hw: images $(field images)"; fail=1; }
  [[ $(field logits_mismatched_vs_reference) == 0 ]] ||
    { echo "FAIL: $hw: $(field logits_mismatched_vs_reference) logits differ from the reference"; fail=1; }
  [[ $(field bit_identical) == true ]] || { echo "FAIL: $hw: not bit-identical"; fail=1; }
  [[ $(field cpu_bit_identical) == true ]] || { echo "FAIL: $hw: the CPU mode differs from the simulator"; fail=1; }
  # the model did learn something (chance is 0.10): these are trained weights, not noise
  acc=$(field accuracy_f32)
  awk -v a="$acc" 'BEGIN { exit !(a >= 0.2) }' || { echo "FAIL: $hw: f32 accuracy $acc"; fail=1; }
  echo "$hw: bit-identical on $images test images, f32 accuracy $acc, fixed $(field accuracy_fixed)"
  fixed=$(field accuracy_fixed)
  line=$("$CLI" eval "$tmp/fam.nmf" --model 2:8 --precision int8 --sta "$SRC/configs/hw/$hw.ini" \
         --limit "$images" --threads 2 --json) || { echo "FAIL: $hw: eval --sta exit status"; fail=1; continue; }
  cpu=$(grep -o '"correct": *[0-9]*' <<<"$line" | grep -o '[0-9]*$')
  awk -v a="$fixed" -v c="$cpu" -v n="$images" 'BEGIN { exit !(c == int(a * n + 0.5)) }' ||
    { echo "FAIL: $hw: eval --sta got $cpu/$images right, the simulator's fixed point $fixed"; fail=1; }
  echo "$hw: eval --sta $cpu/$images right = the simulator's fixed-point accuracy $fixed"
done
exit $fail
