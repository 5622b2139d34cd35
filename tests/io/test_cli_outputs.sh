#!/bin/bash
# Outputs that never destroy anything, through the CLI (issue 13 item 3): `-` for stdin/stdout,
# a symlink written through, a FIFO written directly, a read-only file and a directory refused
# with one line and left as they are. Everything lives in a temp dir.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
FIX=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}/tests/fixtures/model
TMP=$(mktemp -d)
trap 'chmod -R u+w "$TMP"; rm -rf "$TMP"' EXIT
. "${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}/tests/cli_lib.sh" # failures, fail, expect_error
MODEL=$FIX/vit_2to8.safetensors
IN=$FIX/vit_2to8.input.npy
run() { "$CLI" run "$MODEL" --threads 1 "$@"; }

no_temp_files() { ! ls -a "$@" | grep -q '\.tmp$' || fail "temporary file left in $*"; }

run --input "$IN" --output "$TMP/ref.npy" || fail "reference run"
[ -s "$TMP/ref.npy" ] || fail "reference output missing"

# `-` as the output: the .npy on stdout, nothing else there, no file named "-"
(cd "$TMP" && run --input "$IN" --output - >"$TMP/stdout.npy") || fail "run --output -"
cmp -s "$TMP/ref.npy" "$TMP/stdout.npy" || fail "--output - differs from a file output"
[ -e "$TMP/-" ] && fail "--output - created a file named '-'"
# `-` as the input: stdin read whole; both ends piped
run --input - --output "$TMP/stdin.npy" <"$IN" || fail "run --input -"
cmp -s "$TMP/ref.npy" "$TMP/stdin.npy" || fail "--input - differs"
cat "$IN" | run --input - --output - | cmp -s "$TMP/ref.npy" - || fail "--input - --output - in a pipe"
# stdin that is not a .npy: one clear line
expect_error "garbage on stdin" "not a .npy" -- run --input - --output "$TMP/z.npy" <<<"not a npy"
[ -e "$TMP/z.npy" ] && fail "garbage stdin still wrote an output"

# a symlink (relative, into another directory) is written through; it stays a link
mkdir "$TMP/real"
echo old >"$TMP/real/y.npy"
chmod 640 "$TMP/real/y.npy"
ln -s real/y.npy "$TMP/link.npy"
run --input "$IN" --output "$TMP/link.npy" || fail "run --output symlink"
[ -L "$TMP/link.npy" ] || fail "the symlink was replaced by a file"
cmp -s "$TMP/ref.npy" "$TMP/real/y.npy" || fail "symlink target not written"
[ "$(stat -c %a "$TMP/real/y.npy")" = 640 ] || fail "target mode not kept: $(stat -c %a "$TMP/real/y.npy")"
no_temp_files "$TMP" "$TMP/real"
# convert and prune write through a symlink too
ln -s real/fam.nmf "$TMP/fam_link.nmf"
"$CLI" convert "$MODEL" "$TMP/fam_link.nmf" >/dev/null 2>&1 || fail "convert to a symlink"
[ -L "$TMP/fam_link.nmf" ] && [ -s "$TMP/real/fam.nmf" ] || fail "convert did not write through"

# a FIFO is written directly (a reader on the other end), and stays a FIFO
mkfifo "$TMP/fifo"
cat "$TMP/fifo" >"$TMP/fifo.got" &
reader=$!
run --input "$IN" --output "$TMP/fifo" || fail "run --output FIFO"
wait "$reader"
[ -p "$TMP/fifo" ] || fail "the FIFO was replaced"
cmp -s "$TMP/ref.npy" "$TMP/fifo.got" || fail "FIFO reader got other bytes"
# a device through a link (/dev/null: only written to, never replaced)
ln -s /dev/null "$TMP/null.npy"
run --input "$IN" --output "$TMP/null.npy" || fail "run --output link to /dev/null"
[ -c /dev/null ] || fail "/dev/null is no longer a device"

# a read-only file and a directory: refused, one line, left as they are
echo keep >"$TMP/ro.npy"
chmod 444 "$TMP/ro.npy"
expect_error "read-only output" "read-only" -- run --input "$IN" --output "$TMP/ro.npy"
[ "$(cat "$TMP/ro.npy")" = keep ] || fail "read-only file changed"
mkdir "$TMP/dir.npy"
expect_error "directory output" "is a directory" -- run --input "$IN" --output "$TMP/dir.npy"
[ -d "$TMP/dir.npy" ] || fail "directory output replaced"
no_temp_files "$TMP"

if [ $failures -ne 0 ]; then echo "test_cli_outputs: $failures failed" >&2; exit 1; fi
echo "test_cli_outputs: ok"
