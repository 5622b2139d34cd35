#!/bin/bash
# Ctrl-C or kill during a write leaves no temporary output behind (nmf_cleanup_temps_on_signal,
# called by the CLI): convert / prune are held at a known point of their write (the fault
# interposer's HOLD: the n-th write() or rename() waits, with the temporary file or folder in
# place) and sent SIGTERM / SIGINT / SIGHUP there. Each must end with
# the usual status (128 + signal), no "*.tmp" file or folder left, and the destination absent, or
# the previous file or folder at it untouched. A SIGHUP that was ignored when the command
# started (nohup) stays ignored: the command finishes its write.
set -u
CLI=${NMF_CLI:?NMF_CLI not set}
BUILD=${NMF_BUILD_DIR:?NMF_BUILD_DIR not set}
SRC=${NMF_SOURCE_DIR:?NMF_SOURCE_DIR not set}
LIB=$BUILD/tests/faults/libnmf_faults.so
[ -r "$LIB" ] || { echo "test_signal_temps: $LIB missing" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
. "$SRC/tests/cli_lib.sh" # failures, fail
if [ "${NMF_SANITIZED:-0}" = 1 ]; then export ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0; fi

MODEL=$SRC/tests/fixtures/model/vit_dense_small.safetensors
HF=$SRC/tests/fixtures/hf/llama_gqa6x2
D=$TMP/out
mkdir "$D"

# [release=1] interrupt NAME SIGNAL FN:N -- command...: runs the command held at the n-th call of
# FN (the interposer's HOLD: it creates $H/held and waits on the FIFO $H/go), sends SIGNAL (with
# release=1, one it ignores: then lets it go on); sets rc to its exit status (as the shell
# reports it: 128 + signal) and temps to the number of temporary outputs in D while it was held.
H=$TMP/hold
mkdir "$H"
mkfifo "$H/go"
exec 4<>"$H/go" # open both ways: writing to it never blocks
interrupt() {
    local name=$1 sig=$2 at=$3 pid
    shift 4
    rm -f "$H/held"
    # env: a background command of a script starts with SIGINT ignored, which would stay so
    NMF_FAULT=$at:HOLD NMF_FAULT_HOLD=$H LD_PRELOAD=$LIB env --default-signal=INT "$@" \
        >/dev/null 2>"$TMP/err" &
    pid=$!
    while [ ! -e "$H/held" ] && kill -0 $pid 2>/dev/null; do sleep 0.01; done
    if [ ! -e "$H/held" ]; then
        wait $pid
        rc=$?
        fail "$name: never held at $at (exit $rc: $(head -2 "$TMP/err"))"
        temps=0
        return
    fi
    temps=$(ls -a "$D" | grep -c '\.tmp$')
    kill -s "$sig" $pid
    [ "${release:-0}" = 1 ] && echo >&4 # a signal it ignores: let it go on
    { wait $pid; } 2>/dev/null # (no "Hangup" notice from bash)
    rc=$?
}

no_temps() { # NAME: nothing named *.tmp in D (file or folder), and there was one while held
    [ "$temps" -ge 1 ] || fail "$1: no temporary output in place while held"
    if ls -a "$D" | grep -q '\.tmp$'; then
        fail "$1: left $(ls -a "$D" | grep '\.tmp$' | tr '\n' ' ')"
        rm -rf "$D"/*.tmp
    fi
}

declare -A code=([HUP]=129 [INT]=130 [TERM]=143)

# 1. a new file: absent afterwards, for every signal and at the first write or the final rename
for sig in TERM INT HUP; do
    for at in write:1 rename:1; do
        name="convert to a new .nmf, SIG$sig at $at"
        rm -f "$D/new.nmf"
        interrupt "$name" $sig $at -- "$CLI" convert "$MODEL" "$D/new.nmf"
        [ "$rc" = "${code[$sig]}" ] || fail "$name: exit $rc, not ${code[$sig]}"
        no_temps "$name"
        [ -e "$D/new.nmf" ] && fail "$name: the destination exists"
    done
done

# 2. an existing file: the previous one stays, byte for byte (prune and convert)
echo "previous contents" >"$D/old.nmf"
cp "$D/old.nmf" "$TMP/old.ref"
interrupt "prune over a file, SIGTERM" TERM rename:1 -- "$CLI" prune "$MODEL" "$D/old.nmf" --pattern 2:4
[ "$rc" = 143 ] || fail "prune over a file: exit $rc"
no_temps "prune over a file"
cmp -s "$D/old.nmf" "$TMP/old.ref" || fail "prune over a file: the previous file changed"
interrupt "convert over a file, SIGINT" INT write:2 -- "$CLI" convert "$MODEL" "$D/old.nmf"
[ "$rc" = 130 ] || fail "convert over a file: exit $rc"
no_temps "convert over a file"
cmp -s "$D/old.nmf" "$TMP/old.ref" || fail "convert over a file: the previous file changed"

# 3. a folder output (Hugging Face): config.json written and the weights' temporary file complete
#    in the temporary folder (held at the rename that would put them in it)
name="convert to a new folder, SIGTERM"
interrupt "$name" TERM rename:2 -- "$CLI" convert "$HF" "$D/folder"
[ "$rc" = 143 ] || fail "$name: exit $rc"
no_temps "$name"
[ -e "$D/folder" ] && fail "$name: the destination exists"
# replacing a model folder (--force): the previous folder stays as it was
cp -r "$HF" "$D/folder"
name="convert over a folder (--force), SIGINT"
interrupt "$name" INT rename:2 -- "$CLI" convert "$HF" "$D/folder" --force
[ "$rc" = 130 ] || fail "$name: exit $rc"
no_temps "$name"
diff -r -q "$HF" "$D/folder" >/dev/null || fail "$name: the previous folder changed"

# 4. nohup: an ignored SIGHUP stays ignored, and the write completes
name="convert with SIGHUP ignored"
rm -f "$D/new.nmf"
release=1 interrupt "$name" HUP rename:1 -- bash -c 'trap "" HUP; exec "$@"' _ "$CLI" convert "$MODEL" "$D/new.nmf"
[ "$rc" = 0 ] || fail "$name: exit $rc ($(head -2 "$TMP/err"))"
[ -s "$D/new.nmf" ] || fail "$name: no output"
ls -a "$D" | grep -q '\.tmp$' && fail "$name: a temporary output left"
"$CLI" convert "$MODEL" "$TMP/ref.nmf" >/dev/null && cmp -s "$TMP/ref.nmf" "$D/new.nmf" ||
    fail "$name: the output differs from an undisturbed run's"

[ "$failures" -eq 0 ] && echo "test_signal_temps: all passed"
exit $((failures > 0))
