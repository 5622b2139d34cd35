/* Fused attention, AVX-512: the online softmax of attention.c, register-blocked.
 *
 * K is transposed once per head into work (d, Tk16) so that a block of QB queries times a tile of
 * KT keys is a small GEMM vectorised over keys: for every c, load KT/16 vectors of K^T row c and
 * FMA them with QB broadcasts of q[r][c] into QB x KT/16 accumulators. The score tile never leaves
 * registers except as the exponentiated probabilities (QB, KT) that P V reads back; the output
 * accumulators (QB, d) live in work and are rescaled by alpha once per tile. */
#include <immintrin.h>
#include <math.h>

#include "kernels/ops_internal.h"
#include "kernels/simd_exp.h"

#define QB NMF_ATT_QB
#define KT NMF_ATT_KT
#define KV (KT / 16)

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* s[r][v] = sum_c qr[r][c] * kt[c*ldkt + 16v + lane], v < nv (nv is a constant after inlining). */
ALWAYS_INLINE void qk_tile(__m512 s[QB][KV], const float *const qr[QB], const float *kt,
                           size_t ldkt, size_t d, int nv) {
#pragma GCC unroll 8
    for (int r = 0; r < QB; r++)
#pragma GCC unroll 4
        for (int v = 0; v < KV; v++) s[r][v] = _mm512_setzero_ps();
    for (size_t c = 0; c < d; c++) {
        const float *kc = kt + c * ldkt;
        __m512 kv[KV];
#pragma GCC unroll 4
        for (int v = 0; v < KV; v++) kv[v] = v < nv ? _mm512_loadu_ps(kc + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int r = 0; r < QB; r++) {
            __m512 b = _mm512_set1_ps(qr[r][c]);
#pragma GCC unroll 4
            for (int v = 0; v < KV; v++)
                if (v < nv) s[r][v] = _mm512_fmadd_ps(b, kv[v], s[r][v]);
        }
    }
}

/* acc[r][c0 .. c0+16*nc) = acc * alpha[r] + sum_j p[r][j] v[j][c0 ..], masked at d.
 * Written out register by register (QB = 6 rows x nc = 2 vectors = 12 accumulators): GCC spills
 * the equivalent array-of-vectors form to the stack. */
#if NMF_ATT_QB != 6
#error "pv_chunk below is written out for 6 query rows"
#endif
ALWAYS_INLINE void pv_chunk(float *acc, size_t dp, const float *alpha, const float *p,
                            const float *v, size_t ldv, size_t nk, size_t c0, size_t d, int nc) {
    size_t left0 = d - c0, left1 = d > c0 + 16 ? d - c0 - 16 : 0;
    const __mmask16 m0 = left0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left0) - 1);
    const __mmask16 m1 = left1 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left1) - 1);
    float *a = acc + c0;
#define LOADA(r, u) _mm512_mul_ps(_mm512_loadu_ps(a + (r) * dp + 16 * (u)), _mm512_set1_ps(alpha[r]))
    __m512 a00 = LOADA(0, 0), a10 = LOADA(1, 0), a20 = LOADA(2, 0), a30 = LOADA(3, 0),
           a40 = LOADA(4, 0), a50 = LOADA(5, 0);
    __m512 a01 = _mm512_setzero_ps(), a11 = a01, a21 = a01, a31 = a01, a41 = a01, a51 = a01;
    if (nc == 2) {
        a01 = LOADA(0, 1), a11 = LOADA(1, 1), a21 = LOADA(2, 1), a31 = LOADA(3, 1);
        a41 = LOADA(4, 1), a51 = LOADA(5, 1);
    }
#undef LOADA
    for (size_t j = 0; j < nk; j++) {
        const float *vj = v + j * ldv + c0;
        const float *pj = p + j;
        __m512 v0 = _mm512_maskz_loadu_ps(m0, vj);
        __m512 p0 = _mm512_set1_ps(pj[0 * KT]), p1 = _mm512_set1_ps(pj[1 * KT]),
               p2 = _mm512_set1_ps(pj[2 * KT]), p3 = _mm512_set1_ps(pj[3 * KT]),
               p4 = _mm512_set1_ps(pj[4 * KT]), p5 = _mm512_set1_ps(pj[5 * KT]);
        a00 = _mm512_fmadd_ps(p0, v0, a00);
        a10 = _mm512_fmadd_ps(p1, v0, a10);
        a20 = _mm512_fmadd_ps(p2, v0, a20);
        a30 = _mm512_fmadd_ps(p3, v0, a30);
        a40 = _mm512_fmadd_ps(p4, v0, a40);
        a50 = _mm512_fmadd_ps(p5, v0, a50);
        if (nc == 2) {
            __m512 v1 = _mm512_maskz_loadu_ps(m1, vj + 16);
            a01 = _mm512_fmadd_ps(p0, v1, a01);
            a11 = _mm512_fmadd_ps(p1, v1, a11);
            a21 = _mm512_fmadd_ps(p2, v1, a21);
            a31 = _mm512_fmadd_ps(p3, v1, a31);
            a41 = _mm512_fmadd_ps(p4, v1, a41);
            a51 = _mm512_fmadd_ps(p5, v1, a51);
        }
    }
    _mm512_storeu_ps(a + 0 * dp, a00);
    _mm512_storeu_ps(a + 1 * dp, a10);
    _mm512_storeu_ps(a + 2 * dp, a20);
    _mm512_storeu_ps(a + 3 * dp, a30);
    _mm512_storeu_ps(a + 4 * dp, a40);
    _mm512_storeu_ps(a + 5 * dp, a50);
    if (nc == 2) {
        _mm512_storeu_ps(a + 0 * dp + 16, a01);
        _mm512_storeu_ps(a + 1 * dp + 16, a11);
        _mm512_storeu_ps(a + 2 * dp + 16, a21);
        _mm512_storeu_ps(a + 3 * dp + 16, a31);
        _mm512_storeu_ps(a + 4 * dp + 16, a41);
        _mm512_storeu_ps(a + 5 * dp + 16, a51);
    }
}

/* The same for a whole head of d <= 64 in one pass (nc = 4 column vectors, 6 x 4 = 24
 * accumulators): each p[r][j] is broadcast once for all d columns instead of once per 32, which
 * halves the broadcasts that, with the v loads, bound the two-pass form (8 loads per 12 FMAs ->
 * 10 per 24). */
ALWAYS_INLINE void pv_head64(float *acc, size_t dp, const float *alpha, const float *p,
                             const float *v, size_t ldv, size_t nk, size_t d) {
    __mmask16 mk[4];
    for (int u = 0; u < 4; u++) {
        const size_t left = d > 16 * (size_t)u ? d - 16 * (size_t)u : 0;
        mk[u] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    }
#define LOADA(r, u) _mm512_mul_ps(_mm512_loadu_ps(acc + (r) * dp + 16 * (u)), _mm512_set1_ps(alpha[r]))
#define ROW(r) __m512 a##r##0 = LOADA(r, 0), a##r##1 = LOADA(r, 1), a##r##2 = LOADA(r, 2), \
                      a##r##3 = LOADA(r, 3)
    ROW(0); ROW(1); ROW(2); ROW(3); ROW(4); ROW(5);
#undef ROW
#undef LOADA
    for (size_t j = 0; j < nk; j++) {
        const float *vj = v + j * ldv;
        const __m512 v0 = _mm512_maskz_loadu_ps(mk[0], vj), v1 = _mm512_maskz_loadu_ps(mk[1], vj + 16);
        const __m512 v2 = _mm512_maskz_loadu_ps(mk[2], vj + 32), v3 = _mm512_maskz_loadu_ps(mk[3], vj + 48);
#define FMAROW(r)                                                                              \
    {                                                                                          \
        const __m512 pr = _mm512_set1_ps(p[(r) * KT + j]);                                     \
        a##r##0 = _mm512_fmadd_ps(pr, v0, a##r##0);                                            \
        a##r##1 = _mm512_fmadd_ps(pr, v1, a##r##1);                                            \
        a##r##2 = _mm512_fmadd_ps(pr, v2, a##r##2);                                            \
        a##r##3 = _mm512_fmadd_ps(pr, v3, a##r##3);                                            \
    }
        FMAROW(0) FMAROW(1) FMAROW(2) FMAROW(3) FMAROW(4) FMAROW(5)
#undef FMAROW
    }
#define STROW(r)                                                                               \
    _mm512_storeu_ps(acc + (r) * dp, a##r##0), _mm512_storeu_ps(acc + (r) * dp + 16, a##r##1), \
        _mm512_storeu_ps(acc + (r) * dp + 32, a##r##2),                                        \
        _mm512_storeu_ps(acc + (r) * dp + 48, a##r##3)
    STROW(0); STROW(1); STROW(2); STROW(3); STROW(4); STROW(5);
#undef STROW
}

/* Masks, scales and exponentiates one tile of scores; updates m, l; writes p and alpha.
 * No calls and no branches: a call (scalar expf) would force all 24 live score registers to be
 * spilled around it, since every zmm is caller-saved. The per-row rescale factors are computed
 * together in one vector exp. */
ALWAYS_INLINE void softmax_tile(__m512 s[QB][KV], int nv, const long limit[QB], float scale,
                                float *m, __m512 *l, float *alpha, float *p) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
    const __m512 vscale = _mm512_set1_ps(scale);
    const __mmask16 rows = (__mmask16)((1u << QB) - 1);
    float tmax[16] = {0};
    long minlim = limit[0];
    for (int r = 1; r < QB; r++) minlim = limit[r] < minlim ? limit[r] : minlim;
    const int full = minlim >= 16 * nv - 1; /* no key of the tile is masked for any row */
#pragma GCC unroll 8
    for (int r = 0; r < QB; r++) {
        /* keys at tile index > limit[r] are masked (beyond Tk, or in the future when causal) */
        __m512 lim = _mm512_set1_ps((float)limit[r]);
        __m512 mx = neg_inf;
#pragma GCC unroll 4
        for (int v = 0; v < KV; v++) {
            if (v >= nv) break;
            if (full) {
                s[r][v] = _mm512_mul_ps(s[r][v], vscale);
            } else {
                __mmask16 ok = _mm512_cmp_ps_mask(
                    _mm512_add_ps(iota, _mm512_set1_ps(16.0f * v)), lim, _CMP_LE_OQ);
                s[r][v] = _mm512_mask_mul_ps(neg_inf, ok, s[r][v], vscale);
            }
            mx = _mm512_max_ps(mx, s[r][v]);
        }
        tmax[r] = _mm512_reduce_max_ps(mx);
    }
    /* m' = max(m, tile max); a row with nothing visible yet keeps m' = -inf, and is then
     * exponentiated against 0 instead (its scores are all -inf, so p = 0 and alpha = 1) */
    __m512 mold = _mm512_maskz_loadu_ps(rows, m);
    __m512 mnew = _mm512_max_ps(mold, _mm512_maskz_loadu_ps(rows, tmax));
    __mmask16 none = _mm512_cmp_ps_mask(mnew, neg_inf, _CMP_EQ_OQ);
    __m512 msafe = _mm512_mask_mov_ps(mnew, none, _mm512_setzero_ps());
    __m512 va = nmf_exp512(_mm512_mask_mov_ps(_mm512_sub_ps(mold, msafe), none, _mm512_setzero_ps()));
    float ms[16], al[16];
    _mm512_storeu_ps(ms, msafe);
    _mm512_storeu_ps(al, va);
    _mm512_mask_storeu_ps(m, rows, mnew);
#pragma GCC unroll 8
    for (int r = 0; r < QB; r++) {
        __m512 vm = _mm512_set1_ps(ms[r]), sum = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int v = 0; v < KV; v++) {
            if (v >= nv) break;
            __m512 e = nmf_exp512(_mm512_sub_ps(s[r][v], vm));
            sum = _mm512_add_ps(sum, e);
            _mm512_storeu_ps(p + r * KT + 16 * v, e);
        }
        alpha[r] = al[r];
        /* the running sum stays a vector (16 partial sums): reduced once, at the end */
        l[r] = _mm512_fmadd_ps(l[r], _mm512_set1_ps(al[r]), sum);
    }
}

ALWAYS_INLINE void tile_step(int nv, __m512 s[QB][KV], const float *const qr[QB], const float *kt,
                             size_t ldkt, size_t d, const long limit[QB], float scale, float *m,
                             __m512 *l, float *alpha, float *p) {
    qk_tile(s, qr, kt, ldkt, d, nv);
    softmax_tile(s, nv, limit, scale, m, l, alpha, p);
}

void nmf_attention_avx512(float *out, const float *q, const float *k, const float *v,
                          const nmf_attention_shape *sh, float *work) {
    const size_t Tq = sh->Tq, Tk = sh->Tk, d = sh->d;
    const size_t Tkp = nmf_round_up(Tk, 16), dp = nmf_round_up(d, 16);
    float *kt = work;               // (d, Tkp)
    float *acc = kt + d * Tkp;      // (QB, dp)
    float *p = acc + QB * dp;       // (QB, KT)
    /* K^T: 16 keys at a time, one gather per c (the 16 rows stay in L1 across the c loop) */
    const __m512i rows16 = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)sh->ldk));
    for (size_t j0 = 0; j0 < Tkp; j0 += 16) {
        size_t left = Tk - j0 < 16 ? Tk - j0 : 16;
        __mmask16 mk = (__mmask16)((1u << left) - 1);
        const float *kj = k + j0 * sh->ldk;
        if (sh->ldk * 16 <= 0x7fffffff / 4) {
            for (size_t c = 0; c < d; c++)
                _mm512_storeu_ps(kt + c * Tkp + j0, _mm512_mask_i32gather_ps(
                                     _mm512_setzero_ps(), mk, rows16, kj + c, 4));
        } else { /* offsets would overflow the 32-bit gather indices */
            for (size_t c = 0; c < d; c++)
                for (size_t j = 0; j < 16; j++)
                    kt[c * Tkp + j0 + j] = j < left ? kj[j * sh->ldk + c] : 0.0f;
        }
    }
    const size_t off = sh->causal ? Tk - Tq : 0;

    for (size_t i0 = 0; i0 < Tq; i0 += QB) {
        size_t nq = Tq - i0 < QB ? Tq - i0 : QB;
        const float *qr[QB];
        size_t last[QB]; /* last visible key of each row */
        float m[QB], alpha[QB];
        __m512 l[QB];
        for (int r = 0; r < QB; r++) {
            size_t i = i0 + ((size_t)r < nq ? (size_t)r : nq - 1); /* spare rows repeat the last */
            qr[r] = q + i * sh->ldq;
            last[r] = sh->causal ? i + off : Tk - 1;
            m[r] = -INFINITY;
            l[r] = _mm512_setzero_ps();
        }
        for (size_t x = 0; x < QB * dp; x++) acc[x] = 0.0f;
        size_t kend = last[QB - 1] + 1; /* rows are in order, so the last row sees the most */
        for (size_t j0 = 0; j0 < kend; j0 += KT) {
            size_t nk = kend - j0 < KT ? kend - j0 : KT;
            int nv = (int)((nk + 15) / 16);
            long limit[QB];
            for (int r = 0; r < QB; r++) limit[r] = (long)last[r] - (long)j0;
            __m512 s[QB][KV];
            switch (nv) {
            case 4: tile_step(4, s, qr, kt + j0, Tkp, d, limit, sh->scale, m, l, alpha, p); break;
            case 3: tile_step(3, s, qr, kt + j0, Tkp, d, limit, sh->scale, m, l, alpha, p); break;
            case 2: tile_step(2, s, qr, kt + j0, Tkp, d, limit, sh->scale, m, l, alpha, p); break;
            default: tile_step(1, s, qr, kt + j0, Tkp, d, limit, sh->scale, m, l, alpha, p); break;
            }
            /* masked keys have p = 0 exactly (exp512 flushes -inf to 0), so P V runs over the tile */
            const float *vt = v + j0 * sh->ldv;
            if (dp == 64) { /* one pass over the head (ViT, BERT, GPT-2, LLaMA heads) */
                pv_head64(acc, dp, alpha, p, vt, sh->ldv, nk, d);
            } else {
                size_t c0 = 0;
                for (; c0 + 16 < dp; c0 += 32) pv_chunk(acc, dp, alpha, p, vt, sh->ldv, nk, c0, d, 2);
                if (c0 < dp) pv_chunk(acc, dp, alpha, p, vt, sh->ldv, nk, c0, d, 1);
            }
        }
        for (size_t r = 0; r < nq; r++) {
            float inv = 1.0f / _mm512_reduce_add_ps(l[r]);
            float *o = out + (i0 + r) * sh->ldo;
            for (size_t c = 0; c < d; c++) o[c] = acc[r * dp + c] * inv;
        }
    }
}
