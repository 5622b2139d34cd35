#!/usr/bin/python3
"""Writes a timm-named ViT safetensors file with random weights at a real model's size, for memory
figures (docs/PERFORMANCE.md): numpy only, the config in the nmformer.config metadata.

  /usr/bin/python3 scripts/make_random_vit.py OUT.safetensors DIM DEPTH HEADS [--img 224]
      [--patch 16] [--classes 1000] [--dtype BF16|F32]

Weights ~ N(0, 0.02), norms 1, biases 0; BF16 rounds f32 to nearest even.
"""
import argparse
import json
import struct

import numpy as np


def to_bf16(a):
    bits = a.astype(np.float32).view(np.uint32)
    bits = bits + 0x7FFF + ((bits >> 16) & 1)  # round to nearest even (values are finite)
    return (bits >> 16).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("dim", type=int)
    ap.add_argument("depth", type=int)
    ap.add_argument("heads", type=int)
    ap.add_argument("--img", type=int, default=224)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--dtype", choices=["BF16", "F32"], default="BF16")
    a = ap.parse_args()
    D, H, C, T = a.dim, 4 * a.dim, 3, (a.img // a.patch) ** 2 + 1
    shapes = [("cls_token", [1, 1, D]), ("pos_embed", [1, T, D]),
              ("patch_embed.proj.weight", [D, C, a.patch, a.patch]), ("patch_embed.proj.bias", [D])]
    for i in range(a.depth):
        b = f"blocks.{i}."
        shapes += [(b + "norm1.weight", [D]), (b + "norm1.bias", [D]),
                   (b + "attn.qkv.weight", [3 * D, D]), (b + "attn.qkv.bias", [3 * D]),
                   (b + "attn.proj.weight", [D, D]), (b + "attn.proj.bias", [D]),
                   (b + "norm2.weight", [D]), (b + "norm2.bias", [D]),
                   (b + "mlp.fc1.weight", [H, D]), (b + "mlp.fc1.bias", [H]),
                   (b + "mlp.fc2.weight", [D, H]), (b + "mlp.fc2.bias", [D])]
    shapes += [("norm.weight", [D]), ("norm.bias", [D]), ("head.weight", [a.classes, D]),
               ("head.bias", [a.classes])]
    rng = np.random.default_rng(0)
    config = {"arch": "vit", "img_size": a.img, "patch": a.patch, "in_chans": C, "dim": D,
              "depth": a.depth, "heads": a.heads, "mlp_ratio": 4.0, "num_classes": a.classes,
              "mean": 0.45, "std": 0.225}
    header, blobs, at = {"__metadata__": {"nmformer.config": json.dumps(config)}}, [], 0
    for name, shape in shapes:
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
            x = np.ones(shape, np.float32)
        elif name.endswith("bias"):
            x = np.zeros(shape, np.float32)
        else:
            x = (0.02 * rng.standard_normal(shape)).astype(np.float32)
        raw = (to_bf16(x) if a.dtype == "BF16" else x).tobytes()
        header[name] = {"dtype": a.dtype, "shape": shape, "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(a.out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for raw in blobs:
            f.write(raw)
    print(f"{a.out}: {sum(int(np.prod(s)) for _, s in shapes)} parameters, {a.dtype}")


if __name__ == "__main__":
    main()
