#!/bin/bash
# The low-precision figures of docs/PERFORMANCE.md § "Low precision" (issue 12), one thread:
# - `bench gemm` on the BERT shapes at 128 and 1 tokens, dense and N:M patterns, f32, bf16, int8,
#   ROUNDS runs; per cell the median over runs of each run's median time, and the ratio of
#   useful multiply-adds per second to the f32 FMA peak (the median of the runs' measured peaks)
#   -- the ratio issue 12 states its ceilings in (vpdpbusd alone 4.3x, vpermb + vpdpbusd 1.96x);
# - `bench model --shape deit-small`, batch 1: latency per pattern x precision, ROUNDS rounds
#   (f32, bf16 and int8 interleaved), median of the rounds' medians;
# - `build/attention_sweep --mhsa 197 6 64`: DeiT-small's attention, f32 against int8.
# The load average is printed before and after every run (the machine may be shared).
#   bash scripts/int8_figures.sh [BUILD_DIR]        (default: build)
#   env: ROUNDS (default 5), TIME (seconds per gemm cell, default 0.2), REPS (bench model, 5),
#        PATTERNS (default dense,2:4,4:8,2:8,1:8,1:16), OUT (a folder for the raw JSON)
set -u
BUILD=${1:-build}; BIN=$BUILD/nmformer
R=${ROUNDS:-5}; T=${TIME:-0.2}; REPS=${REPS:-5}
PATS=${PATTERNS:-dense,2:4,4:8,2:8,1:8,1:16}
OUT=${OUT:-$(mktemp -d /tmp/int8_figures.XXXXXX)}
mkdir -p "$OUT"
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | grep 'Model name' | sed 's/ \+/ /g')," \
     "$(grep -o -w -E 'avx512_vnni|avx512vbmi|avx512_bf16|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ')"
"$BIN" --version | head -1
GEMM="$BIN bench gemm --threads 1 --shapes 768x768,3072x768,768x3072 --tokens 128,1"
GEMM="$GEMM --patterns $PATS --precision f32,bf16,int8 --time $T --json"
echo "gemm: $GEMM   (x $R)"
for r in $(seq "$R"); do
  b=$(load); $GEMM > "$OUT/gemm_$r.json" || { echo "bench gemm failed"; exit 1; }
  echo "gemm round $r: load $b before, $(load) after"
done
MODEL="$BIN bench model --shape deit-small --pattern dense,2:8,1:8 --threads 1 --batch 1 --reps $REPS --json"
echo "model: $MODEL --precision f32|bf16|int8   (x $R, interleaved)"
for r in $(seq "$R"); do
  for p in f32 bf16 int8; do
    b=$(load); $MODEL --precision "$p" > "$OUT/model_${p}_$r.json" || { echo "bench model failed"; exit 1; }
    echo "model round $r $p: load $b before, $(load) after"
  done
done
# DeiT-small's attention alone (one image, 6 heads of 197 x 197 x 64), f32 against int8
ATT="$BUILD/attention_sweep --mhsa 197 6 64"
if [ -x "$BUILD/attention_sweep" ]; then
  echo "attention: NMF_THREADS=1 $ATT   (x $R)"
  for r in $(seq "$R"); do
    b=$(load); NMF_THREADS=1 $ATT | tail -1 >> "$OUT/attention.txt" || { echo "attention_sweep failed"; exit 1; }
    echo "attention round $r: load $b before, $(load) after"
  done
fi
# PyTorch f32 dense in the same run (issue 12's aim: 1:8 int8 >= 10x it), when torch is there
PEERS="/usr/bin/python3 $(dirname "$0")/../bench/model_vs_peers.py --nmformer $BIN --shape deit-small"
PEERS="$PEERS --pattern 1:8 --threads 1 --batch 1 --reps $REPS --rounds $R --peers torch --json"
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "peers: $PEERS"
  b=$(load); $PEERS > "$OUT/peers.json" 2> "$OUT/peers.err" || echo "model_vs_peers failed (see $OUT/peers.err)"
  echo "peers: load $b before, $(load) after"
fi
echo "raw JSON: $OUT"
python3 - "$OUT" "$R" <<'EOF'
import glob, json, statistics as st, sys
out, R = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(f"{out}/gemm_{r}.json")) for r in range(1, R + 1)]
peak = st.median(e["peak_gflops"] for run in runs for e in run)  # GFLOP/s = 2 x GMAC/s
cells = {}
for run in runs:
    for e in run:
        cells.setdefault((e["out"], e["in"], e["tokens"], e["pattern"], e["precision"]), []).append(e)
print(f"\nf32 FMA peak (median of {R} runs): {peak:.1f} GFLOP/s = {peak / 2:.1f} G multiply-adds/s")
print("x peak: useful multiply-adds/s / f32 FMA multiply-adds/s (ceilings: vpdpbusd 4.3, vpermb+vpdpbusd 1.96)\n")
pats = sorted({k[3] for k in cells}, key=lambda p: (p != "dense", -eval(p.replace(":", "/")) if p != "dense" else 0))
print("| shape, tokens | pattern | f32 ms (kernel) | bf16 ms (kernel) | int8 ms (kernel) | bf16 / f32 speed | int8 / f32 speed | f32 x peak | int8 x peak | best dense f32 ms |")
print("|---|---|---|---|---|---|---|---|---|---|")
order = list(dict.fromkeys(k[:3] for k in cells))  # the order bench gemm ran them
for shape in sorted(order, key=lambda s: (-s[2], order.index(s))):
    for p in pats:
        f, i = cells.get(shape + (p, "f32")), cells.get(shape + (p, "int8"))
        h = cells.get(shape + (p, "bf16"))
        if not f or not i or not h:
            continue
        fm, im, hm = (st.median(e["ms"] for e in c) for c in (f, i, h))
        useful = 2.0 * shape[0] * shape[1] * shape[2] * (1.0 if p == "dense" else eval(p.replace(":", "/")))
        best = st.median(e["best_dense_ms"] for e in f)
        print(f"| {shape[0]}x{shape[1]}, {shape[2]} | {p} | {fm:.4g} ({f[0]['kernel']}) | {hm:.4g} ({h[0]['kernel']}) "
              f"| {im:.4g} ({i[0]['kernel']}) | {fm / hm:.2f}x | {fm / im:.2f}x | {useful / fm / 1e6 / peak:.2f} "
              f"| {useful / im / 1e6 / peak:.2f} | {best:.4g} |")
print("\nDeiT-small, batch 1, 1 thread: latency ms, median of rounds (each the median of its reps)\n")
print("| candidate | f32 | bf16 | int8 | int8 / f32 speed | weight MB f32 / bf16 / int8 |")
print("|---|---|---|---|---|---|")
lat = {}
for p in ("f32", "bf16", "int8"):
    for r in range(1, R + 1):
        for e in json.load(open(f"{out}/model_{p}_{r}.json")):
            c = e["candidate"].split("@")[0]
            lat.setdefault((c, p), []).append((e["latency_ms"], e["weight_mb"]))
for c in ("dense", "2:8", "1:8"):
    f, h, i = lat.get((c, "f32")), lat.get((c, "bf16")), lat.get((c, "int8"))
    if f and h and i:
        fm, hm, im = (st.median(x[0] for x in v) for v in (f, h, i))
        print(f"| {c} | {fm:.1f} | {hm:.1f} | {im:.1f} | {fm / im:.2f}x | {f[0][1]:.1f} / {h[0][1]:.1f} / {i[0][1]:.1f} |")
try:
    rows = [l.split() for l in open(f"{out}/attention.txt")]
    f32 = st.median(float(r[r.index("f32") + 1]) for r in rows)
    i8 = st.median(float(r[r.index("int8") + 1]) for r in rows)
    print(f"\nDeiT-small attention, one image, 1 thread (attention_sweep, median of {len(rows)} rounds' fastest): "
          f"f32 {f32:.0f} us, int8 {i8:.0f} us per layer ({f32 / i8:.2f}x)")
except (OSError, ValueError):
    pass
try:
    peers = json.load(open(f"{out}/peers.json"))
    torch = [e for e in peers["rows"] if e["engine"] == "torch"]
    int8 = lat.get(("1:8", "int8"))
    if torch and int8:
        tm = torch[0]["latency_ms"]
        print(f"\nPyTorch f32 dense (model_vs_peers.py, best of {R} rounds' medians): {tm:.1f} ms; "
              f"our 1:8 int8 {st.median(x[0] for x in int8):.1f} ms: {tm / st.median(x[0] for x in int8):.2f}x")
        for h in peers["header"]:
            print("#", h)
except (OSError, ValueError, KeyError):
    pass
EOF
