"""A PyTorch Vision Transformer with timm semantics and timm parameter names.

Independent reference for nmformer's C engine (src/model/): pre-norm blocks, LayerNorm eps 1e-6,
fused qkv split as (3, heads, head_dim), softmax(q k^T / sqrt(d)) v, exact (erf) GELU, class
token first, logits from the class token after the final norm. state_dict() keys match timm's
VisionTransformer (cls_token, pos_embed, patch_embed.proj.*, blocks.{i}.*, norm.*, head.*).
"""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x):  # (B, C, S, S) -> (B, P, D)
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, heads, N, hd)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact erf GELU (approximate='none')


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, img_size=28, patch=7, in_chans=1, dim=64, depth=4, heads=4, mlp_ratio=2.0,
                 num_classes=10, **_):
        super().__init__()
        grid = img_size // patch
        hidden = int(round(dim * mlp_ratio))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.patch_embed = PatchEmbed(img_size, patch, in_chans, dim)
        self.blocks = nn.Sequential(*[Block(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def from_config(cfg):
    keys = ("img_size", "patch", "in_chans", "dim", "depth", "heads", "mlp_ratio", "num_classes")
    return VisionTransformer(**{k: cfg[k] for k in keys if k in cfg})


PRUNABLE = ("attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight")


def nm_prune_(w, n, m):
    """In place: per row, per group of m consecutive input columns, keep the n largest |w|
    (ties: the lower index wins, as nmformer's nmf_nm_mask)."""
    rows, cols = w.shape
    assert cols % m == 0
    g = w.detach().reshape(rows, cols // m, m)
    # stable sort of -|w|: equal magnitudes keep index order, so lower indices come first
    order = torch.from_numpy((-g.abs()).numpy().argsort(axis=-1, kind="stable"))
    mask = torch.zeros_like(g, dtype=torch.bool)
    mask.scatter_(-1, order[..., :n], True)
    with torch.no_grad():
        w.copy_((g * mask).reshape(rows, cols))


# safetensors dtype name -> (torch dtype the values are rounded to, little-endian numpy storage)
SAFETENSORS_DTYPES = {"F32": (torch.float32, "<f4"), "F16": (torch.float16, "<f2"),
                      "BF16": (torch.bfloat16, "<i2")}


def safetensors_bytes(t, dtype="F32"):
    """Raw little-endian bytes of t stored as dtype (round to nearest even, as torch's .to())."""
    tdt, np_dt = SAFETENSORS_DTYPES[dtype]
    t = t.detach().contiguous().to(tdt)
    if dtype == "BF16":  # numpy has no bfloat16: store the bit pattern
        t = t.view(torch.int16)
    return t.numpy().astype(np_dt).tobytes()


def write_safetensors(path, tensors, metadata=None, dtype="F32"):
    """Minimal safetensors writer (one dtype for every tensor: F32, F16 or BF16): 8-byte
    little-endian header length, JSON header padded with spaces to a multiple of 8, then the raw
    little-endian data. Returns the number of data bytes written."""
    import struct

    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = safetensors_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    return offset
