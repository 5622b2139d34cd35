/* Fused attention, AVX-512: the online softmax of attention.c, register-blocked, in chunks.
 *
 * K is transposed once per head into work (d, Tk16) so that a block of QB queries times a tile of
 * KT keys is a small GEMM vectorised over keys: for every c, load KT/16 vectors of K^T row c and
 * FMA them with QB broadcasts of q[r][c] into QB x KT/16 accumulators. The online softmax runs
 * per chunk of up to CHUNK keys rather than per tile: the tiles' scores go to a (QB, CHUNK)
 * buffer in L1 with a running max kept as a vector per row, then one reduction, one rescale of
 * the output accumulators and one pass of exponentials per chunk, and P V over the whole chunk
 * (for a ViT's 197 keys: the whole row at once). The exponentials are 2^x (softmax_chunk). */
#include <immintrin.h>
#include <math.h>

#include "kernels/ops_internal.h"
#include "kernels/simd_exp.h"

#define QB NMF_ATT_QB
#define KT NMF_ATT_KT
#define KV (KT / 16)
#define CHUNK NMF_ATT_CHUNK

#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* The register-blocked loops are functions of their own: inlined into the block loop, GCC keeps
 * that loop's constants in zmm registers and spills accumulators inside the hot loops instead
 * (5 of P V's 24 at every key). */
#define NOINLINE static __attribute__((noinline))

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
NOINLINE void pv_chunk(float *acc, size_t dp, const float *alpha, const float *p, size_t ldp,
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
        __m512 p0 = _mm512_set1_ps(pj[0 * ldp]), p1 = _mm512_set1_ps(pj[1 * ldp]),
               p2 = _mm512_set1_ps(pj[2 * ldp]), p3 = _mm512_set1_ps(pj[3 * ldp]),
               p4 = _mm512_set1_ps(pj[4 * ldp]), p5 = _mm512_set1_ps(pj[5 * ldp]);
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
NOINLINE void pv_head64(float *acc, size_t dp, const float *alpha, const float *p, size_t ldp,
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
        const __m512 pr = _mm512_set1_ps(p[(r) * ldp + j]);                                    \
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

/* One tile's scores, scaled and masked, into p (row r at p + r * ldp) and into the
 * rows' running max vectors mx (row r at mx + 16 r). mx stays in memory, leaving the registers
 * to the QK tile's 24 accumulators and 4 K vectors. */
ALWAYS_INLINE void scores_tile(__m512 s[QB][KV], int nv, int full, const long limit[QB],
                               __m512 vscale, float *p, size_t ldp, float *mx) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
#pragma GCC unroll 8
    for (int r = 0; r < QB; r++) {
        /* keys at tile index > limit[r] are masked (beyond Tk, or in the future when causal) */
        const __m512 lim = _mm512_set1_ps((float)limit[r]);
        __m512 rmax = _mm512_load_ps(mx + 16 * r);
#pragma GCC unroll 4
        for (int v = 0; v < KV; v++) {
            if (v >= nv) break;
            __m512 x;
            if (full) {
                x = _mm512_mul_ps(s[r][v], vscale);
            } else {
                __mmask16 ok = _mm512_cmp_ps_mask(
                    _mm512_add_ps(iota, _mm512_set1_ps(16.0f * v)), lim, _CMP_LE_OQ);
                x = _mm512_mask_mul_ps(neg_inf, ok, s[r][v], vscale);
            }
            rmax = _mm512_max_ps(rmax, x);
            _mm512_storeu_ps(p + (size_t)r * ldp + 16 * v, x);
        }
        _mm512_store_ps(mx + 16 * r, rmax);
    }
}

/* One QK tile of nv key vectors, its scores to p and mx; one function per (nv, full), so that
 * both are constants in its loops: a run-time `full` inside the unrolled tile, or the block
 * loop's live values around it, made GCC keep accumulators in memory. */
ALWAYS_INLINE void tile_step(int nv, int full, const float *const qr[QB], const float *kt,
                             size_t ldkt, size_t d, const long limit[QB], __m512 vscale, float *p,
                             size_t ldp, float *mx) {
    __m512 s[QB][KV];
    qk_tile(s, qr, kt, ldkt, d, nv);
    scores_tile(s, nv, full, limit, vscale, p, ldp, mx);
}

typedef void (*tile_fn)(const float *const qr[QB], const float *kt, size_t ldkt, size_t d,
                        const long limit[QB], __m512 vscale, float *p, size_t ldp, float *mx);
#define TILE(NV, FULL)                                                                         \
    NOINLINE void tile_##NV##_##FULL(const float *const qr[QB], const float *kt, size_t ldkt,   \
                                     size_t d, const long limit[QB], __m512 vscale, float *p,   \
                                     size_t ldp, float *mx) {                                   \
        tile_step(NV, FULL, qr, kt, ldkt, d, limit, vscale, p, ldp, mx);                       \
    }
TILE(1, 0) TILE(1, 1) TILE(2, 0) TILE(2, 1) TILE(3, 0) TILE(3, 1) TILE(4, 0) TILE(4, 1)
#undef TILE
/* [nv - 1][full] */
static const tile_fn tiles_by_shape[KV][2] = {
    {tile_1_0, tile_1_1}, {tile_2_0, tile_2_1}, {tile_3_0, tile_3_1}, {tile_4_0, tile_4_1}};

/* The online softmax step of a chunk of nvec score vectors per row in p, in base 2 with m kept
 * as log2(e) times the running max: m' = max(m, fl(log2(e) chunk max)), alpha = 2^(m - m'),
 * p = 2^(fl(log2(e) p - m')), l = l alpha + sum p (l: 16 partial sums per row, reduced at the
 * end). The FMA rounds only the small exponent: scaling the scores themselves by log2(e) first
 * lost 1e-4 of the probabilities on scores in the thousands; and every chunk's p and alpha use
 * the same rounded m', so its error is a common factor that the normalisation cancels. A row
 * with nothing visible yet keeps m' = -inf and is exponentiated against 0 instead (its scores
 * are all -inf, so p = 0 and alpha = 1). */
NOINLINE void softmax_chunk(float *p, size_t ldp, size_t nvec, const float *mx, float *m,
                            float *l, float *alpha) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
    const __mmask16 rows = (__mmask16)((1u << QB) - 1);
    float tmax[16] = {0};
    for (int r = 0; r < QB; r++) tmax[r] = _mm512_reduce_max_ps(_mm512_load_ps(mx + 16 * r));
    __m512 mold = _mm512_maskz_loadu_ps(rows, m);
    __m512 mnew = _mm512_max_ps(mold, _mm512_mul_ps(_mm512_maskz_loadu_ps(rows, tmax), log2e));
    __mmask16 none = _mm512_cmp_ps_mask(mnew, neg_inf, _CMP_EQ_OQ);
    __m512 msafe = _mm512_mask_mov_ps(mnew, none, _mm512_setzero_ps());
    __m512 va = nmf_exp2_512_nonpos(_mm512_mask_mov_ps(_mm512_sub_ps(mold, msafe), none,
                                                       _mm512_setzero_ps()));
    float ms[16];
    _mm512_storeu_ps(ms, msafe);
    _mm512_mask_storeu_ps(alpha, rows, va);
    _mm512_mask_storeu_ps(m, rows, mnew);
    for (int r = 0; r < QB; r++) {
        const __m512 vm = _mm512_set1_ps(-ms[r]);
        float *pr = p + (size_t)r * ldp;
        __m512 sum0 = _mm512_setzero_ps(), sum1 = sum0;
        size_t v = 0;
        for (; v + 2 <= nvec; v += 2) { /* two chains: the exponentials are independent */
            const __m512 e0 = nmf_exp2_512_nonpos(_mm512_fmadd_ps(_mm512_loadu_ps(pr + 16 * v), log2e, vm));
            const __m512 e1 = nmf_exp2_512_nonpos(_mm512_fmadd_ps(_mm512_loadu_ps(pr + 16 * v + 16), log2e, vm));
            _mm512_storeu_ps(pr + 16 * v, e0);
            _mm512_storeu_ps(pr + 16 * v + 16, e1);
            sum0 = _mm512_add_ps(sum0, e0);
            sum1 = _mm512_add_ps(sum1, e1);
        }
        if (v < nvec) {
            const __m512 e = nmf_exp2_512_nonpos(_mm512_fmadd_ps(_mm512_loadu_ps(pr + 16 * v), log2e, vm));
            _mm512_storeu_ps(pr + 16 * v, e);
            sum0 = _mm512_add_ps(sum0, e);
        }
        _mm512_store_ps(l + 16 * r, _mm512_fmadd_ps(_mm512_load_ps(l + 16 * r), _mm512_set1_ps(alpha[r]),
                                                    _mm512_add_ps(sum0, sum1)));
    }
}

void nmf_attention_avx512(float *out, const float *q, const float *k, const float *v,
                          const nmf_attention_shape *sh, float *work) {
    const size_t Tq = sh->Tq, Tk = sh->Tk, d = sh->d;
    const size_t Tkp = nmf_round_up(Tk, 16), dp = nmf_round_up(d, 16);
    float *kt = work;               // (d, Tkp)
    float *acc = kt + d * Tkp;      // (QB, dp)
    float *p = acc + QB * dp;       // (QB, CHUNK)
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
    const __m512 vscale = _mm512_set1_ps(sh->scale);

    for (size_t i0 = 0; i0 < Tq; i0 += QB) {
        size_t nq = Tq - i0 < QB ? Tq - i0 : QB;
        const float *qr[QB];
        size_t last[QB]; /* last visible key of each row */
        float m[QB], alpha[QB];
        /* the running sums stay in memory, as 16 partial sums a row (not 6 more live zmm
         * around the register-blocked loops) */
        _Alignas(64) float l[QB * 16];
        for (int r = 0; r < QB; r++) {
            size_t i = i0 + ((size_t)r < nq ? (size_t)r : nq - 1); /* spare rows repeat the last */
            qr[r] = q + i * sh->ldq;
            last[r] = sh->causal ? i + off : Tk - 1;
            m[r] = -INFINITY;
            _mm512_store_ps(l + 16 * r, _mm512_setzero_ps());
        }
        for (size_t x = 0; x < QB * dp; x++) acc[x] = 0.0f;
        size_t kend = last[QB - 1] + 1; /* rows are in order, so the last row sees the most */
        for (size_t c0 = 0; c0 < kend; c0 += CHUNK) {
            const size_t cend = kend - c0 < CHUNK ? kend : c0 + CHUNK;
            /* the chunk's key vectors dealt out evenly over the fewest tiles of at most KV
             * (nmf_att_tile_of) */
            const size_t kvecs = (cend - c0 + 15) / 16, tiles = (kvecs + KV - 1) / KV;
            _Alignas(64) float mx[QB * 16];
            for (int r = 0; r < QB; r++) _mm512_store_ps(mx + 16 * r, _mm512_set1_ps(-INFINITY));
            for (size_t t = 0; t < tiles; t++) {
                long limit[QB];
                const nmf_att_tile tl = nmf_att_tile_of(kvecs, tiles, t, c0, last, limit);
                const size_t v0 = tl.v0, j0 = c0 + 16 * v0;
                const int nv = tl.nv, full = tl.full;
                float *pt = p + 16 * v0;
                tiles_by_shape[nv - 1][full](qr, kt + j0, Tkp, d, limit, vscale, pt, CHUNK, mx);
            }
            softmax_chunk(p, CHUNK, kvecs, mx, m, l, alpha);
            /* masked keys have p = 0 exactly (2^-inf flushes to 0), so P V runs over the chunk */
            const float *vt = v + c0 * sh->ldv;
            const size_t nk = cend - c0;
            if (dp == 64) { /* one pass over the head (ViT, BERT, GPT-2, LLaMA heads) */
                pv_head64(acc, dp, alpha, p, CHUNK, vt, sh->ldv, nk, d);
            } else {
                size_t cc = 0;
                for (; cc + 16 < dp; cc += 32) pv_chunk(acc, dp, alpha, p, CHUNK, vt, sh->ldv, nk, cc, d, 2);
                if (cc < dp) pv_chunk(acc, dp, alpha, p, CHUNK, vt, sh->ldv, nk, cc, d, 1);
            }
        }
        for (size_t r = 0; r < nq; r++) {
            float inv = 1.0f / _mm512_reduce_add_ps(_mm512_load_ps(l + 16 * r));
            float *o = out + (i0 + r) * sh->ldo;
            for (size_t c = 0; c < d; c++) o[c] = acc[r * dp + c] * inv;
        }
    }
}
