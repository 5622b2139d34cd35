/* The CPU's fixed-point mode (include/nmformer/sta.h, nmf_fx_cpu): the functional simulator's
 * numbers at CPU speed.
 *
 * Per image, the op order of the ViT, each product one call of an integer kernel (fx_gemm.h) on
 * int16 rows, and every element-wise or per-row step one call of the simulator's own functions
 * (fx_internal.h: fx_out, fx_add, fx_gelu, fx_softmax_row, fx_layernorm_row). Bit-exactness
 * rests on one fact: the simulator's accumulators never overflow before their readout (the
 * quantiser proves |acc| < 2^(acc_bits-1) for every linear; scores and P V are bounded by the
 * same check), so its tile/multiplexer/adder-tree order and the kernels' lane order sum the same
 * integers to the same value. N:M weights run as dense panels with zeros where pruned
 * (docs/STA.md §8 on why).
 *
 * Layout: weights as panels (fx_gemm.h), K_h and V_h^T packed per head and image; activation
 * rows that feed a product are padded to a multiple of 16 int16 with zeros (written once at
 * create, never touched after), so the kernels' pair reads past an odd K stay in the row and
 * meet zero weights. Threads run over images, each with its own scratch planned at create. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/patchify.h"
#include "nmformer/model.h"
#include "nmformer/sta.h"
#include "sta/fx_gemm.h"
#include "sta/fx_internal.h"

static size_t pad16(size_t n) { return (n + 15) & ~(size_t)15; }

typedef struct {
    int rows, cols;
    int16_t *w;             /* panels of W [rows][cols] (fx_gemm.h), zeros where pruned */
    const int64_t *bias;    /* [rows] (the patch embedding's is per token, elsewhere) */
    const nmf_fx_rq *rq;    /* [rows] */
    fx_acc acc;             /* proven at create */
} cpu_linear;

typedef struct {
    int16_t *img, *patch_raw, *patch;     /* [C*S*S], [(T-1)*pk], [T-1][pkp] */
    int16_t *x, *ln, *att, *tmp, *x1;      /* [T][Dp] */
    int16_t *qkv;                          /* [T][3D] */
    int16_t *kpan, *vpan, *p;              /* panels of K_h (T, dh) and V_h^T (dh, T); [T][Tp] */
    int16_t *hid, *gel;                    /* [T][Hp] */
    int64_t *acc, *lsum, *logits;          /* [T][acc_w], [softmax_lanes], [classes] */
    void *block16, *block64;
} cpu_scratch;

struct nmf_fx_cpu {
    nmf_fx_model own; /* when created from weights */
    const nmf_fx_model *q;
    nmf_sta_config hw;
    int T, D, H, heads, dh, pk, img, bits, acc_bits, classes;
    size_t Dp, Hp, Tp, pkp, acc_w;
    cpu_linear patch, head, *lin; /* lin: [depth][4] qkv, proj, fc1, fc2 */
    fx_acc acc_qk, acc_pv;
    int threads;
    cpu_scratch *scratch; /* [threads] */
    char about[192];
};

/* max |w| and the largest row sum of |w| of a dense int16 matrix */
static void weight_bounds(const int16_t *w, int rows, int cols, int64_t *wmax, int64_t *wsum) {
    *wmax = *wsum = 0;
    for (int r = 0; r < rows; r++) {
        int64_t s = 0;
        for (int c = 0; c < cols; c++) {
            int64_t a = w[(size_t)r * cols + c] < 0 ? -(int64_t)w[(size_t)r * cols + c] : w[(size_t)r * cols + c];
            s += a;
            if (a > *wmax) *wmax = a;
        }
        if (s > *wsum) *wsum = s;
    }
}

static nmf_status linear_setup(cpu_linear *c, const nmf_fx_linear *L, int64_t amax) {
    c->rows = L->rows;
    c->cols = L->cols;
    c->bias = L->bias;
    c->rq = L->rq;
    if (!(c->w = nmf_alloc(fx_panel_size(L->rows, L->cols), sizeof *c->w)))
        return nmf_error(NMF_ERR_NOMEM, "sta cpu: out of memory for weights");
    fx_panel_pack(c->w, L->w, (size_t)L->cols, L->rows, L->cols, 0);
    int64_t wmax, wsum;
    weight_bounds(L->w, L->rows, L->cols, &wmax, &wsum);
    c->acc = fx_acc_for(amax, wmax, wsum);
    return NMF_OK;
}

static nmf_status scratch_setup(cpu_scratch *s, const nmf_fx_cpu *m) {
    const size_t T = (size_t)m->T, n16 = (size_t)m->img + (T - 1) * (size_t)m->pk + (T - 1) * m->pkp +
                                          5 * T * m->Dp + 3 * T * (size_t)m->D + fx_panel_size(m->T, m->dh) +
                                          fx_panel_size(m->dh, m->T) + T * m->Tp + 2 * T * m->Hp;
    const size_t n64 = T * m->acc_w + (size_t)m->hw.softmax_lanes + (size_t)m->classes;
    if (!(s->block16 = nmf_alloc(n16, sizeof(int16_t))) || !(s->block64 = nmf_alloc(n64, sizeof(int64_t))))
        return nmf_error(NMF_ERR_NOMEM, "sta cpu: out of memory for scratch");
    memset(s->block16, 0, n16 * sizeof(int16_t)); /* the padding columns stay zero from here on */
    int16_t *p = s->block16;
#define TAKE(ptr, count) (ptr = p, p += (count))
    TAKE(s->img, (size_t)m->img);
    TAKE(s->patch_raw, (T - 1) * (size_t)m->pk);
    TAKE(s->patch, (T - 1) * m->pkp);
    TAKE(s->x, T * m->Dp);
    TAKE(s->ln, T * m->Dp);
    TAKE(s->att, T * m->Dp);
    TAKE(s->tmp, T * m->Dp);
    TAKE(s->x1, T * m->Dp);
    TAKE(s->qkv, T * 3 * (size_t)m->D);
    TAKE(s->kpan, fx_panel_size(m->T, m->dh));
    TAKE(s->vpan, fx_panel_size(m->dh, m->T));
    TAKE(s->p, T * m->Tp);
    TAKE(s->hid, T * m->Hp);
    TAKE(s->gel, T * m->Hp);
#undef TAKE
    s->acc = s->block64;
    s->lsum = s->acc + T * m->acc_w;
    s->logits = s->lsum + m->hw.softmax_lanes;
    return NMF_OK;
}

void nmf_fx_cpu_free(nmf_fx_cpu *m) {
    if (!m) return;
    if (m->scratch)
        for (int i = 0; i < m->threads; i++) {
            nmf_free(m->scratch[i].block16);
            nmf_free(m->scratch[i].block64);
        }
    free(m->scratch);
    nmf_free(m->patch.w);
    nmf_free(m->head.w);
    if (m->lin)
        for (int i = 0; i < 4 * m->q->vit.depth; i++) nmf_free(m->lin[i].w);
    free(m->lin);
    nmf_fx_model_free(&m->own);
    free(m);
}

static nmf_status setup(nmf_fx_cpu *m) {
    const nmf_fx_model *q = m->q;
    const nmf_model_config *v = &q->vit;
    nmf_status st = fx_check_design(q, &m->hw, NULL);
    if (st) return st;
    m->T = nmf_vit_tokens(v);
    m->D = v->dim;
    m->H = nmf_vit_hidden(v);
    m->heads = v->heads;
    m->dh = v->dim / v->heads;
    m->pk = v->in_chans * v->patch * v->patch;
    m->img = v->in_chans * v->img_size * v->img_size;
    m->bits = q->data_bits;
    m->acc_bits = q->acc_bits;
    m->classes = v->num_classes;
    m->Dp = pad16((size_t)m->D);
    m->Hp = pad16((size_t)m->H);
    m->Tp = pad16((size_t)m->T);
    m->pkp = pad16((size_t)m->pk);
    size_t w = (size_t)3 * m->D;
    if ((size_t)m->H > w) w = (size_t)m->H;
    if ((size_t)m->T > w) w = (size_t)m->T;
    if ((size_t)m->classes > w) w = (size_t)m->classes;
    m->acc_w = w;
    /* |activations| <= 2^(bits-1) (saturated to data_bits), probabilities in [0, 2^(bits-1) - 1] */
    const int64_t amax = (int64_t)1 << (m->bits - 1), pmax = fx_pmax(m->bits);
    if ((st = linear_setup(&m->patch, &q->patch, amax)) || (st = linear_setup(&m->head, &q->head, amax)))
        return st;
    if (!(m->lin = calloc((size_t)v->depth * 4, sizeof *m->lin)))
        return nmf_error(NMF_ERR_NOMEM, "sta cpu: out of memory");
    for (int b = 0; b < v->depth; b++) {
        const nmf_fx_block *B = &q->blocks[b];
        const nmf_fx_linear *L[4] = {&B->qkv, &B->proj, &B->fc1, &B->fc2};
        for (int i = 0; i < 4; i++)
            if ((st = linear_setup(&m->lin[4 * b + i], L[i], amax))) return st;
    }
    m->acc_qk = fx_acc_for(amax, amax, (int64_t)m->dh * amax);
    m->acc_pv = fx_acc_for(pmax, amax, (int64_t)m->T * amax);
    m->threads = nmf_get_threads();
    if (m->threads < 1) m->threads = 1;
    if (!(m->scratch = calloc((size_t)m->threads, sizeof *m->scratch)))
        return nmf_error(NMF_ERR_NOMEM, "sta cpu: out of memory");
    for (int i = 0; i < m->threads; i++)
        if ((st = scratch_setup(&m->scratch[i], m))) return st;
    snprintf(m->about, sizeof m->about, "block linears %s (block 0 fc2), scores %s, P V %s",
             fx_acc_name(m->lin[3].acc), fx_acc_name(m->acc_qk), fx_acc_name(m->acc_pv));
    return NMF_OK;
}

nmf_status nmf_fx_cpu_create_quantized(nmf_fx_cpu **out, const nmf_fx_model *q, const nmf_sta_config *hw) {
    if (!out || !q || !hw || !q->blocks) return nmf_error(NMF_ERR_INVALID_ARG, "sta cpu: NULL argument");
    *out = NULL;
    nmf_fx_cpu *m = calloc(1, sizeof *m);
    if (!m) return nmf_error(NMF_ERR_NOMEM, "sta cpu: out of memory");
    m->q = q;
    m->hw = *hw;
    nmf_status st = setup(m);
    if (st) {
        nmf_fx_cpu_free(m);
        return st;
    }
    *out = m;
    return NMF_OK;
}

nmf_status nmf_fx_cpu_create(nmf_fx_cpu **out, const nmf_model_config *vit, const nmf_tensor_set *weights,
                             const nmf_sta_config *hw, const float *calib, size_t ncal) {
    if (!out || !vit || !weights || !hw || !calib || !ncal)
        return nmf_error(NMF_ERR_INVALID_ARG, "sta cpu: NULL argument or no calibration images");
    *out = NULL;
    nmf_status st = nmf_sta_config_validate(hw);
    if (st) return st;
    nmf_fx_cpu *m = calloc(1, sizeof *m);
    if (!m) return nmf_error(NMF_ERR_NOMEM, "sta cpu: out of memory");
    if ((st = nmf_fx_quantize_model(&m->own, vit, weights, hw, calib, ncal))) {
        free(m);
        return st;
    }
    m->q = &m->own;
    m->hw = *hw;
    if ((st = setup(m))) {
        nmf_fx_cpu_free(m);
        return st;
    }
    *out = m;
    return NMF_OK;
}

const nmf_fx_model *nmf_fx_cpu_model(const nmf_fx_cpu *m) { return m ? m->q : NULL; }
const char *nmf_fx_cpu_describe(const nmf_fx_cpu *m) { return m ? m->about : ""; }

/* y[t][o] = out(bias + W[o] . x[t]) for T tokens; tok_bias [T][rows] replaces bias when given */
static void linear(const nmf_fx_cpu *m, fx_gemm_fn gemm, cpu_scratch *s, const cpu_linear *L,
                   const int16_t *x, size_t ldx, int T, int16_t *y, size_t ldy, const int64_t *tok_bias) {
    gemm(s->acc, (size_t)L->rows, x, ldx, L->w, T, L->rows, L->cols, L->acc);
    for (int t = 0; t < T; t++) {
        const int64_t *a = s->acc + (size_t)t * L->rows, *b = tok_bias ? tok_bias + (size_t)t * L->rows : L->bias;
        for (int o = 0; o < L->rows; o++)
            y[(size_t)t * ldy + o] = fx_out(a[o] + b[o], L->rq[o], m->bits, m->acc_bits);
    }
}

/* softmax(Q K^T) V of every head: scores [T][T] through the softmax unit's row function */
static void attention(const nmf_fx_cpu *m, fx_gemm_fn gemm, cpu_scratch *s, const nmf_fx_block *B) {
    const int T = m->T, D = m->D, dh = m->dh;
    for (int h = 0; h < m->heads; h++) {
        /* Q_h is read in place (pairs past dh meet zero weights); K_h and V_h^T as panels */
        const int16_t *q = s->qkv + (size_t)h * dh;
        fx_panel_pack(s->kpan, q + D, 3 * (size_t)D, T, dh, 0);
        fx_panel_pack(s->vpan, q + 2 * D, 3 * (size_t)D, dh, T, 1);
        gemm(s->acc, (size_t)T, q, 3 * (size_t)D, s->kpan, T, T, dh, m->acc_qk);
        for (int i = 0; i < T; i++) {
            int64_t *row = s->acc + (size_t)i * T, max = 0;
            for (int j = 0; j < T; j++) {
                row[j] = fx_sat(row[j], m->acc_bits);
                if (j == 0 || row[j] > max) max = row[j];
            }
            fx_softmax_row(row, T, max, B->softmax_rq, m->hw.softmax_lanes, m->bits, s->lsum);
            for (int j = 0; j < T; j++) s->p[(size_t)i * m->Tp + j] = (int16_t)row[j];
        }
        gemm(s->acc, (size_t)dh, s->p, m->Tp, s->vpan, T, dh, T, m->acc_pv);
        for (int t = 0; t < T; t++)
            for (int d = 0; d < dh; d++)
                s->att[(size_t)t * m->Dp + (size_t)h * dh + d] =
                    fx_out(s->acc[(size_t)t * dh + d], B->av_rq, m->bits, m->acc_bits);
    }
}

static void layernorm(const nmf_fx_cpu *m, int16_t *y, const int16_t *x, const nmf_fx_norm *n, int rows) {
    for (int t = 0; t < rows; t++)
        fx_layernorm_row(y + (size_t)t * m->Dp, x + (size_t)t * m->Dp, n, m->D, m->hw.vector_lanes, m->bits);
}

/* x = add(a, b) over T x D with the block's shared-shift multipliers */
static void residual(const nmf_fx_cpu *m, int16_t *x, const int16_t *a, nmf_fx_rq ma, const int16_t *b,
                     nmf_fx_rq mb) {
    for (int t = 0; t < m->T; t++)
        for (int c = 0; c < m->D; c++) {
            const size_t i = (size_t)t * m->Dp + c;
            x[i] = (int16_t)fx_add(a[i], ma, b[i], mb, m->bits);
        }
}

static void forward_one(const nmf_fx_cpu *m, fx_gemm_fn gemm, cpu_scratch *s, int64_t *logits) {
    const nmf_fx_model *q = m->q;
    const nmf_model_config *v = &q->vit;
    const int T = m->T, bits = m->bits;
    nmf_patchify(s->patch_raw, s->img, sizeof *s->img, 1, v->in_chans, v->img_size, v->patch);
    for (int t = 0; t < T - 1; t++)
        memcpy(s->patch + (size_t)t * m->pkp, s->patch_raw + (size_t)t * m->pk, (size_t)m->pk * sizeof *s->patch);
    memcpy(s->x, q->cls, (size_t)m->D * sizeof *s->x);
    linear(m, gemm, s, &m->patch, s->patch, m->pkp, T - 1, s->x + m->Dp, m->Dp, q->patch_bias);
    for (int b = 0; b < v->depth; b++) {
        const nmf_fx_block *B = &q->blocks[b];
        const cpu_linear *L = m->lin + 4 * b;
        layernorm(m, s->ln, s->x, &B->norm1, T);
        linear(m, gemm, s, &L[0], s->ln, m->Dp, T, s->qkv, 3 * (size_t)m->D, NULL);
        attention(m, gemm, s, B);
        linear(m, gemm, s, &L[1], s->att, m->Dp, T, s->tmp, m->Dp, NULL);
        residual(m, s->x1, s->x, B->add1_a, s->tmp, B->add1_b);
        layernorm(m, s->ln, s->x1, &B->norm2, T);
        linear(m, gemm, s, &L[2], s->ln, m->Dp, T, s->hid, m->Hp, NULL);
        for (int t = 0; t < T; t++)
            for (int c = 0; c < m->H; c++) {
                const size_t i = (size_t)t * m->Hp + c;
                s->gel[i] = fx_gelu(B, s->hid[i], bits);
            }
        linear(m, gemm, s, &L[3], s->gel, m->Hp, T, s->tmp, m->Dp, NULL);
        residual(m, s->x, s->x1, B->add2_a, s->tmp, B->add2_b);
    }
    layernorm(m, s->ln, s->x, &q->norm, 1); /* the class token only */
    gemm(s->acc, (size_t)m->classes, s->ln, m->Dp, m->head.w, 1, m->classes, m->D, m->head.acc);
    for (int o = 0; o < m->classes; o++) logits[o] = fx_sat(s->acc[o] + m->head.bias[o], m->acc_bits);
}

/* images: int16 (quantised) or float (normalised, quantised here); logits as accumulators and/or
 * as real numbers */
static nmf_status forward(nmf_fx_cpu *m, int64_t *logits, float *flogits, const int16_t *qimages,
                          const float *fimages, size_t n) {
    if (!m || (!logits && !flogits) || (!qimages && !fimages))
        return nmf_error(NMF_ERR_INVALID_ARG, "sta cpu: NULL argument");
    const fx_gemm_fn gemm = fx_gemm_for(nmf_active_isa());
    const size_t img = (size_t)m->img, classes = (size_t)m->classes;
    int threads = m->threads;
    if ((size_t)threads > n) threads = n ? (int)n : 1;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (size_t b = 0; b < n; b++) {
        cpu_scratch *s = &m->scratch[omp_get_thread_num()];
        int64_t *out = logits ? logits + b * classes : s->logits;
        if (qimages) memcpy(s->img, qimages + b * img, img * sizeof *s->img);
        else nmf_fx_quantize_input(s->img, fimages + b * img, img, m->q);
        forward_one(m, gemm, s, out);
        if (flogits) nmf_fx_logits_to_f32(flogits + b * classes, out, m->q);
    }
    return NMF_OK;
}

nmf_status nmf_fx_cpu_forward_q(nmf_fx_cpu *m, int64_t *logits, const int16_t *images, size_t n) {
    if (!images || !logits) return nmf_error(NMF_ERR_INVALID_ARG, "sta cpu: NULL images or logits");
    return forward(m, logits, NULL, images, NULL, n);
}

nmf_status nmf_fx_cpu_forward(nmf_fx_cpu *m, int64_t *logits, const float *images, size_t n) {
    if (!images || !logits) return nmf_error(NMF_ERR_INVALID_ARG, "sta cpu: NULL images or logits");
    return forward(m, logits, NULL, NULL, images, n);
}

nmf_status nmf_fx_cpu_forward_f32(nmf_fx_cpu *m, float *logits, const float *images, size_t n) {
    if (!images || !logits) return nmf_error(NMF_ERR_INVALID_ARG, "sta cpu: NULL images or logits");
    return forward(m, NULL, logits, NULL, images, n);
}
