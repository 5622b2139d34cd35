#!/usr/bin/python3
"""PyTorch baseline for `nmformer bench model --shape ...`: the same DeiT shapes (timm-style ViT
from tests/ref/vit_ref.py, random weights), dense, torch.inference_mode(), the same thread counts
and batch sizes, the same table (and --json fields).

  /usr/bin/python3 bench/pytorch_vit.py --shape deit-small [--threads 1,2] [--batch 1,32]
                                        [--reps 5] [--json]

Each (shape, threads) runs in its own subprocess, for two reasons: peak_rss_mb (getrusage
ru_maxrss) is then that model's process, as nmformer forks one process per candidate; and the
thread count must be set in the environment before torch loads. Debian's torch does its fp32
matmuls in OpenBLAS (pthreads build), whose pool ignores torch.set_num_threads(): without
OPENBLAS_NUM_THREADS a "1 thread" run silently multiplies on every core.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

SHAPES = {"deit-tiny": (192, 3), "deit-small": (384, 6), "deit-base": (768, 12)}  # (dim, heads)
IMAGE = (3, 224, 224)  # (channels, height, width) of one input, patch 16: 197 tokens


def build_model(shape):
    """The timm-style ViT of tests/ref/vit_ref.py at a DeiT shape, random weights (seed 0), in eval
    mode; returns (model, weight_mb). Shared with bench/model_vs_peers.py (PyTorch, ONNX export)."""
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
    from vit_ref import VisionTransformer

    dim, heads = SHAPES[shape]
    torch.manual_seed(0)
    model = VisionTransformer(img_size=IMAGE[1], patch=16, in_chans=IMAGE[0], dim=dim, depth=12, heads=heads,
                              mlp_ratio=4.0, num_classes=1000).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    return model, sum(p.numel() * 4 for p in model.parameters()) / 2**20


def median_seconds(forward, reps):
    """Median wall time of `reps` calls of forward() after one untimed warm-up call."""
    forward()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        forward()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(shape, threads, batches, reps):
    import torch

    model, weight_mb = build_model(shape)
    rows = []
    for t in threads:
        torch.set_num_threads(t)
        for b in batches:
            x = torch.randn(b, *IMAGE)
            with torch.inference_mode():
                med = median_seconds(lambda: model(x), reps)
            rows.append(dict(framework="pytorch", model=f"{shape}/dense", candidate="dense",
                             threads=t, batch=b, latency_ms=1e3 * med, ms_per_image=1e3 * med / b,
                             images_per_s=b / med, weight_mb=weight_mb, file_mb=None,
                             torch=torch.__version__))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    for r in rows:
        r["peak_rss_mb"] = peak
    return rows


def print_table(rows):
    print(f"{'model':<28} {'threads':>7} {'batch':>5} {'latency_ms':>12} {'ms/image':>12} "
          f"{'images/s':>10} {'peak_rss_mb':>11} {'file_mb':>9} {'weight_mb':>9}")
    for r in rows:
        print(f"{'pytorch ' + r['model']:<28} {r['threads']:>7} {r['batch']:>5} "
              f"{r['latency_ms']:>12.3f} {r['ms_per_image']:>12.3f} {r['images_per_s']:>10.2f} "
              f"{r['peak_rss_mb']:>11.1f} {'-':>9} {r['weight_mb']:>9.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="deit-small",
                    help="comma list of deit-tiny, deit-small, deit-base (default deit-small)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    shapes = a.shape.split(",")
    for s in shapes:
        if s not in SHAPES:
            ap.error(f"unknown shape {s!r} ({', '.join(SHAPES)})")
    threads = [int(t) for t in a.threads.split(",")]
    batches = [int(b) for b in a.batch.split(",")]
    if a.reps < 1 or min(threads) < 1 or min(batches) < 1:
        ap.error("--reps, --threads and --batch must be >= 1")
    if a.child:
        json.dump(measure(shapes[0], threads, batches, a.reps), sys.stdout)
        return
    rows = []
    for s in shapes:
        for t in threads:
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t),
                       MKL_NUM_THREADS=str(t))
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--shape", s,
                                  "--threads", str(t), "--batch", a.batch, "--reps", str(a.reps)],
                                 check=True, capture_output=True, text=True, env=env)
            rows += json.loads(out.stdout)
    if a.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
