/* Attention: fused online-softmax reference, the naive materialising version, the ISA dispatch,
 * and multi-head self-attention over a batch (threads over (batch, head) pairs).
 *
 * Online softmax, per query i, over key tiles:
 *   m' = max(m, max_j s_j)      alpha = exp(m - m')
 *   l' = l alpha + sum_j exp(s_j - m')
 *   acc' = acc alpha + sum_j exp(s_j - m') v_j
 * and finally out = acc / l. Every exponent is <= 0, so large scores never overflow; the
 * key that sets the running max contributes exp(0) = 1, so l >= 1 and the division is safe. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/attention_q8.h"

nmf_status nmf_attention_check_shape(const nmf_attention_shape *s) {
    if (!s) return nmf_error(NMF_ERR_INVALID_ARG, "attention: shape is NULL");
    if (s->Tq == 0 || s->Tk == 0 || s->d == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "attention: empty shape Tq=%zu Tk=%zu d=%zu", s->Tq,
                         s->Tk, s->d);
    if (s->ldq < s->d || s->ldk < s->d || s->ldv < s->d || s->ldo < s->d)
        return nmf_error(NMF_ERR_INVALID_ARG, "attention: a leading dimension is below d=%zu", s->d);
    if (s->causal && s->Tk < s->Tq)
        return nmf_error(NMF_ERR_INVALID_ARG, "attention: causal needs Tk (%zu) >= Tq (%zu)", s->Tk,
                         s->Tq);
    if (s->d > ((size_t)1 << 20) || s->Tk > ((size_t)1 << 26))
        return nmf_error(NMF_ERR_INVALID_ARG, "attention: shape too large (Tk=%zu d=%zu)", s->Tk,
                         s->d);
    return NMF_OK;
}

/* Last key visible to query i. */
static inline size_t last_key(const nmf_attention_shape *s, size_t i) {
    return s->causal ? i + (s->Tk - s->Tq) : s->Tk - 1;
}

size_t nmf_attention_work_floats(size_t Tk, size_t d) {
    /* SIMD kernels: K^T (d, Tk rounded to 16), accumulators (QB, d rounded to 16), probabilities
     * (QB, CHUNK >= KT), + 16 floats of alignment slack. The reference needs less (d + KT). */
    _Static_assert(NMF_ATT_CHUNK >= NMF_ATT_KT, "the probabilities' rows hold a tile");
    size_t dp = nmf_round_up(d, 16);
    return d * nmf_round_up(Tk, 16) + NMF_ATT_QB * dp + NMF_ATT_QB * NMF_ATT_CHUNK + 16;
}

nmf_status nmf_attention_forward_ref(float *out, const float *q, const float *k, const float *v,
                                     const nmf_attention_shape *s, float *work) {
    nmf_status st = nmf_attention_check_shape(s);
    if (st) return st;
    const size_t d = s->d;
    float *own = NULL;
    if (!work) {
        own = nmf_alloc(nmf_attention_work_floats(s->Tk, d), sizeof(float));
        if (!own) return nmf_error(NMF_ERR_NOMEM, "attention: scratch for Tk=%zu d=%zu", s->Tk, d);
        work = own;
    }
    float *acc = work, *p = work + d; // (d), (KT)
    for (size_t i = 0; i < s->Tq; i++) {
        const float *qi = q + i * s->ldq;
        size_t kend = last_key(s, i) + 1;
        float m = -INFINITY, l = 0.0f;
        for (size_t c = 0; c < d; c++) acc[c] = 0.0f;
        for (size_t j0 = 0; j0 < kend; j0 += NMF_ATT_KT) {
            size_t nk = kend - j0 < NMF_ATT_KT ? kend - j0 : NMF_ATT_KT;
            float tmax = -INFINITY;
            for (size_t j = 0; j < nk; j++) {
                const float *kj = k + (j0 + j) * s->ldk;
                float dot = 0.0f;
                for (size_t c = 0; c < d; c++) dot += qi[c] * kj[c];
                p[j] = dot * s->scale;
                if (p[j] > tmax) tmax = p[j];
            }
            float mnew = tmax > m ? tmax : m;
            float alpha = expf(m - mnew); /* m = -inf on the first tile: alpha = 0 */
            float tsum = 0.0f;
            for (size_t j = 0; j < nk; j++) {
                p[j] = expf(p[j] - mnew);
                tsum += p[j];
            }
            l = l * alpha + tsum;
            for (size_t c = 0; c < d; c++) acc[c] *= alpha;
            for (size_t j = 0; j < nk; j++) {
                const float *vj = v + (j0 + j) * s->ldv;
                for (size_t c = 0; c < d; c++) acc[c] += p[j] * vj[c];
            }
            m = mnew;
        }
        float *oi = out + i * s->ldo;
        float inv = 1.0f / l;
        for (size_t c = 0; c < d; c++) oi[c] = acc[c] * inv;
    }
    nmf_free(own);
    return NMF_OK;
}

nmf_status nmf_attention_naive(float *out, const float *q, const float *k, const float *v,
                               const nmf_attention_shape *s) {
    nmf_status st = nmf_attention_check_shape(s);
    if (st) return st;
    size_t n;
    if (nmf_mul_overflow(s->Tq, s->Tk, &n))
        return nmf_error(NMF_ERR_NOMEM, "attention: %zu x %zu scores overflow", s->Tq, s->Tk);
    double *scores = malloc(n * sizeof(double)); // (Tq, Tk): the matrix the fused kernel avoids
    double *acc = malloc(s->d * sizeof(double));
    if (!scores || !acc) {
        free(scores);
        free(acc);
        return nmf_error(NMF_ERR_NOMEM, "attention: naive scores %zu x %zu", s->Tq, s->Tk);
    }
    for (size_t i = 0; i < s->Tq; i++) {
        double *row = scores + i * s->Tk;
        size_t kend = last_key(s, i) + 1;
        double mx = -INFINITY;
        for (size_t j = 0; j < kend; j++) {
            float dot = 0.0f; /* float, like the kernels: the score is what a float model sees */
            for (size_t c = 0; c < s->d; c++) dot += q[i * s->ldq + c] * k[j * s->ldk + c];
            row[j] = (double)(dot * s->scale);
            if (row[j] > mx) mx = row[j];
        }
        double sum = 0.0;
        for (size_t j = 0; j < kend; j++) sum += (row[j] = exp(row[j] - mx));
        for (size_t c = 0; c < s->d; c++) acc[c] = 0.0;
        for (size_t j = 0; j < kend; j++)
            for (size_t c = 0; c < s->d; c++) acc[c] += row[j] / sum * v[j * s->ldv + c];
        for (size_t c = 0; c < s->d; c++) out[i * s->ldo + c] = (float)acc[c];
    }
    free(scores);
    free(acc);
    return NMF_OK;
}

nmf_status nmf_attention_forward(float *out, const float *q, const float *k, const float *v,
                                 const nmf_attention_shape *s, float *work) {
    const nmf_isa isa = nmf_active_isa();
    if (isa == NMF_ISA_SCALAR) return nmf_attention_forward_ref(out, q, k, v, s, work);
    nmf_status st = nmf_attention_check_shape(s);
    if (st) return st;
    float *own = NULL;
    if (!work) {
        own = nmf_alloc(nmf_attention_work_floats(s->Tk, s->d), sizeof(float));
        if (!own) return nmf_error(NMF_ERR_NOMEM, "attention: scratch for Tk=%zu d=%zu", s->Tk, s->d);
        work = own;
    }
    if (isa == NMF_ISA_AVX512) nmf_attention_avx512(out, q, k, v, s, work);
    else nmf_attention_avx2(out, q, k, v, s, work);
    nmf_free(own);
    return NMF_OK;
}

/* Scratch of one head, either precision (a model switches precision without a new arena). */
static size_t head_work_floats(size_t T, size_t head_dim) {
    const size_t f32 = nmf_attention_work_floats(T, head_dim);
    const size_t q8 = head_dim <= NMF_ATTENTION_Q8_MAX_D ? nmf_attention_q8_work_floats(T, T, head_dim) : 0;
    return nmf_round_up(f32 > q8 ? f32 : q8, 16);
}

size_t nmf_mhsa_work_floats(size_t T, size_t head_dim) {
    return (size_t)nmf_get_threads() * head_work_floats(T, head_dim);
}

typedef nmf_status (*head_fn)(float *out, const float *q, const float *k, const float *v,
                              const nmf_attention_shape *s, float *work);

static nmf_status mhsa(head_fn head, float *out, const float *qkv, size_t B, size_t T,
                       size_t heads, size_t head_dim, int causal, float *work, size_t work_floats) {
    if (B == 0 || T == 0 || heads == 0 || head_dim == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "mhsa: empty shape B=%zu T=%zu heads=%zu hd=%zu", B,
                         T, heads, head_dim);
    const size_t C = heads * head_dim;
    nmf_attention_shape s = {.Tq = T, .Tk = T, .d = head_dim, .ldq = 3 * C, .ldk = 3 * C,
                             .ldv = 3 * C, .ldo = C, .scale = 1.0f / sqrtf((float)head_dim),
                             .causal = causal};
    nmf_status status = nmf_attention_check_shape(&s);
    if (status) return status;
    if (head == nmf_attention_forward_q8 && head_dim > NMF_ATTENTION_Q8_MAX_D)
        return nmf_error(NMF_ERR_INVALID_ARG, "mhsa: int8 heads of width %zu above %d", head_dim,
                         NMF_ATTENTION_Q8_MAX_D);
    const size_t per = head_work_floats(T, head_dim);
    float *own = NULL;
    int threads = nmf_get_threads();
    if ((size_t)threads > B * heads) threads = (int)(B * heads);
    if (work && work_floats / per < (size_t)threads) threads = (int)(work_floats / per);
    if (work && threads < 1)
        return nmf_error(NMF_ERR_INVALID_ARG, "mhsa: work of %zu floats, need %zu", work_floats, per);
    if (!work) {
        own = nmf_alloc((size_t)threads * per, sizeof(float));
        if (!own) return nmf_error(NMF_ERR_NOMEM, "mhsa: scratch for %d threads", threads);
        work = own;
    }
    const long pairs = (long)(B * heads);
    /* a parallel region costs a barrier: only worth it above ~0.25 MFLOP per call */
    const double flops = 4.0 * (double)pairs * (double)T * (double)T * (double)head_dim;
    if (flops < 262144.0) threads = 1;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long bh = 0; bh < pairs; bh++) {
        size_t b = (size_t)bh / heads, h = (size_t)bh % heads;
        const float *base = qkv + b * T * 3 * C; // (T, 3, heads, head_dim)
        float *w = work + (size_t)omp_get_thread_num() * per;
        /* cannot fail: the shape is checked above and the scratch is given */
        (void)head(out + b * T * C + h * head_dim, base + h * head_dim, base + C + h * head_dim,
                   base + 2 * C + h * head_dim, &s, w);
    }
    nmf_free(own);
    return NMF_OK;
}

nmf_status nmf_mhsa_forward(float *out, const float *qkv, size_t B, size_t T, size_t heads,
                            size_t head_dim, int causal, float *work, size_t work_floats) {
    return mhsa(nmf_attention_forward, out, qkv, B, T, heads, head_dim, causal, work, work_floats);
}

nmf_status nmf_mhsa_forward_q8(float *out, const float *qkv, size_t B, size_t T, size_t heads,
                               size_t head_dim, int causal, float *work, size_t work_floats) {
    return mhsa(nmf_attention_forward_q8, out, qkv, B, T, heads, head_dim, causal, work,
                work_floats);
}
