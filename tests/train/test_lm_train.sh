#!/usr/bin/env bash
# Byte-level LM training end to end (issue 14, item 1): on a small real-English corpus (a fixed
# snapshot of the repository's docs, tests/fixtures/text), a tiny GPT-2 trains dense then 2:4
# (IDP) and
#   - lowers the held-out perplexity (log) far below the untrained model's (~256);
#   - stopped and resumed, ends with exactly the family of an uninterrupted run;
#   - writes a family whose candidates `run` and `generate` load;
#   - every method runs (srste, asp, oneshot from the dense model via --init): one-shot is the
#     dense model pruned by magnitude, untrained (`prune` + `eval` give its figure exactly);
#     SR-STE and ASP retrain it; scripts/idp_compare.sh makes the LM's perplexity table;
#   - a bad corpus path / a corpus too small is one clear error line.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
SRC=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
tmp=$(mktemp -d /tmp/nmf_test_lm_train.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check <description> <command...>
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

# the corpus: a fixed one (not the live docs: every docs edit would change the figures below)
mkdir -p "$tmp/corpus"
cp "$SRC"/tests/fixtures/text/* "$tmp/corpus/"
echo "not a document file" > "$tmp/corpus/skipped.dat"

steps=60; stage=20
if [[ ${NMF_SANITIZED:-0} == 1 ]]; then steps=24; stage=8; fi
args=(--config lm --corpus "$tmp/corpus" --dim 32 --depth 1 --heads 2 --seq-len 16 --batch 8
      --stage-steps "$stage" --patterns 2:4 --warmup 5 --stage-warmup 2
      --lr 3e-3 --holdout 32 --eval-every $((steps / 3)) --checkpoint-every 7 --report-every 1
      --seed 3 --threads 1 --test-limit 64 --quiet)

# 1. uninterrupted reference
"$CLI" train "${args[@]}" --steps "$steps" --out "$tmp/ref.nmf" --checkpoint "$tmp/ref.ckpt" --log "$tmp/ref.jsonl" \
  --summary "$tmp/ref.json" || { echo "FAIL: reference run"; exit 1; }
first=$(grep -m1 -o '"heldout_ppl":[0-9.e+-]*' "$tmp/ref.jsonl" | cut -d: -f2)
last=$(grep '"stage":"dense"' "$tmp/ref.jsonl" | grep -o '"heldout_ppl":[0-9.e+-]*' | tail -1 | cut -d: -f2)
echo "held-out perplexity: $first after $((steps / 3)) steps, $last after $steps"
check "held-out perplexity falls during training" awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }'
check "held-out perplexity far below an untrained model's (256)" awk -v b="$last" 'BEGIN { exit !(b < 100) }'
check "summary has perplexity and bits per byte" grep -q '"bits_per_byte"' "$tmp/ref.json"
check "the log reports next-byte accuracy and bits per byte" grep -q '"heldout_bpb"' "$tmp/ref.jsonl"

# 2. stopped after 25 steps, then resumed to the end: the same family, byte for byte
"$CLI" train "${args[@]}" --steps "$steps" --out "$tmp/a.nmf" --checkpoint "$tmp/a.ckpt" --max-steps-this-run 25 \
  || { echo "FAIL: first part"; exit 1; }
check "no family before the run finishes" test ! -e "$tmp/a.nmf"
"$CLI" train "${args[@]}" --steps "$steps" --out "$tmp/a.nmf" --checkpoint "$tmp/a.ckpt" --resume \
  || { echo "FAIL: resume"; exit 1; }
check "stop+resume: family identical to the uninterrupted run" cmp -s "$tmp/ref.nmf" "$tmp/a.nmf"

# 3. the family's candidates load in run and generate
if $PY -c 'import numpy' 2>/dev/null; then
  $PY -c "import numpy as np; b = np.frombuffer(b'The cat sat on t', dtype=np.uint8).astype(np.int64)[None]; np.save('$tmp/ids.npy', b); np.save('$tmp/ids8.npy', b[:, :8])"
  for c in dense 2:4; do
    check "run $c" "$CLI" run "$tmp/ref.nmf" --model "$c" --input "$tmp/ids.npy" --output "$tmp/y.npy"
    check "generate $c" "$CLI" generate "$tmp/ref.nmf" --model "$c" --input "$tmp/ids8.npy" \
      --tokens 8 --output "$tmp/g.npy" 2>/dev/null
  done
  "$CLI" generate "$tmp/ref.nmf" --input "$tmp/ids.npy" --tokens 4 --output "$tmp/g.npy" \
    > /dev/null 2>&1 && { echo "FAIL: generate past n_positions accepted"; fail=1; }
else
  echo "skip: run/generate (no numpy)"
fi

# 4. the other methods from the dense model (no dense stage: --init without --steps)
for m in srste asp oneshot; do
  check "method $m from --init" "$CLI" train "${args[@]}" --method "$m" --init "$tmp/ref.nmf" \
    --out "$tmp/$m.nmf" --summary "$tmp/$m.json"
done
# one-shot: the dense candidate pruned by magnitude and not trained, so `prune` of the same family
# and `eval` (same windows, batch, one thread) give its test perplexity to the last digits
"$CLI" prune "$tmp/ref.nmf" "$tmp/pruned.nmf" --pattern 2:4 > /dev/null 2>&1 &&
  "$CLI" eval "$tmp/pruned.nmf" --model 2:4 --corpus "$tmp/corpus" --limit 64 --batch 8 --threads 1 \
    --json > "$tmp/pruned.json" || { echo "FAIL: prune + eval of the dense candidate"; fail=1; }
# SR-STE and ASP retrain from that start: their 2:4 moves away from it, and not far. Which of them
# is lower is not asserted: in a model this small (width 32, 60 steps) the N:M layers barely
# matter (even 1:8 one-shot stays within ~3 % of dense), so the ordering is decided by the noise
# of 64 test windows (measured 0.88-1.03 for SR-STE / one-shot over docs edits and seeds).
check "oneshot's 2:4 is the magnitude-pruned dense model; srste and asp retrain it" \
  $PY - "$tmp/pruned.json" "$tmp/oneshot.json" "$tmp/srste.json" "$tmp/asp.json" <<'PY'
import json, sys
pruned = json.load(open(sys.argv[1]))["perplexity"]
ppl = [next(c["perplexity"] for c in json.load(open(f))["candidates"] if c["model"] == "2:4")
       for f in sys.argv[2:]]
print("2:4 perplexity: prune + eval %.6f; oneshot %.6f, srste %.6f, asp %.6f" % (pruned, *ppl))
ok = abs(ppl[0] - pruned) <= 1e-9 * pruned
ok = ok and all(p != ppl[0] and p < 1.10 * ppl[0] for p in ppl[1:])
sys.exit(0 if ok else 1)
PY

# 5. scripts/idp_compare.sh with the LM: one dense run, every method x chain, a perplexity table
export NMF_COMPARE_ARGS="--corpus $tmp/corpus --dim 16 --depth 1 --heads 2 --seq-len 8 --batch 4
  --stage-steps 3 --warmup 2 --stage-warmup 1 --holdout 16 --eval-every 3 --test-limit 32 --seed 3"
export NMF_COMPARE_DENSE_ARGS="--steps 12"
bash "$SRC/scripts/idp_compare.sh" "$CLI" "$tmp/cmp" lm 2 > "$tmp/cmp.txt" 2>&1 ||
  { cat "$tmp/cmp.txt"; echo "FAIL: idp_compare.sh lm"; fail=1; }
cat "$tmp/cmp.txt"
num='[0-9]+\.[0-9]{3} \([0-9]+\.[0-9]{3}\)'
for m in oneshot asp srste idp; do
  check "compare lm: $m has dense + 5 perplexities" grep -Eq "^\| $m( \| $num){6} \|" "$tmp/cmp.txt"
done
check "compare lm: 3 x 3 / 2 x 3 steps for idp" grep -q '^| idp .*| 9 / 6 |$' "$tmp/cmp.txt"
unset NMF_COMPARE_ARGS NMF_COMPARE_DENSE_ARGS

# 6. bad corpora: one clear line, non-zero exit
err=$("$CLI" train "${args[@]}" --corpus "$tmp/nowhere" --out "$tmp/x.nmf" 2>&1)
check "missing corpus: error names it" test $? -ne 0
check "missing corpus: one line naming the path" bash -c '[[ $(wc -l <<< "$1") == 1 && $1 == *nowhere* ]]' _ "$err"
printf 'tiny\n%%\nalso tiny\n' > "$tmp/small.txt"
err=$("$CLI" train "${args[@]}" --corpus "$tmp/small.txt" --out "$tmp/x.nmf" 2>&1)
check "corpus too small: error" test $? -ne 0
check "corpus too small: says which split" bash -c '[[ $1 == *split* ]]' _ "$err"
check "no family after a failed run" test ! -e "$tmp/x.nmf"
exit $fail
