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

nmf_status nmf_sparsegpt_factor(double *xtx, uint8_t *dead, size_t cols, double damp) {
    if (!(damp >= 0.0) || !isfinite(damp))
        return nmf_error(NMF_ERR_INVALID_ARG, "dampening %g: must be finite and >= 0", damp);
    double mean = 0.0;
    for (size_t j = 0; j < cols; j++) { /* an input never seen: diag 1, its weights zeroed */
        double *hjj = &xtx[j * cols + j];
        dead[j] = *hjj == 0.0;
        if (dead[j]) *hjj = 1.0;
        mean += *hjj;
    }
    mean /= (double)cols;
    for (size_t j = 0; j < cols; j++) xtx[j * cols + j] += damp * mean;
    return nmf_hinv_chol_upper(xtx, cols);
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

/* Pattern and shape checks shared by both entry points. */
static nmf_status check_args(const float *w, const void *h, size_t rows, size_t cols, nmf_pattern p) {
    if (!w || !h || !nmf_pattern_valid(p) || rows == 0 || cols == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_sparsegpt_prune: NULL argument, empty weight or "
                         "invalid pattern");
    if (cols % (size_t)p.m)
        return nmf_error(NMF_ERR_SHAPE, "%zu inputs are not a multiple of M = %d", cols, p.m);
    size_t n;
    if (nmf_mul_overflow(cols, cols, &n) || nmf_mul_overflow(rows, cols, &n))
        return nmf_error(NMF_ERR_NOMEM, "sparsegpt: %zu x %zu", rows, cols);
    return NMF_OK;
}

nmf_status nmf_sparsegpt_prune_factored(float *w, uint8_t *mask, const double *u, const uint8_t *dead,
                                        size_t rows, size_t cols, nmf_pattern p, size_t block_cols) {
    nmf_status st = check_args(w, u, rows, cols, p);
    if (st) return st;
    const size_t M = (size_t)p.m, nb = rows * cols;
    size_t B = block_cols / M * M;
    if (B == 0) B = M;
    if (B > cols) B = cols;
    /* U in float a block of rows at a time: rows [i1, i2), columns from i1 (B x cols at most) */
    float *uf = nmf_alloc(B * cols, sizeof(float));
    float *w1 = nmf_alloc(nb, sizeof(float)), *err1 = nmf_alloc(nb, sizeof(float));
    float *tmp = nmf_alloc(rows * M, sizeof(float)), *d = nmf_alloc(cols, sizeof(float));
    uint8_t *keep1 = nmf_alloc(nb, 1), *gmask = nmf_alloc(rows * M, 1);
    if (!uf || !w1 || !err1 || !tmp || !d || !keep1 || !gmask)
        st = nmf_error(NMF_ERR_NOMEM, "sparsegpt buffers for %zu x %zu", rows, cols);
    for (size_t j = 0; !st && j < cols; j++) {
        d[j] = (float)u[j * cols + j];
        if (dead[j])
            for (size_t r = 0; r < rows; r++) w[r * cols + j] = 0.0f;
    }

    for (size_t i1 = 0; !st && i1 < cols; i1 += B) {
        const size_t i2 = i1 + B < cols ? i1 + B : cols, bw = i2 - i1, pw = cols - i1;
        for (size_t i = 0; i < bw; i++) { /* row i1+i of U from column i1 (zero left of i1+i) */
            const double *src = u + (i1 + i) * cols + i1;
            float *dst = uf + i * pw;
            for (size_t j = 0; j < pw; j++) dst[j] = j < i ? 0.0f : (float)src[j];
        }
        for (size_t r = 0; r < rows; r++) memcpy(w1 + r * bw, w + r * cols + i1, bw * sizeof(float));
        for (size_t i = 0; !st && i < bw; i++) {
            if (i % M == 0) st = choose_group(keep1, tmp, gmask, w1, bw, i, d + i1 + i, rows, p);
            if (st) break;
            const float *ui = uf + i * pw; /* row i1+i of U, from column i1 */
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
            nmf_gemm(0, 0, rows, cols - i2, bw, -1.0f, err1, bw, uf + bw, pw, 1.0f, w + i2, cols);
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

nmf_status nmf_sparsegpt_prune(float *w, uint8_t *mask, const double *xtx, size_t rows, size_t cols,
                               nmf_pattern p, double damp, size_t block_cols) {
    nmf_status st = check_args(w, xtx, rows, cols, p);
    if (st) return st;
    if (!(damp >= 0.0) || !isfinite(damp))
        return nmf_error(NMF_ERR_INVALID_ARG, "dampening %g: must be finite and >= 0", damp);
    /* xtx is the caller's: the factor goes into a copy of its upper triangle */
    double *h = nmf_alloc(cols * cols, sizeof(double));
    uint8_t *dead = nmf_alloc(cols, 1);
    if (!h || !dead) st = nmf_error(NMF_ERR_NOMEM, "Hessian of %zu columns", cols);
    for (size_t i = 0; !st && i < cols; i++)
        memcpy(h + i * cols + i, xtx + i * cols + i, (cols - i) * sizeof(double));
    if (!st) st = nmf_sparsegpt_factor(h, dead, cols, damp);
    if (!st) st = nmf_sparsegpt_prune_factored(w, mask, h, dead, rows, cols, p, block_cols);
    nmf_free(h);
    nmf_free(dead);
    return st;
}

nmf_status nmf_sparsegpt_tap_prune(nmf_prune_tap *t, float *w, uint8_t *mask, size_t rows, size_t cols,
                                   nmf_pattern p, const nmf_prune_options *o) {
    if (!t->xtx || t->cols != cols)
        return nmf_error(NMF_ERR_INVALID_ARG, "sparsegpt: no X^T X of %zu columns", cols);
    if (!t->dead) { /* the first linear of the tap: X^T X becomes U, for the others too */
        if (!(t->dead = nmf_alloc(cols, 1))) return nmf_error(NMF_ERR_NOMEM, "dead inputs");
        nmf_status st = nmf_sparsegpt_factor(t->xtx, t->dead, cols, o->damp);
        if (st) { /* U half made: no linear may use it */
            nmf_prune_plan_drop_tap(t);
            return st;
        }
    }
    return nmf_sparsegpt_prune_factored(w, mask, t->xtx, t->dead, rows, cols, p, o->block_cols);
}
