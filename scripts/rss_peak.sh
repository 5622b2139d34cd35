#!/bin/bash
# Peak memory of a command by kind, for docs/PERFORMANCE.md: runs it, polls /proc/PID/status every
# 10 ms while it runs, then prints on stderr the largest values seen of
#   RssAnon  anonymous (private) memory: what the process allocated itself
#   RssFile  file pages it maps: model weights used in place from the file (shared with the page
#            cache, dropped under memory pressure and read again), libraries
#   VmHWM    the kernel's peak RSS (both kinds; exact, as /usr/bin/time's "Maximum resident")
# in MB (10^6 bytes). A peak shorter than the poll interval can be missed (not VmHWM's).
#   scripts/rss_peak.sh CMD [ARGS...]     the command's output passes through; its status is kept
set -u
[ $# -ge 1 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
"$@" &
pid=$!
anon=0 file=0 hwm=0
while kill -0 "$pid" 2>/dev/null; do
  if read -r a f h < <(awk '/^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} /^VmHWM:/ {h=$2} END {print a+0, f+0, h+0}' \
                        "/proc/$pid/status" 2>/dev/null); then
    [ "$a" -gt "$anon" ] && anon=$a
    [ "$f" -gt "$file" ] && file=$f
    [ "$h" -gt "$hwm" ] && hwm=$h
  fi
  sleep 0.01
done
wait "$pid"
rc=$?
awk -v a="$anon" -v f="$file" -v h="$hwm" 'BEGIN {printf "rss_peak: RssAnon %.1f MB, RssFile %.1f MB, VmHWM %.1f MB\n", a*1.024e-3, f*1.024e-3, h*1.024e-3}' >&2
exit $rc
