/* Fused attention, AVX2 + FMA: the online softmax of attention.c with 8-lane vectors, in
 * chunks.
 *
 * Same plan as attention_avx512.c (K transposed once per head into work, QB = 6 queries per
 * block, the online softmax per chunk of up to CHUNK keys), fitted to 16 ymm registers: the
 * scores are computed 16 keys at a time (6 x 2 accumulators) into the (QB, CHUNK) probability
 * buffer, scaled, masked and exponentiated there once per chunk, and P V runs over the whole
 * chunk 16 output columns at a time (6 x 2 accumulators), so that the output accumulators are
 * rescaled and reloaded once per chunk (for a ViT's 197 keys: once per query block) rather than
 * once per 64-key tile. */
#include <immintrin.h>
#include <math.h>

#include "kernels/ops_internal.h"
#include "kernels/simd_exp.h"
#include "kernels/simd_reduce_avx2.h"

#define QB NMF_ATT_QB
#define CHUNK NMF_ATT_CHUNK

#if NMF_ATT_QB != 6
#error "the kernels below are written out for 6 query rows"
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* s[r][0..16) = sum_c qr[r][c] kt[c*ldkt + 0..16), stored to out[r*CHUNK + 0..16). */
static void qk16(float *out, const float *const qr[QB], const float *kt, size_t ldkt, size_t d) {
    __m256 s00 = _mm256_setzero_ps(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00;
    __m256 s30 = s00, s31 = s00, s40 = s00, s41 = s00, s50 = s00, s51 = s00;
    for (size_t c = 0; c < d; c++) {
        const float *kc = kt + c * ldkt;
        __m256 k0 = _mm256_loadu_ps(kc), k1 = _mm256_loadu_ps(kc + 8), b;
        b = _mm256_broadcast_ss(qr[0] + c);
        s00 = _mm256_fmadd_ps(b, k0, s00);
        s01 = _mm256_fmadd_ps(b, k1, s01);
        b = _mm256_broadcast_ss(qr[1] + c);
        s10 = _mm256_fmadd_ps(b, k0, s10);
        s11 = _mm256_fmadd_ps(b, k1, s11);
        b = _mm256_broadcast_ss(qr[2] + c);
        s20 = _mm256_fmadd_ps(b, k0, s20);
        s21 = _mm256_fmadd_ps(b, k1, s21);
        b = _mm256_broadcast_ss(qr[3] + c);
        s30 = _mm256_fmadd_ps(b, k0, s30);
        s31 = _mm256_fmadd_ps(b, k1, s31);
        b = _mm256_broadcast_ss(qr[4] + c);
        s40 = _mm256_fmadd_ps(b, k0, s40);
        s41 = _mm256_fmadd_ps(b, k1, s41);
        b = _mm256_broadcast_ss(qr[5] + c);
        s50 = _mm256_fmadd_ps(b, k0, s50);
        s51 = _mm256_fmadd_ps(b, k1, s51);
    }
#define ST(r, a0, a1) (_mm256_storeu_ps(out + (r) * CHUNK, a0), _mm256_storeu_ps(out + (r) * CHUNK + 8, a1))
    ST(0, s00, s01);
    ST(1, s10, s11);
    ST(2, s20, s21);
    ST(3, s30, s31);
    ST(4, s40, s41);
    ST(5, s50, s51);
#undef ST
}

/* acc[r][c0 .. c0+16) = acc * alpha[r] + sum_j p[r][j] v[j][c0 ..); cols >= d are not touched. */
static void pv16(float *acc, size_t dp, const float *alpha, const float *p, const float *v,
                 size_t ldv, size_t nk, size_t c0, size_t d) {
    float *a = acc + c0;
    const size_t left = d - c0;
#define LD(r, u) _mm256_mul_ps(_mm256_loadu_ps(a + (r) * dp + 8 * (u)), _mm256_set1_ps(alpha[r]))
    __m256 a00 = LD(0, 0), a01 = LD(0, 1), a10 = LD(1, 0), a11 = LD(1, 1), a20 = LD(2, 0),
           a21 = LD(2, 1), a30 = LD(3, 0), a31 = LD(3, 1), a40 = LD(4, 0), a41 = LD(4, 1),
           a50 = LD(5, 0), a51 = LD(5, 1);
#undef LD
    for (size_t j = 0; j < nk; j++) {
        const float *vj = v + j * ldv + c0;
        __m256 v0, v1;
        if (left >= 16) {
            v0 = _mm256_loadu_ps(vj);
            v1 = _mm256_loadu_ps(vj + 8);
        } else { /* the row ends inside this chunk: never read past it */
            float tmp[16] = {0};
            for (size_t c = 0; c < left; c++) tmp[c] = vj[c];
            v0 = _mm256_loadu_ps(tmp);
            v1 = _mm256_loadu_ps(tmp + 8);
        }
        const float *pj = p + j;
        __m256 b;
        b = _mm256_broadcast_ss(pj + 0 * CHUNK);
        a00 = _mm256_fmadd_ps(b, v0, a00);
        a01 = _mm256_fmadd_ps(b, v1, a01);
        b = _mm256_broadcast_ss(pj + 1 * CHUNK);
        a10 = _mm256_fmadd_ps(b, v0, a10);
        a11 = _mm256_fmadd_ps(b, v1, a11);
        b = _mm256_broadcast_ss(pj + 2 * CHUNK);
        a20 = _mm256_fmadd_ps(b, v0, a20);
        a21 = _mm256_fmadd_ps(b, v1, a21);
        b = _mm256_broadcast_ss(pj + 3 * CHUNK);
        a30 = _mm256_fmadd_ps(b, v0, a30);
        a31 = _mm256_fmadd_ps(b, v1, a31);
        b = _mm256_broadcast_ss(pj + 4 * CHUNK);
        a40 = _mm256_fmadd_ps(b, v0, a40);
        a41 = _mm256_fmadd_ps(b, v1, a41);
        b = _mm256_broadcast_ss(pj + 5 * CHUNK);
        a50 = _mm256_fmadd_ps(b, v0, a50);
        a51 = _mm256_fmadd_ps(b, v1, a51);
    }
    /* acc rows are dp = d rounded up to 16 floats long, so a full 16-wide store stays inside */
#define ST(r, x0, x1) (_mm256_storeu_ps(a + (r) * dp, x0), _mm256_storeu_ps(a + (r) * dp + 8, x1))
    ST(0, a00, a01);
    ST(1, a10, a11);
    ST(2, a20, a21);
    ST(3, a30, a31);
    ST(4, a40, a41);
    ST(5, a50, a51);
#undef ST
}

/* Scales and masks a chunk's scores p[r][0..nv8*8) in place, exponentiates, updates m, l,
 * alpha. */
static void softmax_tile(float *p, size_t nv8, const long limit[QB], float scale, float *m,
                         float *l, float *alpha) {
    const __m256 iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 neg_inf = _mm256_set1_ps(-INFINITY), vscale = _mm256_set1_ps(scale);
    for (int r = 0; r < QB; r++) {
        float *pr = p + r * CHUNK;
        __m256 lim = _mm256_set1_ps((float)limit[r]), mx = neg_inf;
        for (size_t v = 0; v < nv8; v++) {
            __m256 idx = _mm256_add_ps(iota, _mm256_set1_ps(8.0f * (float)v));
            __m256 s = _mm256_mul_ps(_mm256_loadu_ps(pr + 8 * v), vscale);
            s = _mm256_blendv_ps(neg_inf, s, _mm256_cmp_ps(idx, lim, _CMP_LE_OQ));
            _mm256_storeu_ps(pr + 8 * v, s);
            mx = _mm256_max_ps(mx, s);
        }
        float tmax = nmf_hmax8(mx);
        float mnew = tmax > m[r] ? tmax : m[r];
        if (mnew == -INFINITY) { /* nothing visible yet for this row */
            alpha[r] = 1.0f;
            for (size_t v = 0; v < nv8; v++) _mm256_storeu_ps(pr + 8 * v, _mm256_setzero_ps());
            continue;
        }
        alpha[r] = expf(m[r] - mnew);
        __m256 vm = _mm256_set1_ps(mnew), sum = _mm256_setzero_ps();
        for (size_t v = 0; v < nv8; v++) {
            /* masked scores are -inf: exp256 clamps to e^-87.3, so force them to exactly 0 */
            __m256 s = _mm256_loadu_ps(pr + 8 * v);
            __m256 e = _mm256_and_ps(nmf_exp256(_mm256_sub_ps(s, vm)),
                                     _mm256_cmp_ps(s, neg_inf, _CMP_NEQ_OQ));
            sum = _mm256_add_ps(sum, e);
            _mm256_storeu_ps(pr + 8 * v, e);
        }
        l[r] = l[r] * alpha[r] + nmf_hsum8(sum);
        m[r] = mnew;
    }
}

/* In-place 8x8 transpose: r[i] lane j -> r[j] lane i. */
ALWAYS_INLINE void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) { /* u[4i + c]: rows 4i..4i+3 of columns c, c + 4 (128-bit halves) */
        u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[c + 4] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

/* kt (d, Tkp) = K^T, keys past Tk zero: 8 keys x 8 columns at a time (K's rows are ldk apart,
 * a cache line each: the scalar copy cost ~8 % of a ViT's attention), the ragged rest scalar. */
static void transpose_k(float *kt, size_t Tkp, const float *k, size_t ldk, size_t Tk, size_t d) {
    const size_t j8 = Tk / 8 * 8, c8 = d / 8 * 8;
    for (size_t j = 0; j < j8; j += 8) {
        for (size_t c = 0; c < c8; c += 8) {
            __m256 r[8];
            for (int u = 0; u < 8; u++) r[u] = _mm256_loadu_ps(k + (j + (size_t)u) * ldk + c);
            transpose8(r);
            for (int u = 0; u < 8; u++) _mm256_storeu_ps(kt + (c + (size_t)u) * Tkp + j, r[u]);
        }
        for (size_t c = c8; c < d; c++)
            for (size_t u = 0; u < 8; u++) kt[c * Tkp + j + u] = k[(j + u) * ldk + c];
    }
    for (size_t c = 0; c < d; c++) {
        float *row = kt + c * Tkp;
        for (size_t j = j8; j < Tk; j++) row[j] = k[j * ldk + c];
        for (size_t j = Tk; j < Tkp; j++) row[j] = 0.0f;
    }
}

void nmf_attention_avx2(float *out, const float *q, const float *k, const float *v,
                        const nmf_attention_shape *sh, float *work) {
    const size_t Tq = sh->Tq, Tk = sh->Tk, d = sh->d;
    const size_t Tkp = nmf_round_up(Tk, 16), dp = nmf_round_up(d, 16);
    float *kt = work;          // (d, Tkp)
    float *acc = kt + d * Tkp; // (QB, dp)
    float *p = acc + QB * dp;  // (QB, CHUNK)
    transpose_k(kt, Tkp, k, sh->ldk, Tk, d);
    const size_t off = sh->causal ? Tk - Tq : 0;
    for (size_t i0 = 0; i0 < Tq; i0 += QB) {
        size_t nq = Tq - i0 < QB ? Tq - i0 : QB;
        const float *qr[QB];
        size_t last[QB];
        float m[QB], l[QB], alpha[QB];
        for (int r = 0; r < QB; r++) {
            size_t i = i0 + ((size_t)r < nq ? (size_t)r : nq - 1); /* spare rows repeat the last */
            qr[r] = q + i * sh->ldq;
            last[r] = sh->causal ? i + off : Tk - 1;
            m[r] = -INFINITY;
            l[r] = 0.0f;
        }
        for (size_t x = 0; x < QB * dp; x++) acc[x] = 0.0f;
        size_t kend = last[QB - 1] + 1; /* rows are in order, so the last row sees the most */
        for (size_t j0 = 0; j0 < kend; j0 += CHUNK) {
            size_t nk = kend - j0 < CHUNK ? kend - j0 : CHUNK;
            size_t n16 = (nk + 15) / 16;
            long limit[QB];
            for (int r = 0; r < QB; r++) limit[r] = (long)last[r] - (long)j0;
            for (size_t u = 0; u < n16; u++) qk16(p + 16 * u, qr, kt + j0 + 16 * u, Tkp, d);
            softmax_tile(p, 2 * n16, limit, sh->scale, m, l, alpha);
            const float *vt = v + j0 * sh->ldv;
            for (size_t c0 = 0; c0 < d; c0 += 16) pv16(acc, dp, alpha, p, vt, sh->ldv, nk, c0, d);
        }
        for (size_t r = 0; r < nq; r++) {
            float inv = 1.0f / l[r];
            float *o = out + (i0 + r) * sh->ldo;
            for (size_t c = 0; c < d; c++) o[c] = acc[r * dp + c] * inv;
        }
    }
}
