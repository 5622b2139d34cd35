/* The token-vectorised product's loop nest, shared by every ISA's tv kernels (spmm_tv_avx2.c,
 * spmm_tv_avx512.c; the design is in the AVX2 file's header): row chunks outer, token tiles
 * inner, the layout's input blocks innermost; the ISA gives its microkernels (one per tile
 * height, in token vectors) and its store of a chunk's partial sums into y. No intrinsics here:
 * the loop runs once per input block of a chunk and tile, the work is in the calls. */
#include "kernels/ops_internal.h"
#include "kernels/spmm.h"

void nmf_spmm_tv_drive(float *y, const float *xT, const nmf_spmm_weights *w, const float *bias,
                       size_t tokens, nmf_activation act, size_t p0, size_t p1, size_t chunk,
                       float *yT, size_t lanes, const nmf_spmm_tv_rows_fn *rows,
                       nmf_spmm_tv_store_fn store) {
    const size_t in = w->in, out = w->out, n = (size_t)w->n;
    const size_t R = w->tv_rows, tok = w->tv_tokens, K = w->groups * n; /* kept per row */
    const size_t jb = w->tv_kblock, RB = (out + R - 1) / R;
    const size_t r0 = p0 * NMF_SPMM_ROWS, r1 = p1 * NMF_SPMM_ROWS < out ? p1 * NMF_SPMM_ROWS : out;
    if (r0 >= r1) return;
    const size_t ntiles = (tokens + tok - 1) / tok;
    const size_t tile_floats = nmf_round_up(in, NMF_TV_IN_ALIGN) * tok;
    chunk = chunk < NMF_SPMM_ROWS ? NMF_SPMM_ROWS : chunk / NMF_SPMM_ROWS * NMF_SPMM_ROWS;
    float *bpad = yT + chunk * tok; /* the chunk's bias, 0 past `out` */
    /* row chunks outer, token tiles inner (a layer of up to a chunk of rows: tiles outer) */
    for (size_t c0 = r0; c0 < r1; c0 += chunk) {
        const size_t c1 = r1 - c0 < chunk ? r1 : c0 + chunk;
        const size_t rb0 = c0 / R, rb1 = (c1 + R - 1) / R; /* R divides 16: c0 % R == 0 */
        for (size_t o = c0; o < rb1 * R; o++) bpad[o - c0] = bias && o < out ? bias[o] : 0.0f;
        for (size_t tile = 0; tile < ntiles; tile++) {
            const size_t t0 = tile * tok, tt = tokens - t0 < tok ? tokens - t0 : tok;
            const nmf_spmm_tv_rows_fn kern = rows[(tt + lanes - 1) / lanes];
            const float *xt = xT + tile * tile_floats;
            for (size_t j0 = 0; j0 < K; j0 += jb) {
                const size_t len = K - j0 < jb ? K - j0 : jb, at = j0 * RB * R;
                kern(yT, tok, xt, w->tv_pairs + at, len, rb0, rb1, j0 == 0, bpad);
            }
            store(y, out, yT, tok, c0, c1, t0, tt, act);
        }
    }
}
