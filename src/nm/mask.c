/* Magnitude masks: per group of M consecutive weights along a row, keep the N largest |w|,
 * ties going to the lower index. Columns past `cols` (zero padding) have magnitude 0. */
#include <math.h>
#include <string.h>

#include "nm_internal.h"

/* keep[j] = 1 for the kept positions of one group (mag has m entries). A position is kept when
 * fewer than n positions beat it, where k beats j if |w_k| > |w_j|, or equal and k < j.
 * O(M^2) per group, M <= 32: simple and exact, and well below the cost of one GEMM pass. */
void nm_group_topn(uint8_t *keep, const float *mag, int n, int m) {
    for (int j = 0; j < m; j++) {
        int beaten_by = 0;
        for (int k = 0; k < m && beaten_by < n; k++)
            beaten_by += mag[k] > mag[j] || (mag[k] == mag[j] && k < j);
        keep[j] = beaten_by < n;
    }
}

/* Loads the magnitudes of group g of a row into mag[m] (padding -> 0). Fails on NaN. */
int nm_group_magnitudes(float *mag, const float *row, size_t cols, size_t g, int m) {
    size_t c0 = g * (size_t)m;
    for (int j = 0; j < m; j++) {
        size_t c = c0 + (size_t)j;
        float v = c < cols ? row[c] : 0.0f;
        if (isnan(v)) return 0;
        mag[j] = fabsf(v);
    }
    return 1;
}

/* Calls keep_group(ctx, r, g, keep) with the magnitude top-N of every group, in row order. */
static nmf_status for_each_group_keep(const float *w, size_t rows, size_t cols, nmf_pattern p,
                                      int pad,
                                      void (*keep_group)(void *, size_t, size_t, const uint8_t *),
                                      void *ctx) {
    size_t groups;
    nmf_status st = nmf_nm_groups(cols, p, pad, &groups);
    if (st != NMF_OK) return st;
    float mag[NMF_NM_MAX_M];
    uint8_t keep[NMF_NM_MAX_M];
    for (size_t r = 0; r < rows; r++)
        for (size_t g = 0; g < groups; g++) {
            if (!nm_group_magnitudes(mag, w + r * cols, cols, g, p.m))
                return nmf_error(NMF_ERR_NUMERIC, "NaN weight in row %zu, group %zu", r, g);
            nm_group_topn(keep, mag, p.n, p.m);
            keep_group(ctx, r, g, keep);
        }
    return NMF_OK;
}

typedef struct {
    uint8_t *mask; /* mask_group writes 0/1 */
    float *w;      /* prune_group zeroes dropped weights */
    size_t cols;
    int m;
} group_target;

static void mask_group(void *ctx, size_t r, size_t g, const uint8_t *keep) {
    group_target *t = ctx;
    for (size_t j = 0, c = g * (size_t)t->m; j < (size_t)t->m && c < t->cols; j++, c++)
        t->mask[r * t->cols + c] = keep[j];
}

static void prune_group(void *ctx, size_t r, size_t g, const uint8_t *keep) {
    group_target *t = ctx;
    for (size_t j = 0, c = g * (size_t)t->m; j < (size_t)t->m && c < t->cols; j++, c++)
        if (!keep[j]) t->w[r * t->cols + c] = 0.0f;
}

nmf_status nmf_nm_mask(uint8_t *mask, const float *w, size_t rows, size_t cols, nmf_pattern p,
                       int pad) {
    group_target t = {mask, NULL, cols, p.m};
    return for_each_group_keep(w, rows, cols, p, pad, mask_group, &t);
}

nmf_status nmf_nm_check(const float *w, size_t rows, size_t cols, nmf_pattern p, int pad,
                        int *is_nm) {
    size_t groups;
    nmf_status st = nmf_nm_groups(cols, p, pad, &groups);
    if (st != NMF_OK) return st;
    *is_nm = 1;
    for (size_t r = 0; r < rows && *is_nm; r++)
        for (size_t g = 0; g < groups; g++) {
            int nonzero = 0;
            for (size_t c = g * (size_t)p.m; c < (g + 1) * (size_t)p.m && c < cols; c++)
                nonzero += w[r * cols + c] != 0.0f;
            if (nonzero > p.n) {
                *is_nm = 0;
                break;
            }
        }
    return NMF_OK;
}

nmf_status nmf_nm_prune(float *w, size_t rows, size_t cols, nmf_pattern p, int pad) {
    group_target t = {NULL, w, cols, p.m};
    return for_each_group_keep(w, rows, cols, p, pad, prune_group, &t);
}
