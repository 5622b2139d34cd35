#!/usr/bin/python3
"""Writes tests/fixtures/model/: small ViTs (timm names, config in the safetensors metadata), an
input batch and PyTorch's logits for each, dense and magnitude-pruned N:M.

  /usr/bin/python3 tests/ref/make_model_fixtures.py [OUTDIR]

Per fixture NAME: NAME.safetensors, NAME.input.npy (B, C, S, S), NAME.logits.npy (B, classes).
The C test (tests/model/test_vit_fixtures.c) lists the same names with their patterns.
For the CLI error tests: vit_2to8.nan.npy (the input with one NaN) and
vit_dense_small.noconfig.safetensors (the same weights without the config metadata).
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit_ref import PRUNABLE, from_config, nm_prune_, write_safetensors  # noqa: E402

FIXTURES = [
    # name, pattern (None = dense), batch, config
    ("vit_dense_fmnist", None, 2, dict(img_size=28, patch=7, in_chans=1, dim=32, depth=2, heads=2,
                                       mlp_ratio=2.0, num_classes=10)),
    ("vit_dense_small", None, 3, dict(img_size=6, patch=2, in_chans=1, dim=8, depth=1, heads=1,
                                      mlp_ratio=1.0, num_classes=3)),
    ("vit_2to4", "2:4", 2, dict(img_size=16, patch=4, in_chans=3, dim=24, depth=1, heads=3,
                                mlp_ratio=4.0, num_classes=5)),
    ("vit_2to8", "2:8", 3, dict(img_size=12, patch=6, in_chans=2, dim=16, depth=3, heads=4,
                                mlp_ratio=2.0, num_classes=7)),
    ("vit_1to8", "1:8", 2, dict(img_size=32, patch=8, in_chans=3, dim=48, depth=2, heads=3,
                                mlp_ratio=2.0, num_classes=12)),
    ("vit_2to8_fmnist", "2:8", 1, dict(img_size=28, patch=14, in_chans=1, dim=32, depth=2, heads=4,
                                       mlp_ratio=1.5, num_classes=10)),
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "model")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    for name, pattern, batch, cfg in FIXTURES:
        model = from_config(cfg).eval()
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith("norm1.weight") or pname.endswith("norm2.weight") or pname == "norm.weight":
                    p.copy_(1.0 + 0.2 * torch.randn_like(p))
                elif pname.endswith(".bias"):
                    p.copy_(0.1 * torch.randn_like(p))
                else:
                    # large enough that attention is far from uniform and logits are O(1)
                    fan_in = p.shape[1] if p.dim() == 2 else (p[0].numel() if p.dim() == 4 else 1)
                    p.copy_(torch.randn_like(p) * (1.5 / fan_in ** 0.5 if p.dim() >= 2 else 0.5))
            if pattern:
                n, m = map(int, pattern.split(":"))
                for pname, p in model.named_parameters():
                    if pname.endswith(PRUNABLE):
                        nm_prune_(p, n, m)
        full = dict(cfg, arch="vit", mean=0.2860, std=0.3530)
        x = torch.randn(batch, cfg["in_chans"], cfg["img_size"], cfg["img_size"])
        with torch.no_grad():
            logits = model(x)
        write_safetensors(os.path.join(out, name + ".safetensors"), model.state_dict(),
                          {"nmformer.config": json.dumps(full)})
        np.save(os.path.join(out, name + ".input.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(out, name + ".logits.npy"), logits.numpy().astype(np.float32))
        if name == "vit_2to8":
            bad = x.clone()
            bad[1, 1, 3, 4] = float("nan")
            np.save(os.path.join(out, name + ".nan.npy"), bad.numpy().astype(np.float32))
        if name == "vit_dense_small":
            write_safetensors(os.path.join(out, name + ".noconfig.safetensors"), model.state_dict())
        print(f"{name}: pattern {pattern or 'dense'}, batch {batch}, "
              f"logits range [{logits.min():.3f}, {logits.max():.3f}]")


if __name__ == "__main__":
    main()
