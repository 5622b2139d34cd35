/* int8 attention, AVX-512 VNNI: the numbers of attention_q8.h, blocked as the f32 kernel
 * (attention_avx512.c): QB queries x a tile of up to KT keys in QB x KT/16 int32 accumulators,
 * the scores of a chunk in a (QB, CHUNK) buffer with a running max vector per row, one softmax
 * step per chunk, then P V over the chunk.
 * - QK^T: per group of 4 channels, one load of 16 keys' u8 words per key vector and one
 *   broadcast of the query's s8 word per row, one vpdpbusd per (row, vector): 64 multiply-adds
 *   per instruction where the f32 kernel does 16.
 * - P V: per group of 4 keys, one load of 16 channels' s8 words per column vector and one
 *   broadcast of the row's 4 probabilities (u8), one vpdpbusd per (row, vector); the chunk's
 *   int32 sums are scaled into the f32 accumulators once per chunk. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/attention_q8.h"
#include "kernels/simd_exp.h"
#include "kernels/spmm_q8.h"

#define QB NMF_ATT_QB
#define KT NMF_ATT_KT
#define KV (KT / 16)
#define CHUNK NMF_ATT_CHUNK
#define NCMAX 4 /* column vectors of P V per pass: 6 x 4 accumulators + 4 V vectors */

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define NOINLINE static __attribute__((noinline))

/* acc + the 4 products of u8 a and s8 b in each lane (vpdpbusd). In asm with acc in/out: GCC 12
 * gives the intrinsic a fresh destination register and copies every accumulator around it (twice
 * the instructions of the register-blocked loops, and spills). */
static inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
}

/* the first n of 16 lanes */
static inline __mmask16 lanes(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/* the 4 bytes at p as one broadcast word */
static inline __m512i bcast_word(const void *p) {
    int32_t w;
    memcpy(&w, p, 4);
    return _mm512_set1_epi32(w);
}

/* One tile of nv key vectors (keys at kg, kscale already offset to the tile): the rows' scores,
 * scaled and masked (key index > limit[r] is -inf), into p (row r at p + r * CHUNK) and the
 * running max vectors mx. */
ALWAYS_INLINE void tile_step(int nv, int full, const int8_t *const qr[QB], const int32_t qoff[QB],
                             const float qscale[QB], const uint32_t *kg, size_t tkp, size_t G,
                             const float *kscale, const long limit[QB], float *p, float *mx) {
    __m512i s[QB][KV];
#pragma GCC unroll 8
    for (int r = 0; r < QB; r++)
#pragma GCC unroll 4
        for (int v = 0; v < KV; v++) s[r][v] = _mm512_setzero_si512();
    for (size_t g = 0; g < G; g++) {
        const uint32_t *kc = kg + g * tkp;
        __m512i kv[KV];
#pragma GCC unroll 4
        for (int v = 0; v < KV; v++)
            kv[v] = v < nv ? _mm512_loadu_si512(kc + 16 * v) : _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int r = 0; r < QB; r++) {
            const __m512i b = bcast_word(qr[r] + 4 * g);
#pragma GCC unroll 4
            for (int v = 0; v < KV; v++)
                if (v < nv) s[r][v] = dpbusd(s[r][v], kv[v], b);
        }
    }
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
#pragma GCC unroll 8
    for (int r = 0; r < QB; r++) {
        const __m512i off = _mm512_set1_epi32(qoff[r]);
        const __m512 qs = _mm512_set1_ps(qscale[r]);
        const __m512 lim = _mm512_set1_ps((float)limit[r]);
        __m512 rmax = _mm512_load_ps(mx + 16 * r);
#pragma GCC unroll 4
        for (int v = 0; v < KV; v++) {
            if (v >= nv) break;
            __m512 x = _mm512_cvtepi32_ps(_mm512_sub_epi32(s[r][v], off));
            x = _mm512_mul_ps(_mm512_mul_ps(x, qs), _mm512_loadu_ps(kscale + 16 * v));
            if (!full) {
                const __mmask16 ok = _mm512_cmp_ps_mask(
                    _mm512_add_ps(iota, _mm512_set1_ps(16.0f * v)), lim, _CMP_LE_OQ);
                x = _mm512_mask_mov_ps(neg_inf, ok, x);
            }
            rmax = _mm512_max_ps(rmax, x);
            _mm512_storeu_ps(p + (size_t)r * CHUNK + 16 * v, x);
        }
        _mm512_store_ps(mx + 16 * r, rmax);
    }
}

typedef void (*tile_fn)(const int8_t *const qr[QB], const int32_t qoff[QB], const float qscale[QB],
                        const uint32_t *kg, size_t tkp, size_t G, const float *kscale,
                        const long limit[QB], float *p, float *mx);
#define TILE(NV, FULL)                                                                         \
    NOINLINE void tile_##NV##_##FULL(const int8_t *const qr[QB], const int32_t qoff[QB],        \
                                     const float qscale[QB], const uint32_t *kg, size_t tkp,    \
                                     size_t G, const float *kscale, const long limit[QB],       \
                                     float *p, float *mx) {                                     \
        tile_step(NV, FULL, qr, qoff, qscale, kg, tkp, G, kscale, limit, p, mx);               \
    }
TILE(1, 0) TILE(1, 1) TILE(2, 0) TILE(2, 1) TILE(3, 0) TILE(3, 1) TILE(4, 0) TILE(4, 1)
#undef TILE
static const tile_fn tiles_by_shape[KV][2] = { /* [nv - 1][full] */
    {tile_1_0, tile_1_1}, {tile_2_0, tile_2_1}, {tile_3_0, tile_3_1}, {tile_4_0, tile_4_1}};

/* nmf_q8_p255 (attention_q8.h) in 16 lanes, operation for operation */
ALWAYS_INLINE __m512 p255(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-16.0f)), _mm512_setzero_ps());
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(x, n);
    __m512 p;
    NMF_Q8_P255_POLY(p, f, _mm512_set1_ps, _mm512_fmadd_ps);
    return _mm512_scalef_ps(p, n);
}

/* The chunk's softmax step for every row (attention_q8.h; nmf_q8_chunk_step's numbers, the six
 * rows' m and alpha in one vector), then nvec vectors of scores to u8 probabilities and their
 * sum into l. */
NOINLINE void softmax_chunk(const float *p, uint8_t *p8, size_t nvec, const float *mx, float *m,
                            float *l, float *alpha) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __mmask16 rows = (__mmask16)((1u << QB) - 1);
    _Alignas(64) float cmax[16] = {0}, neg_m[16];
    for (int r = 0; r < QB; r++) cmax[r] = _mm512_reduce_max_ps(_mm512_load_ps(mx + 16 * r));
    const __m512 mold = _mm512_maskz_loadu_ps(rows, m);
    const __m512 mnew = _mm512_max_ps(mold, _mm512_mul_ps(_mm512_load_ps(cmax), log2e));
    const __mmask16 none = _mm512_cmp_ps_mask(mnew, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
    const __m512 msafe = _mm512_mask_mov_ps(mnew, none, _mm512_setzero_ps());
    _mm512_mask_storeu_ps(alpha, rows, nmf_exp2_512_nonpos(_mm512_mask_mov_ps(
                                           _mm512_sub_ps(mold, msafe), none, _mm512_setzero_ps())));
    _mm512_mask_storeu_ps(m, rows, mnew);
    _mm512_store_ps(neg_m, _mm512_sub_ps(_mm512_setzero_ps(), msafe));
    for (int r = 0; r < QB; r++) {
        const __m512 vm = _mm512_set1_ps(neg_m[r]);
        const float *pr = p + (size_t)r * CHUNK;
        uint8_t *qr = p8 + (size_t)r * CHUNK;
        __m512i sum = _mm512_setzero_si512();
        for (size_t v = 0; v < nvec; v++) {
            const __m512i q = _mm512_cvtps_epi32(p255(_mm512_fmadd_ps(_mm512_loadu_ps(pr + 16 * v), log2e, vm)));
            sum = _mm512_add_epi32(sum, q);
            _mm_storeu_si128((__m128i *)(void *)(qr + 16 * v), _mm512_cvtepi32_epi8(q));
        }
        l[r] = fmaf(l[r], alpha[r], (float)_mm512_reduce_add_epi32(sum));
    }
}

/* acc[r][cc .. cc + 16 nc) = fmaf(sum_j p8[r][j] v8[j][..], vscale, acc * alpha[r]) over ng
 * groups of 4 keys (vg at the chunk's first group); on the first chunk acc * alpha is +0 (the
 * reference's 0 * alpha) and acc is not read: it need not be zeroed. */
ALWAYS_INLINE void pv_step(int nc, float *acc, size_t dp, const float *alpha, const uint8_t *p8,
                           const uint32_t *vg, const float *vscale, size_t ng, size_t cc, int first) {
    __m512i ia[QB][NCMAX];
#pragma GCC unroll 8
    for (int r = 0; r < QB; r++)
#pragma GCC unroll 4
        for (int u = 0; u < NCMAX; u++) ia[r][u] = _mm512_setzero_si512();
    for (size_t jg = 0; jg < ng; jg++) {
        const uint32_t *vr = vg + jg * dp + cc;
        __m512i vv[NCMAX];
#pragma GCC unroll 4
        for (int u = 0; u < NCMAX; u++)
            vv[u] = u < nc ? _mm512_loadu_si512(vr + 16 * u) : _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int r = 0; r < QB; r++) {
            const __m512i pb = bcast_word(p8 + (size_t)r * CHUNK + 4 * jg);
#pragma GCC unroll 4
            for (int u = 0; u < NCMAX; u++)
                if (u < nc) ia[r][u] = dpbusd(ia[r][u], pb, vv[u]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < QB; r++) {
        const __m512 a = _mm512_set1_ps(alpha[r]);
#pragma GCC unroll 4
        for (int u = 0; u < NCMAX; u++) {
            if (u >= nc) break;
            float *ar = acc + (size_t)r * dp + cc + 16 * u;
            const __m512 prev = first ? _mm512_setzero_ps() : _mm512_mul_ps(_mm512_loadu_ps(ar), a);
            _mm512_storeu_ps(ar, _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][u]),
                                                 _mm512_loadu_ps(vscale + cc + 16 * u), prev));
        }
    }
}

typedef void (*pv_fn)(float *acc, size_t dp, const float *alpha, const uint8_t *p8,
                      const uint32_t *vg, const float *vscale, size_t ng, size_t cc, int first);
#define PV(NC)                                                                                   \
    NOINLINE void pv_##NC(float *acc, size_t dp, const float *alpha, const uint8_t *p8,           \
                          const uint32_t *vg, const float *vscale, size_t ng, size_t cc,         \
                          int first) {                                                           \
        pv_step(NC, acc, dp, alpha, p8, vg, vscale, ng, cc, first);                              \
    }
PV(1) PV(2) PV(3) PV(4)
#undef PV
static const pv_fn pv_by_width[NCMAX] = {pv_1, pv_2, pv_3, pv_4};

/* ---- packing (attention_q8.h; the bytes of attention_q8.c's portable layout) ---- */

/* V per channel over the Tk keys into groups of 4 keys, 64 channels at a time. */
static void pack_v(nmf_q8_head *h, const float *v, size_t ldv, size_t Tk, size_t d) {
    const size_t dp = h->dp, tkp = h->tkp;
    const __m512 magnitude = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    const __m512i byte = _mm512_set1_epi32(0xff);
    for (size_t cc = 0; cc < dp; cc += 16 * NCMAX) {
        const int nc = (int)((dp - cc) / 16 < NCMAX ? (dp - cc) / 16 : NCMAX);
        __mmask16 in[NCMAX], nan[NCMAX] = {0, 0, 0, 0};
        __m512 amax[NCMAX];
        for (int u = 0; u < NCMAX; u++) {
            in[u] = u < nc ? lanes(cc + 16 * (size_t)u < d ? d - cc - 16 * (size_t)u : 0) : 0;
            amax[u] = _mm512_setzero_ps();
        }
        for (size_t j = 0; j < Tk; j++)
            for (int u = 0; u < nc; u++) {
                const __m512 x = _mm512_maskz_loadu_ps(in[u], v + j * ldv + cc + 16 * u);
                nan[u] |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
                amax[u] = _mm512_max_ps(amax[u], _mm512_and_ps(x, magnitude));
            }
        __m512 inv[NCMAX];
        for (int u = 0; u < nc; u++) {
            _Alignas(64) float m[16], iv[16], sc[16];
            _mm512_store_ps(m, amax[u]);
            for (int c = 0; c < 16; c++) { /* the portable scale, channel by channel */
                const int ok = !((nan[u] >> c) & 1) && isfinite(m[c]);
                sc[c] = ok ? nmf_q8_scale(m[c], &iv[c]) : 0.0f;
                if (sc[c] == 0.0f) iv[c] = 0.0f;
            }
            inv[u] = _mm512_load_ps(iv);
            _mm512_storeu_ps(h->vscale + cc + 16 * u, _mm512_load_ps(sc));
        }
        for (size_t j0 = 0; j0 < tkp; j0 += 4)
            for (int u = 0; u < nc; u++) {
                const __mmask16 good = _mm512_cmp_ps_mask(inv[u], _mm512_setzero_ps(), _CMP_NEQ_UQ);
                __m512i w = _mm512_setzero_si512();
                for (int b = 0; b < 4; b++) {
                    if (j0 + (size_t)b >= Tk) break;
                    const __m512 x = _mm512_maskz_loadu_ps(good & in[u], v + (j0 + b) * ldv + cc + 16 * u);
                    const __m512 y = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, inv[u]), lo), hi);
                    w = _mm512_or_si512(w, _mm512_slli_epi32(_mm512_and_si512(_mm512_cvtps_epi32(y), byte), 8 * b));
                }
                _mm512_storeu_si512(h->vg + (j0 / 4) * dp + cc + 16 * u, w);
            }
    }
}

void nmf_q8_attention_layout_avx512(nmf_q8_head *h, const uint8_t *ktmp, const float *v,
                                    const nmf_attention_shape *s) {
    const size_t d4 = h->d4, G = d4 / 4, tkp = h->tkp, Tk = s->Tk;
    /* Q: u8 -> s8 in place; sum q8 = sum u8 - 128 d4 (the padding bytes are 128) */
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (size_t i = 0; i < s->Tq; i++) {
        uint8_t *row = (uint8_t *)h->q8 + i * d4;
        __m512i sum = _mm512_setzero_si512();
        for (size_t c = 0; c < d4; c += 64) {
            const __mmask64 mk = d4 - c >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (d4 - c)) - 1);
            const __m512i u = _mm512_maskz_loadu_epi8(mk, row + c);
            sum = _mm512_add_epi64(sum, _mm512_sad_epu8(u, _mm512_setzero_si512()));
            _mm512_mask_storeu_epi8(row + c, mk, _mm512_xor_si512(u, flip));
        }
        h->qoff[i] = 128 * (int32_t)(_mm512_reduce_add_epi64(sum) - 128 * (long long)d4);
    }
    /* K: 16 keys x one 4-byte group per gather (padding keys k8 = 0) */
    const __m512i rows16 = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)d4));
    const __m512i pad = _mm512_set1_epi32((int)0x80808080u);
    for (size_t j0 = 0; j0 < tkp; j0 += 16) {
        const __mmask16 mk = lanes(j0 < Tk ? Tk - j0 : 0);
        for (size_t g = 0; g < G; g++)
            _mm512_storeu_si512(h->kg + g * tkp + j0,
                                _mm512_mask_i32gather_epi32(pad, mk, rows16, ktmp + j0 * d4 + 4 * g, 1));
    }
    pack_v(h, v, s->ldv, Tk, s->d);
}

void nmf_attention_q8_avx512(float *out, const nmf_q8_head *h, const nmf_attention_shape *sh) {
    const size_t Tq = sh->Tq, G = h->d4 / 4, tkp = h->tkp, dp = h->dp;
    for (size_t i0 = 0; i0 < Tq; i0 += QB) {
        nmf_q8_block b;
        nmf_q8_block_start(&b, h, sh, i0);
        const size_t nq = b.nq, *const last = b.last;
        const int8_t *const *qr = b.qr;
        const int32_t *qoff = b.qoff;
        const float *qscale = b.qscale;
        float *m = b.m, *l = b.l, alpha[QB];
        const size_t kend = last[QB - 1] + 1; /* rows are in order: the last sees the most */
        for (size_t c0 = 0; c0 < kend; c0 += CHUNK) {
            const size_t cend = kend - c0 < CHUNK ? kend : c0 + CHUNK;
            /* key vectors dealt evenly over the fewest tiles of at most KV (nmf_att_tile_of) */
            const size_t kvecs = (cend - c0 + 15) / 16, tiles = (kvecs + KV - 1) / KV;
            _Alignas(64) float mx[QB * 16];
            for (int r = 0; r < QB; r++) _mm512_store_ps(mx + 16 * r, _mm512_set1_ps(-INFINITY));
            for (size_t t = 0; t < tiles; t++) {
                long limit[QB];
                const nmf_att_tile tl = nmf_att_tile_of(kvecs, tiles, t, c0, last, limit);
                const size_t j0 = c0 + 16 * tl.v0;
                tiles_by_shape[tl.nv - 1][tl.full](qr, qoff, qscale, h->kg + j0, tkp, G,
                                                   h->kscale + j0, limit, h->scores + 16 * tl.v0, mx);
            }
            softmax_chunk(h->scores, h->p8, kvecs, mx, m, l, alpha);
            /* masked keys have p8 = 0, so P V runs over whole groups of 4 */
            const size_t ng = (cend - c0 + 3) / 4;
            for (size_t cc = 0; cc < dp; cc += 16 * NCMAX) {
                const size_t nc = (dp - cc) / 16 < NCMAX ? (dp - cc) / 16 : NCMAX;
                pv_by_width[nc - 1](h->acc, dp, alpha, h->p8, h->vg + (c0 / 4) * dp, h->vscale, ng, cc,
                                    c0 == 0);
            }
        }
        for (size_t r = 0; r < nq; r++) {
            const __m512 inv = _mm512_set1_ps(1.0f / l[r]);
            float *o = out + (i0 + r) * sh->ldo;
            for (size_t c = 0; c < sh->d; c += 16)
                _mm512_mask_storeu_ps(o + c, lanes(sh->d - c),
                                      _mm512_mul_ps(_mm512_load_ps(h->acc + r * dp + c), inv));
        }
    }
}
