#!/usr/bin/python3
"""Reference for the training engine (tests/train/test_grad.c), computed with PyTorch.

Writes tests/fixtures/train/grad_check.safetensors holding, for a tiny timm-style ViT
(img 8, patch 4, 1 channel, dim 16, depth 2, heads 2, mlp_ratio 2, 10 classes; T = 5 tokens):

  params.<timm name>            the parameters (float32)
  x (4,1,8,8), labels (4)       one batch (labels as float32)
  <case>.loss (1)               mean cross-entropy
  <case>.grad.<timm name>       the gradient of every parameter
  <case>.mask.<timm name>       for masked cases: the N:M mask of the prunable weights (0/1)
  adamw.<case>.losses (10)      the losses of 10 AdamW steps (cosine schedule with warm-up,
                                gradient clipping, weight decay on matrices only)

Cases: dense, nm2_4 and nm1_8 (SR-STE: forward with W*mask, gradient = dL/d(W*mask)
+ lambda*(1-mask)*W, lambda = LAMBDA below; masks recomputed from |W| every step during AdamW).
The model is written by hand from timm's definitions (pre-norm blocks, LayerNorm eps 1e-6,
erf GELU, class token first, logits from the class token). Computation runs in float64 so the
reference is exact to far below the 1e-4 tolerance of the C test.

Run: /usr/bin/python3 tests/ref/make_train_fixtures.py   (from the repository root)
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

CFG = dict(arch="vit", img_size=8, patch=4, in_chans=1, dim=16, depth=2, heads=2,
           mlp_ratio=2.0, num_classes=10, mean=0.2860, std=0.3530)
B = 4
LAMBDA = 0.01  # larger than the default 2e-4 so that the term is visible in the check
ADAM = dict(lr=3e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05, clip=0.5,
            warmup=3, steps=10, lr_min=3e-3)
PRUNABLE = ("attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight")
DECAYS = ("patch_embed.proj.weight", "head.weight") + PRUNABLE

torch.manual_seed(1234)
np.random.seed(1234)
DT = torch.float64


def param_shapes(c):
    D, H, K = c["dim"], int(c["dim"] * c["mlp_ratio"]), c["num_classes"]
    P, C = c["patch"], c["in_chans"]
    T = (c["img_size"] // P) ** 2 + 1
    s = [("patch_embed.proj.weight", (D, C, P, P)), ("patch_embed.proj.bias", (D,)),
         ("cls_token", (1, 1, D)), ("pos_embed", (1, T, D))]
    for i in range(c["depth"]):
        b = f"blocks.{i}."
        s += [(b + "norm1.weight", (D,)), (b + "norm1.bias", (D,)),
              (b + "attn.qkv.weight", (3 * D, D)), (b + "attn.qkv.bias", (3 * D,)),
              (b + "attn.proj.weight", (D, D)), (b + "attn.proj.bias", (D,)),
              (b + "norm2.weight", (D,)), (b + "norm2.bias", (D,)),
              (b + "mlp.fc1.weight", (H, D)), (b + "mlp.fc1.bias", (H,)),
              (b + "mlp.fc2.weight", (D, H)), (b + "mlp.fc2.bias", (D,))]
    s += [("norm.weight", (D,)), ("norm.bias", (D,)), ("head.weight", (K, D)), ("head.bias", (K,))]
    return s


def init_params():
    p = {}
    for name, shape in param_shapes(CFG):
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
            v = 1.0 + 0.1 * torch.randn(shape)
        elif name.endswith("bias"):
            v = 0.05 * torch.randn(shape)
        else:
            v = 0.3 * torch.randn(shape)
        p[name] = v.float().to(DT).requires_grad_(True)  # float32 values, float64 math
    return p


def is_prunable(name):
    return name.endswith(PRUNABLE)


def nm_mask(w, n, m):
    """1 for the n largest |w| of every group of m consecutive inputs (ties: lower index)."""
    rows, cols = w.shape
    g = w.detach().abs().reshape(rows, cols // m, m)
    # stable sort on -|w| keeps the lower index first among equals
    order = torch.sort(-g, dim=-1, stable=True).indices[..., :n]
    mask = torch.zeros_like(g)
    mask.scatter_(-1, order, 1.0)
    return mask.reshape(rows, cols)


class SparseSTE(torch.autograd.Function):
    """aojunzz/NM-sparsity's Sparse: forward W*mask, backward dL/d(W*mask) + lambda(1-mask)W."""

    @staticmethod
    def forward(ctx, weight, mask, decay):
        ctx.save_for_backward(weight, mask)
        ctx.decay = decay
        return weight * mask

    @staticmethod
    def backward(ctx, grad_output):
        weight, mask = ctx.saved_tensors
        return grad_output + ctx.decay * (1 - mask) * weight, None, None


def forward(p, x, labels, masks=None):
    c = CFG
    D, NH, L = c["dim"], c["heads"], c["depth"]
    hd = D // NH

    def w(name):
        if masks is not None and name in masks:
            return SparseSTE.apply(p[name], masks[name], LAMBDA)
        return p[name]

    Bn = x.shape[0]
    t = F.conv2d(x, p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=c["patch"])
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat([p["cls_token"].expand(Bn, -1, -1), t], dim=1) + p["pos_embed"]
    for i in range(L):
        b = f"blocks.{i}."
        h = F.layer_norm(t, (D,), p[b + "norm1.weight"], p[b + "norm1.bias"], eps=1e-6)
        qkv = F.linear(h, w(b + "attn.qkv.weight"), p[b + "attn.qkv.bias"])
        T = qkv.shape[1]
        qkv = qkv.reshape(Bn, T, 3, NH, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = ((q * hd ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        a = (att @ v).transpose(1, 2).reshape(Bn, T, D)
        t = t + F.linear(a, w(b + "attn.proj.weight"), p[b + "attn.proj.bias"])
        h = F.layer_norm(t, (D,), p[b + "norm2.weight"], p[b + "norm2.bias"], eps=1e-6)
        h = F.gelu(F.linear(h, w(b + "mlp.fc1.weight"), p[b + "mlp.fc1.bias"]))
        t = t + F.linear(h, w(b + "mlp.fc2.weight"), p[b + "mlp.fc2.bias"])
    t = F.layer_norm(t, (D,), p["norm.weight"], p["norm.bias"], eps=1e-6)
    logits = F.linear(t[:, 0], p["head.weight"], p["head.bias"])
    return F.cross_entropy(logits, labels)


def masks_for(p, n, m):
    return {k: nm_mask(v, n, m) for k, v in p.items() if is_prunable(k)}


def lr_at(step):
    a = ADAM
    if step < a["warmup"]:
        return a["lr"] * (step + 1) / a["warmup"]
    prog = min(1.0, (step - a["warmup"]) / (a["steps"] - a["warmup"]))
    return a["lr_min"] + (a["lr"] - a["lr_min"]) * 0.5 * (1 + math.cos(math.pi * prog))


def adamw_losses(p0, x, labels, nm):
    p = {k: v.detach().clone().requires_grad_(True) for k, v in p0.items()}
    decay = [v for k, v in p.items() if k.endswith(DECAYS)]
    other = [v for k, v in p.items() if not k.endswith(DECAYS)]
    a = ADAM
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a["weight_decay"]},
                             {"params": other, "weight_decay": 0.0}],
                            lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"])
    losses, norms = [], []
    for step in range(a["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        masks = masks_for(p, *nm) if nm else None
        opt.zero_grad()
        loss = forward(p, x, labels, masks)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(p.values()), a["clip"])))
        opt.step()
        losses.append(loss.item())
    return losses, norms


def write_safetensors(path, tensors, meta):
    header = {"__metadata__": meta}
    blobs, off = [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + arr.nbytes]}
        blobs.append(arr.tobytes())
        off += arr.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out_dir = os.path.join(root, "tests", "fixtures", "train")
    os.makedirs(out_dir, exist_ok=True)
    p = init_params()
    x = torch.randn(B, CFG["in_chans"], CFG["img_size"], CFG["img_size"]).float().to(DT)
    labels = torch.randint(0, CFG["num_classes"], (B,))
    out = {"x": x.numpy(), "labels": labels.numpy().astype(np.float32)}
    for k, v in p.items():
        out["params." + k] = v.detach().numpy()
    for case, nm in (("dense", None), ("nm2_4", (2, 4)), ("nm1_8", (1, 8))):
        for v in p.values():
            v.grad = None
        masks = masks_for(p, *nm) if nm else None
        loss = forward(p, x, labels, masks)
        loss.backward()
        out[case + ".loss"] = np.array([loss.item()])
        for k, v in p.items():
            out[f"{case}.grad.{k}"] = v.grad.numpy()
        if masks:
            for k, v in masks.items():
                out[f"{case}.mask.{k}"] = v.numpy()
        print(f"{case}: loss {loss.item():.6f}")
    for case, nm in (("dense", None), ("nm2_4", (2, 4))):
        losses, norms = adamw_losses(p, x, labels, nm)
        out[f"adamw.{case}.losses"] = np.array(losses)
        print(f"adamw {case}: losses {['%.5f' % l for l in losses]} grad norms "
              f"{['%.3f' % n for n in norms]}")
    meta = {"nmformer.config": json.dumps(CFG), "lambda": repr(LAMBDA),
            "adamw": json.dumps(ADAM)}
    path = os.path.join(out_dir, "grad_check.safetensors")
    write_safetensors(path, out, meta)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
