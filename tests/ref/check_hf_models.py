#!/usr/bin/python3
"""Cross-checks the committed HF fixtures (tests/fixtures/hf) against forwards that share no code
with tests/ref/hf_models.py:

  BERT   blocks = torch.nn.TransformerEncoderLayer (post-LN, exact GELU, key padding mask)
  GPT-2  blocks = torch.nn.TransformerEncoderLayer (pre-LN, gelu_new, causal mask), Conv1D
         weights transposed into nn.Linear's [out, in]
  LLaMA  Meta's original layout (llama/model.py): RoPE on interleaved pairs as complex numbers,
         q/k weights un-permuted from HF's rotate_half layout (the inverse of the permute in
         transformers' convert_llama_weights_to_hf.py); GQA also checked by expanding the kv
         weights to plain multi-head attention.

The weights are read back from the fixture folders with a reader written here (so the safetensors
writer and the shard index are checked too), and the outputs compared with the committed .npy
files: |diff| <= 1e-4 * max(1, |reference|max). Greedy generations are re-derived.

  /usr/bin/python3 tests/ref/check_hf_models.py [FIXTURE_DIR]
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = np.frombuffer(data[b:end], dtype={"F32": "<f4", "F16": "<f2", "BF16": "<u2"}[e["dtype"]])
        if e["dtype"] == "BF16":  # widen: the 16 bits are the top half of an f32
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(raw.astype(np.float32).copy()).reshape(e["shape"])
    return out


def read_folder(folder):
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(folder, "model.safetensors.index.json")) as f:
        index = json.load(f)["weight_map"]
    p = {}
    for shard in sorted(set(index.values())):
        part = read_safetensors(os.path.join(folder, shard))
        assert all(index[k] == shard for k in part)
        p.update(part)
    assert set(p) == set(index)
    return p


def encoder_layer(D, H, I, eps, act, norm_first):
    layer = nn.TransformerEncoderLayer(D, H, I, dropout=0.0, activation=act, layer_norm_eps=eps,
                                       batch_first=True, norm_first=norm_first)
    return layer.train()  # train mode with dropout 0: the plain (not fast-path) computation


def bert_torch(cfg, p, ids, tt, mask, pre):
    D, H, I, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"], cfg["layer_norm_eps"]
    T = ids.shape[1]
    x = p[pre + "embeddings.word_embeddings.weight"][ids] + p[pre + "embeddings.position_embeddings.weight"][:T]
    x = x + p[pre + "embeddings.token_type_embeddings.weight"][tt]
    x = F.layer_norm(x, (D,), p[pre + "embeddings.LayerNorm.weight"], p[pre + "embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        L = f"{pre}encoder.layer.{i}."
        m = encoder_layer(D, H, I, eps, "gelu", norm_first=False)
        with torch.no_grad():
            m.self_attn.in_proj_weight.copy_(torch.cat([p[L + f"attention.self.{s}.weight"] for s in ("query", "key", "value")]))
            m.self_attn.in_proj_bias.copy_(torch.cat([p[L + f"attention.self.{s}.bias"] for s in ("query", "key", "value")]))
            for dst, src in ((m.self_attn.out_proj, "attention.output.dense"), (m.norm1, "attention.output.LayerNorm"),
                             (m.linear1, "intermediate.dense"), (m.linear2, "output.dense"), (m.norm2, "output.LayerNorm")):
                dst.weight.copy_(p[L + src + ".weight"])
                dst.bias.copy_(p[L + src + ".bias"])
        x = m(x, src_key_padding_mask=None if mask is None else mask == 0)
    pooled = torch.tanh(F.linear(x[:, 0], p[pre + "pooler.dense.weight"], p[pre + "pooler.dense.bias"]))
    return x, pooled


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def gpt2_torch(cfg, p, ids, pre):
    D, H, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    I = cfg.get("n_inner") or 4 * D
    T = ids.shape[1]
    x = p[pre + "wte.weight"][ids] + p[pre + "wpe.weight"][:T]
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)  # True = not allowed
    for i in range(cfg["n_layer"]):
        L = f"{pre}h.{i}."
        m = encoder_layer(D, H, I, eps, gelu_tanh, norm_first=True)
        with torch.no_grad():
            m.self_attn.in_proj_weight.copy_(p[L + "attn.c_attn.weight"].t())
            m.self_attn.in_proj_bias.copy_(p[L + "attn.c_attn.bias"])
            for dst, src in ((m.self_attn.out_proj, "attn.c_proj"), (m.linear1, "mlp.c_fc"), (m.linear2, "mlp.c_proj")):
                dst.weight.copy_(p[L + src + ".weight"].t())
                dst.bias.copy_(p[L + src + ".bias"])
            for dst, src in ((m.norm1, "ln_1"), (m.norm2, "ln_2")):
                dst.weight.copy_(p[L + src + ".weight"])
                dst.bias.copy_(p[L + src + ".bias"])
        x = m(x, src_mask=causal)
    x = F.layer_norm(x, (D,), p[pre + "ln_f.weight"], p[pre + "ln_f.bias"], eps)
    return x, x @ p[pre + "wte.weight"].t()


def unpermute(w, heads):
    """HF rotate_half rows -> Meta interleaved rows: inverse of convert_llama_weights_to_hf's
    permute(w) = w.view(heads, hd // 2, 2, D).transpose(1, 2).reshape(heads * hd, D)."""
    out, D = w.shape
    hd = out // heads
    return w.view(heads, 2, hd // 2, D).transpose(1, 2).reshape(out, D)


def llama_meta(cfg, p, ids, expand_kv=False):
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KV = cfg["num_key_value_heads"]
    hd, eps, theta = D // H, cfg["rms_norm_eps"], cfg["rope_theta"]
    B, T = ids.shape
    freqs = 1.0 / (theta ** (torch.arange(0, hd, 2)[: hd // 2].float() / hd))
    cis = torch.polar(torch.ones(T, hd // 2), torch.outer(torch.arange(T).float(), freqs))

    def rope(x):  # (B, T, heads, hd), pairs (2i, 2i+1) rotated as one complex number
        xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(xc * cis[None, :, None, :]).flatten(3)

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    x = p["model.embed_tokens.weight"][ids]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        L = f"model.layers.{i}."
        wq = unpermute(p[L + "self_attn.q_proj.weight"], H)
        wk = unpermute(p[L + "self_attn.k_proj.weight"], KV)
        wv = p[L + "self_attn.v_proj.weight"]
        kvh = KV
        if expand_kv:  # plain MHA: kv head j's rows copied to each query head it serves
            rep = H // KV
            wk = wk.view(KV, 1, hd, D).expand(KV, rep, hd, D).reshape(H * hd, D)
            wv = wv.view(KV, 1, hd, D).expand(KV, rep, hd, D).reshape(H * hd, D)
            kvh = H
        h = rms(x, p[L + "input_layernorm.weight"])
        q = rope((h @ wq.t()).view(B, T, H, hd))
        k = rope((h @ wk.t()).view(B, T, kvh, hd))
        v = (h @ wv.t()).view(B, T, kvh, hd)
        if kvh != H:
            k = torch.repeat_interleave(k, H // kvh, dim=2)
            v = torch.repeat_interleave(v, H // kvh, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        s = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(hd) + mask, dim=-1)
        x = x + (s @ v).transpose(1, 2).reshape(B, T, D) @ p[L + "self_attn.o_proj.weight"].t()
        h = rms(x, p[L + "post_attention_layernorm.weight"])
        x = x + (F.silu(h @ p[L + "mlp.gate_proj.weight"].t()) * (h @ p[L + "mlp.up_proj.weight"].t())) @ p[L + "mlp.down_proj.weight"].t()
    x = rms(x, p["model.norm.weight"])
    head = p.get("lm_head.weight", p["model.embed_tokens.weight"])
    assert ("lm_head.weight" in p) != cfg["tie_word_embeddings"]
    return x @ head.t()


def close(name, got, want):
    want = torch.from_numpy(want)
    err = float((got - want).abs().max())
    tol = 1e-4 * max(1.0, float(want.abs().max()))
    assert err <= tol, f"{name}: max |diff| {err:.3g} > {tol:.3g}"
    return err


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hf")
    with open(os.path.join(root, "manifest.json")) as f:
        fixtures = json.load(f)["fixtures"]
    torch.manual_seed(0)
    for fx in fixtures:
        folder = os.path.join(root, fx["name"])
        with open(os.path.join(folder, "config.json")) as f:
            cfg = json.load(f)
        p = read_folder(folder)
        load = lambda n: np.load(os.path.join(folder, n + ".npy"))  # noqa: E731
        ids = torch.from_numpy(load("input_ids"))
        errs = []
        with torch.no_grad():
            if fx["family"] == "bert":
                pre = "bert." if "bert.embeddings.word_embeddings.weight" in p else ""
                has = lambda n: os.path.exists(os.path.join(folder, n + ".npy"))  # noqa: E731
                tt = torch.from_numpy(load("token_type_ids")) if has("token_type_ids") else torch.zeros_like(ids)
                mask = torch.from_numpy(load("attention_mask")) if has("attention_mask") else None
                h, pooled = bert_torch(cfg, p, ids, tt, mask, pre)
                if pre:
                    errs.append(close(fx["name"], F.linear(pooled, p["classifier.weight"], p["classifier.bias"]), load("logits")))
                else:
                    errs.append(close(fx["name"], h, load("last_hidden_state")))
                    errs.append(close(fx["name"], pooled, load("pooler_output")))
                fn = None
            elif fx["family"] == "gpt2":
                pre = "transformer." if "transformer.wte.weight" in p else ""
                h, logits = gpt2_torch(cfg, p, ids, pre)
                if cfg["architectures"][0] == "GPT2Model":
                    errs.append(close(fx["name"], h, load("last_hidden_state")))
                    fn = None
                else:
                    errs.append(close(fx["name"], logits, load("logits")))
                    fn = lambda s: gpt2_torch(cfg, p, s, pre)[1]  # noqa: E731
            else:
                errs.append(close(fx["name"], llama_meta(cfg, p, ids), load("logits")))
                errs.append(close(fx["name"] + " (kv expanded)", llama_meta(cfg, p, ids, expand_kv=True), load("logits")))
                fn = lambda s: llama_meta(cfg, p, s)  # noqa: E731
            if fn is not None and fx["generate"]:
                seq = ids
                want = load("generate")
                for _ in range(want.shape[1] - ids.shape[1]):
                    seq = torch.cat([seq, fn(seq)[:, -1].argmax(-1, keepdim=True)], 1)
                assert np.array_equal(seq.numpy(), want), fx["name"] + ": greedy generation differs"
        print(f"{fx['name']}: ok, max |diff| {max(errs):.2e}" + (" + generation" if fn and fx["generate"] else ""))


if __name__ == "__main__":
    main()
