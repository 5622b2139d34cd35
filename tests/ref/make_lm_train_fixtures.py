#!/usr/bin/python3
"""Reference for the decoder LM's training passes (tests/train/test_lm_grad.c), with PyTorch.

Writes tests/fixtures/train/lm_grad_check.safetensors holding, for a tiny byte-level GPT-2
(GPT2LMHeadModel, head tied to wte: n_embd 16, n_layer 2, n_head 2, n_inner 64, vocab 256,
n_positions 8 = T), in Hugging Face names and layouts (Conv1D weights [in, out]):

  params.<name>                 the parameters (float32)
  ids (B, T), targets (B, T)    one batch (as float32); targets are the next bytes
  <case>.loss (1)               mean cross-entropy over the B*T tokens
  <case>.logits (B*T, 256)      (dense case only)
  <case>.grad.<name>            the gradient of every parameter
  <case>.mask.<name>            masked cases: the N:M mask of each Conv1D weight (0/1, [in, out])
  adamw.<case>.losses (10)      the losses of 10 AdamW steps (as make_train_fixtures.py: cosine
                                schedule with warm-up, clipping, decay on wte and the Conv1D
                                weights only)

Cases: dense, nm2_4, nm1_8 (SR-STE: forward with W*mask, gradient dL/d(W*mask) +
lambda*(1-mask)*W). N:M groups run along each linear's input dimension: for a Conv1D weight
[in, out] that is M consecutive rows of one column. The model follows HF's modeling_gpt2
(pre-LN blocks, LayerNorm eps 1e-5, causal attention scaled by 1/sqrt(head_dim), gelu_new,
learned positions, logits = ln_f(h) wte^T), computed in float64.

Run: /usr/bin/python3 tests/ref/make_lm_train_fixtures.py   (from the repository root)
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from make_train_fixtures import SparseSTE, nm_mask, write_safetensors

D, L, NH, I, V, T = 16, 2, 2, 64, 256, 8
B = 3
LAMBDA = 0.01
ADAM = dict(lr=3e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05, clip=0.5,
            warmup=3, steps=10, lr_min=3e-3)
HF = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": D, "n_layer": L,
      "n_head": NH, "n_inner": I, "vocab_size": V, "n_positions": T}
CONFIG = {"arch": "gpt2", "hf": HF, "prefix": "", "pooler": 0}
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
DECAYS = ("wte.weight",) + CONV1D

torch.manual_seed(4321)
DT = torch.float64


def param_shapes():
    s = [("wte.weight", (V, D)), ("wpe.weight", (T, D))]
    for i in range(L):
        b = f"h.{i}."
        s += [(b + "ln_1.weight", (D,)), (b + "ln_1.bias", (D,)),
              (b + "attn.c_attn.weight", (D, 3 * D)), (b + "attn.c_attn.bias", (3 * D,)),
              (b + "attn.c_proj.weight", (D, D)), (b + "attn.c_proj.bias", (D,)),
              (b + "ln_2.weight", (D,)), (b + "ln_2.bias", (D,)),
              (b + "mlp.c_fc.weight", (D, I)), (b + "mlp.c_fc.bias", (I,)),
              (b + "mlp.c_proj.weight", (I, D)), (b + "mlp.c_proj.bias", (D,))]
    return s + [("ln_f.weight", (D,)), ("ln_f.bias", (D,))]


def init_params():
    p = {}
    for name, shape in param_shapes():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            v = 1.0 + 0.1 * torch.randn(shape)
        elif name.endswith("bias"):
            v = 0.05 * torch.randn(shape)
        else:
            v = 0.3 * torch.randn(shape)
        p[name] = v.float().to(DT).requires_grad_(True)
    return p


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(p, ids, targets, masks=None):
    hd = D // NH

    def w(name):
        if masks is not None and name in masks:
            return SparseSTE.apply(p[name], masks[name], LAMBDA)
        return p[name]

    Bn = ids.shape[0]
    h = p["wte.weight"][ids] + p["wpe.weight"][torch.arange(T)]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(L):
        b = f"h.{i}."
        a = F.layer_norm(h, (D,), p[b + "ln_1.weight"], p[b + "ln_1.bias"], eps=1e-5)
        qkv = a @ w(b + "attn.c_attn.weight") + p[b + "attn.c_attn.bias"]  # Conv1D: x W + b
        q, k, v = qkv.split(D, dim=-1)
        q, k, v = (t.reshape(Bn, T, NH, hd).transpose(1, 2) for t in (q, k, v))
        s = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        s = s.masked_fill(~causal, float("-inf"))
        y = (s.softmax(dim=-1) @ v).transpose(1, 2).reshape(Bn, T, D)
        h = h + y @ w(b + "attn.c_proj.weight") + p[b + "attn.c_proj.bias"]
        a = F.layer_norm(h, (D,), p[b + "ln_2.weight"], p[b + "ln_2.bias"], eps=1e-5)
        f = gelu_new(a @ w(b + "mlp.c_fc.weight") + p[b + "mlp.c_fc.bias"])
        h = h + f @ w(b + "mlp.c_proj.weight") + p[b + "mlp.c_proj.bias"]
    h = F.layer_norm(h, (D,), p["ln_f.weight"], p["ln_f.bias"], eps=1e-5)
    logits = (h @ p["wte.weight"].T).reshape(Bn * T, V)
    return F.cross_entropy(logits, targets.reshape(-1)), logits


def masks_for(p, n, m):
    # Conv1D [in, out]: groups of m along the input = the (out, in) view's rows
    return {k: nm_mask(v.T, n, m).T.contiguous() for k, v in p.items() if k.endswith(CONV1D)}


def lr_at(step):
    a = ADAM
    if step < a["warmup"]:
        return a["lr"] * (step + 1) / a["warmup"]
    prog = min(1.0, (step - a["warmup"]) / (a["steps"] - a["warmup"]))
    return a["lr_min"] + (a["lr"] - a["lr_min"]) * 0.5 * (1 + math.cos(math.pi * prog))


def adamw_losses(p0, ids, targets, nm):
    p = {k: v.detach().clone().requires_grad_(True) for k, v in p0.items()}
    decay = [v for k, v in p.items() if k.endswith(DECAYS)]
    other = [v for k, v in p.items() if not k.endswith(DECAYS)]
    a = ADAM
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a["weight_decay"]},
                             {"params": other, "weight_decay": 0.0}],
                            lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"])
    losses = []
    for step in range(a["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        masks = masks_for(p, *nm) if nm else None
        opt.zero_grad()
        loss, _ = forward(p, ids, targets, masks)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), a["clip"])
        opt.step()
        losses.append(loss.item())
    return losses


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out_dir = os.path.join(root, "tests", "fixtures", "train")
    p = init_params()
    text = torch.randint(0, V, (B, T + 1))
    ids, targets = text[:, :T], text[:, 1:]
    out = {"ids": ids.numpy().astype(np.float32), "targets": targets.numpy().astype(np.float32)}
    for k, v in p.items():
        out["params." + k] = v.detach().numpy()
    for case, nm in (("dense", None), ("nm2_4", (2, 4)), ("nm1_8", (1, 8))):
        for v in p.values():
            v.grad = None
        masks = masks_for(p, *nm) if nm else None
        loss, logits = forward(p, ids, targets, masks)
        loss.backward()
        out[case + ".loss"] = np.array([loss.item()])
        if nm is None:
            out[case + ".logits"] = logits.detach().numpy()
        for k, v in p.items():
            out[f"{case}.grad.{k}"] = v.grad.numpy()
        for k, v in (masks or {}).items():
            out[f"{case}.mask.{k}"] = v.numpy()
        print(f"{case}: loss {loss.item():.6f}")
    for case, nm in (("dense", None), ("nm2_4", (2, 4))):
        losses = adamw_losses(p, ids, targets, nm)
        out[f"adamw.{case}.losses"] = np.array(losses)
        print(f"adamw {case}: losses {['%.5f' % l for l in losses]}")
    meta = {"nmformer.config": json.dumps(CONFIG), "lambda": repr(LAMBDA),
            "adamw": json.dumps(ADAM)}
    path = os.path.join(out_dir, "lm_grad_check.safetensors")
    write_safetensors(path, out, meta)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
