#!/usr/bin/python3
"""Writes tests/fixtures/oneshot/: PyTorch references of one-shot N:M pruning of one linear, for
tests/prune/test_oneshot_ref.c.

  /usr/bin/python3 tests/ref/make_oneshot_fixtures.py [OUTDIR]

Wanda (Sun et al. 2023): scores |W_ij| * ||X_j||_2 and the N:M mask (N largest scores of each
group of M inputs, ties to the lower index). The column sums of squares are added token by token
in float64 (the order nmformer uses), so that the C scores equal these bit for bit.
  wanda_x.npy (tokens, in)  with outlier channels, one dead channel and two equal channels
  wanda_w.npy (out, in)     with equal weights on the equal channels (a tie in the scores)
  wanda_scores.npy          float32
  wanda_mask_N-M.npy        float32 0/1

SparseGPT (Frantar & Alistarh 2023, Algorithm 1 with N:M masks, written here from the paper):
H = X^T X (float64), dead columns (diag 0) get 1 and their weights 0, H += damp * mean(diag) I,
U = cholesky(H^-1) upper (float64, then float32), columns in blocks of BLOCK with lazy updates,
at the first column of every group of M the N largest w^2 / U_jj^2 per row are kept.
  sgpt_x.npy, sgpt_w.npy    (tokens, in), (out, in): outliers and one dead channel
  sgpt_w_N-M.npy            the pruned, compensated weight (float32)
  sgpt_mask_N-M.npy         float32 0/1
"""
import os
import sys

import numpy as np
import torch

PATTERNS = [(2, 4), (1, 4), (4, 8), (1, 8), (3, 16)]
DAMP = 0.01   # the C test passes the same
BLOCK = 16    # lazy-update block width; the C test passes the same


def outlier_inputs(g, tokens, cols, dead):
    x = torch.randn(tokens, cols, generator=g, dtype=torch.float32)
    for j in (3, 17, cols - 5):  # a few channels 20x larger: what makes magnitude pruning fail
        x[:, j] *= 20.0
    x[:, dead] = 0.0
    return x


def topn_mask(scores, n, m):
    """1 for the n largest of each group of m along dim 1; ties: the lower index (stable sort)."""
    rows, cols = scores.shape
    s = scores.reshape(rows, cols // m, m)
    order = torch.sort(-s, dim=2, stable=True).indices[:, :, :n]
    mask = torch.zeros_like(s, dtype=torch.bool)
    mask.scatter_(2, order, True)
    return mask.reshape(rows, cols)


def wanda_scores(w, x):
    sumsq = torch.zeros(x.shape[1], dtype=torch.float64)
    for t in range(x.shape[0]):  # token by token, as the C accumulator
        v = x[t].double()
        sumsq += v * v
    return w.abs() * sumsq.sqrt().float()


def sparsegpt(w, x, n, m, damp, block):
    w = w.clone().float()
    rows, cols = w.shape
    h = x.double().T @ x.double()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += damp * torch.mean(torch.diag(h)) * torch.eye(cols, dtype=torch.float64)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True).float()
    keep = torch.zeros(rows, cols, dtype=torch.bool)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        w1 = w[:, i1:i2].clone()
        err1 = torch.zeros_like(w1)
        u1 = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            if i % m == 0:
                d = torch.diag(u1)[i:i + m].reshape(1, -1)
                tmp = (w1[:, i:i + m] * w1[:, i:i + m]) / (d * d)
                keep[:, i1 + i:i1 + i + m] = topn_mask(tmp, n, m)
            q = torch.where(keep[:, i1 + i], w1[:, i], torch.zeros(()))
            e = (w1[:, i] - q) / u1[i, i]
            w1[:, i + 1:] -= e.unsqueeze(1) * u1[i, i + 1:].unsqueeze(0)
            w1[:, i] = q
            err1[:, i] = e
        w[:, i1:i2] = w1
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    return w, keep


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "oneshot")
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(20261201)
    save = lambda name, t: np.save(os.path.join(out, name), t.detach().numpy().astype(np.float32))

    # Wanda: 12 outputs, 48 inputs, 40 tokens; channel 9 dead, channels 20 and 21 equal
    x = outlier_inputs(g, 40, 48, dead=9)
    x[:, 21] = x[:, 20]
    w = torch.randn(12, 48, generator=g, dtype=torch.float32)
    w[3, 21] = w[3, 20]
    save("wanda_x.npy", x)
    save("wanda_w.npy", w)
    scores = wanda_scores(w, x)
    save("wanda_scores.npy", scores)
    for n, m in PATTERNS:
        save(f"wanda_mask_{n}-{m}.npy", topn_mask(scores, n, m).float())

    # SparseGPT: 16 outputs, 64 inputs (4 blocks of 16), 96 tokens; channel 40 dead
    x = outlier_inputs(g, 96, 64, dead=40)
    w = torch.randn(16, 64, generator=g, dtype=torch.float32)
    save("sgpt_x.npy", x)
    save("sgpt_w.npy", w)
    for n, m in PATTERNS:
        wp, keep = sparsegpt(w, x, n, m, DAMP, BLOCK)
        save(f"sgpt_w_{n}-{m}.npy", wp)
        save(f"sgpt_mask_{n}-{m}.npy", keep.float())


if __name__ == "__main__":
    main()
