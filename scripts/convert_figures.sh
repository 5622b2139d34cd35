#!/bin/bash
# Time and peak memory of `convert` to a model folder and to one .safetensors file, an old build
# against a new one, for docs/PERFORMANCE.md (issue 17, streaming dense outputs). Each output of
# the new build is compared with the old one's byte for byte (cmp), then deleted.
#   bash scripts/convert_figures.sh OLD_NMFORMER NEW_NMFORMER SOURCE WORKDIR
# SOURCE: a model folder (e.g. scripts/make_random_hf.py's). Peak memory from scripts/rss_peak.sh
# (RssAnon / RssFile / VmHWM), time from /usr/bin/time. The source is read once first so that
# every run finds it in the page cache.
set -u
OLD=$1 NEW=$2 SRC=$3 WORK=$4
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"
echo "## $(date -u '+%F %T UTC') $(lscpu | grep 'Model name' | sed 's/ \+/ /g'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$SRC"/* > /dev/null
for out in dir st; do
  for which in old new; do
    bin=$OLD; [ $which = new ] && bin=$NEW
    o=$WORK/$which.$out; [ $out = st ] && o=$o.safetensors
    rm -rf "$o"
    /usr/bin/time -f "time: %e s wall, %U s user, %S s sys" "$HERE/rss_peak.sh" \
      "$bin" convert "$SRC" "$o" -q 2> "$WORK/err" || { echo "$which $out failed: $(cat "$WORK/err")"; continue; }
    echo "$which convert -> $out: $(grep -h '^rss_peak\|^time' "$WORK/err" | tr '\n' ' ')"
  done
  if [ $out = dir ]; then
    for f in "$WORK/old.dir"/*; do cmp "$f" "$WORK/new.dir/$(basename "$f")" || echo "DIFFER: $f"; done
    [ "$(ls "$WORK/old.dir")" = "$(ls "$WORK/new.dir")" ] || echo "DIFFER: the folders' files"
    echo "folder: $(ls "$WORK/new.dir" | tr '\n' ' ')($(du -sb "$WORK/new.dir" | cut -f1) bytes), old = new: cmp done"
    rm -rf "$WORK/old.dir" "$WORK/new.dir"
  else
    cmp "$WORK/old.st.safetensors" "$WORK/new.st.safetensors" && echo "safetensors: $(stat -c %s "$WORK/new.st.safetensors") bytes, old = new"
    rm -f "$WORK/old.st.safetensors" "$WORK/new.st.safetensors"
  fi
done
