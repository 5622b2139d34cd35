/* Wanda (Sun, Liu, Bair, Kolter 2023, "A Simple and Effective Pruning Approach for Large
 * Language Models"): a weight matters as much as it moves the output, |W_ij| times the size of
 * its input, ||X_j||_2 over the calibration tokens. N:M keeps the N largest scores of each group
 * of M inputs of a row; nothing is updated. */
#include <math.h>

#include "nmformer/prune.h"

void nmf_wanda_scores(float *scores, const float *w, const double *sumsq, size_t rows, size_t cols) {
    for (size_t j = 0; j < cols; j++) {
        const float norm = (float)sqrt(sumsq[j]); /* ||X_j||_2 */
        for (size_t r = 0; r < rows; r++) scores[r * cols + j] = fabsf(w[r * cols + j]) * norm;
    }
}

nmf_status nmf_wanda_prune(float *w, uint8_t *mask, const double *sumsq, size_t rows, size_t cols,
                           nmf_pattern p) {
    if (!w || !sumsq || !nmf_pattern_valid(p))
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_wanda_prune: NULL argument or invalid pattern");
    size_t n;
    if (nmf_mul_overflow(rows, cols, &n)) return nmf_error(NMF_ERR_NOMEM, "wanda: %zu x %zu", rows, cols);
    float *scores = nmf_alloc(n, sizeof(float));
    uint8_t *keep = mask ? mask : nmf_alloc(n, 1);
    nmf_status st = NMF_OK;
    if (!scores || !keep) st = nmf_error(NMF_ERR_NOMEM, "wanda scores of %zu x %zu", rows, cols);
    if (!st) {
        nmf_wanda_scores(scores, w, sumsq, rows, cols);
        st = nmf_nm_mask(keep, scores, rows, cols, p, 0); /* the top N scores per group */
    }
    if (!st)
        for (size_t i = 0; i < n; i++)
            if (!keep[i]) w[i] = 0.0f;
    nmf_free(scores);
    if (keep != mask) nmf_free(keep);
    return st;
}
