#!/usr/bin/env bash
# One-shot N:M on a byte-level LM from the CLI (issue 14): a tiny GPT-2 trained on a snapshot of
# the docs (tests/fixtures/text),
#   - `eval --corpus` prints the perplexity `train` reported for every candidate (test and
#     held-out split, same windows and batch);
#   - `prune --method wanda|sparsegpt` without --calib calibrates on the corpus's train split
#     (--calib-samples windows of --seq-len bytes) and its candidates evaluate;
#   - `train --init FAMILY --init-model 2:4 --method asp` fine-tunes the one-shot candidate;
#   - scripts/oneshot_table.sh ... lm prints the perplexity table;
#   - a bad corpus path, a window longer than the context, ViT options on an LM: one clear line.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
SRC=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
tmp=$(mktemp -d /tmp/nmf_test_lm_oneshot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check <description> <command...>
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}
one_line_error() { # <exit status wanted> <text that the line names> <command...>
  local want=$1 name=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  [[ $rc == "$want" && $(wc -l <<<"$err") == 1 && $err == *"$name"* ]] ||
    { echo "  (exit $rc, stderr: $err)"; return 1; }
}

# a fixed corpus (a snapshot of the docs; the live docs would change the figures with every edit)
mkdir -p "$tmp/corpus"
cp "$SRC"/tests/fixtures/text/* "$tmp/corpus/"
steps=40
[[ ${NMF_SANITIZED:-0} == 1 ]] && steps=16
args=(--config lm --corpus "$tmp/corpus" --dim 32 --depth 1 --heads 2 --seq-len 16 --batch 8
      --warmup 5 --stage-warmup 2 --lr 3e-3 --holdout 32 --eval-every 8 --seed 5 --threads 1
      --test-limit 48 --quiet)
"$CLI" train "${args[@]}" --steps "$steps" --patterns 2:4 --stage-steps 8 --out "$tmp/lm.nmf" \
  --summary "$tmp/lm.json" || { echo "FAIL: training"; exit 1; }

# 1. eval --corpus == train's figures (test: --test-limit windows; held-out: --holdout windows),
#    on one thread as the training ran (the dense products' sums may be split differently on two)
for c in dense 2:4; do
  "$CLI" eval "$tmp/lm.nmf" --model "$c" --corpus "$tmp/corpus" --limit 48 --batch 8 --json \
    --threads 1 > "$tmp/test_$c.json" && \
  "$CLI" eval "$tmp/lm.nmf" --model "$c" --corpus "$tmp/corpus" --split valid --limit 32 --batch 8 \
    --threads 1 --json > "$tmp/valid_$c.json" || { echo "FAIL: eval $c"; fail=1; continue; }
  check "eval $c: the trainer's test and held-out perplexity" $PY - "$tmp/lm.json" "$c" \
    "$tmp/test_$c.json" "$tmp/valid_$c.json" <<'PY'
import json, sys
cand = next(c for c in json.load(open(sys.argv[1]))["candidates"] if c["model"] == sys.argv[2])
test, valid = (json.load(open(f)) for f in sys.argv[3:5])
print("  %s: test %.9f vs %.9f, held-out %.9f vs %.9f" % (sys.argv[2], test["perplexity"],
      cand["perplexity"], valid["perplexity"], cand["heldout_perplexity"]))
same = lambda a, b: abs(a - b) <= 1e-12 * b
ok = same(test["perplexity"], cand["perplexity"]) and same(valid["perplexity"], cand["heldout_perplexity"])
ok = ok and same(test["bits_per_byte"], cand["bits_per_byte"]) and test["windows"] == 48
sys.exit(0 if ok and test["split"] == "test" and valid["split"] == "valid" else 1)
PY
done
# eval --precision: the inference engine in that arithmetic; f32 agrees with the trainer's figure
# to float rounding, bf16 / int8 stay close (a tiny trained model: within 5 %) and say so
for p in f32 bf16 int8; do
  "$CLI" eval "$tmp/lm.nmf" --model 2:4 --corpus "$tmp/corpus" --limit 48 --batch 8 --threads 1 \
    --precision $p --json > "$tmp/prec_$p.json" || { echo "FAIL: eval --precision $p"; fail=1; }
done
check "eval --precision: the inference engine per precision" $PY - "$tmp/test_2:4.json" \
  "$tmp/prec_f32.json" "$tmp/prec_bf16.json" "$tmp/prec_int8.json" <<'PY'
import json, sys
ref, f32, bf16, int8 = (json.load(open(f)) for f in sys.argv[1:5])
print("  2:4 perplexity: trainer %.6f, f32 %.6f, bf16 %.6f, int8 %.6f" % (ref["perplexity"],
      f32["perplexity"], bf16["perplexity"], int8["perplexity"]))
ok = abs(f32["perplexity"] - ref["perplexity"]) <= 1e-4 * ref["perplexity"]
ok = ok and all(abs(q["perplexity"] - ref["perplexity"]) <= 0.05 * ref["perplexity"] for q in (bf16, int8))
ok = ok and [q["precision"] for q in (f32, bf16, int8)] == ["f32", "bf16", "int8"]
sys.exit(0 if ok and "precision" not in ref and int8["windows"] == 48 else 1)
PY
check "eval text line: perplexity and bits per byte" bash -c \
  '"$1" eval "$2" --model 2:4 --corpus "$3" --limit 8 | grep -Eq "perplexity [0-9.]+, [0-9.]+ bits per byte"' \
  _ "$CLI" "$tmp/lm.nmf" "$tmp/corpus"

# 2. prune with the default calibration set of an LM: the corpus's train split
for m in wanda sparsegpt; do
  "$CLI" prune "$tmp/lm.nmf" "$tmp/$m.nmf" --pattern 2:4,1:4 --method "$m" --corpus "$tmp/corpus" \
    --calib-samples 24 --seq-len 12 2> "$tmp/$m.err" > /dev/null || { cat "$tmp/$m.err"; echo "FAIL: prune $m"; fail=1; }
  check "prune $m: 24 windows of 12 bytes calibrate" grep -q ": 24 calibration samples (288 tokens per pass)" "$tmp/$m.err"
  check "eval $m 2:4" bash -c '"$1" eval "$2" --model 2:4 --corpus "$3" --limit 16 > /dev/null' _ "$CLI" "$tmp/$m.nmf" "$tmp/corpus"
done
check "the same default set twice: the same family" bash -c \
  '"$1" prune "$2" "$3" --pattern 2:4,1:4 --method wanda --corpus "$4" --calib-samples 24 --seq-len 12 2>/dev/null >&2 && cmp -s "$3" "$5"' \
  _ "$CLI" "$tmp/lm.nmf" "$tmp/again.nmf" "$tmp/corpus" "$tmp/wanda.nmf"

# 3. one-shot + fine-tune: the SparseGPT 2:4 candidate, mask fixed, 6 steps
check "train --init-model 2:4 --method asp" "$CLI" train "${args[@]}" --init "$tmp/sparsegpt.nmf" \
  --init-model 2:4 --method asp --patterns 2:4 --stage-steps 6 --out "$tmp/ft.nmf" --summary "$tmp/ft.json"
check "fine-tuned 2:4 no worse than the one-shot one on held-out text" $PY - "$tmp/ft.json" <<'PY'
import json, sys
c = {c["model"]: c for c in json.load(open(sys.argv[1]))["candidates"]}
print("  held-out perplexity: one-shot %.3f, fine-tuned %.3f" % (c["dense"]["heldout_perplexity"], c["2:4"]["heldout_perplexity"]))
sys.exit(0 if c["2:4"]["heldout_perplexity"] <= c["dense"]["heldout_perplexity"] else 1)
PY

# 4. the one-shot table, LM mode
NMF_PATTERNS=2:4,1:4 NMF_CALIB_SAMPLES=16 NMF_EVAL_LIMIT=16 NMF_THREADS=1 NMF_CORPUS="$tmp/corpus" \
  bash "$SRC/scripts/oneshot_table.sh" "$CLI" "$tmp/lm.nmf" "$tmp/table" lm > "$tmp/table.txt" 2>&1 ||
  { cat "$tmp/table.txt"; echo "FAIL: oneshot_table.sh lm"; fail=1; }
cat "$tmp/table.txt"
for m in magnitude wanda sparsegpt; do
  check "table: $m has dense + 2 perplexities" grep -Eq "^\| $m( \| [0-9]+\.[0-9]{3}){3} \|" "$tmp/table.txt"
done
check "table: wanda calibrated on 16 samples" grep -Eq '^\| wanda .*\| 16 samples, 1 passes' "$tmp/table.txt"

# 5. errors: one line each
check "eval: missing corpus named" one_line_error 1 nowhere "$CLI" eval "$tmp/lm.nmf" --model dense --corpus "$tmp/nowhere"
check "eval: --images on an LM is a usage error" one_line_error 2 "text corpus" "$CLI" eval "$tmp/lm.nmf" \
  --model dense --images "$tmp/x.npy" --labels "$tmp/y.npy"
check "eval: bad --split" one_line_error 2 "bogus" "$CLI" eval "$tmp/lm.nmf" --split bogus
check "prune: missing corpus named" one_line_error 1 nowhere "$CLI" prune "$tmp/lm.nmf" "$tmp/x.nmf" \
  --pattern 2:4 --method wanda --corpus "$tmp/nowhere"
check "prune: window longer than the context" one_line_error 1 "at most 16" "$CLI" prune "$tmp/lm.nmf" \
  "$tmp/x.nmf" --pattern 2:4 --method wanda --corpus "$tmp/corpus" --seq-len 17
check "prune: --corpus with --calib" one_line_error 2 "--calib" "$CLI" prune "$tmp/lm.nmf" "$tmp/x.nmf" \
  --pattern 2:4 --method wanda --corpus "$tmp/corpus" --calib "$tmp/x.npy"
check "prune: --data (Fashion-MNIST) for an LM" one_line_error 2 "--corpus" "$CLI" prune "$tmp/lm.nmf" \
  "$tmp/x.nmf" --pattern 2:4 --method wanda --data "$tmp/corpus"
check "prune: --seq-len for a ViT is a usage error" one_line_error 2 "--seq-len" "$CLI" prune \
  "$SRC/tests/fixtures/vit_tiny.safetensors" "$tmp/x.nmf" --pattern 2:4 --method wanda --seq-len 8
check "train: --init-model names a missing candidate" one_line_error 1 "1:8" "$CLI" train "${args[@]}" \
  --init "$tmp/lm.nmf" --init-model 1:8 --method asp --patterns 2:4 --out "$tmp/x.nmf"
check "no output after failures" test ! -e "$tmp/x.nmf"
exit $fail
