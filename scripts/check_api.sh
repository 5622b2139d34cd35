#!/usr/bin/env bash
# Lists every function declared in the public headers without NMF_API (include/nmformer/export.h),
# one "file:line: name" a line, and exits 1 if there is any: such a function would be hidden in
# libnmformer.so. `--names` instead prints the name of every declared function (with or without
# NMF_API), which tests/cli/test_install.sh compares with the shared library's export table.
#
# usage: scripts/check_api.sh [--names] [HEADER...]    (default: include/nmformer/*.h and the
#        version.h template, cmake/version.h.in)
#
# A declaration is a top-level statement (outside any braces, comments and preprocessor lines;
# `extern "C" {` does not count as a brace) that ends in ';', is not a typedef, and has a '(':
# its name is the identifier just before the first '('. Inline definitions have a body, so they
# end in '}' and are not declarations.
set -euo pipefail
mode=missing
if [[ ${1:-} == --names ]]; then mode=names; shift; fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ $# -eq 0 ]]; then set -- "$root"/include/nmformer/*.h "$root"/cmake/version.h.in; fi

awk -v mode="$mode" '
function flush(   s, name) {
    s = stmt; stmt = ""
    gsub(/[ \t\n]+/, " ", s); sub(/^ /, "", s)
    if (s == "" || s ~ /^typedef[ (]/ || index(s, "(") == 0) return
    name = substr(s, 1, index(s, "(") - 1)
    sub(/[ *]+$/, "", name); sub(/.*[^A-Za-z0-9_]/, "", name)
    if (name == "") return
    if (mode == "names") print name
    else if (s !~ /^NMF_API /) { print FILENAME ":" start ": " name; bad = 1 }
}
FNR == 1 { depth = 0; stmt = ""; incomment = 0; cont = 0 }
{
    line = $0
    if (cont || (!incomment && line ~ /^[ \t]*#/)) { cont = (line ~ /\\$/); next }
    out = ""
    while (line != "") {
        if (incomment) {
            i = index(line, "*/"); if (i == 0) { line = ""; break }
            line = substr(line, i + 2); incomment = 0; continue
        }
        c = substr(line, 1, 1); two = substr(line, 1, 2)
        if (two == "/*") { incomment = 1; line = substr(line, 3); out = out " "; continue }
        if (two == "//") break
        if (c == "\"") {              # string literal: copy through the closing quote
            j = 2
            while (j <= length(line) && substr(line, j, 1) != "\"") j += (substr(line, j, 1) == "\\") ? 2 : 1
            out = out substr(line, 1, j); line = substr(line, j + 1); continue
        }
        out = out c; line = substr(line, 2)
    }
    n = length(out)
    for (k = 1; k <= n; k++) {
        c = substr(out, k, 1)
        if (depth == 0 && stmt !~ /[^ \t\n]/ && c ~ /[^ \t]/) start = FNR
        if (c == "{") {
            if (depth == 0 && stmt ~ /^[ \t\n]*extern[ \t]+"C"[ \t\n]*$/) { stmt = ""; continue }
            depth++
        } else if (c == "}") {
            if (depth == 0) { stmt = ""; continue }   # the end of extern "C" {
            if (--depth == 0) stmt = ""           # end of a struct/enum body or an inline body
            continue
        } else if (c == ";" && depth == 0) { flush(); continue }
        if (depth == 0) stmt = stmt c
    }
    if (depth == 0) stmt = stmt "\n"
}
END { exit bad }
' "$@"
