/* N:M x dense kernels, AVX2 + FMA. Layout and method: spmm.h; same scheme as spmm_avx512.c with
 * a 16-row panel as two 8-lane halves and 16 ymm registers, hence 4 tokens per block.
 * M <= 8: the group's inputs fit one ymm and vpermps selects the operands.
 * 8 < M <= 16: two ymm tables, two vpermps and a blend on bit 3 of the position.
 * M > 16: four vpermps straight from memory (the tables are not kept in registers) and three
 * blends on bits 3 and 4 (vgatherdps was tried first: 2x slower on Zen 4). */
#include <immintrin.h>
#include <string.h>

#include "kernels/gelu_avx2.h"
#include "kernels/ops_internal.h"
#include "kernels/spmm.h"
#include "kernels/spmm_backward.h"

#define TB 4               /* tokens per block */
#define X_TILE_FLOATS 4096 /* TB tokens x chunk columns kept in L1 (16 KiB) */

enum { SEL_PERM = 0, SEL_PERM2, SEL_PERM4, SEL_COUNT };

static __m256i lane_mask(size_t count) { /* lanes [0, count) set; count may exceed 8 */
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int c = count > 8 ? 8 : (int)count;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), iota);
}

/* GELU on a panel's first `rows` rows of tr tokens of y, in place, inlined (as in
 * spmm_avx512.c: a call of the elementwise kernel per token and panel cost more than the GELU). */
static inline __attribute__((always_inline)) void gelu_panel(float *y, size_t ldy, size_t tr,
                                                             size_t rows) {
    const __m256i lo = lane_mask(rows), hi = lane_mask(rows > 8 ? rows - 8 : 0);
    for (size_t u = 0; u < tr; u++, y += ldy) {
        _mm256_maskstore_ps(y, lo, nmf_gelu8_avx2(_mm256_maskload_ps(y, lo)));
        _mm256_maskstore_ps(y + 8, hi, nmf_gelu8_avx2(_mm256_maskload_ps(y + 8, hi)));
    }
}

/* The 8 operands for positions id (0..M-1) of one group: lo/hi hold its inputs 0..7/8..15
 * (M <= 16); for M > 16 the four 8-float tables are read from xp (memory operands of vpermps:
 * 16 ymm registers cannot hold them for 4 tokens next to 8 accumulators; tried for M <= 16
 * too, it was slower there). b3, b4: id shifted so that
 * bit 3 / bit 4 of the position is the sign bit (what blendv tests). */
static inline __attribute__((always_inline)) __m256 select8(__m256 lo, __m256 hi, __m256i id,
                                                             __m256 b3, __m256 b4,
                                                             const float *xp, const int SEL) {
    if (SEL == SEL_PERM) return _mm256_permutevar8x32_ps(lo, id);
    if (SEL == SEL_PERM2)
        return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, id),
                                _mm256_permutevar8x32_ps(hi, id), b3);
    __m256 a = _mm256_permutevar8x32_ps(_mm256_loadu_ps(xp), id);
    __m256 b = _mm256_permutevar8x32_ps(_mm256_loadu_ps(xp + 8), id);
    __m256 c = _mm256_permutevar8x32_ps(_mm256_loadu_ps(xp + 16), id);
    __m256 d = _mm256_permutevar8x32_ps(_mm256_loadu_ps(xp + 24), id);
    return _mm256_blendv_ps(_mm256_blendv_ps(a, b, b3), _mm256_blendv_ps(c, d, b3), b4);
}

/* TR tokens x 16 rows over groups [g0, g1). Groups before gsafe are loaded with plain loads
 * (xmm for M <= 4, ymm for M <= 8, two ymm for M <= 16, four for M <= 32), which stay inside
 * the row; the last few with maskload (or, for M > 16, from a zero-padded copy), so nothing past
 * column in-1 is read. */
static inline __attribute__((always_inline)) void
tile(float *y, size_t ldy, const float *x, size_t ldx, const float *val, const uint16_t *v16,
     const uint8_t *idx, size_t g0, size_t g1, size_t gsafe, size_t in, size_t m, size_t n_rt,
     size_t rows, const float *bias, int first, const int TR, const int NC, const int SEL,
     const int BF) {
    const size_t n = NC ? (size_t)NC : n_rt;
    const __m256i rlo = lane_mask(rows), rhi = lane_mask(rows > 8 ? rows - 8 : 0);
    __m256 acc[TB][2];
    for (int t = 0; t < TR; t++) {
        const float *src = first ? bias : y + (size_t)t * ldy;
        acc[t][0] = src ? _mm256_maskload_ps(src, rlo) : _mm256_setzero_ps();
        acc[t][1] = src ? _mm256_maskload_ps(src + 8, rhi) : _mm256_setzero_ps();
    }
    const float *xp = x + g0 * m;
    float tail[TB][32]; /* M > 16, groups near the row end: a zero-padded copy */
    for (size_t g = g0; g < g1; g++, xp += m) {
        __m256 xl[TB], xh[TB];
        const float *src[TB]; /* M > 16: where each token's group starts */
        for (int t = 0; t < TR; t++) src[t] = xp + (size_t)t * ldx;
        if (SEL == SEL_PERM4 && g >= gsafe) {
            const size_t valid = in - g * m < m ? in - g * m : m;
            for (int t = 0; t < TR; t++) {
                for (size_t j = 0; j < 32; j++) tail[t][j] = j < valid ? src[t][j] : 0.0f;
                src[t] = tail[t];
            }
        }
        if (g < gsafe) {
            for (int t = 0; t < TR; t++) {
                const float *p = xp + (size_t)t * ldx;
                xl[t] = xh[t] = _mm256_setzero_ps();
                if (SEL == SEL_PERM)
                    xl[t] = m <= 4 ? _mm256_zextps128_ps256(_mm_loadu_ps(p)) : _mm256_loadu_ps(p);
                if (SEL == SEL_PERM2) {
                    xl[t] = _mm256_loadu_ps(p);
                    xh[t] = _mm256_loadu_ps(p + 8);
                }
            }
        } else {
            const size_t valid = in - g * m < m ? in - g * m : m;
            const __m256i mlo = lane_mask(valid), mhi = lane_mask(valid > 8 ? valid - 8 : 0);
            for (int t = 0; t < TR; t++) {
                xl[t] = xh[t] = _mm256_setzero_ps();
                if (SEL != SEL_PERM4) xl[t] = _mm256_maskload_ps(xp + (size_t)t * ldx, mlo);
                if (SEL == SEL_PERM2) xh[t] = _mm256_maskload_ps(xp + 8 + (size_t)t * ldx, mhi);
            }
        }
        for (size_t k = 0; k < n; k++) {
            /* bf16: 16 rows paired in 8 u32 lanes (spmm.h); an f32 is bf16 << 16 */
            const __m256i pairs =
                BF ? _mm256_loadu_si256((const __m256i *)v16) : _mm256_setzero_si256();
            /* BF == 2: the slot's 64-bit word of nibble positions in every u64 lane (spmm.h
             * idx4), shifted per lane below */
            uint64_t word = 0;
            if (BF == 2) memcpy(&word, idx, sizeof word);
            const __m256i nib = _mm256_set1_epi64x((long long)word);
            for (int h = 0; h < 2; h++) {
                const __m256 wv =
                    !BF ? _mm256_load_ps(val + 8 * h)
                    : h == 0 ? _mm256_castsi256_ps(_mm256_slli_epi32(pairs, 16))
                             : _mm256_castsi256_ps(_mm256_and_si256(
                                   pairs, _mm256_set1_epi32(-65536) /* 0xFFFF0000 */));
                const __m256i id =
                    /* (bits above the nibble stay: vpermps reads bits 0-2 and b3 bit 3) */
                    BF == 2 ? _mm256_srlv_epi32(nib, h == 0 ? _mm256_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12)
                                                            : _mm256_setr_epi32(16, 16, 20, 20, 24, 24, 28, 28))
                            : _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(idx + 8 * h)));
                const __m256 b3 = _mm256_castsi256_ps(_mm256_slli_epi32(id, 28));
                const __m256 b4 = _mm256_castsi256_ps(_mm256_slli_epi32(id, 27));
                for (int t = 0; t < TR; t++)
                    acc[t][h] = _mm256_fmadd_ps(
                        wv, select8(xl[t], xh[t], id, b3, b4, src[t], SEL), acc[t][h]);
            }
            if (BF) v16 += NMF_SPMM_ROWS; /* (the other may be NULL) */
            else val += NMF_SPMM_ROWS;
            idx += BF == 2 ? NMF_SPMM_ROWS / 2 : NMF_SPMM_ROWS;
        }
    }
    for (int t = 0; t < TR; t++) {
        _mm256_maskstore_ps(y + (size_t)t * ldy, rlo, acc[t][0]);
        _mm256_maskstore_ps(y + (size_t)t * ldy + 8, rhi, acc[t][1]);
    }
}

typedef void (*tile_fn)(float *, size_t, const float *, size_t, const float *, const uint16_t *,
                        const uint8_t *, size_t, size_t, size_t, size_t, size_t, size_t, size_t,
                        const float *, int);

#define DEF_TILE(TR, NC, SEL, BF)                                                              \
    static void tile_##TR##_##NC##_##SEL##_##BF(                                               \
        float *y, size_t ldy, const float *x, size_t ldx, const float *val,                    \
        const uint16_t *v16, const uint8_t *idx, size_t g0, size_t g1, size_t gsafe, size_t in, \
        size_t m, size_t n, size_t rows, const float *b, int first) {                          \
        tile(y, ldy, x, ldx, val, v16, idx, g0, g1, gsafe, in, m, n, rows, b, first, TR, NC,   \
             SEL, BF);                                                                         \
    }
#define DEF_TILES(NC, SEL, BF) DEF_TILE(4, NC, SEL, BF) DEF_TILE(2, NC, SEL, BF) DEF_TILE(1, NC, SEL, BF)
#define DEF_ALL(BF)                                                                            \
    DEF_TILES(1, 0, BF) DEF_TILES(2, 0, BF) DEF_TILES(4, 0, BF) DEF_TILES(0, 0, BF)           \
    DEF_TILES(1, 1, BF) DEF_TILES(2, 1, BF) DEF_TILES(4, 1, BF) DEF_TILES(0, 1, BF)           \
    DEF_TILES(1, 2, BF) DEF_TILES(2, 2, BF) DEF_TILES(4, 2, BF) DEF_TILES(0, 2, BF)
DEF_ALL(0)
DEF_ALL(1) /* bf16 values (params.bf16: w->val16) */
DEF_ALL(2) /* bf16 values, positions as nibbles (w->idx4) */

#define ROW_TILES(NC, SEL, BF)                                                                 \
    {tile_4_##NC##_##SEL##_##BF, tile_2_##NC##_##SEL##_##BF, tile_1_##NC##_##SEL##_##BF}
#define SEL_TILES(SEL, BF)                                                                     \
    {ROW_TILES(1, SEL, BF), ROW_TILES(2, SEL, BF), ROW_TILES(4, SEL, BF), ROW_TILES(0, SEL, BF)}
static const tile_fn tiles[3][SEL_COUNT][4][3] = {
    {SEL_TILES(0, 0), SEL_TILES(1, 0), SEL_TILES(2, 0)},
    {SEL_TILES(0, 1), SEL_TILES(1, 1), SEL_TILES(2, 1)},
    {SEL_TILES(0, 2), SEL_TILES(1, 2), SEL_TILES(2, 2)}};

static int n_slot(int n) { return n == 1 ? 0 : n == 2 ? 1 : n == 4 ? 2 : 3; }

void nmf_spmm_forward_avx2(float *y, const float *x, size_t ldx, size_t x_slack,
                           const nmf_spmm_weights *w, const float *bias, size_t tokens,
                           nmf_activation act, size_t p0, size_t p1,
                           const nmf_spmm_params *prm) {
    /* bf16 values (the layer's plan says): 1, 2 with nibble positions (a compact layer) */
    const int bf = prm && prm->bf16 && w->val16 ? (w->idx4 ? 2 : 1) : 0;
    const size_t in = w->in, out = w->out, G = w->groups, m = (size_t)w->m, n = (size_t)w->n;
    const size_t panel_slots = G * n * NMF_SPMM_ROWS;
    const int sel = m <= 8 ? SEL_PERM : m <= 16 ? SEL_PERM2 : SEL_PERM4, ns = n_slot(w->n);
    const size_t lw = m <= 4 ? 4 : m <= 8 ? 8 : m <= 16 ? 16 : 32; /* floats a group load reads */
    size_t gsafe = x_slack >= NMF_SPMM_X_SLACK ? G : in < lw ? 0 : (in - lw) / m + 1;
    if (gsafe > G) gsafe = G;
    size_t chunk = X_TILE_FLOATS / TB / m;
    if (chunk < 1) chunk = 1;
    if (tokens == 1) chunk = G; /* GEMV: one pass over the weights */
    for (size_t t0 = 0; t0 < tokens; t0 += TB) {
        const size_t tr = tokens - t0 < TB ? tokens - t0 : TB;
        for (size_t c0 = 0; c0 < G; c0 += chunk) {
            const size_t c1 = G - c0 < chunk ? G : c0 + chunk;
            for (size_t b = p0; b < p1; b++) {
                const size_t r0 = b * NMF_SPMM_ROWS;
                const size_t rows = out - r0 < NMF_SPMM_ROWS ? out - r0 : NMF_SPMM_ROWS;
                const size_t off = b * panel_slots + c0 * n * NMF_SPMM_ROWS;
                const float *bb = bias ? bias + r0 : NULL;
                size_t t = 0;
                for (int s = 0; s < 3; s++) {
                    const size_t len = (size_t)TB >> s;
                    if (tr - t >= len) {
                        tiles[bf][sel][ns][s](y + (t0 + t) * out + r0, out, x + (t0 + t) * ldx,
                                              ldx, bf ? NULL : w->val + off,
                                              bf ? w->val16 + off : NULL,
                                              bf == 2 ? w->idx4 + off / 2 : w->idx + off, c0, c1,
                                              gsafe, in, m, n, rows, bb, c0 == 0);
                        t += len;
                    }
                }
                if (c1 == G && act == NMF_ACT_GELU) gelu_panel(y + t0 * out + r0, out, tr, rows);
            }
        }
    }
}

void nmf_spmm_backward_avx2(float *dx, const float *dy, const nmf_spmm_weights *w, size_t t0,
                            size_t t1, float *work) {
    spmm_backward_impl(dx, dy, w, t0, t1, work);
}
