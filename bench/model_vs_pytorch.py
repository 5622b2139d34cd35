#!/usr/bin/python3
"""One run, both engines: `nmformer bench model --shape S` (our dense and N:M candidates) and
bench/pytorch_vit.py (PyTorch dense) on the same shape, threads and batches, then one table
with each row's speed-up over PyTorch dense at the same (threads, batch).

  /usr/bin/python3 bench/model_vs_pytorch.py --nmformer build/nmformer --shape deit-small \\
      --pattern dense,2:8,1:8 --threads 1 --batch 1 --reps 9 [--rounds 2] [--json]

With --rounds R the two engines alternate R times and each row keeps its best median, which
takes the edge off a noisy shared machine (both sides get the same treatment).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmformer", default=os.path.join(HERE, "..", "build", "nmformer"))
    ap.add_argument("--shape", default="deit-small")
    ap.add_argument("--pattern", default="dense,2:8,1:8")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--batch", default="1")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    best = {}
    for _ in range(max(1, a.rounds)):
        ours = run_json([a.nmformer, "bench", "model", "--shape", a.shape, "--pattern", a.pattern,
                         "--threads", a.threads, "--batch", a.batch, "--reps", str(a.reps), "--json"])
        torch_rows = run_json([sys.executable, os.path.join(HERE, "pytorch_vit.py"), "--shape", a.shape,
                               "--threads", a.threads, "--batch", a.batch, "--reps", str(a.reps), "--json"])
        for r in ours + torch_rows:
            key = (r["framework"], r["model"], r["threads"], r["batch"])
            if key not in best or r["latency_ms"] < best[key]["latency_ms"]:
                best[key] = r
    rows = list(best.values())
    base = {(r["threads"], r["batch"]): r for r in rows if r["framework"] == "pytorch"}
    for r in rows:
        b = base.get((r["threads"], r["batch"]))
        r["speedup_vs_pytorch_dense"] = b["latency_ms"] / r["latency_ms"] if b else None
    rows.sort(key=lambda r: (r["threads"], r["batch"], r["framework"] != "pytorch", r["model"]))
    if a.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'engine':<10} {'model':<20} {'threads':>7} {'batch':>5} {'ms/image':>10} {'images/s':>9} "
          f"{'peak_rss_mb':>11} {'weight_mb':>9} {'vs torch':>8}")
    for r in rows:
        sp = r["speedup_vs_pytorch_dense"]
        print(f"{r['framework']:<10} {r['model']:<20} {r['threads']:>7} {r['batch']:>5} "
              f"{r['ms_per_image']:>10.2f} {r['images_per_s']:>9.2f} {r['peak_rss_mb']:>11.1f} "
              f"{r['weight_mb']:>9.2f} {('%.2fx' % sp) if sp else '-':>8}")


if __name__ == "__main__":
    main()
