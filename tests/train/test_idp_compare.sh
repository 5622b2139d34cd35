#!/usr/bin/env bash
# scripts/idp_compare.sh on a tiny model: every method and chain trains from the one dense model,
# the table has a row per method with every candidate, the step counts are the budget given,
# the first stage of a chain is the same computation for IDP and SR-STE (identical accuracy),
# and a second call skips finished runs and prints the same table.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
SRC=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}
DATA=/usr/share/datasets/fashion-mnist
if [[ ! -r $DATA/train-images-idx3-ubyte.gz ]]; then
  echo "test_idp_compare: skipped ($DATA absent; package dataset-fashion-mnist)"
  exit 0
fi
tmp=$(mktemp -d /tmp/nmf_test_compare.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check <description> <command...>
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

export NMF_COMPARE_ARGS="--dim 16 --depth 1 --heads 2 --batch 16 --stage-steps 6 --warmup 2
  --stage-warmup 1 --holdout 200 --eval-every 3 --test-limit 300 --seed 3"
export NMF_COMPARE_DENSE_ARGS="--steps 20"
bash "$SRC/scripts/idp_compare.sh" "$CLI" "$tmp/run" demo 2 > "$tmp/first.txt" 2>&1 ||
  { cat "$tmp/first.txt"; echo "FAIL: idp_compare.sh"; exit 1; }
cat "$tmp/first.txt"
table() { grep '^| [a-z]' "$1" | grep -v '^| method'; }
row() { table "$tmp/first.txt" | grep "^| $1 |"; }
num='[0-9]+\.[0-9]{2}'
for m in oneshot asp srste idp; do
  check "$m: dense + 5 candidates" grep -Eq "^\| $m( \| $num){6} \|" <(row "$m")
done
check "oneshot trains no steps" grep -q '| 0 / 0 |$' <(row oneshot)
for m in asp srste idp; do
  check "$m: 3 x 6 / 2 x 6 steps" grep -q '| 18 / 12 |$' <(row "$m")
done
col() { row "$1" | awk -F' [|] ' -v c="$2" '{print $c}'; } # fields: 2 dense, 3 4:8, 4 2:8, 5 1:8, 6 2:4, 7 1:4
check "one dense model for all" test "$(table "$tmp/first.txt" | awk -F' [|] ' '{print $2}' | sort -u | wc -l)" = 1
check "4:8: IDP's first stage is SR-STE from dense" test "$(col idp 3)" = "$(col srste 3)"
check "2:4: IDP's first stage is SR-STE from dense" test "$(col idp 6)" = "$(col srste 6)"
check "every family file written" test "$(ls "$tmp"/run/*_m[48].nmf | wc -l)" = 8
bash "$SRC/scripts/idp_compare.sh" "$CLI" "$tmp/run" demo 2 > "$tmp/second.txt" 2>&1
check "second call: nothing retrained" test -z "$(grep ' done$' "$tmp/second.txt")"
check "second call: same table" cmp -s <(table "$tmp/first.txt") <(table "$tmp/second.txt")
exit $fail
