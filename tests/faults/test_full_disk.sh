#!/bin/bash
# A real full filesystem (issue 15): a 16 KiB tmpfs (4 pages) holding a 9 KB previous family file; prune and
# convert into it must fail with one clear line and exit 1, leave the previous file intact and
# no temporary file. Needs root (mount); skipped with a message otherwise.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
FIX=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}/tests/fixtures/model
MODEL=$FIX/vit_dense_small.safetensors
if [ "$(id -u)" -ne 0 ]; then echo "test_full_disk: skipped (needs root to mount a small tmpfs)"; exit 0; fi
TMP=$(mktemp -d)
MNT=$TMP/mnt
mkdir "$MNT"
if ! mount -t tmpfs -o size=16k,mode=0755 tmpfs "$MNT" 2>/dev/null; then
    rmdir "$MNT"; rm -rf "$TMP"
    echo "test_full_disk: skipped (mount not permitted here)"; exit 0
fi
trap 'umount "$MNT"; rm -rf "$TMP"' EXIT
. "${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}/tests/cli_lib.sh" # failures, fail, expect_error

"$CLI" prune "$MODEL" "$TMP/prev.nmf" --pattern 2:4 || fail "setup: prune" # 9 KB: 3 of 4 pages
cp "$TMP/prev.nmf" "$MNT/f.nmf" || fail "setup: the previous file does not fit"
# expect_enospc DESCRIPTION -- command...
expect_enospc() {
    local what=$1
    shift 2
    "$@" >/dev/null 2>"$TMP/err"
    local rc=$?
    [ $rc -eq 1 ] || fail "$what: exit $rc"
    [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "$what: stderr is not one line: $(cat "$TMP/err")"
    grep -q "No space left on device" "$TMP/err" || fail "$what: no ENOSPC in: $(cat "$TMP/err")"
    cmp -s "$TMP/prev.nmf" "$MNT/f.nmf" || fail "$what: the previous file was changed"
    ls -a "$MNT" | grep -q '\.tmp$' && fail "$what: temporary file left"
}
expect_enospc "prune into a full disk" -- "$CLI" prune "$MODEL" "$MNT/f.nmf" --pattern 2:4,1:8
expect_enospc "convert into a full disk" -- "$CLI" convert "$MODEL" "$MNT/f.nmf"
expect_enospc "--add into a full disk" -- "$CLI" prune "$MODEL" "$MNT/f.nmf" --pattern 1:8 --add
# a new file that does not fit leaves nothing behind
expect_enospc "new file on a full disk" -- "$CLI" prune "$MODEL" "$MNT/new.nmf" --pattern 2:4,1:8
[ -e "$MNT/new.nmf" ] && fail "a partial new file was left"

if [ $failures -ne 0 ]; then echo "test_full_disk: $failures failed" >&2; exit 1; fi
echo "test_full_disk: ok"
