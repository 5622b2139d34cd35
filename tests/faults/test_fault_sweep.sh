#!/bin/bash
# Fault injection sweep (issue 15): for each write path of the CLI, make the n-th write / fsync /
# rename / read / allocation fail (ENOSPC, EIO, ENOMEM) for every n the command reaches. Each
# failure must end in one clear stderr line and exit 1, with the previous file at the destination
# intact byte for byte and no temporary file left; a fault the command survives (the directory
# fsync is best effort) must leave exactly the output of a clean run. Every n of every function
# with NMF_FAULT_FULL=1; by default allocations and the training run are sampled (make test
# time). Under the sanitizer build allocation faults are left out (ASan owns the allocator) and
# every run is checked for leaks.
# Prints one summary line per write path (recorded in docs/RELIABILITY.md).
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
BUILD=${NMF_BUILD_DIR:?NMF_BUILD_DIR not set}
FIX=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}/tests/fixtures/model
LIB=$BUILD/tests/faults/libnmf_faults.so
[ -r "$LIB" ] || { echo "test_fault_sweep: $LIB missing" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
. "${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}/tests/cli_lib.sh" # failures, fail, expect_error

functions=(write fsync rename read malloc)
declare -A err=([write]=ENOSPC [fsync]=EIO [rename]=EIO [read]=EIO [malloc]=ENOMEM)
if [ "${NMF_SANITIZED:-0}" = 1 ]; then
    functions=(write fsync rename read)
    export ASAN_OPTIONS=detect_leaks=1:exitcode=99:verify_asan_link_order=0
fi

MODEL=$FIX/vit_dense_small.safetensors
INPUT=$FIX/vit_dense_small.input.npy
D=$TMP/out
mkdir "$D"

# A destination is a file or a folder (a Hugging Face model folder written by convert).
put() { rm -rf "$2"; cp -r "$1" "$2"; }
same() { if [ -d "$1" ]; then diff -r -q "$1" "$2" >/dev/null 2>&1; else cmp -s "$1" "$2"; fi; }

# inject NAME FN N DEST PREVIOUS REFERENCE -- command...: one run with the n-th call of FN failing,
# PREVIOUS put at DEST first. Sets outcome: "error" (exit 1, one stderr line, DEST still
# PREVIOUS), "survived" (exit 0 and DEST equals REFERENCE, the clean run's output) or "bad" (a
# failure was reported).
inject() {
    local name=$1 fn=$2 n=$3 dest=$4 prev=$5 reference=$6 rc
    shift 7
    outcome=bad
    put "$prev" "$dest"
    rm -f "$TMP/rep1"
    NMF_FAULT=$fn:$n:${err[$fn]} NMF_FAULT_REPORT=$TMP/rep1 LD_PRELOAD=$LIB "$@" >/dev/null 2>"$TMP/err"
    rc=$?
    grep -q "^injected $fn $n" "$TMP/rep1" 2>/dev/null || { fail "$name: $fn #$n not reached"; return; }
    if ls -a "$D" | grep -q '\.tmp$'; then fail "$name: $fn #$n left a temporary file"; rm -rf "$D"/*.tmp; fi
    if [ $rc -eq 0 ]; then
        same "$dest" "$reference" || { fail "$name: $fn #$n: exit 0 but the output is wrong"; return; }
        outcome=survived
        return
    fi
    if [ $rc -ne 1 ]; then fail "$name: $fn #$n: exit $rc: $(head -3 "$TMP/err")"; return; fi
    [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "$name: $fn #$n: stderr is not one line: $(head -3 "$TMP/err")"
    same "$dest" "$prev" || fail "$name: $fn #$n: the previous file was changed"
    outcome=error
}

# sweep NAME DEST PREVIOUS -- command...: PREVIOUS is put at DEST before every run
sweep() {
    local name=$1 dest=$2 prev=$3
    shift 4
    # a clean run gives the reference output and the number of calls of each function
    put "$prev" "$dest"
    rm -f "$TMP/report"
    NMF_FAULT_REPORT=$TMP/report LD_PRELOAD=$LIB "$@" >/dev/null 2>"$TMP/err" \
        || { fail "$name: clean run failed: $(cat "$TMP/err")"; return; }
    put "$dest" "$TMP/reference"
    same "$TMP/reference" "$prev" && { fail "$name: previous file equals the new output"; return; }
    local injected=0 errors=0 tolerated=0 fn n count step summary=""
    for fn in "${functions[@]}"; do
        count=$(awk -v f="$fn" '$1 == f {print $2}' "$TMP/report")
        summary="$summary $fn $count,"
        # allocations are many: every n with NMF_FAULT_FULL=1, else about 40 spread over them
        step=1
        [ "$fn" = malloc ] && [ "${NMF_FAULT_FULL:-0}" != 1 ] && step=$(( (count + 39) / 40 ))
        for ((n = 1; n <= count; n += step)); do
            injected=$((injected + 1))
            inject "$name" "$fn" "$n" "$dest" "$prev" "$TMP/reference" -- "$@"
            [ $outcome = error ] && errors=$((errors + 1))
            [ $outcome = survived ] && tolerated=$((tolerated + 1))
        done
    done
    echo "faults $name:$summary $injected injected: $errors clear errors (previous file intact), $tolerated survived (output correct)"
}

# previous destinations: valid files of the same kind, different from what the command writes
"$CLI" prune "$MODEL" "$TMP/prev_family.nmf" --pattern 1:8 >/dev/null || fail "setup: prune"
"$CLI" prune "$MODEL" "$TMP/prev_24.nmf" --pattern 2:4 >/dev/null || fail "setup: prune 2:4"
"$CLI" convert "$MODEL" "$TMP/prev_f32.nmf" >/dev/null || fail "setup: convert"

sweep prune "$D/p.nmf" "$TMP/prev_family.nmf" -- "$CLI" prune "$MODEL" "$D/p.nmf" --pattern 2:4
sweep convert "$D/c.nmf" "$TMP/prev_f32.nmf" -- "$CLI" convert "$MODEL" "$D/c.nmf" --dtype bf16
sweep family-add "$D/f.nmf" "$TMP/prev_24.nmf" -- "$CLI" prune "$MODEL" "$D/f.nmf" --pattern 1:8 --add
# a Hugging Face model folder: written whole or not at all, over an empty folder and, with
# --force, over a previous model folder
HF=$FIX/../hf/gpt2_lm
"$CLI" prune "$HF" "$TMP/hf.nmf" --pattern 2:4 >/dev/null || fail "setup: prune hf"
"$CLI" convert "$TMP/hf.nmf" "$TMP/prev_hf" --model 2:4 >/dev/null || fail "setup: hf folder"
mkdir "$TMP/prev_empty"
sweep hf-folder "$D/hf" "$TMP/prev_empty" -- "$CLI" convert "$TMP/hf.nmf" "$D/hf" --model dense
sweep hf-folder-force "$D/hf" "$TMP/prev_hf" -- "$CLI" convert "$TMP/hf.nmf" "$D/hf" --model dense --force
# written tensor by tensor (nmf_dense_convert_file): a folder in shards + index, and one file
sweep hf-shards "$D/hf" "$TMP/prev_hf" -- "$CLI" convert "$TMP/hf.nmf" "$D/hf" --model dense --force --max-shard-size 20KB
rm -rf "$D/hf"
"$CLI" convert "$MODEL" "$TMP/prev_st.safetensors" --dtype f16 >/dev/null || fail "setup: safetensors"
sweep safetensors "$D/s.safetensors" "$TMP/prev_st.safetensors" -- "$CLI" convert "$MODEL" "$D/s.safetensors" --dtype bf16
echo "not a npy" >"$TMP/prev_text"
sweep run-output "$D/y.npy" "$TMP/prev_text" -- "$CLI" run "$MODEL" --input "$INPUT" --output "$D/y.npy" --threads 1
sweep report "$D/r.html" "$TMP/prev_text" -- "$CLI" report "$NMF_SOURCE_DIR/tests/fixtures/report" -o "$D/r.html" --quiet

# Training: the family (--out) had a previous version; checkpoints are written several times
# during the run. After a failure the family must be the previous one and a checkpoint left
# behind must resume to exactly the family of a clean run. Every n is swept with
# NMF_FAULT_FULL=1; by default every k-th n (about 12 per function) to keep `make test` short.
DATA=/usr/share/datasets/fashion-mnist
if [ -r "$DATA/train-images-idx3-ubyte.gz" ]; then
    train=("$CLI" train --dim 16 --depth 1 --heads 2 --mlp-ratio 2 --batch 16 --steps 4
           --stage-steps 2 --patterns 2:4 --warmup 1 --stage-warmup 1 --holdout 50 --eval-every 2
           --checkpoint-every 1 --seed 5 --threads 1 --test-limit 50 --quiet
           --out "$D/t.nmf" --checkpoint "$D/t.ckpt" --log "$TMP/t.jsonl")
    cp "$TMP/prev_24.nmf" "$D/t.nmf"
    rm -f "$TMP/report" "$D/t.ckpt"
    NMF_FAULT_REPORT=$TMP/report LD_PRELOAD=$LIB "${train[@]}" 2>"$TMP/err" || fail "train: clean run: $(cat "$TMP/err")"
    cp "$D/t.nmf" "$TMP/train_reference"
    injected=0 errors=0 resumed=0 tolerated=0 summary=""
    for fn in "${functions[@]}"; do
        count=$(awk -v f="$fn" '$1 == f {print $2}' "$TMP/report")
        summary="$summary $fn $count,"
        step=1
        [ "${NMF_FAULT_FULL:-0}" = 1 ] || step=$(( (count + 11) / 12 ))
        [ $step -ge 1 ] || step=1
        for ((n = 1; n <= count; n += step)); do
            rm -f "$D/t.ckpt"
            injected=$((injected + 1))
            inject train "$fn" "$n" "$D/t.nmf" "$TMP/prev_24.nmf" "$TMP/train_reference" -- "${train[@]}"
            [ $outcome = survived ] && tolerated=$((tolerated + 1))
            [ $outcome = error ] || continue
            errors=$((errors + 1))
            if [ -e "$D/t.ckpt" ]; then # what the failed run left must resume to the clean result
                "${train[@]}" --resume 2>"$TMP/err" || { fail "train: $fn #$n: resume failed: $(cat "$TMP/err")"; continue; }
                cmp -s "$D/t.nmf" "$TMP/train_reference" || fail "train: $fn #$n: resumed family differs"
                resumed=$((resumed + 1))
            fi
        done
    done
    echo "faults train:$summary $injected injected: $errors clear errors (previous family intact; $resumed checkpoints left resumed to the clean result), $tolerated survived (output correct)"
else
    echo "faults train: skipped ($DATA absent; package dataset-fashion-mnist)"
fi

if [ $failures -ne 0 ]; then echo "test_fault_sweep: $failures failed" >&2; exit 1; fi
echo "test_fault_sweep: ok"
