# Shared by the CLI test scripts (source it): failure counting and the check that a command
# fails the way every nmformer command must (non-zero exit, exactly one stderr line). Needs TMP.
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect_error DESCRIPTION PATTERN -- command...: non-zero exit, exactly one stderr line matching
expect_error() {
    local what=$1 pattern=$2
    shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq 0 ]; then fail "$what: exit 0"; return; fi
    if [ "$(wc -l <"$TMP/err")" -ne 1 ]; then fail "$what: stderr is not one line:"; cat "$TMP/err" >&2; return; fi
    grep -q -- "$pattern" "$TMP/err" || { fail "$what: stderr lacks '$pattern':"; cat "$TMP/err" >&2; }
}
