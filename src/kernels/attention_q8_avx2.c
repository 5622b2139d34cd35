/* int8 attention, AVX2 without VNNI: the numbers of attention_q8.h (the reference's bits), the
 * packed operands of attention_q8.c, blocked as the f32 AVX2 kernel (attention_avx2.c): QB = 6
 * queries x 8 keys of int32 scores per register tile, a chunk's scores in the (QB, CHUNK)
 * buffer with a running max vector per row, one softmax step per chunk, then P V over the
 * chunk, 6 rows x 8 channels at a time.
 *
 * No vpdpbusd, so the exact int8 dot products run on vpmaddwd (int16 x int16, pairs summed into
 * int32, exact; never vpmaddubsw, whose u8 x s8 pair sums saturate at 255 * 127 * 2): a packed
 * word of 4 bytes is split into its even bytes (0, 2) and odd bytes (1, 3) as int16 pairs, the
 * other operand is broadcast as the matching pairs, and 2 vpmaddwd + 2 vpaddd add the word's 4
 * products into a lane: 32 multiply-adds per 4 instructions where FMA does 8 per 1, but spread
 * over three ports (the adds go where FMA cannot).
 * - QK^T: per group of 4 channels, two loads of 8 keys' split words (k16, split once per head
 *   by the packing below: splitting kg in the loop cost 5 % of DeiT's int8 attention; the K
 *   offset of 128 stays in, taken back by qoff as in the AVX-512 kernel), then per row the
 *   query's two pair words broadcast from qw (the block's q8 split once per block).
 * - P V: per group of 4 keys, two loads of 8 channels' split words (v16, sign-extended once
 *   per head), then per row the probabilities' two pair words broadcast from pw (written by
 *   the softmax as int16 pairs); the chunk's int32 sums are scaled into the f32 accumulators
 *   once. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/attention_q8.h"
#include "kernels/simd_exp.h"
#include "kernels/spmm_q8.h"
#include "kernels/simd_reduce_avx2.h"

#define QB NMF_ATT_QB
#define CHUNK NMF_ATT_CHUNK
#define PW_ROW (CHUNK / 2) /* pw words per row: 2 per group of 4 keys */

#if NMF_ATT_QB != 6
#error "the tiles below are sized for 6 query rows (6 accumulators + operands in 16 ymm)"
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define NOINLINE static __attribute__((noinline))

/* s8 words (4 bytes) as int16 pairs: bytes 0, 2 sign-extended (even) and bytes 1, 3 (odd) */
static inline __m256i even_s16(__m256i w) { return _mm256_srai_epi16(_mm256_slli_epi16(w, 8), 8); }
static inline __m256i odd_s16(__m256i w) { return _mm256_srai_epi16(w, 8); }

static inline __m256i bcast(const int32_t *p) { return _mm256_set1_epi32(*p); }

/* acc + the 4 products of a word pair: a = (even, odd) of one operand, b of the other. The
 * last add in asm with acc in/out: GCC 12 gives the intrinsic a fresh destination and copies
 * every accumulator back after it (a vmovdqa per row and step, a third more instructions). */
static inline __m256i madd2(__m256i acc, __m256i ae, __m256i ao, __m256i be, __m256i bo) {
    const __m256i x = _mm256_add_epi32(_mm256_madd_epi16(ae, be), _mm256_madd_epi16(ao, bo));
    __asm__("vpaddd %1, %0, %0" : "+x"(acc) : "x"(x));
    return acc;
}

/* The query block's rows (s8, d4 bytes each) as the pair words of qw (QB, G, 2). */
static void split_queries(int32_t *qw, const int8_t *const qr[QB], size_t G) {
    const size_t g8 = G / 8 * 8;
    for (int r = 0; r < QB; r++) {
        int32_t *dst = qw + (size_t)r * G * 2;
        for (size_t g = 0; g < g8; g += 8) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(qr[r] + 4 * g));
            const __m256i e = even_s16(w), o = odd_s16(w);
            const __m256i lo = _mm256_unpacklo_epi32(e, o), hi = _mm256_unpackhi_epi32(e, o);
            _mm256_storeu_si256((__m256i *)(void *)(dst + 2 * g), _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256((__m256i *)(void *)(dst + 2 * g + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
        }
        for (size_t g = g8; g < G; g++) {
            const int8_t *b = qr[r] + 4 * g;
            dst[2 * g] = (int32_t)((uint32_t)(uint16_t)b[0] | (uint32_t)(uint16_t)b[2] << 16);
            dst[2 * g + 1] = (int32_t)((uint32_t)(uint16_t)b[1] | (uint32_t)(uint16_t)b[3] << 16);
        }
    }
}

/* The chunk's scores, 8 keys at a time over nvec vectors (k16, kscale, p at the chunk's first
 * key): ((float)dot * qscale) * kscale, -inf past a row's last key (limit[r], relative to the
 * chunk), into p (row r at p + r * CHUNK), and the rows' running max vectors mx (QB, 8). */
NOINLINE void scores_chunk(float *p, float *mx, size_t nvec, const int32_t *qw, const int32_t qoff[QB],
                           const float qscale[QB], const int32_t *k16, size_t tkp, size_t G,
                           const float *kscale, const long limit[QB]) {
    const __m256 iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), neg_inf = _mm256_set1_ps(-INFINITY);
    long minlim = limit[0];
    for (int r = 1; r < QB; r++) minlim = limit[r] < minlim ? limit[r] : minlim;
    for (size_t v = 0; v < nvec; v++) {
        __m256i s[QB]; /* dot = sum q8 (k8 + 128) - qoff: the offset taken back up front */
#pragma GCC unroll 6
        for (int r = 0; r < QB; r++) s[r] = _mm256_set1_epi32(-qoff[r]);
        const int32_t *kv = k16 + 8 * v;
        for (size_t g = 0; g < G; g++) {
            /* 8 keys' u8 words (k8 + 128), their even and odd bytes */
            const __m256i ke = _mm256_loadu_si256((const __m256i *)(const void *)(kv + 2 * g * tkp));
            const __m256i ko = _mm256_loadu_si256((const __m256i *)(const void *)(kv + (2 * g + 1) * tkp));
            const int32_t *qg = qw + 2 * g;
#pragma GCC unroll 6
            for (int r = 0; r < QB; r++)
                s[r] = madd2(s[r], ke, ko, bcast(qg + (size_t)r * G * 2), bcast(qg + (size_t)r * G * 2 + 1));
        }
        const __m256 ks = _mm256_loadu_ps(kscale + 8 * v);
        const int full = minlim >= (long)(8 * v + 7);
#pragma GCC unroll 6
        for (int r = 0; r < QB; r++) {
            __m256 x = _mm256_cvtepi32_ps(s[r]);
            x = _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(qscale[r])), ks);
            if (!full) {
                const __m256 idx = _mm256_add_ps(iota, _mm256_set1_ps(8.0f * (float)v));
                x = _mm256_blendv_ps(neg_inf, x, _mm256_cmp_ps(idx, _mm256_set1_ps((float)limit[r]), _CMP_LE_OQ));
            }
            _mm256_store_ps(mx + 8 * r, _mm256_max_ps(_mm256_load_ps(mx + 8 * r), x));
            _mm256_storeu_ps(p + (size_t)r * CHUNK + 8 * v, x);
        }
    }
}

/* nmf_q8_p255 (attention_q8.h) in 8 lanes, operation for operation (2^n built in the exponent
 * field: n in [-16, 0]) */
ALWAYS_INLINE __m256 p255(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-16.0f)), _mm256_setzero_ps());
    const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_sub_ps(x, n);
    __m256 p;
    NMF_Q8_P255_POLY(p, f, _mm256_set1_ps, _mm256_fmadd_ps);
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* The chunk's softmax step per row (nmf_q8_chunk_step: m, alpha), then its nvec vectors of
 * scores to probabilities p8 (attention_q8.h), their sum into l, and p8 as the pair words of
 * pw: per group of 4 keys (p0, p2), (p1, p3) as int16. */
NOINLINE void softmax_chunk(int32_t *pw, const float *p, size_t nvec, const float *mx, float *m,
                            float *l, float *alpha) {
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    /* int16 p0 p1 p2 p3 (per 128-bit half, after packus) -> p0 p2 p1 p3 */
    const __m256i pairs = _mm256_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15,
                                           0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15);
    for (int r = 0; r < QB; r++) {
        float neg_m;
        alpha[r] = nmf_q8_chunk_step(nmf_hmax8(_mm256_load_ps(mx + 8 * r)), &m[r], &neg_m);
        const __m256 vm = _mm256_set1_ps(neg_m);
        const float *pr = p + (size_t)r * CHUNK;
        int32_t *wr = pw + (size_t)r * PW_ROW;
        __m256i sum = _mm256_setzero_si256();
        for (size_t v = 0; v < nvec; v++) {
            const __m256i q = _mm256_cvtps_epi32(p255(_mm256_fmadd_ps(_mm256_loadu_ps(pr + 8 * v), log2e, vm)));
            sum = _mm256_add_epi32(sum, q);
            /* keys 8v..8v+7 = groups 2v, 2v+1: words (p0,p2) (p1,p3) (p4,p6) (p5,p7) */
            const __m256i t = _mm256_shuffle_epi8(_mm256_packus_epi32(q, q), pairs);
            _mm_storeu_si128((__m128i *)(void *)(wr + 4 * v),
                             _mm256_castsi256_si128(_mm256_permute4x64_epi64(t, _MM_SHUFFLE(3, 1, 2, 0))));
        }
        l[r] = fmaf(l[r], alpha[r], (float)nmf_hsum8_epi32(sum));
    }
}

/* acc[r][c .. c + 8) = fmaf(sum_j p8[r][j] v8[j][..], vscale, acc * alpha[r]) for every 8
 * channels c < dp, over ng groups of 4 keys (v16, pw at the chunk's first group); on the first
 * chunk acc * alpha is +0 (the reference's 0 * alpha) and acc is not read: it need not be zeroed. */
NOINLINE void pv_chunk(float *acc, size_t dp, const float *alpha, const int32_t *pw,
                       const int32_t *v16, const float *vscale, size_t ng, int first) {
    for (size_t c = 0; c < dp; c += 8) {
        __m256i ia[QB];
#pragma GCC unroll 6
        for (int r = 0; r < QB; r++) ia[r] = _mm256_setzero_si256();
        for (size_t jg = 0; jg < ng; jg++) {
            const __m256i ve = _mm256_loadu_si256((const __m256i *)(const void *)(v16 + 2 * jg * dp + c));
            const __m256i vo = _mm256_loadu_si256((const __m256i *)(const void *)(v16 + (2 * jg + 1) * dp + c));
            const int32_t *pg = pw + 2 * jg;
#pragma GCC unroll 6
            for (int r = 0; r < QB; r++)
                ia[r] = madd2(ia[r], ve, vo, bcast(pg + (size_t)r * PW_ROW), bcast(pg + (size_t)r * PW_ROW + 1));
        }
        const __m256 vs = _mm256_loadu_ps(vscale + c);
#pragma GCC unroll 6
        for (int r = 0; r < QB; r++) {
            float *ar = acc + (size_t)r * dp + c;
            const __m256 prev = first ? _mm256_setzero_ps()
                                      : _mm256_mul_ps(_mm256_loadu_ps(ar), _mm256_set1_ps(alpha[r]));
            _mm256_storeu_ps(ar, _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r]), vs, prev));
        }
    }
}

/* ---- packing (attention_q8.h; the bytes of attention_q8.c's portable layout) ---- */

/* lanes [0, n) of 8 set */
static inline __m256i lanes8(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n < 8 ? (int)n : 8), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* V per channel over the Tk keys into groups of 4 keys: the channels' largest magnitudes row by
 * row (V's rows are ldv apart: row order reads whole lines), the portable scale channel by
 * channel, then 4 keys x 8 channels per step, rounded as nmf_q8_round (clamp, then vcvtps2dq's
 * nearest even) and packed into 8 words by packs and one byte shuffle: into vg, and split into
 * v16. */
static void pack_v(nmf_q8_head *h, const float *v, size_t ldv, size_t Tk, size_t d) {
    const size_t dp = h->dp, tkp = h->tkp;
    float *amax = h->vscale, *inv = h->vinv; /* amax, then the scale; NaN flags, then 127/amax */
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (size_t c = 0; c < dp; c += 8) {
        _mm256_storeu_ps(amax + c, _mm256_setzero_ps());
        _mm256_storeu_ps(inv + c, _mm256_setzero_ps());
    }
    for (size_t j = 0; j < Tk; j++)
        for (size_t c = 0; c < d; c += 8) {
            const __m256 x = _mm256_maskload_ps(v + j * ldv + c, lanes8(d - c));
            _mm256_storeu_ps(amax + c, _mm256_max_ps(_mm256_loadu_ps(amax + c), _mm256_and_ps(x, magnitude)));
            _mm256_storeu_ps(inv + c, _mm256_or_ps(_mm256_loadu_ps(inv + c), _mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
        }
    for (size_t c = 0; c < dp; c++) { /* the portable scale (attention_q8.c) */
        int32_t bad;
        memcpy(&bad, &inv[c], 4);
        const float s = c < d && !bad && isfinite(amax[c]) ? nmf_q8_scale(amax[c], &inv[c]) : 0.0f;
        if (s == 0.0f) inv[c] = 0.0f;
        amax[c] = s;
    }
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    /* bytes (key k, channel c) at 4k + c in each 128-bit half -> the word of channel c: 4c + k */
    const __m256i words = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                           0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (size_t j0 = 0; j0 < tkp; j0 += 4)
        for (size_t c = 0; c < dp; c += 8) {
            const __m256 vinv = _mm256_loadu_ps(inv + c);
            /* zero for a zero or non-finite channel (whose 0 * NaN must not reach the clamp) */
            const __m256i good = _mm256_castps_si256(_mm256_cmp_ps(vinv, _mm256_setzero_ps(), _CMP_NEQ_OQ));
            const __m256i in = lanes8(c < d ? d - c : 0);
            __m256i q[4];
            for (int b = 0; b < 4; b++) {
                if (j0 + (size_t)b >= Tk) { /* padding keys: 0 */
                    q[b] = _mm256_setzero_si256();
                    continue;
                }
                const __m256 x = _mm256_mul_ps(_mm256_maskload_ps(v + (j0 + b) * ldv + c, in), vinv);
                q[b] = _mm256_and_si256(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(x, lo), hi)), good);
            }
            const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            const __m256i w = _mm256_shuffle_epi8(bytes, words);
            _mm256_storeu_si256((__m256i *)(void *)(h->vg + (j0 / 4) * dp + c), w);
            _mm256_storeu_si256((__m256i *)(void *)(h->v16 + (j0 / 2) * dp + c), even_s16(w));
            _mm256_storeu_si256((__m256i *)(void *)(h->v16 + (j0 / 2 + 1) * dp + c), odd_s16(w));
        }
}

void nmf_q8_attention_layout_avx2(nmf_q8_head *h, const uint8_t *ktmp, const float *v,
                                  const nmf_attention_shape *s) {
    const size_t d4 = h->d4, G = d4 / 4, tkp = h->tkp, Tk = s->Tk;
    /* Q: u8 -> s8 in place; sum q8 = sum u8 - 128 d4 (the padding bytes are 128) */
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (size_t i = 0; i < s->Tq; i++) {
        uint8_t *row = (uint8_t *)h->q8 + i * d4;
        __m256i sum = _mm256_setzero_si256();
        size_t c = 0;
        for (; c + 32 <= d4; c += 32) {
            const __m256i u = _mm256_loadu_si256((const __m256i *)(void *)(row + c));
            sum = _mm256_add_epi64(sum, _mm256_sad_epu8(u, _mm256_setzero_si256()));
            _mm256_storeu_si256((__m256i *)(void *)(row + c), _mm256_xor_si256(u, flip));
        }
        int64_t total = 0;
        for (; c < d4; c++) {
            total += row[c];
            row[c] ^= 0x80;
        }
        int64_t lanes[4];
        _mm256_storeu_si256((__m256i *)(void *)lanes, sum);
        total += lanes[0] + lanes[1] + lanes[2] + lanes[3];
        h->qoff[i] = 128 * (int32_t)(total - 128 * (int64_t)d4);
    }
    /* K: 8 keys x one 4-byte group per gather (padding keys k8 = 0), into kg and split into k16 */
    const __m256i rows8 = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)d4));
    const __m256i pad = _mm256_set1_epi32((int)0x80808080u), low_bytes = _mm256_set1_epi32(0x00FF00FF);
    for (size_t j0 = 0; j0 < tkp; j0 += 8) {
        const __m256i mk = lanes8(j0 < Tk ? Tk - j0 : 0);
        const int *base = (const int *)(const void *)(ktmp + j0 * d4);
        for (size_t g = 0; g < G; g++) {
            const __m256i w = _mm256_mask_i32gather_epi32(pad, base + g, rows8, mk, 1);
            _mm256_storeu_si256((__m256i *)(void *)(h->kg + g * tkp + j0), w);
            _mm256_storeu_si256((__m256i *)(void *)(h->k16 + 2 * g * tkp + j0), _mm256_and_si256(w, low_bytes));
            _mm256_storeu_si256((__m256i *)(void *)(h->k16 + (2 * g + 1) * tkp + j0), _mm256_srli_epi16(w, 8));
        }
    }
    pack_v(h, v, s->ldv, Tk, s->d);
}

void nmf_attention_q8_avx2(float *out, const nmf_q8_head *h, const nmf_attention_shape *sh) {
    const size_t Tq = sh->Tq, d = sh->d, G = h->d4 / 4, tkp = h->tkp, dp = h->dp;
    for (size_t i0 = 0; i0 < Tq; i0 += QB) {
        nmf_q8_block b;
        nmf_q8_block_start(&b, h, sh, i0);
        const size_t nq = b.nq, *const last = b.last;
        const int8_t *const *qr = b.qr;
        const int32_t *qoff = b.qoff;
        const float *qscale = b.qscale;
        float *m = b.m, *l = b.l, alpha[QB];
        split_queries(h->qw, qr, G);
        const size_t kend = last[QB - 1] + 1; /* rows are in order: the last sees the most */
        for (size_t c0 = 0; c0 < kend; c0 += CHUNK) {
            const size_t cend = kend - c0 < CHUNK ? kend : c0 + CHUNK;
            const size_t nvec = (cend - c0 + 7) / 8;
            _Alignas(32) float mx[QB * 8];
            long limit[QB];
            for (int r = 0; r < QB; r++) {
                _mm256_store_ps(mx + 8 * r, _mm256_set1_ps(-INFINITY));
                limit[r] = (long)last[r] - (long)c0;
            }
            scores_chunk(h->scores, mx, nvec, h->qw, qoff, qscale, h->k16 + c0, tkp, G, h->kscale + c0, limit);
            softmax_chunk(h->pw, h->scores, nvec, mx, m, l, alpha);
            /* masked keys have p8 = 0, so P V runs over whole groups of 4 */
            pv_chunk(h->acc, dp, alpha, h->pw, h->v16 + 2 * (c0 / 4) * dp, h->vscale, (cend - c0 + 3) / 4,
                     c0 == 0);
        }
        for (size_t r = 0; r < nq; r++) {
            const __m256 inv = _mm256_set1_ps(1.0f / l[r]);
            const float *a = h->acc + r * dp;
            float *o = out + (i0 + r) * sh->ldo;
            size_t c = 0;
            for (; c + 8 <= d; c += 8) _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_loadu_ps(a + c), inv));
            if (c < d) {
                const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(d - c)),
                                                        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                _mm256_maskstore_ps(o + c, tail, _mm256_mul_ps(_mm256_loadu_ps(a + c), inv));
            }
        }
    }
}
