/* The token-vectorised layout (spmm.h) from the panel layout: one builder for every ISA's
 * token-vectorised kernel (the block height R and the xT row length TOK are parameters). */
#include <stdint.h>

#include "kernels/spmm.h"

nmf_status nmf_spmm_tv_layout(nmf_spmm_weights *w, size_t R, size_t tok, size_t kb,
                              void **storage) {
    const size_t G = w->groups, n = (size_t)w->n, m = (size_t)w->m, K = G * n;
    const size_t blocks = (w->out + R - 1) / R;
    if (kb == 0 || kb > K) kb = K;
    size_t slots, bytes;
    if (R == 0 || tok == 0 || w->in > UINT32_MAX / (tok * sizeof(float)) ||
        nmf_mul_overflow(blocks * R, K, &slots) ||
        nmf_mul_overflow(slots, sizeof(nmf_tv_pair), &bytes))
        return nmf_error(NMF_ERR_UNSUPPORTED, "linear: %zu x %zu too large for the tv layout",
                         w->out, w->in);
    nmf_tv_pair *pairs = nmf_alloc(bytes, 1); /* zeroed: padding rows are value 0, offset 0 */
    if (!pairs) return nmf_error(NMF_ERR_NOMEM, "linear: tv layout: out of memory");
    for (size_t o = 0; o < w->out; o++) {
        const size_t b = o / NMF_SPMM_ROWS, r = o % NMF_SPMM_ROWS, rb = o / R, rr = o % R;
        for (size_t g = 0; g < G; g++)
            for (size_t k = 0; k < n; k++) {
                const size_t src = ((b * G + g) * n + k) * NMF_SPMM_ROWS + r;
                /* kept index j in input block jk = j / kb, of len kept indices */
                const size_t j = g * n + k, j0 = j / kb * kb, len = K - j0 < kb ? K - j0 : kb;
                const size_t dst = j0 * blocks * R + (rb * len + j - j0) * R + rr;
                /* padding columns are value 0 at position 0 in the panel layout too */
                const uint32_t o = (uint32_t)((g * m + w->idx[src]) * tok * sizeof(float));
                pairs[dst] = (nmf_tv_pair){w->val[src], o};
            }
    }
    *storage = pairs;
    w->tv_rows = R;
    w->tv_tokens = tok;
    w->tv_kblock = kb;
    w->tv_pairs = pairs;
    return NMF_OK;
}
