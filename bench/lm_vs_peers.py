#!/usr/bin/python3
"""Token models against PyTorch dense, in the same run: BERT-base at T tokens (the forward) and
GPT-2 small, prefill of T tokens into a key/value cache then G decode steps of one token each,
ours dense and N:M side by side, one table. Before any timing, our logits are checked against
PyTorch's at the real size: the script writes the random weights as a Hugging Face folder, runs
`nmformer run FOLDER` on it and compares (max error relative to the largest logit).

  /usr/bin/python3 bench/lm_vs_peers.py --nmformer build/nmformer [--shapes bert-base,gpt2]
      [--pattern dense,2:8,1:8] [--threads 1] [--tokens 128] [--new-tokens 128] [--reps 5]
      [--rounds 1] [--parity-tol 1e-4] [--no-parity] [--json]

PyTorch: Debian's torch, eager, inference_mode, the functional forwards of tests/ref/hf_models.py
(which follow transformers' modeling_bert.py / modeling_gpt2.py line by line) on the same random
weights; GPT-2's cached decode is written here (hf_models.py re-runs the whole sequence): keys
and values of every layer preallocated for T + G positions, the prompt's written at prefill, each
step's appended, attention of the new token over the cache, as transformers' cache does. The
prefill, in both engines, ends with the logits of the last position only (what generation reads).
Threads: torch.set_num_threads(t), one inter-op thread, OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = t,
OMP_WAIT_POLICY=PASSIVE, and the OpenBLAS core forced to the CPU's best when OpenBLAS picked a
generic one (bench/model_vs_peers.py explains both; docs/PERFORMANCE.md). Ours: --threads t.

Timing: each engine in its own process per thread count; one untimed run, then --reps timed runs,
medians. --rounds R repeats the grid with the engines alternating, keeping each row's best median.
Columns: prefill ms (T tokens, batch 1) and tokens/s; decode ms per new token and tokens/s; the
speed-up of each row over PyTorch dense at the same thread count (prefill, decode).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
import model_vs_peers as mvp  # noqa: E402  (stdlib only at import)

MARK = "@@lm_vs_peers "
# Hugging Face configs of the shapes (the same as nmformer's shape table, src/model/shapes.c)
SHAPES = {
    "bert-base": dict(family="bert", bare=True,
                      cfg=dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                               num_attention_heads=12, intermediate_size=3072,
                               max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12)),
    "gpt2": dict(family="gpt2", cfg=dict(vocab_size=50257, n_embd=768, n_layer=12, n_head=12,
                                         n_positions=1024, layer_norm_epsilon=1e-5)),
    "gpt2-medium": dict(family="gpt2", cfg=dict(vocab_size=50257, n_embd=1024, n_layer=24, n_head=16,
                                                n_positions=1024, layer_norm_epsilon=1e-5)),
}


def result(obj):
    print(MARK + json.dumps(obj), flush=True)


# ------------------------------------------------------------------------------------------------
# PyTorch side (children)

def weights(shape):
    """HF-named random weights of the shape (tests/ref/make_hf_fixtures.random_params: logits O(1),
    attention far from uniform), seed 0."""
    import torch
    from make_hf_fixtures import random_params

    return random_params(SHAPES[shape], torch.Generator().manual_seed(0))


def gpt2_cached(cfg, p, prefix="transformer."):
    """GPT-2 with a key/value cache (transformers' GPT2Attention with use_cache, layer_past):
    prefill(ids (B, T)) and step(ids (B, 1)) return the last position's logits (B, vocab)."""
    import torch
    from hf_models import NEG, conv1d, gelu_new, layer_norm, merge_heads, split_heads

    g = {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}
    H, D, eps, L = cfg["n_head"], cfg["n_embd"], cfg["layer_norm_epsilon"], cfg["n_layer"]
    state = {"len": 0, "k": None, "v": None}

    def reset(B, max_len):
        hd = D // H
        state.update(len=0, k=torch.empty(L, B, H, max_len, hd), v=torch.empty(L, B, H, max_len, hd))

    def run(ids):
        B, T = ids.shape
        t0 = state["len"]
        x = g["wte.weight"][ids] + g["wpe.weight"][torch.arange(t0, t0 + T)]
        # query i (position t0 + i) sees keys 0 .. t0 + i
        keep = torch.arange(t0 + T)[None, :] <= torch.arange(t0, t0 + T)[:, None]
        for i in range(L):
            pre = f"h.{i}."
            h = layer_norm(x, g, pre + "ln_1", eps)
            q, k, v = conv1d(h, g, pre + "attn.c_attn").split(D, dim=2)
            q, k, v = split_heads(q, H), split_heads(k, H), split_heads(v, H)
            state["k"][i, :, :, t0:t0 + T] = k
            state["v"][i, :, :, t0:t0 + T] = v
            K, V = state["k"][i, :, :, :t0 + T], state["v"][i, :, :, :t0 + T]
            w = q @ K.transpose(-1, -2) / (float(v.size(-1)) ** 0.5)
            w = torch.where(keep, w, torch.tensor(NEG))
            x = x + conv1d(merge_heads(torch.softmax(w, dim=-1) @ V), g, pre + "attn.c_proj")
            h = layer_norm(x, g, pre + "ln_2", eps)
            x = x + conv1d(gelu_new(conv1d(h, g, pre + "mlp.c_fc")), g, pre + "mlp.c_proj")
        state["len"] = t0 + T
        last = layer_norm(x[:, -1], g, "ln_f", eps)
        return last @ g["wte.weight"].t()  # the tied lm_head on the last position

    return reset, run


def child_torch(a):
    import torch
    from hf_models import bert_forward

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    fx = SHAPES[a.shape]
    cfg, p = fx["cfg"], weights(a.shape)
    gen = torch.Generator().manual_seed(1)
    T, G = a.tokens, a.new_tokens
    ids = torch.randint(0, cfg["vocab_size"], (1, T + G), generator=gen)
    pre, dec = [], []
    with torch.inference_mode():
        if fx["family"] == "bert":
            for r in range(a.reps + 1):
                t0 = time.perf_counter()
                bert_forward(cfg, p, ids[:, :T], prefix="")
                if r:
                    pre.append(time.perf_counter() - t0)
        else:
            from hf_models import gpt2_forward

            reset, run = gpt2_cached(cfg, p)
            # the cached path computes what the full forward does (last position, after 3 steps)
            reset(1, T + G)
            run(ids[:, :T])
            for s in range(3):
                got = run(ids[:, T + s:T + s + 1])
            want = gpt2_forward(cfg, p, ids[:, :T + 3])[1][:, -1]
            err = float((got - want).abs().max() / want.abs().max())
            if not err < 1e-4:
                sys.exit(f"lm_vs_peers: the cached GPT-2 decode differs from the full forward ({err:.2e})")
            for r in range(a.reps + 1):
                reset(1, T + G)
                t0 = time.perf_counter()
                run(ids[:, :T])
                t1 = time.perf_counter()
                for s in range(G):
                    run(ids[:, T + s:T + s + 1])
                if r:
                    pre.append(t1 - t0)
                    dec.append((time.perf_counter() - t1) / max(G, 1))
    core = (mvp.openblas_core_of_process() or "?").split(" (")[0]
    result({"prefill_ms": 1e3 * sorted(pre)[len(pre) // 2],
            "decode_ms": 1e3 * sorted(dec)[len(dec) // 2] if dec else None,
            "engine": f"torch {torch.__version__} eager, OpenBLAS core {core}, "
                      f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '-')}"})


def child_parity(a):
    """Writes the shape's random weights as an HF folder, runs `nmformer run` on it and compares
    its output (BERT: last hidden state; GPT-2: logits) with PyTorch's."""
    import numpy as np
    import torch
    from hf_models import bert_forward, gpt2_forward
    from make_hf_fixtures import hf_config
    from vit_ref import write_safetensors

    torch.set_num_threads(a.threads)
    fx = SHAPES[a.shape]
    cfg, p = fx["cfg"], weights(a.shape)
    folder = os.path.join(a.dir, a.shape)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(hf_config(dict(fx, dtype="F32")), f, indent=2)
    write_safetensors(os.path.join(folder, "model.safetensors"), p, {"format": "pt"}, "F32")
    ids = torch.randint(0, cfg["vocab_size"], (1, a.tokens), generator=torch.Generator().manual_seed(2))
    np.save(os.path.join(a.dir, "ids.npy"), ids.numpy())
    with torch.inference_mode():
        ref = (bert_forward(cfg, p, ids, prefix="")[0] if fx["family"] == "bert"
               else gpt2_forward(cfg, p, ids)[1]).numpy()
    out = os.path.join(a.dir, "ours.npy")
    cmd = [a.nmformer, "run", folder, "--input", os.path.join(a.dir, "ids.npy"), "--output", out,
           "--threads", str(a.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"lm_vs_peers: {' '.join(cmd)} failed: {proc.stderr.strip()}")
    ours = np.load(out)
    if ours.shape != ref.shape:
        sys.exit(f"lm_vs_peers: nmformer run gave {ours.shape}, PyTorch {ref.shape}")
    err = float(np.abs(ours - ref).max())
    result({"max_abs_diff": err, "max_abs_ref": float(np.abs(ref).max()),
            "what": "last_hidden_state" if fx["family"] == "bert" else "logits",
            "shape": list(ref.shape)})


# ------------------------------------------------------------------------------------------------
# Parent: only the standard library

def run_child(args, env, what):
    p = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True,
                       text=True, env=env)
    lines = [l[len(MARK):] for l in p.stdout.splitlines() if l.startswith(MARK)]
    if p.returncode != 0 or not lines:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-8:])
        sys.exit(f"lm_vs_peers: {what} failed (exit {p.returncode}):\n{tail}")
    return json.loads(lines[-1])


def ours(a, shape, threads):
    cmd = [a.nmformer, "bench", "model", "--shape", shape, "--pattern", a.pattern, "--threads",
           str(threads), "--batch", "1", "--tokens", str(a.tokens), "--new-tokens", str(a.new_tokens),
           "--reps", str(a.reps), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=mvp.thread_env(threads))
    if p.returncode:
        sys.exit(f"lm_vs_peers: {' '.join(cmd)} failed: {p.stderr.strip()}")
    return [dict(engine="nmformer", shape=shape, pattern=r["candidate"], threads=threads,
                 prefill_ms=r["prefill_ms"], decode_ms=r.get("decode_ms_per_token"),
                 weight_mb=r["weight_mb"]) for r in json.loads(p.stdout)]


def torch_row(a, shape, threads, env, engines):
    res = run_child(["--child", "torch", "--shape", shape, "--threads", str(threads), "--tokens",
                     str(a.tokens), "--new-tokens", str(a.new_tokens), "--reps", str(a.reps)],
                    mvp.thread_env(threads, env), f"torch {shape} ({threads} threads)")
    engines["torch"] = res["engine"]
    return [dict(engine="torch", shape=shape, pattern="dense", threads=threads,
                 prefill_ms=res["prefill_ms"], decode_ms=res["decode_ms"], weight_mb=None)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmformer", default=os.path.join(ROOT, "build", "nmformer"))
    ap.add_argument("--shapes", default="bert-base,gpt2")
    ap.add_argument("--pattern", default="dense,2:8,1:8")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--parity-tol", type=float, default=1e-4,
                    help="largest |ours - torch| relative to the largest |logit| (default 1e-4)")
    ap.add_argument("--no-parity", action="store_true", help="skip the logits check")
    ap.add_argument("--openblas-core", default="auto", help="auto, keep, or an OPENBLAS_CORETYPE for torch")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", choices=("torch", "parity"), help=argparse.SUPPRESS)
    ap.add_argument("--shape", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        a.threads = int(a.threads)
        {"torch": child_torch, "parity": child_parity}[a.child](a)
        return
    shapes = [s for s in a.shapes.split(",") if s]
    for s in shapes:
        if s not in SHAPES:
            ap.error(f"--shapes: {s!r} is not one of {', '.join(SHAPES)}")
    threads = [int(t) for t in a.threads.split(",") if t]
    if a.tokens < 1 or a.new_tokens < 0 or a.reps < 1 or a.rounds < 1 or not threads or min(threads) < 1:
        ap.error("--tokens, --reps, --rounds, --threads must be >= 1 (--new-tokens >= 0)")
    if not os.access(a.nmformer, os.X_OK):
        ap.error(f"--nmformer: {a.nmformer} is not an executable (make build)")

    cpu = mvp.cpu_info()
    header = [f"cpu: {cpu['model_name']} (family {cpu['family']} model {cpu['model']}, {cpu['cpus']} "
              f"cpus, {' '.join(cpu['isa'])})"]
    version = subprocess.run([a.nmformer, "--version"], capture_output=True, text=True).stdout.strip()
    header.append(f"ours: {version}")
    probe = run_child_probe(a)
    env = {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    forced = mvp.openblas_override(a.openblas_core, probe, cpu["flags"])
    if forced:
        env["OPENBLAS_CORETYPE"] = forced
        header.append(f"torch: OPENBLAS_CORETYPE={forced} (OpenBLAS picked a generic core here)")
    parity = {}
    if not a.no_parity:
        with tempfile.TemporaryDirectory(prefix="lm_vs_peers.") as tmp:
            for s in shapes:
                d = run_child(["--child", "parity", "--shape", s, "--dir", tmp, "--tokens", str(a.tokens),
                               "--threads", str(threads[0]), "--nmformer", a.nmformer],
                              mvp.thread_env(threads[0], env), f"parity check of {s}")
                rel = d["max_abs_diff"] / d["max_abs_ref"]
                parity[s] = dict(d, relative=rel)
                header.append(f"parity {s}: nmformer run vs PyTorch, {d['what']} {d['shape']}, max |diff| "
                              f"{d['max_abs_diff']:.3e} = {rel:.2e} of the largest ({d['max_abs_ref']:.3f})")
                if not rel <= a.parity_tol:
                    sys.exit(f"lm_vs_peers: {s}: our output differs from PyTorch's by {rel:.2e} of the "
                             f"largest value (> --parity-tol {a.parity_tol})")
    best, engines = {}, {}
    load_before = os.getloadavg()[0]
    for rnd in range(a.rounds):
        for t in threads:
            for s in shapes:
                order = [0, 1] if rnd % 2 == 0 else [1, 0]
                for k in order:
                    rows = ours(a, s, t) if k == 0 else torch_row(a, s, t, env, engines)
                    for r in rows:
                        key = (r["engine"], r["shape"], r["pattern"], r["threads"])
                        old = best.get(key)
                        if old is None:
                            best[key] = r
                        else:  # each column keeps its best median
                            old["prefill_ms"] = min(old["prefill_ms"], r["prefill_ms"])
                            if r["decode_ms"] is not None:
                                old["decode_ms"] = min(old["decode_ms"], r["decode_ms"])
    header.append(f"peer torch: {engines.get('torch', '?')}")
    header.append(f"run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
                  f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; T = {a.tokens}, "
                  f"G = {a.new_tokens}, batch 1, median of {a.reps} (best of {a.rounds} rounds)")
    rows = list(best.values())
    for r in rows:
        base = best.get(("torch", r["shape"], "dense", r["threads"]))
        r["prefill_tokens_per_s"] = 1e3 * a.tokens / r["prefill_ms"]
        r["decode_tokens_per_s"] = 1e3 / r["decode_ms"] if r["decode_ms"] else None
        r["prefill_vs_torch"] = base["prefill_ms"] / r["prefill_ms"] if base else None
        r["decode_vs_torch"] = (base["decode_ms"] / r["decode_ms"]
                                if base and base["decode_ms"] and r["decode_ms"] else None)
    order = {p: i for i, p in enumerate(["dense"] + a.pattern.split(","))}
    rows.sort(key=lambda r: (r["shape"], r["threads"], r["engine"] == "nmformer", order.get(r["pattern"], 99)))
    if a.json:
        print(json.dumps({"header": header, "parity": parity, "rows": rows}, indent=2))
        return
    for line in header:
        print(f"# {line}")
    print(f"{'engine':<9} {'model':<18} {'thr':>3} {'prefill_ms':>10} {'prefill/s':>9} {'decode_ms':>9} "
          f"{'decode/s':>8} {'vs torch (prefill, decode)':>27}")
    fmt = lambda v, f: (f % v) if v is not None else "-"  # noqa: E731
    for r in rows:
        print(f"{r['engine']:<9} {r['shape'] + '/' + r['pattern']:<18} {r['threads']:>3} "
              f"{r['prefill_ms']:>10.2f} {r['prefill_tokens_per_s']:>9.1f} {fmt(r['decode_ms'], '%.2f'):>9} "
              f"{fmt(r['decode_tokens_per_s'], '%.1f'):>8} "
              f"{fmt(r['prefill_vs_torch'], '%.2fx'):>13} {fmt(r['decode_vs_torch'], '%.2fx'):>13}")


def run_child_probe(a):
    """openblas_get_corename() of torch's OpenBLAS (for the core override)."""
    code = ("import torch, sys; sys.path.insert(0, %r); import model_vs_peers as m; "
            "torch.ones(64, 64) @ torch.ones(64, 64); print(m.openblas_core_of_process() or '')" % HERE)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=mvp.thread_env(1))
    return p.stdout.strip() or None if p.returncode == 0 else None


if __name__ == "__main__":
    main()
