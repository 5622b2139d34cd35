/* int8 attention (numerics and packing: attention_q8.h): the packing every ISA shares, the
 * portable reference (what NMF_ISA=scalar runs, and what the kernels are tested against bit for
 * bit), and the dispatch. */
#include "kernels/attention_q8.h"

#include <math.h>
#include <string.h>

#include "kernels/spmm_q8.h"

/* The pieces of the work buffer in order, each rounded to 16 floats (64-byte aligned). */
typedef struct {
    size_t q8, qscale, qoff, kg, kscale, vg, vscale, scores, p8, acc, vinv, k16, v16, qw, pw, ktmp;
} q8_sizes; /* in floats */

static size_t floats_of_bytes(size_t bytes) { return nmf_round_up(bytes, 64) / sizeof(float); }

static q8_sizes sizes_of(size_t Tq, size_t Tk, size_t d) {
    const size_t d4 = nmf_round_up(d, 4), tkp = nmf_round_up(Tk, 16), dp = nmf_round_up(d, 16);
    const size_t rows = NMF_ATT_QB * NMF_ATT_CHUNK;
    return (q8_sizes){floats_of_bytes(Tq * d4),  nmf_round_up(Tq, 16), nmf_round_up(Tq, 16),
                      floats_of_bytes(tkp * d4), tkp,                  floats_of_bytes(tkp * dp),
                      dp,                        rows,                 floats_of_bytes(rows),
                      NMF_ATT_QB * dp,           dp,                   2 * (d4 / 4) * tkp,
                      2 * (tkp / 4) * dp,        nmf_round_up(NMF_ATT_QB * 2 * (d4 / 4), 16),
                      rows / 2,                  floats_of_bytes(tkp * d4)};
}

size_t nmf_attention_q8_work_floats(size_t Tq, size_t Tk, size_t d) {
    const q8_sizes z = sizes_of(Tq, Tk, d);
    return z.q8 + z.qscale + z.qoff + z.kg + z.kscale + z.vg + z.vscale + z.scores + z.p8 + z.acc +
           z.vinv + z.k16 + z.v16 + z.qw + z.pw + z.ktmp;
}

/* V per channel over the Tk keys into groups of 4 keys (attention_q8.h), portable. */
static void pack_v(uint32_t *vg, float *vscale, const float *v, size_t ldv, size_t Tk, size_t d,
                   size_t dp, size_t tkp, float *inv) {
    for (size_t c = 0; c < dp; c++) {
        float amax = 0.0f;
        int nan = 0;
        for (size_t j = 0; c < d && j < Tk; j++) {
            const float a = fabsf(v[j * ldv + c]);
            amax = a > amax ? a : amax;
            nan |= a != a;
        }
        const float s = c < d && !nan && isfinite(amax) ? nmf_q8_scale(amax, &inv[c]) : 0.0f;
        if (s == 0.0f) inv[c] = 0.0f;
        vscale[c] = s;
    }
    memset(vg, 0, tkp * dp);
    uint8_t *bytes = (uint8_t *)vg; /* word (jg, c), byte h: key 4 jg + h */
    for (size_t j = 0; j < Tk; j++)
        for (size_t c = 0; c < d; c++)
            if (inv[c] != 0.0f)
                bytes[((j / 4) * dp + c) * 4 + j % 4] = (uint8_t)(int8_t)nmf_q8_round(v[j * ldv + c] * inv[c]);
}

/* The quantised rows into the kernels' layout (attention_q8.h), portable: Q's u8 rows to s8 in
 * place with their K-offset corrections, K's u8 rows (ktmp) transposed by 4-byte groups, and V
 * quantised per channel. */
static void layout(nmf_q8_head *h, const uint8_t *ktmp, const float *v, const nmf_attention_shape *s) {
    const size_t d4 = h->d4, G = d4 / 4, tkp = h->tkp;
    uint8_t *qu = (uint8_t *)h->q8;
    for (size_t i = 0; i < s->Tq; i++) {
        int32_t sum = 0;
        for (size_t c = 0; c < d4; c++) {
            qu[i * d4 + c] ^= 0x80;
            sum += h->q8[i * d4 + c];
        }
        h->qoff[i] = 128 * sum;
    }
    for (size_t g = 0; g < G; g++)
        for (size_t j = 0; j < tkp; j++) {
            uint32_t w = 0x80808080u; /* padding keys: k8 = 0 */
            if (j < s->Tk) memcpy(&w, ktmp + j * d4 + 4 * g, 4);
            h->kg[g * tkp + j] = w;
        }
    pack_v(h->vg, h->vscale, v, s->ldv, s->Tk, s->d, h->dp, tkp, h->vinv);
}

void nmf_q8_attention_pack(nmf_q8_head *h, const float *q, const float *k, const float *v,
                           const nmf_attention_shape *s, float *work, nmf_isa isa) {
    const size_t Tq = s->Tq, Tk = s->Tk, d = s->d;
    const q8_sizes z = sizes_of(Tq, Tk, d);
    h->d4 = nmf_round_up(d, 4);
    h->tkp = nmf_round_up(Tk, 16);
    h->dp = nmf_round_up(d, 16);
    float *p = work;
#define TAKE(field, type, n) (h->field = (type)(void *)p, p += z.n)
    TAKE(q8, int8_t *, q8);
    TAKE(qscale, float *, qscale);
    TAKE(qoff, int32_t *, qoff);
    TAKE(kg, uint32_t *, kg);
    TAKE(kscale, float *, kscale);
    TAKE(vg, uint32_t *, vg);
    TAKE(vscale, float *, vscale);
    TAKE(scores, float *, scores);
    TAKE(p8, uint8_t *, p8);
    TAKE(acc, float *, acc);
    TAKE(vinv, float *, vinv);
    TAKE(k16, int32_t *, k16);
    TAKE(v16, int32_t *, v16);
    TAKE(qw, int32_t *, qw);
    TAKE(pw, int32_t *, pw);
#undef TAKE
    uint8_t *ktmp = (uint8_t *)(void *)p;
    /* the int8 products' quantiser for this ISA (the same bytes on every ISA) */
    const nmf_q8_quantize_fn quantize = nmf_q8_kernel_for(isa, 0)->quantize;
    const size_t d4 = h->d4;
    quantize((uint8_t *)h->q8, d4, h->qscale, q, s->ldq, s->d, 0, Tq); /* u8 rows for now */
    quantize(ktmp, d4, h->kscale, k, s->ldk, s->d, 0, Tk);
    for (size_t i = 0; i < Tq; i++) h->qscale[i] *= s->scale;
    for (size_t j = Tk; j < h->tkp; j++) h->kscale[j] = 0.0f;
    const nmf_q8_kind kind = nmf_q8_kind_for(isa);
    if (kind == NMF_Q8_VNNI512) nmf_q8_attention_layout_avx512(h, ktmp, v, s);
    else if (kind == NMF_Q8_AVX2) nmf_q8_attention_layout_avx2(h, ktmp, v, s);
    else layout(h, ktmp, v, s);
}

float nmf_q8_chunk_step(float cmax, float *m, float *neg_m) {
    const float mold = *m, t = cmax * 1.44269504088896341f;
    const float mnew = mold > t ? mold : t; /* as vmaxps(mold, t) */
    const int none = mnew == -INFINITY;
    const float msafe = none ? 0.0f : mnew;
    *m = mnew;
    *neg_m = -msafe;
    return nmf_exp2_nonpos(none ? 0.0f : mold - msafe);
}

/* The reference: one query at a time, the numerics of attention_q8.h written out. */
static void attention_q8_ref(float *out, const nmf_q8_head *h, const nmf_attention_shape *s) {
    const size_t Tq = s->Tq, Tk = s->Tk, d = s->d, G = h->d4 / 4, dp = h->dp;
    const uint8_t *kb = (const uint8_t *)h->kg, *vb = (const uint8_t *)h->vg;
    float *scores = h->scores, *acc = h->acc;
    uint8_t *p8 = h->p8;
    for (size_t i = 0; i < Tq; i++) {
        const size_t kend = (s->causal ? i + (Tk - Tq) : Tk - 1) + 1;
        const int8_t *qi = h->q8 + i * h->d4;
        float m = -INFINITY, l = 0.0f;
        for (size_t c = 0; c < d; c++) acc[c] = 0.0f;
        for (size_t c0 = 0; c0 < kend; c0 += NMF_ATT_CHUNK) {
            const size_t n = kend - c0 < NMF_ATT_CHUNK ? kend - c0 : NMF_ATT_CHUNK;
            float cmax = -INFINITY;
            for (size_t j = 0; j < n; j++) {
                const size_t key = c0 + j;
                int32_t dot = 0;
                for (size_t g = 0; g < G; g++)
                    for (size_t b = 0; b < 4; b++)
                        dot += qi[4 * g + b] * ((int32_t)kb[(g * h->tkp + key) * 4 + b] - 128);
                scores[j] = ((float)dot * h->qscale[i]) * h->kscale[key];
                cmax = scores[j] > cmax ? scores[j] : cmax;
            }
            float neg_m;
            const float alpha = nmf_q8_chunk_step(cmax, &m, &neg_m);
            int32_t tsum = 0;
            for (size_t j = 0; j < n; j++) tsum += p8[j] = (uint8_t)nmf_q8_prob(scores[j], neg_m);
            l = fmaf(l, alpha, (float)tsum);
            for (size_t c = 0; c < d; c++) {
                int32_t sum = 0;
                for (size_t j = 0; j < n; j++) {
                    const size_t key = c0 + j;
                    sum += p8[j] * (int32_t)(int8_t)vb[((key / 4) * dp + c) * 4 + key % 4];
                }
                acc[c] = fmaf((float)sum, h->vscale[c], acc[c] * alpha);
            }
        }
        const float inv = 1.0f / l;
        for (size_t c = 0; c < d; c++) out[i * s->ldo + c] = acc[c] * inv;
    }
}

static nmf_status check_q8(const nmf_attention_shape *s) {
    nmf_status st = nmf_attention_check_shape(s);
    if (st) return st;
    if (s->d > NMF_ATTENTION_Q8_MAX_D)
        return nmf_error(NMF_ERR_INVALID_ARG, "int8 attention: head width %zu above %d", s->d,
                         NMF_ATTENTION_Q8_MAX_D);
    if (s->Tq > ((size_t)1 << 26)) /* the packed queries' size must not overflow */
        return nmf_error(NMF_ERR_INVALID_ARG, "int8 attention: %zu queries, at most 2^26", s->Tq);
    return NMF_OK;
}

static nmf_status run(float *out, const float *q, const float *k, const float *v,
                      const nmf_attention_shape *s, float *work, nmf_isa isa) {
    nmf_status st = check_q8(s);
    if (st) return st;
    float *own = NULL;
    if (!work) {
        own = nmf_alloc(nmf_attention_q8_work_floats(s->Tq, s->Tk, s->d), sizeof(float));
        if (!own)
            return nmf_error(NMF_ERR_NOMEM, "int8 attention: scratch for Tq=%zu Tk=%zu d=%zu",
                             s->Tq, s->Tk, s->d);
        work = own;
    }
    nmf_q8_head h;
    nmf_q8_attention_pack(&h, q, k, v, s, work, isa);
    const nmf_q8_kind kind = nmf_q8_kind_for(isa);
    if (kind == NMF_Q8_VNNI512) nmf_attention_q8_avx512(out, &h, s);
    else if (kind == NMF_Q8_AVX2) nmf_attention_q8_avx2(out, &h, s); /* AVX2 or AVX-512 sans VNNI */
    else attention_q8_ref(out, &h, s);
    nmf_free(own);
    return NMF_OK;
}

/* Measured (`NMF_THREADS=1 build/attention_sweep`, one head, Xeon model 207, int8 time / f32
 * time): Tq x Tk x d = 197x197x64 0.47, 197x197x32 0.82, 197x197x16 1.02, 65x65x64 0.84,
 * 50x50x64 0.90, 50x50x32 1.19, 50x50x16 1.45; Tk = 256, d = 64: 1 query 1.25, 8 queries 1.00,
 * 16 queries 0.87, 64 queries 0.60. */
int nmf_attention_q8_pays(size_t Tq, size_t d) {
    return Tq >= 16 && d >= 32 && d <= NMF_ATTENTION_Q8_MAX_D;
}

nmf_status nmf_attention_forward_q8(float *out, const float *q, const float *k, const float *v,
                                    const nmf_attention_shape *s, float *work) {
    return run(out, q, k, v, s, work, nmf_active_isa());
}

nmf_status nmf_attention_forward_q8_ref(float *out, const float *q, const float *k, const float *v,
                                        const nmf_attention_shape *s, float *work) {
    return run(out, q, k, v, s, work, NMF_ISA_SCALAR);
}

