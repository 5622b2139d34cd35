/* Private: int8 attention (nmf_attention_forward_q8, include/nmformer/ops.h), the numbers and
 * the packed operands every ISA shares.
 *
 * Numerics of one head (one definition: the reference, attention_q8.c, and every kernel give the
 * same bits):
 *   Q, K   per row (query i, key j), the int8 products' quantiser (spmm_q8.h):
 *          s_q[i] = amax_i / 127, q8[i][c] = rne(q[i][c] * 127 / amax_i) in [-127, 127]; K alike
 *   score  s[i][j] = ((float)dot(q8[i], k8[j]) * (s_q[i] * scale)) * s_k[j]   dot exact, int32
 *          (-inf for a masked key)
 *   softmax in base 2, online over chunks of NMF_ATT_CHUNK keys (j in [c0, c0 + CHUNK)):
 *          m' = max(m, fl(log2(e) * max_j s)), alpha = e2(m - m'),
 *          p8[j] = rne(p255(fmaf(s[j], log2(e), -m')))  in [0, 255]
 *          l' = fmaf(l, alpha, sum_j p8[j])
 *          (m' = -inf, no key visible yet: m' is taken as 0 and alpha as 1)
 *   V      per channel c over the head's Tk keys: s_v[c] = amax_c / 127, v8 = rne(v * 127 / amax_c)
 *   P V    acc[c] = fmaf((float)sum_j p8[j] v8[j][c], s_v[c], acc[c] * alpha) per chunk,
 *          the integer sum exact (at most CHUNK * 255 * 127 < 2^31)
 *   out    acc[c] * (1 / l)
 * e2 is nmf_exp2_nonpos below: the same polynomial and operations as the AVX-512 kernels'
 * nmf_exp2_512_nonpos, so its bits are the same in every lane. p255 (nmf_q8_p255 below) is
 * 255 2^x of degree 4 (to within 7e-4: the rounding to 8 bits needs no more), written out
 * operation for operation in each kernel. A row or channel with a NaN or an
 * infinity quantises to zeros with scale 0 (the output is then unspecified, but defined).
 *
 * Packed operands (nmf_q8_attention_pack, in the work buffer, attention_q8.c): q8 as s8 rows of
 * d4 = round_up(d, 4) bytes (4-byte groups: one broadcast word per group of 4 channels), K as
 * u8 = k8 + 128 in groups of 4 channels, key-major within a group (kg[g][j] = the word of key j,
 * channels 4g..4g+3: 16 keys per vector), V as s8 in groups of 4 keys, channel-major (vg[jg][c] =
 * the word of channel c, keys 4jg..4jg+3). vpdpbusd sums 4 u8 x s8 products exactly into a lane;
 * the K offset of 128 is taken back as 128 sum_c q8[i][c] (qoff). The AVX2 packing also splits
 * kg and vg into int16 pairs (k16, v16: operands of vpmaddwd, for the kernel without VNNI). */
#ifndef NMF_KERNELS_ATTENTION_Q8_H
#define NMF_KERNELS_ATTENTION_Q8_H

#include <math.h>
#include <stdint.h>

#include "kernels/ops_internal.h"


/* 2^x for x <= 0, as nmf_exp2_512_nonpos (simd_exp.h) computes it lane by lane: n = rne(x),
 * f = x - n, a degree-6 polynomial in f by fmaf, times 2^n (always a normal number: p >= 2^-1/2,
 * n >= -125); below -125, -inf and NaN give 0. */
static inline float nmf_exp2_nonpos(float x) {
    if (!(x >= -125.0f)) return 0.0f;
    const float n = (x + 12582912.0f) - 12582912.0f; /* rne for |x| < 2^22 */
    const float f = x - n;
    float p = 1.5353408526e-04f;
    p = fmaf(p, f, 1.3398873853e-03f);
    p = fmaf(p, f, 9.6184369177e-03f);
    p = fmaf(p, f, 5.5503323674e-02f);
    p = fmaf(p, f, 2.4022647738e-01f);
    p = fmaf(p, f, 6.9314718246e-01f);
    p = fmaf(p, f, 1.0f);
    return ldexpf(p, (int)n);
}

/* The packed head (pointers into the work buffer). */
typedef struct {
    size_t d4;        /* d rounded up to 4: bytes per q8 row; G = d4 / 4 groups */
    size_t tkp;       /* Tk rounded up to 16: keys per K group (padding keys are k8 = 0) */
    size_t dp;        /* d rounded up to 16: channels per V group (padding channels 0) */
    int8_t *q8;       /* (Tq, d4) */
    float *qscale;    /* (Tq) s_q[i] * scale */
    int32_t *qoff;    /* (Tq) 128 sum_c q8[i][c] */
    uint32_t *kg;     /* (G, tkp) */
    float *kscale;    /* (tkp) s_k[j], 0 past Tk */
    uint32_t *vg;     /* (tkp / 4, dp) */
    float *vscale;    /* (dp) s_v[c], 0 past d */
    float *scores;    /* (NMF_ATT_QB, NMF_ATT_CHUNK) a chunk's scores */
    uint8_t *p8;      /* (NMF_ATT_QB, NMF_ATT_CHUNK) its probabilities */
    float *acc;       /* (NMF_ATT_QB, dp) */
    float *vinv;      /* (dp) 127 / amax_c, 0 for a zero channel (packing only) */
    /* the AVX2 kernel's operands of vpmaddwd, each word as int16 pairs of its even bytes (0, 2)
     * and of its odd bytes (1, 3) (attention_q8_avx2.c; filled by the AVX2 packing only): */
    int32_t *k16;     /* (2 G, tkp) kg split: row 2g the even pairs, 2g + 1 the odd (u8 values) */
    int32_t *v16;     /* (2 tkp / 4, dp) vg split: row 2jg the even pairs, 2jg + 1 the odd */
    int32_t *qw;      /* (NMF_ATT_QB, G, 2) a query block's words split: even, odd */
    int32_t *pw;      /* (NMF_ATT_QB, NMF_ATT_CHUNK / 2) a chunk's p8 per 4 keys split: even, odd */
} nmf_q8_head;

/* Quantises and packs q, k, v of shape s into work (nmf_attention_q8_work_floats) with the
 * kernels of isa (the same bytes on every ISA); fills *h. */
void nmf_q8_attention_pack(nmf_q8_head *h, const float *q, const float *k, const float *v,
                           const nmf_attention_shape *s, float *work, nmf_isa isa);
/* nmf_q8_attention_pack's second half, AVX-512 VNNI (the same bytes as attention_q8.c's): Q's
 * u8 rows (in h->q8) to s8 and qoff, K's u8 rows (ktmp, d4 apart) into kg, V into vg. */
void nmf_q8_attention_layout_avx512(nmf_q8_head *h, const uint8_t *ktmp, const float *v,
                                    const nmf_attention_shape *s);
/* The same, AVX2 (attention_q8_avx2.c), and K and V split into k16, v16 for its kernel. */
void nmf_q8_attention_layout_avx2(nmf_q8_head *h, const uint8_t *ktmp, const float *v,
                                  const nmf_attention_shape *s);
/* The online softmax's step into a chunk whose largest score is cmax (the numerics above):
 * stores m' in *m and the exponent offset -m' (0 while no key is visible) in *neg_m; returns
 * alpha, the rescale of the row's sums so far. */
float nmf_q8_chunk_step(float cmax, float *m, float *neg_m);
/* 255 2^x for the probabilities: x clamped to [-16, 0] (NaN: -16; 255 2^-16 rounds to 0), n =
 * rne(x), f = x - n in [-1/2, 1/2], a degree-4 polynomial for 255 2^f (minimax for relative
 * error, 2.8e-6; constant term 255 exactly, so x = 0 gives 255), times 2^n (exact). 11
 * operations against 255 e2's 15, on every key of every row: within 7e-4 of 255 2^x. */
#define NMF_Q8_P255_C1 1.767466736e+02f
#define NMF_Q8_P255_C2 6.126145172e+01f
#define NMF_Q8_P255_C3 1.425614929e+01f
#define NMF_Q8_P255_C4 2.443628311e+00f
/* p = 255 2^f by Horner, the one chain every form runs (gelu_q8.h's NMF_GELU_Q8_POLY alike) */
#define NMF_Q8_P255_POLY(p, f, SET1, FMADD)                                                     \
    do {                                                                                        \
        p = SET1(NMF_Q8_P255_C4);                                                               \
        p = FMADD(p, f, SET1(NMF_Q8_P255_C3));                                                  \
        p = FMADD(p, f, SET1(NMF_Q8_P255_C2));                                                  \
        p = FMADD(p, f, SET1(NMF_Q8_P255_C1));                                                  \
        p = FMADD(p, f, SET1(255.0f));                                                          \
    } while (0)
static inline float nmf_q8_p255(float x) {
    x = x >= -16.0f ? x : -16.0f; /* as vmaxps(x, -16): NaN gives -16 */
    x = x <= 0.0f ? x : 0.0f;
    const float n = (x + 12582912.0f) - 12582912.0f; /* rne */
    const float f = x - n;
    float p;
    NMF_Q8_P255_POLY(p, f, NMF_SCALAR_SET1, fmaf);
    return ldexpf(p, (int)n);
}
/* p8 of a score: rne(p255(fmaf(s, log2(e), neg_m))) (at most 255.0007: no cap needed) */
static inline int32_t nmf_q8_prob(float s, float neg_m) {
    const float e = nmf_q8_p255(fmaf(s, 1.44269504088896341f, neg_m));
    return (int32_t)((e + 12582912.0f) - 12582912.0f);
}

/* A block of NMF_ATT_QB queries from query i0 (nq of them real, the spare rows repeating the
 * last): each row's packed query, K-offset correction, scale and last visible key, and its
 * online-softmax state at the start (m = -inf, l = 0). The kernels' block loops start here. */
typedef struct {
    size_t nq;
    const int8_t *qr[NMF_ATT_QB];
    int32_t qoff[NMF_ATT_QB];
    float qscale[NMF_ATT_QB], m[NMF_ATT_QB], l[NMF_ATT_QB];
    size_t last[NMF_ATT_QB];
} nmf_q8_block;
static inline void nmf_q8_block_start(nmf_q8_block *b, const nmf_q8_head *h,
                                      const nmf_attention_shape *s, size_t i0) {
    b->nq = s->Tq - i0 < NMF_ATT_QB ? s->Tq - i0 : NMF_ATT_QB;
    for (int r = 0; r < NMF_ATT_QB; r++) {
        const size_t i = i0 + ((size_t)r < b->nq ? (size_t)r : b->nq - 1);
        b->qr[r] = h->q8 + i * h->d4;
        b->qoff[r] = h->qoff[i];
        b->qscale[r] = h->qscale[i];
        b->last[r] = s->causal ? i + (s->Tk - s->Tq) : s->Tk - 1;
        b->m[r] = -INFINITY;
        b->l[r] = 0.0f;
    }
}

/* One packed head, AVX-512 VNNI (attention_q8_avx512.c) and AVX2 (attention_q8_avx2.c, no VNNI
 * needed); the reference is attention_q8.c. */
void nmf_attention_q8_avx512(float *out, const nmf_q8_head *h, const nmf_attention_shape *s);
void nmf_attention_q8_avx2(float *out, const nmf_q8_head *h, const nmf_attention_shape *s);

#endif
