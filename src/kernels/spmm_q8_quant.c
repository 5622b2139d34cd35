/* Dynamic per-token quantisation of the inputs of an int8 product (spmm_q8.h): one pass for
 * the token's largest magnitude, one to quantise. Portable C: it is tokens x in operations
 * against the product's tokens x out x kept (measured in docs/PERFORMANCE.md). */
#include <string.h>

#include "kernels/spmm_q8.h"

size_t nmf_q8_quantize_tokens(uint8_t *xq, size_t ldq, float *sx, const float *x, size_t ldx,
                              size_t in, size_t t0, size_t t1) {
    size_t bad = 0;
    for (size_t t = t0; t < t1; t++) {
        const float *xt = x + t * ldx; // (in)
        uint8_t *qt = xq + t * ldq;    // (ldq)
        float amax = 0.0f;
        int nan = 0;
        nmf_q8_amax(xt, 0, in, &amax, &nan);
        memset(qt, 128, ldq); /* q = 0, padding columns included */
        if (nan || !isfinite(amax)) {
            sx[t] = 0.0f;
            bad++;
            continue;
        }
        float inv;
        sx[t] = nmf_q8_scale(amax, &inv);
        for (size_t i = 0; i < in; i++) qt[i] = (uint8_t)(nmf_q8_round(xt[i] * inv) + 128);
    }
    return bad;
}
