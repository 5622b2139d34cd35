#!/usr/bin/python3
"""Checks a Hugging Face model folder written by `nmformer convert ... OUT_DIR` against a fixture
of tests/fixtures/hf: the stand-in for "it loads in transformers" (transformers is not a Debian
package; tests/ref/hf_models.py mirrors its modeling_{bert,gpt2,llama}.py).

  /usr/bin/python3 tests/ref/check_hf_folder.py OUT_DIR FIXTURE_DIR WEIGHTS_DIR [OUT_DIR ...]

OUT_DIR is read as transformers would read it: config.json (model_type, architectures and the
family's own keys) and model.safetensors, or the shards model.safetensors.index.json maps each
tensor to (metadata "format": "pt", tensors by their HF names);
the family's forward of tests/ref/hf_models.py then runs on FIXTURE_DIR's inputs and must give
FIXTURE_DIR's outputs (logits, or last_hidden_state and pooler_output), |diff| <= 1e-5 *
max(1, |ref|max), and its greedy generation (decoders with a head). WEIGHTS_DIR (usually
FIXTURE_DIR; a fixture's dense twin pruned by `nmformer prune` holds the N:M fixture's weights) is
the folder whose tensors OUT_DIR must hold: same names, shapes, dtypes, values. Any number of
triples (torch is imported once); one line per folder with the largest difference.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_hf_models import read_folder  # noqa: E402
from hf_models import bert_forward, gpt2_forward, greedy_generate, llama_forward  # noqa: E402

HEADS = {"BertModel": None, "BertForSequenceClassification": "classifier",
         "GPT2Model": None, "GPT2LMHeadModel": "lm", "LlamaModel": None, "LlamaForCausalLM": "lm"}


def header(path):
    """The safetensors header of path: {name: {dtype, shape, ...}, "__metadata__": {...}}."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def dtypes(folder):
    """{tensor name: stored dtype} over a folder's safetensors files."""
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            out.update({k: v["dtype"] for k, v in header(os.path.join(folder, name)).items()
                        if k != "__metadata__"})
    return out


def check(out_dir, fixture, weights_dir):
    with open(os.path.join(out_dir, "config.json")) as f:
        cfg = json.load(f)
    arch = cfg["architectures"][0]
    assert arch in HEADS, f"{out_dir}: architectures {cfg['architectures']}"
    for name in sorted(os.listdir(out_dir)):  # model.safetensors, or every shard
        if name.endswith(".safetensors"):
            meta = header(os.path.join(out_dir, name)).get("__metadata__", {})
            assert meta.get("format") == "pt", f"{out_dir}/{name}: safetensors metadata {meta} (transformers wants format pt)"

    p, want = read_folder(out_dir), read_folder(weights_dir)
    assert set(p) == set(want), f"tensor names differ: {sorted(set(p) ^ set(want))}"
    assert dtypes(out_dir) == dtypes(weights_dir), "stored dtypes differ"
    for k in p:
        assert p[k].shape == want[k].shape and torch.equal(p[k], want[k]), f"{k} differs"

    load = lambda n: np.load(os.path.join(fixture, n + ".npy"))  # noqa: E731
    has = lambda n: os.path.exists(os.path.join(fixture, n + ".npy"))  # noqa: E731
    ids = torch.from_numpy(load("input_ids"))
    got, lm = {}, None
    with torch.no_grad():
        if cfg["model_type"] == "bert":
            pre = "bert." if "bert.embeddings.word_embeddings.weight" in p else ""
            tt = torch.from_numpy(load("token_type_ids")) if has("token_type_ids") else None
            mask = torch.from_numpy(load("attention_mask")) if has("attention_mask") else None
            h, pooled, logits = bert_forward(cfg, p, ids, tt, mask, prefix=pre)
            got = {"logits": logits} if HEADS[arch] else {"last_hidden_state": h, "pooler_output": pooled}
        elif cfg["model_type"] == "gpt2":
            pre = "transformer." if "transformer.wte.weight" in p else ""
            h, logits = gpt2_forward(cfg, p, ids, prefix=pre)
            got = {"logits": logits} if HEADS[arch] else {"last_hidden_state": h}
            lm = (lambda s: gpt2_forward(cfg, p, s, prefix=pre)[1]) if HEADS[arch] else None
        else:
            h, logits = llama_forward(cfg, p, ids)
            got = {"logits": logits}
            lm = lambda s: llama_forward(cfg, p, s)[1]  # noqa: E731
        worst = 0.0
        for name, value in got.items():
            ref = torch.from_numpy(load(name))
            err = float((value - ref).abs().max())
            tol = 1e-5 * max(1.0, float(ref.abs().max()))
            assert err <= tol, f"{name}: max |diff| {err:.3g} > {tol:.3g}"
            worst = max(worst, err)
        generated = ""
        if lm is not None and has("generate"):
            ref = load("generate")
            seq, _ = greedy_generate(lm, ids, ref.shape[1] - ids.shape[1])
            assert np.array_equal(seq.numpy(), ref), "greedy generation differs"
            generated = ", generation equal"
    print(f"{out_dir}: {arch}, {len(p)} tensors as in {os.path.basename(os.path.normpath(weights_dir))}, "
          f"{'/'.join(got)} within {worst:.1e} of {os.path.basename(os.path.normpath(fixture))}{generated}")


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit(__doc__)
    for i in range(0, len(args), 3):
        check(*args[i:i + 3])


if __name__ == "__main__":
    main()
