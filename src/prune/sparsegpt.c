/* SparseGPT on one linear (Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be
 * Accurately Pruned in One-Shot", Algorithm 1 with N:M masks).
 *
 * Minimising ||W X^T - W' X^T||^2 row by row is a quadratic in W' with Hessian H = X^T X. Walking
 * the columns left to right, the weight w_j of a row is set to its pruned value q_j (w_j or 0) and
 * its error, scaled by the inverse Hessian of the columns still free, is taken up by those
 * columns (optimal brain surgeon). With U = chol(H^-1) upper, that update is row j of U:
 *
 *   err = (w_j - q_j) / U_jj;     w_k -= err * U_jk   for k > j
 *
 * The mask of a group of M columns is chosen when the sweep reaches its first column, from the
 * weights as updated so far: keep the N largest w^2 / U_jj^2 of each row. Columns go in blocks of
 * B (a multiple of M): inside a block the update is applied column by column; the columns right of
 * the block receive the block's errors at once, W[:, i2:] -= Err (rows, B) U[i1:i2, i2:], one GEMM
 * ("lazy batch updates"). Shapes: W (rows, cols) = (out, in). */
#include <math.h>
#include <string.h>

#include "nmformer/kernels.h"
#include "nmformer/prune.h"
#include "prune/prune_internal.h"

/* U (cols, cols) in float from xtx: dead columns (diag 0: an input never seen) get diag 1 and their
 * weights zeroed, then lambda = damp * mean(diag) on the diagonal, then the factor of H^-1. */
static nmf_status inverse_factor(float *uf, float *w, const double *xtx, size_t rows, size_t cols,
                                 double damp) {
    double *h = nmf_alloc(cols * cols, sizeof(double)), *u = nmf_alloc(cols * cols, sizeof(double));
    nmf_status st = NMF_OK;
    if (!h || !u) st = nmf_error(NMF_ERR_NOMEM, "Hessian of %zu columns", cols);
    if (!st) {
        for (size_t i = 0; i < cols; i++) /* the upper triangle, as accumulated */
            memcpy(h + i * cols + i, xtx + i * cols + i, (cols - i) * sizeof(double));
        double mean = 0.0;
        for (size_t j = 0; j < cols; j++) {
            double *hjj = &h[j * cols + j];
            if (*hjj == 0.0) {
                *hjj = 1.0;
                for (size_t r = 0; r < rows; r++) w[r * cols + j] = 0.0f;
            }
            mean += *hjj;
        }
        mean /= (double)cols;
        for (size_t j = 0; j < cols; j++) h[j * cols + j] += damp * mean;
        st = nmf_hinv_chol_upper(h, u, cols);
    }
    if (!st)
        for (size_t i = 0; i < cols * cols; i++) uf[i] = (float)u[i];
    nmf_free(h);
    nmf_free(u);
    return st;
}

/* Keeps, in each row of the group of M columns starting at column g of the block w1 (rows, bw),
 * the N largest w^2 / d^2 (d: the diagonal of U for those columns); keep1 (rows, bw) marks them. */
static nmf_status choose_group(uint8_t *keep1, float *tmp, uint8_t *gmask, const float *w1, size_t bw,
                               size_t g, const float *d, size_t rows, nmf_pattern p) {
    const size_t M = (size_t)p.m;
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < M; k++) {
            const float x = w1[r * bw + g + k];
            tmp[r * M + k] = (x * x) / (d[k] * d[k]);
        }
    nmf_status st = nmf_nm_mask(gmask, tmp, rows, M, p, 0);
    if (st) return st;
    for (size_t r = 0; r < rows; r++) memcpy(keep1 + r * bw + g, gmask + r * M, M);
    return NMF_OK;
}

nmf_status nmf_sparsegpt_prune(float *w, uint8_t *mask, const double *xtx, size_t rows, size_t cols,
                               nmf_pattern p, double damp, size_t block_cols) {
    if (!w || !xtx || !nmf_pattern_valid(p) || rows == 0 || cols == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_sparsegpt_prune: NULL argument, empty weight or "
                         "invalid pattern");
    if (!(damp >= 0.0) || !isfinite(damp))
        return nmf_error(NMF_ERR_INVALID_ARG, "dampening %g: must be finite and >= 0", damp);
    const size_t M = (size_t)p.m;
    if (cols % M)
        return nmf_error(NMF_ERR_SHAPE, "%zu inputs are not a multiple of M = %zu", cols, M);
    size_t B = block_cols / M * M, n, nb;
    if (B == 0) B = M;
    if (B > cols) B = cols;
    if (nmf_mul_overflow(cols, cols, &n) || nmf_mul_overflow(rows, cols, &nb))
        return nmf_error(NMF_ERR_NOMEM, "sparsegpt: %zu x %zu", rows, cols);
    float *uf = nmf_alloc(cols * cols, sizeof(float));
    float *w1 = nmf_alloc(nb, sizeof(float)), *err1 = nmf_alloc(nb, sizeof(float));
    float *tmp = nmf_alloc(rows * M, sizeof(float)), *d = nmf_alloc(cols, sizeof(float));
    uint8_t *keep1 = nmf_alloc(nb, 1), *gmask = nmf_alloc(rows * M, 1);
    nmf_status st = NMF_OK;
    if (!uf || !w1 || !err1 || !tmp || !d || !keep1 || !gmask)
        st = nmf_error(NMF_ERR_NOMEM, "sparsegpt buffers for %zu x %zu", rows, cols);
    if (!st) st = inverse_factor(uf, w, xtx, rows, cols, damp);
    if (!st)
        for (size_t j = 0; j < cols; j++) d[j] = uf[j * cols + j];

    for (size_t i1 = 0; !st && i1 < cols; i1 += B) {
        const size_t i2 = i1 + B < cols ? i1 + B : cols, bw = i2 - i1;
        for (size_t r = 0; r < rows; r++) memcpy(w1 + r * bw, w + r * cols + i1, bw * sizeof(float));
        for (size_t i = 0; !st && i < bw; i++) {
            if (i % M == 0) st = choose_group(keep1, tmp, gmask, w1, bw, i, d + i1 + i, rows, p);
            if (st) break;
            const float *ui = uf + (i1 + i) * cols + i1; /* row i1+i of U, from column i1 */
            for (size_t r = 0; r < rows; r++) {
                float *wr = w1 + r * bw;
                const float q = keep1[r * bw + i] ? wr[i] : 0.0f;
                const float e = (wr[i] - q) / ui[i];
                err1[r * bw + i] = e;
                wr[i] = q;
                for (size_t k = i + 1; k < bw; k++) wr[k] -= e * ui[k];
            }
        }
        if (st) break;
        for (size_t r = 0; r < rows; r++) {
            memcpy(w + r * cols + i1, w1 + r * bw, bw * sizeof(float));
            if (mask) memcpy(mask + r * cols + i1, keep1 + r * bw, bw);
        }
        if (i2 < cols) /* W[:, i2:] -= Err1 (rows, bw) . U[i1:i2, i2:] (bw, cols - i2) */
            nmf_gemm(0, 0, rows, cols - i2, bw, -1.0f, err1, bw, uf + i1 * cols + i2, cols, 1.0f,
                     w + i2, cols);
    }
    nmf_free(uf);
    nmf_free(w1);
    nmf_free(err1);
    nmf_free(tmp);
    nmf_free(d);
    nmf_free(keep1);
    nmf_free(gmask);
    return st;
}
