#!/usr/bin/python3
"""Writes the small ViT fixtures used by the I/O and CLI tests (run with /usr/bin/python3).

tests/fixtures/vit_tiny.safetensors          dense timm-named ViT (img 28, patch 7, 1 channel,
                                             dim 32, depth 2, heads 2, mlp_ratio 2, 10 classes),
                                             config in __metadata__["nmformer.config"]
tests/fixtures/vit_tiny_<N>-<M>.safetensors  the same model with every block linear
                                             (attn.qkv, attn.proj, mlp.fc1, mlp.fc2 weights)
                                             masked to N:M by PyTorch, for each pattern below
tests/fixtures/npy/*.npy                     small arrays written by NumPy itself (v1.0, v2.0,
                                             and dtypes / orders the reader must refuse)

The N:M mask is implemented here independently of the C code: per group of M consecutive
weights along the input dimension, keep the N largest |w|; ties go to the lower index (a stable
descending sort keeps equal magnitudes in index order). Block 1's linears are quantised to a few
levels so that ties (including +x vs -x and zeros) really occur. The safetensors files are
written by the tiny writer below, not by a library, so the C reader is checked against a second
implementation of the format.
"""
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures")
PATTERNS = [(2, 8), (1, 4), (2, 4), (4, 8), (1, 8), (1, 16), (3, 32)]
CONFIG = dict(arch="vit", img_size=28, patch=7, in_chans=1, dim=32, depth=2, heads=2,
              mlp_ratio=2.0, num_classes=10, mean=0.2860, std=0.3530)
LINEARS = ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")


def vit_state(cfg, gen):
    D, P, C = cfg["dim"], cfg["patch"], cfg["in_chans"]
    H = int(D * cfg["mlp_ratio"])
    T = (cfg["img_size"] // P) ** 2 + 1

    def rnd(*shape, scale=0.2):
        return (torch.rand(*shape, generator=gen) * 2 - 1) * scale

    sd = {}
    sd["cls_token"] = rnd(1, 1, D)
    sd["pos_embed"] = rnd(1, T, D)
    sd["patch_embed.proj.weight"] = rnd(D, C, P, P)
    sd["patch_embed.proj.bias"] = rnd(D)
    for b in range(cfg["depth"]):
        p = f"blocks.{b}."
        sd[p + "norm1.weight"] = 1 + rnd(D, scale=0.1)
        sd[p + "norm1.bias"] = rnd(D, scale=0.1)
        sd[p + "attn.qkv.weight"] = rnd(3 * D, D)
        sd[p + "attn.qkv.bias"] = rnd(3 * D)
        sd[p + "attn.proj.weight"] = rnd(D, D)
        sd[p + "attn.proj.bias"] = rnd(D)
        sd[p + "norm2.weight"] = 1 + rnd(D, scale=0.1)
        sd[p + "norm2.bias"] = rnd(D, scale=0.1)
        sd[p + "mlp.fc1.weight"] = rnd(H, D)
        sd[p + "mlp.fc1.bias"] = rnd(H)
        sd[p + "mlp.fc2.weight"] = rnd(D, H)
        sd[p + "mlp.fc2.bias"] = rnd(D)
    sd["norm.weight"] = 1 + rnd(D, scale=0.1)
    sd["norm.bias"] = rnd(D, scale=0.1)
    sd["head.weight"] = rnd(cfg["num_classes"], D)
    sd["head.bias"] = rnd(cfg["num_classes"])
    # Ties: block 1's linears take only the values k/16, k in -3..3.
    for name in LINEARS:
        w = sd[f"blocks.1.{name}.weight"]
        sd[f"blocks.1.{name}.weight"] = torch.round(w * 15) / 16
    return sd


def nm_mask(w, n, m):
    """Boolean mask keeping the n largest |w| of every m consecutive inputs; ties to lower index."""
    out_f, in_f = w.shape
    assert in_f % m == 0
    g = w.abs().reshape(out_f, in_f // m, m)
    order = torch.sort(g, dim=-1, descending=True, stable=True).indices
    mask = torch.zeros_like(g, dtype=torch.bool)
    mask.scatter_(-1, order[..., :n], True)
    return mask.reshape(out_f, in_f)


def save_safetensors(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, t in tensors.items():
        data = t.detach().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    gen = torch.Generator().manual_seed(20221101)
    os.makedirs(OUT, exist_ok=True)
    sd = vit_state(CONFIG, gen)
    meta = {"nmformer.config": json.dumps(CONFIG), "source": "tests/ref/make_vit_safetensors.py"}
    save_safetensors(os.path.join(OUT, "vit_tiny.safetensors"), sd, meta)
    for n, m in PATTERNS:
        masked = dict(sd)
        for b in range(CONFIG["depth"]):
            for lin in LINEARS:
                name = f"blocks.{b}.{lin}.weight"
                w = sd[name]
                # where(), not w * mask: a product would turn pruned negatives into -0.0
                masked[name] = torch.where(nm_mask(w, n, m), w, torch.zeros_like(w))
        save_safetensors(os.path.join(OUT, f"vit_tiny_{n}-{m}.safetensors"), masked, meta)

    npy = os.path.join(OUT, "npy")
    os.makedirs(npy, exist_ok=True)
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7 - 1
    np.save(os.path.join(npy, "f4_v1.npy"), a)
    with open(os.path.join(npy, "f4_v2.npy"), "wb") as f:
        np.lib.format.write_array(f, a, version=(2, 0))
    np.save(os.path.join(npy, "f4_scalar.npy"), np.float32(2.5))
    np.save(os.path.join(npy, "f4_empty.npy"), np.zeros((0, 3), dtype=np.float32))
    np.save(os.path.join(npy, "f8.npy"), a.astype(np.float64))
    np.save(os.path.join(npy, "i4.npy"), a.astype(np.int32))
    np.save(os.path.join(npy, "f4_big_endian.npy"), a.astype(">f4"))
    np.save(os.path.join(npy, "f4_fortran.npy"), np.asfortranarray(a))


if __name__ == "__main__":
    main()
