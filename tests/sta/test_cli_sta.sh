#!/usr/bin/env bash
# run/eval --precision int8 --sta HW.ini: the CPU in the accelerator's numbers from the CLI.
# Logits of run do not depend on the thread count or the batch; errors are one clear line
# (--sta without int8, a missing or bad design INI, a pattern the multiplexers cannot serve, a
# token model). Bit-exactness against the simulator is tests/sta/test_fx_cpu.c (library) and
# test_trained.sh (eval --sta vs sim --functional on a trained model).
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
SRC=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}
TMP=$(mktemp -d /tmp/nmf_test_cli_sta.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
source "$SRC/tests/cli_lib.sh"
fix=$SRC/tests/fixtures
mid=$SRC/configs/hw/mid.ini

# 5 normalised 1x28x28 images as float32 .npy
/usr/bin/python3 - "$TMP/x.npy" <<'PY' || { echo "FAIL: numpy"; exit 1; }
import sys, numpy as np
np.save(sys.argv[1], np.random.default_rng(3).standard_normal((5, 1, 28, 28)).astype(np.float32))
PY

"$CLI" prune "$fix/vit_tiny.safetensors" "$TMP/fam.nmf" --pattern 2:8 >/dev/null ||
  fail "prune to a 2:8 family"
for threads in 1 2; do
  for batch in 1 4; do
    "$CLI" run "$TMP/fam.nmf" --model 2:8 --precision int8 --sta "$mid" -i "$TMP/x.npy" \
      -o "$TMP/y_${threads}_$batch.npy" --threads $threads --batch $batch ||
      fail "run --sta (threads $threads, batch $batch)"
  done
done
cmp -s "$TMP/y_1_1.npy" "$TMP/y_2_4.npy" && cmp -s "$TMP/y_1_1.npy" "$TMP/y_1_4.npy" ||
  fail "run --sta logits depend on threads or batch"
"$CLI" run "$TMP/fam.nmf" --model 2:8 -i "$TMP/x.npy" -o "$TMP/f32.npy" || fail "run f32"
/usr/bin/python3 - "$TMP/y_1_1.npy" "$TMP/f32.npy" <<'PY' || fail "run --sta logits: shape or distance to f32"
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == (5, 10) and a.dtype == np.float32, a.shape
assert not np.array_equal(a, b)                         # fixed point, not f32
assert np.abs(a - b).max() < 0.5 * max(1.0, np.abs(b).max()), np.abs(a - b).max()
PY

expect_error "--sta without int8" "precision int8" -- "$CLI" run "$TMP/fam.nmf" --model 2:8 --sta "$mid" \
  -i "$TMP/x.npy" -o "$TMP/e.npy"
expect_error "--sta missing file" "nope.ini" -- "$CLI" eval "$TMP/fam.nmf" --model 2:8 --precision int8 \
  --sta "$TMP/nope.ini" --limit 1
printf '[numeric]\ndata_bits = 12\n' > "$TMP/bad.ini"
expect_error "bad design" "numeric.data_bits" -- "$CLI" run "$TMP/fam.nmf" -m 2:8 --precision int8 \
  --sta "$TMP/bad.ini" -i "$TMP/x.npy" -o "$TMP/e.npy"
printf '[engine]\nmax_m = 4\n' > "$TMP/m4.ini"
expect_error "2:8 on 4:1 multiplexers" "engine.max_m" -- "$CLI" run "$TMP/fam.nmf" --model 2:8 \
  --precision int8 --sta "$TMP/m4.ini" -i "$TMP/x.npy" -o "$TMP/e.npy"
[[ -e $TMP/e.npy ]] && fail "a failed run wrote its output"
exit $((failures > 0))
