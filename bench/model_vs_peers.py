#!/usr/bin/python3
"""Ours against the dense peers, in the same run: `nmformer bench model --shape S` (our dense and
every N:M pattern) and each dense peer on the same DeiT shape, thread counts and batch sizes, then
one table with ms/image, images/s and each row's speed-up over the FASTEST dense peer at the same
(threads, batch) (that row is marked "*").

  /usr/bin/python3 bench/model_vs_peers.py --nmformer build/nmformer --shape deit-small \\
      --pattern dense,2:4,2:8,1:8 --threads 1,2 --batch 1,32 --reps 5 [--rounds 2] [--json] \\
      [--precision f32,int8] [--peers torch,torch-onednn,ort,openvino,ort-int8,openvino-int8]

Peers (each in its own interpreter, one per thread count, so thread settings precede the load):
  torch         PyTorch eager from Debian (fp32 linears in OpenBLAS), the timm-style ViT of
                bench/pytorch_vit.py (tests/ref/vit_ref.py), random weights, inference_mode
  torch-onednn  the same model after torch.utils.mkldnn.to_mkldnn (linears and the patch
                convolution in oneDNN; torch 1.13's MkldnnLinear reorders its weight on every
                call, as ONEDNN_VERBOSE shows, which costs most at batch 1); whichever of the
                two torch rows is faster counts
  ort           ONNX Runtime, CPU execution provider, on an ONNX export of the same model
  openvino      OpenVINO CPU plugin on the same ONNX file, f32 inference precision forced (it
                would otherwise pick bf16 on CPUs that have it), latency hint, one stream
  ort-int8      ONNX Runtime on the same ONNX file quantized by its own quantize_dynamic (weights
                s8 per output channel, activations u8 per tensor at run time: MatMulInteger,
                VNNI kernels where the CPU has them): ORT's int8 path
  openvino-int8 OpenVINO on the same ONNX file quantized by NNCF post-training quantization
                (nncf.quantize, TRANSFORMER preset, 8 random calibration images; weights and
                activations int8: the brgemm *_i8 kernels): OpenVINO's int8 path
  none          no peer: ours only (needs neither torch nor ONNX Runtime)
ONNX Runtime, OpenVINO and NNCF come from the optional venv made by bench/setup_peers.sh
(.venv-peers/, it also sees Debian's torch); the peers run under its python when it exists
(--python overrides). A peer that is not installed is skipped with a one-line note.

Precisions: --precision f32,int8 runs ours at each (`bench model --precision P`: int8 block
linears, attention and patch embedding; N:M or dense) and the peers of that precision (f32: torch,
torch-onednn, ort, openvino; int8: ort-int8, openvino-int8). Each row's speed-up is over the
fastest peer of ITS precision at the same threads and batch (marked "*"); a precision without a
peer (bf16: none here) is compared with the fastest f32 peer (shown as "(f32)"). The JSON rows
also carry speedup_vs_fastest_f32_peer.

Threads: every engine gets the same count. torch: torch.set_num_threads(t), one inter-op thread,
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS = t (Debian's OpenBLAS pool ignores set_num_threads) and
OMP_WAIT_POLICY=PASSIVE (Debian's torch runs OpenBLAS's pthread pool beside its OpenMP pool, and
spinning OpenMP workers starve it: DeiT-small, batch 1, 2 threads took 1.0-2.1 s with libgomp's
default spinning against 0.2-0.3 s passive on a busy 2-core Zen 3; an OMP_WAIT_POLICY set by you wins);
ort: intra_op_num_threads = t, inter_op_num_threads = 1, sequential execution; openvino:
INFERENCE_NUM_THREADS = t, NUM_STREAMS = 1; ours: --threads t, OMP_NUM_THREADS = t.

Timing: each (engine, threads) process times every batch size: one warm-up forward, then --reps
timed forwards, median reported. With --rounds R the whole grid is measured R times, the engines
alternating (their order reversed every other round), and each row keeps its best median: that
takes the edge off a noisy shared machine and treats every engine the same.

Parity: our engine runs random weights from its own --shape preset (its own RNG), so its outputs
cannot be compared with the peers'. What is checked, before any timing, is that the peers run the
same function: the ONNX export is run by ONNX Runtime (and OpenVINO) on the input PyTorch gets, and
the largest absolute difference of the logits is printed; above --parity-tol times the largest
logit the run stops (the int8 peers: --parity-tol-int8, quantization error being expected).

OpenBLAS: with --openblas-core auto (default) the peers keep the core OpenBLAS picks unless it is
a generic one that the CPU's features beat (old OpenBLAS falls back to "Prescott" on CPUs it does
not know by model number); then the peers get OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell
(AVX2), so the baseline is the best dense peer, not a crippled one. An OPENBLAS_CORETYPE already in
the environment is kept. Ours always runs with the environment as given (header shows its core).

Header lines: CPU model (/proc/cpuinfo), the OpenBLAS core of ours and of torch
(openblas_get_corename), oneDNN's ISA and inner-product implementation (ONEDNN_VERBOSE lines),
torch's CPU capability, ORT's version and execution providers, OpenVINO's fully-connected
primitives, and `nmformer --version`.
"""
import argparse
import ctypes
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import pytorch_vit  # noqa: E402  (stdlib only at import; torch loads inside its functions)

PEERS = ("torch", "torch-onednn", "ort", "openvino", "ort-int8", "openvino-int8")
PEER_MODULES = {"torch": ("torch",), "torch-onednn": ("torch",), "ort": ("onnxruntime",),
                "openvino": ("openvino",), "ort-int8": ("onnxruntime",),
                "openvino-int8": ("openvino", "nncf")}
PEER_PRECISION = {"ort-int8": "int8", "openvino-int8": "int8"}  # the others: f32
PRECISIONS = ("f32", "bf16", "int8")
CALIBRATION_IMAGES = 8  # NNCF's post-training quantization of the openvino-int8 peer
ROWS_MARK = "@@model_vs_peers "  # a child's result line; oneDNN verbose lines share its stdout


# ------------------------------------------------------------------------------------------------
# Children: one engine (or the probe, or the ONNX export) in its own interpreter.

def child_result(obj):
    print(ROWS_MARK + json.dumps(obj), flush=True)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def openblas_core_of_process():
    """openblas_get_corename() of the OpenBLAS this process has loaded (torch's), or None."""
    with open("/proc/self/maps") as f:
        libs = sorted({l.split()[-1] for l in f if re.search(r"lib(open)?blas[^/]*\.so", l)})
    for lib in libs:
        core = openblas_core(lib)
        if core:
            return f"{core} ({lib})"
    return None


def openblas_core(lib):
    try:
        blas = ctypes.CDLL(lib)
        blas.openblas_get_corename.restype = ctypes.c_char_p
        return blas.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return None


def child_torch(a, onednn):
    import torch

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    model, _ = pytorch_vit.build_model(a.shape)
    if onednn:
        from torch.utils import mkldnn
        model = mkldnn.to_mkldnn(model)
    rows = []
    for b in a.batches:
        x = torch.from_numpy(input_batch(b))
        with torch.inference_mode():
            rows.append(row_of(pytorch_vit.median_seconds(lambda: model(x), a.reps), b))
    core = (openblas_core_of_process() or "?").split(" (")[0]
    engine = (f"torch {torch.__version__} " + ("+ oneDNN" if onednn else "eager") +
              f", OpenBLAS core {core}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '-')}")
    child_result({"rows": rows, "info": {"engine": engine}, "peak_rss_mb": peak_rss_mb()})


def child_ort(a, int8):
    import onnxruntime as ort

    sess = ort_session(a.onnx, a.threads)
    name = sess.get_inputs()[0].name
    rows = []
    for b in a.batches:
        x = input_batch(b)
        rows.append(row_of(pytorch_vit.median_seconds(lambda: sess.run(None, {name: x}), a.reps), b))
    what = ("int8 by quantize_dynamic: s8 weights per channel, u8 activations, MatMulInteger"
            if int8 else "f32")
    info = {"engine": f"onnxruntime {ort.__version__} ({', '.join(sess.get_providers())}; {what}; "
                      "MLAS kernels, ISA chosen by cpuid, which ORT does not report)"}
    child_result({"rows": rows, "info": info, "peak_rss_mb": peak_rss_mb()})


def ort_session(path, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def openvino_compiled(path, threads, batch):
    """The ONNX file compiled for the CPU at a fixed batch (static shapes are OpenVINO's fast path)."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(path)
    model.reshape({model.inputs[0].get_any_name(): [batch, *pytorch_vit.IMAGE]})
    config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "f32"}
    return core, core.compile_model(model, "CPU", config)


def openvino_primitives(compiled):
    """primitiveType of the runtime graph's products, e.g. {'FullyConnected': 'brgemm_avx2_FP32'}."""
    seen = {}
    for op in compiled.get_runtime_model().get_ops():
        rt = op.get_rt_info()
        layer = str(rt["layerType"].astype(str)) if "layerType" in rt else ""
        if layer in ("FullyConnected", "MatMul", "Convolution") and "primitiveType" in rt:
            seen.setdefault(layer, set()).add(str(rt["primitiveType"].astype(str)))
    return ", ".join(f"{k}: {'/'.join(sorted(v))}" for k, v in sorted(seen.items()))


def child_openvino(a, int8):
    import openvino as ov

    rows, prims, device = [], "", ""
    for b in a.batches:
        core, compiled = openvino_compiled(a.onnx, a.threads, b)
        request = compiled.create_infer_request()
        x = input_batch(b)
        rows.append(row_of(pytorch_vit.median_seconds(lambda: request.infer({0: x}), a.reps), b))
        prims = prims or openvino_primitives(compiled)
        device = device or core.get_property("CPU", "FULL_DEVICE_NAME")
    what = f"int8 by NNCF {nncf_version()} post-training quantization; " if int8 else ""
    info = {"engine": f"openvino {ov.__version__} (CPU plugin, {device}; {what}{prims})"}
    child_result({"rows": rows, "info": info, "peak_rss_mb": peak_rss_mb()})


def nncf_version():
    from importlib import metadata

    try:
        return metadata.version("nncf")
    except metadata.PackageNotFoundError:
        return "?"


def block_torch():
    """NNCF 3.x loads its PyTorch backend whenever torch is importable, and Debian's torch 1.13 is
    older than it supports (AttributeError at import): the NNCF child runs without torch."""
    sys.modules["torch"] = None


def parity_of(y, ref):
    import numpy as np

    return {"max_abs_diff": float(np.abs(np.asarray(y) - ref).max()),
            "max_abs_ref": float(np.abs(ref).max())}


def child_quantize_ort(a):
    """ONNX Runtime's dynamic int8 quantization of the exported model (a.onnx -> a.out), and its
    logits against PyTorch's f32 ones on the export's input (a.ref)."""
    import numpy as np
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(a.onnx, a.out, weight_type=QuantType.QInt8, per_channel=True)
    ref = np.load(a.ref)
    sess = ort_session(a.out, a.threads)
    y = sess.run(None, {sess.get_inputs()[0].name: ref["x"]})[0]
    child_result({"parity": parity_of(y, ref["logits"])})


def child_quantize_openvino(a):
    """NNCF's post-training int8 quantization of the exported model for OpenVINO (a.onnx -> the
    IR a.out), calibrated on random images (the weights are random too), and its logits against
    PyTorch's f32 ones on the export's input (a.ref)."""
    block_torch()
    import nncf
    import numpy as np
    import openvino as ov

    model = ov.Core().read_model(a.onnx)
    rng = np.random.default_rng(7)  # not the timed input's seed
    calibration = [rng.standard_normal((1, *pytorch_vit.IMAGE), dtype=np.float32)
                   for _ in range(CALIBRATION_IMAGES)]
    quantized = nncf.quantize(model, nncf.Dataset(calibration), subset_size=len(calibration),
                              model_type=nncf.ModelType.TRANSFORMER)
    ov.save_model(quantized, a.out)
    ref = np.load(a.ref)
    _, compiled = openvino_compiled(a.out, a.threads, ref["x"].shape[0])
    y = compiled.create_infer_request().infer({0: ref["x"]})[0]
    child_result({"parity": parity_of(y, ref["logits"])})


def input_batch(b):
    import numpy as np

    return np.random.default_rng(1).standard_normal((b, *pytorch_vit.IMAGE), dtype=np.float32)


def row_of(seconds, batch):
    return {"batch": batch, "latency_ms": 1e3 * seconds}


def child_probe(_a):
    """What this interpreter can run, and which kernels torch's libraries pick here. Runs with
    ONEDNN_VERBOSE=1 so that one oneDNN linear prints the ISA and the implementation it chose."""
    import importlib.util

    info = {"modules": {}}
    for module in sorted({m for ms in PEER_MODULES.values() for m in ms}):
        try:
            if module == "nncf":  # found, not imported: it cannot load beside torch (block_torch)
                if importlib.util.find_spec("nncf") is None:
                    raise ImportError("No module named 'nncf'")
                info["modules"][module] = nncf_version()
                continue
            m = __import__(module)
            info["modules"][module] = getattr(m, "__version__", "?")
        except Exception as e:  # not installed, or broken: the peer is skipped with this note
            info["modules"][module] = None
            info.setdefault("why", {})[module] = f"{type(e).__name__}: {e}".splitlines()[0][:120]
    if info["modules"].get("torch"):
        import torch
        from torch.utils import mkldnn

        cap = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
        if cap:
            info["torch_cpu_capability"] = cap()
        else:
            m = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
            info["torch_cpu_capability"] = (m.group(1) + " (torch.__config__)") if m else "?"
        torch.set_num_threads(1)
        lin = torch.nn.Sequential(torch.nn.Linear(384, 1536)).eval()  # DeiT-small's fc1
        x = torch.ones(197, 384)
        with torch.inference_mode():
            lin(x)  # an OpenBLAS sgemm: OpenBLAS is loaded from here on
            mkldnn.to_mkldnn(lin)(x)  # oneDNN prints its verbose lines, implementation included
        info["torch_openblas"] = openblas_core_of_process()
    child_result(info)


def child_export(a):
    """ONNX export of the PyTorch model, then the parity check of every ONNX peer against PyTorch."""
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    model, _ = pytorch_vit.build_model(a.shape)
    x = input_batch(2)
    torch.onnx.export(model, torch.from_numpy(x), a.onnx, input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17)
    try:
        import onnx
        onnx.checker.check_model(a.onnx)
    except ImportError:
        pass  # onnx is only the checker; the export itself is torch's
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    np.savez(a.ref, x=x, logits=ref)  # for the int8 peers' quantization children
    parity = {}
    for peer in a.peer_list:
        if peer == "ort":
            sess = ort_session(a.onnx, a.threads)
            y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        elif peer == "openvino":
            _, compiled = openvino_compiled(a.onnx, a.threads, 2)
            y = compiled.create_infer_request().infer({0: x})[0]
        else:
            continue
        parity[peer] = parity_of(y, ref)
    child_result({"parity": parity})


# ------------------------------------------------------------------------------------------------
# Parent: only the standard library, so that `--peers none` runs without torch.

def run_child(python, args, env, what):
    p = subprocess.run([python, os.path.abspath(__file__), *args], capture_output=True, text=True,
                       env=env)
    result = [l[len(ROWS_MARK):] for l in p.stdout.splitlines() if l.startswith(ROWS_MARK)]
    if p.returncode != 0 or not result:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-8:])
        sys.exit(f"model_vs_peers: {what} failed (exit {p.returncode}):\n{tail}")
    return json.loads(result[-1]), p.stdout


def thread_env(threads, extra=None):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env.update(extra or {})
    return env


def cpu_info():
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            k = k.strip()
            if k in ("model name", "cpu family", "model", "flags") and k not in fields:
                fields[k] = v.strip()
    flags = set(fields.get("flags", "").split())
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                       "amx_tile") if f in flags]
    return {"model_name": fields.get("model name", "?"), "family": fields.get("cpu family", "?"),
            "model": fields.get("model", "?"), "isa": isa, "cpus": os.cpu_count(), "flags": flags}


GOOD_CORES = {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"}


def openblas_override(mode, detected, flags):
    """OPENBLAS_CORETYPE for the peers: None to keep OpenBLAS's own pick (see --help)."""
    if mode == "keep" or not detected or "OPENBLAS_CORETYPE" in os.environ:
        return None
    if mode != "auto":
        return mode
    best = ("SkylakeX" if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags
            else "Haswell" if {"avx2", "fma"} <= flags else None)
    core = detected.split()[0].lower()
    if best is None or core in GOOD_CORES:
        return None
    return best


def linked_library(binary, pattern):
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    except OSError:
        return None
    m = re.search(r"=>\s*(\S*" + pattern + r"\S*)", out)
    return m.group(1) if m else None


def onednn_lines(verbose_stdout):
    isa = re.search(r"(?:onednn|dnnl)_verbose,info,cpu,isa:([^\n]+)", verbose_stdout)
    version = re.search(r"(?:onednn|dnnl)_verbose,info,(oneDNN v[\d.]+)", verbose_stdout)
    impl = re.search(r"(?:onednn|dnnl)_verbose,exec,cpu,inner_product,([^,]+)", verbose_stdout)
    if not isa:
        return None
    return (f"{version.group(1) if version else 'oneDNN'}, isa {isa.group(1).strip()}, "
            f"inner product {impl.group(1) if impl else '?'} (197x384 by 384x1536)")


def ours_rows(a, threads):
    rows = []
    for precision in a.precisions:
        cmd = [a.nmformer, "bench", "model", "--shape", a.shape, "--pattern", a.pattern, "--threads",
               str(threads), "--batch", a.batch, "--reps", str(a.reps), "--json"]
        if precision != "f32":  # f32 is the shapes' own precision (and keeps their row names)
            cmd += ["--precision", precision]
        p = subprocess.run(cmd, capture_output=True, text=True, env=thread_env(threads))
        if p.returncode != 0:
            sys.exit(f"model_vs_peers: {' '.join(cmd)} failed (exit {p.returncode}): {p.stderr.strip()}")
        rows += [dict(engine="nmformer", model=r["model"], pattern=r["candidate"],
                      precision=precision, threads=r["threads"], batch=r["batch"],
                      latency_ms=r["latency_ms"], peak_rss_mb=r["peak_rss_mb"])
                 for r in json.loads(p.stdout)]
    return rows


def peer_rows(a, peer, threads, ctx):
    args = ["--child", peer, "--shape", a.shape, "--threads", str(threads), "--batch", a.batch,
            "--reps", str(a.reps), "--onnx", ctx["models"].get(peer, ctx["onnx"]) or ""]
    env = dict(ctx["peer_env"])
    if peer.startswith("torch"):
        env.setdefault("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    res, _ = run_child(ctx["python"], args, thread_env(threads, env),
                       f"{peer} ({threads} threads)")
    ctx["engines"][peer] = res["info"]["engine"]
    precision = PEER_PRECISION.get(peer, "f32")
    suffix = "" if precision == "f32" else "@" + precision
    return [dict(engine=peer, model=f"{a.shape}/dense{suffix}", pattern="dense" + suffix,
                 precision=precision, threads=threads, batch=r["batch"],
                 latency_ms=r["latency_ms"], peak_rss_mb=res["peak_rss_mb"])
            for r in res["rows"]]


def default_python():
    venv = os.path.join(ROOT, ".venv-peers", "bin", "python")
    return venv if os.access(venv, os.X_OK) else sys.executable


def parse_list(ap, text, what, conv=int):
    try:
        vals = [conv(v) for v in text.split(",") if v != ""]
    except ValueError:
        ap.error(f"--{what}: not a comma list: {text!r}")
    if not vals or (conv is int and min(vals) < 1):
        ap.error(f"--{what} must list values >= 1")
    return vals


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmformer", default=os.path.join(ROOT, "build", "nmformer"))
    ap.add_argument("--shape", default="deit-small", choices=sorted(pytorch_vit.SHAPES))
    ap.add_argument("--pattern", default="dense,2:4,2:8,1:8", help="ours: dense and/or N:M patterns")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--reps", type=int, default=5, help="timed forwards per setting (median)")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds, best median kept")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma list of {', '.join(PEERS)}, or none")
    ap.add_argument("--python", default=None, help="interpreter for the peers (default: "
                    ".venv-peers/bin/python if bench/setup_peers.sh made it, else this one)")
    ap.add_argument("--openblas-core", default="auto", help="auto, keep, or an OPENBLAS_CORETYPE "
                    "for the peers (see above)")
    ap.add_argument("--precision", default="f32", help="ours and the peers at each of f32, bf16, "
                    "int8 (comma list; see above)")
    ap.add_argument("--parity-tol", type=float, default=1e-4,
                    help="largest ONNX-peer vs torch logit difference, relative to the largest logit")
    ap.add_argument("--parity-tol-int8", type=float, default=0.05,
                    help="the same for the int8 peers against torch's f32 logits")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", choices=PEERS + ("probe", "export", "quantize-ort",
                                                 "quantize-openvino"), help=argparse.SUPPRESS)
    ap.add_argument("--onnx", default="", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    ap.add_argument("--ref", default="", help=argparse.SUPPRESS)
    ap.add_argument("--peer-list", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    threads = parse_list(ap, a.threads, "threads")
    a.batches = parse_list(ap, a.batch, "batch")
    if a.reps < 1 or a.rounds < 1:
        ap.error("--reps and --rounds must be >= 1")
    a.precisions = parse_list(ap, a.precision, "precision", str)
    for p in a.precisions:
        if p not in PRECISIONS:
            ap.error(f"--precision: unknown precision {p!r} ({', '.join(PRECISIONS)})")
    if a.child:
        a.threads = threads[0]
        a.peer_list = a.peer_list.split(",")
        {"torch": lambda: child_torch(a, False), "torch-onednn": lambda: child_torch(a, True),
         "ort": lambda: child_ort(a, False), "openvino": lambda: child_openvino(a, False),
         "ort-int8": lambda: child_ort(a, True), "openvino-int8": lambda: child_openvino(a, True),
         "probe": lambda: child_probe(a), "export": lambda: child_export(a),
         "quantize-ort": lambda: child_quantize_ort(a),
         "quantize-openvino": lambda: child_quantize_openvino(a)}[a.child]()
        return
    peers = [] if a.peers == "none" else parse_list(ap, a.peers, "peers", str)
    for p in peers:
        if p not in PEERS:
            ap.error(f"--peers: unknown peer {p!r} ({', '.join(PEERS)} or none)")
    # a peer runs when its precision is asked for (the default list holds every peer); bf16 has
    # no peer here and is compared with the f32 ones
    wanted = {"f32" if p == "bf16" else p for p in a.precisions}
    peers = [p for p in peers if PEER_PRECISION.get(p, "f32") in wanted]
    if not os.access(a.nmformer, os.X_OK):
        ap.error(f"--nmformer: {a.nmformer} is not an executable (build it: make build)")

    cpu = cpu_info()
    notes, header = [], []
    load_before = os.getloadavg()[0]
    header.append(f"cpu: {cpu['model_name']} (family {cpu['family']} model {cpu['model']}, "
                  f"{cpu['cpus']} cpus, {' '.join(cpu['isa'])})")
    version = subprocess.run([a.nmformer, "--version"], capture_output=True, text=True).stdout.strip()
    ours_blas = linked_library(a.nmformer, r"lib(?:open)?blas")
    header.append(f"ours: {version}; OpenBLAS {openblas_core(ours_blas) if ours_blas else '?'} "
                  f"({ours_blas or 'not linked'})" + (f", OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}"
                                                      if "OPENBLAS_CORETYPE" in os.environ else ""))
    ctx = {"python": a.python or default_python(), "peer_env": {}, "onnx": None, "engines": {},
           "models": {}}
    parity = {}
    tmp = tempfile.TemporaryDirectory(prefix="model_vs_peers.")
    if peers:
        probe, verbose = run_child(ctx["python"], ["--child", "probe"],
                                   thread_env(1, {"ONEDNN_VERBOSE": "1", "DNNL_VERBOSE": "1"}),
                                   f"probe of {ctx['python']}")
        for p in list(peers):
            for module in PEER_MODULES[p]:
                if not probe["modules"].get(module):
                    why = probe.get("why", {}).get(module, "")
                    notes.append(f"skipped {p}: {module} not importable by {ctx['python']} ({why}); "
                                 f"bench/setup_peers.sh installs the optional peers")
                    peers.remove(p)
                    break
        if any(p in ("torch", "torch-onednn") for p in peers) or probe["modules"].get("torch"):
            header.append(f"torch: {probe['modules']['torch']}, cpu capability "
                          f"{probe.get('torch_cpu_capability', '?')}; OpenBLAS {probe.get('torch_openblas')}")
            header.append(f"oneDNN (torch): {onednn_lines(verbose) or 'no verbose output'}")
            forced = openblas_override(a.openblas_core, probe.get("torch_openblas"), cpu["flags"])
            if forced:
                ctx["peer_env"]["OPENBLAS_CORETYPE"] = forced
                why = ("OpenBLAS picked a generic core here" if a.openblas_core == "auto"
                       else "--openblas-core")
                header.append(f"peers: OPENBLAS_CORETYPE={forced} ({why})")
        onnx_peers = [p for p in peers if not p.startswith("torch")]
        if onnx_peers:
            if not probe["modules"].get("torch"):
                notes.append(f"skipped {', '.join(onnx_peers)}: the ONNX export needs torch")
                peers = [p for p in peers if p not in onnx_peers]
            else:
                ctx["onnx"] = os.path.join(tmp.name, f"{a.shape}.onnx")
                ref = os.path.join(tmp.name, "reference.npz")
                res, _ = run_child(ctx["python"], ["--child", "export", "--shape", a.shape,
                                                   "--onnx", ctx["onnx"], "--ref", ref,
                                                   "--peer-list", ",".join(onnx_peers)],
                                   thread_env(1, ctx["peer_env"]), "ONNX export and parity check")
                parity = res["parity"]
                # the int8 peers' models: each runtime's own quantizer on the same ONNX file
                for p, out in (("ort-int8", f"{a.shape}.int8.onnx"),
                               ("openvino-int8", f"{a.shape}.int8.xml")):
                    if p in peers:
                        ctx["models"][p] = os.path.join(tmp.name, out)
                        res, _ = run_child(ctx["python"], ["--child", "quantize-" + p[:-5],
                                                           "--shape", a.shape, "--onnx", ctx["onnx"],
                                                           "--out", ctx["models"][p], "--ref", ref],
                                           thread_env(1), f"{p}: quantization")
                        parity[p] = res["parity"]
                for p, d in parity.items():
                    int8 = PEER_PRECISION.get(p) == "int8"
                    tol = a.parity_tol_int8 if int8 else a.parity_tol
                    header.append(f"parity: {p} vs torch (f32) on the same input, max |diff| "
                                  f"{d['max_abs_diff']:.2e} (max |logit| {d['max_abs_ref']:.2f})")
                    if not d["max_abs_diff"] <= tol * d["max_abs_ref"]:
                        sys.exit(f"model_vs_peers: {p} does not compute PyTorch's model: max |diff| "
                                 f"{d['max_abs_diff']:.3g} > {tol} x max |logit| (--parity-tol"
                                 f"{'-int8' if int8 else ''})")
    else:
        notes.append("no peers (--peers none): ours only, no speed-ups")

    best = {}
    engines = ["ours"] + peers
    for rnd in range(a.rounds):
        for t in threads:
            for engine in (engines if rnd % 2 == 0 else engines[::-1]):
                rows = ours_rows(a, t) if engine == "ours" else peer_rows(a, engine, t, ctx)
                for r in rows:
                    key = (r["engine"], r["model"], r["threads"], r["batch"])
                    if key not in best or r["latency_ms"] < best[key]["latency_ms"]:
                        best[key] = r
    for p in peers:
        header.append(f"peer {p}: {ctx['engines'].get(p, '?')}")
    header.append(f"run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
                  f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after (other jobs skew the times)")
    tmp.cleanup()

    rows = list(best.values())
    base = {}  # the fastest peer of each (threads, batch, precision)
    for r in rows:
        r["ms_per_image"] = r["latency_ms"] / r["batch"]
        r["images_per_s"] = 1e3 * r["batch"] / r["latency_ms"]
        if r["engine"] != "nmformer":
            k = (r["threads"], r["batch"], r["precision"])
            if k not in base or r["latency_ms"] < base[k]["latency_ms"]:
                base[k] = r
    for r in rows:
        f32 = base.get((r["threads"], r["batch"], "f32"))
        b = base.get((r["threads"], r["batch"], r["precision"])) or f32
        r["baseline"] = b["engine"] if b else None
        r["baseline_precision"] = b["precision"] if b else None
        r["speedup_vs_fastest_peer"] = b["latency_ms"] / r["latency_ms"] if b else None
        r["speedup_vs_fastest_f32_peer"] = f32["latency_ms"] / r["latency_ms"] if f32 else None
    order = {p: i for i, p in enumerate(PRECISIONS)}
    rows.sort(key=lambda r: (r["threads"], r["batch"], order[r["precision"]],
                             r["engine"] == "nmformer",
                             r["latency_ms"] if r["engine"] != "nmformer" else 0, r["model"]))
    if a.json:
        print(json.dumps({"header": header, "notes": notes, "parity": parity, "rows": rows}, indent=2))
        return
    for line in header:
        print(f"# {line}")
    for line in notes:
        print(f"# note: {line}")
    print(f"{'engine':<13} {'model':<22} {'threads':>7} {'batch':>5} {'ms/image':>10} {'images/s':>9} "
          f"{'rss_mb':>7} {'vs fastest peer':>15}")
    for r in rows:
        sp = r["speedup_vs_fastest_peer"]
        mark = "*" if base.get((r["threads"], r["batch"], r["precision"])) is r else " "
        if sp and r["baseline_precision"] != r["precision"]:
            mark = " (f32)"  # no peer of the row's precision
        print(f"{r['engine']:<13} {r['model']:<22} {r['threads']:>7} {r['batch']:>5} "
              f"{r['ms_per_image']:>10.2f} {r['images_per_s']:>9.2f} {r['peak_rss_mb']:>7.0f} "
              f"{(('%.2fx' % sp) + mark) if sp else '-':>15}".rstrip())


if __name__ == "__main__":
    main()
