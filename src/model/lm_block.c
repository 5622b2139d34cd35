/* The token families' forward pieces, built from the shared ops: the stem (embeddings), the two
 * block kinds -- BERT's post-LN encoder block and the pre-norm decoder block of GPT-2 and LLaMA,
 * parameterised by norm (LayerNorm / RMSNorm), q/k/v fused or separate (GQA), RoPE and MLP
 * (plain / SwiGLU) -- and the tails (pooler + classifier, final norm + LM head). Everything runs
 * on the arena; shapes in comments: B sequences, T new tokens, BT = B*T, D width, Q = heads*hd,
 * KVW = kv_heads*hd, I the MLP width. Every op is reported to the observer in the order of the
 * family's op list (lm_desc.c). */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "model/lm_block.h"
#include "nmformer/ops.h"

void nmf_lm_observe(const nmf_lm *m, const nmf_lm_observer *o, nmf_lm_op op, int block,
                    const float *data, size_t rows, size_t cols) {
    if (!o || !o->fn) return;
    nmf_op_event e = {(int)op, block, "", data, rows, cols};
    int n;
    const nmf_op_row *r = block >= 0 ? nmf_model_block_ops(&m->config, &n) : nmf_model_stem_ops(&m->config, &n);
    const nmf_op_row *row = NULL;
    for (int pass = 0; pass < 2 && !row; pass++) {
        for (int i = 0; i < n && !row; i++)
            if (r[i].op == (int)op) row = &r[i];
        if (block < 0) r = nmf_model_tail_ops(&m->config, &n);
    }
    nmf_model_op_name(&m->config, row, block, e.name, sizeof e.name);
    o->fn(&e, o->ctx);
}

/* ---- shared pieces ---- */

/* y (N, D) = norm(x) with the weights of kinds w, b (block `block`; b -1 for RMSNorm) */
static void norm(const nmf_lm *m, float *y, const float *x, int w, int b, int block, size_t N) {
    if (m->k.rms) nmf_rmsnorm_forward(y, x, nmf_lm_param(m, w, block), N, m->D, m->eps);
    else nmf_layernorm_forward(y, x, nmf_lm_param(m, w, block), nmf_lm_param(m, b, block), N, m->D, m->eps);
}

/* sum = x + r (the residual add), then y = norm(sum): one pass per token for a LayerNorm */
static void add_norm(const nmf_lm *m, float *y, float *sum, const float *x, const float *r, int w,
                     int b, int block, size_t N) {
    if (m->k.rms) {
        nmf_add_forward(sum, x, r, N * m->D);
        nmf_rmsnorm_forward(y, sum, nmf_lm_param(m, w, block), N, m->D, m->eps);
    } else {
        nmf_add_layernorm_forward(y, sum, x, r, nmf_lm_param(m, w, block), nmf_lm_param(m, b, block),
                                  N, m->D, m->eps);
    }
}

/* y (N, out) = x (N, in) W^T + b through the block's linear of kind w */
static nmf_status linear(const nmf_lm *m, float *y, const float *x, int w, int b, int block,
                         size_t N, nmf_activation act) {
    return nmf_linear_forward(y, x, nmf_lm_linear(m, w, block), nmf_lm_param(m, b, block), N, act);
}

/* y = x W^T + b for a dense head weight W (out, in) of the parameter buffer */
void nmf_lm_dense(float *y, const float *x, const float *W, const float *b, size_t N, size_t in,
                  size_t out) {
    nmf_gemm(0, 1, N, out, in, 1.0f, x, in, W, in, 0.0f, y, out); // (N, in)(in, out)
    if (b)
        for (size_t r = 0; r < N; r++)
            for (size_t c = 0; c < out; c++) y[r * out + c] += b[c];
}

/* the config's activation, in place on x (n), the output of fc1 (exact GELU: as fc1's forward
 * would apply it, so that running them apart gives the fused call's bits) */
static void activation(const nmf_lm *m, float *x, size_t n, const nmf_linear *fc1) {
    switch (m->config.hf.hidden_act) {
    case NMF_HF_ACT_GELU: nmf_linear_activation(x, x, n, fc1, NMF_ACT_GELU); break;
    case NMF_HF_ACT_GELU_TANH: nmf_gelu_tanh_forward(x, x, n); break;
    case NMF_HF_ACT_SILU: nmf_silu_forward(x, x, n); break;
    default:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    }
}


/* cos | sin (T, hd) of positions past .. past + T - 1, HF's LlamaRotaryEmbedding in f32:
 * inv_freq_i = 1 / theta^(2i / hd), angle = position * inv_freq_i */
static void rope_table(const nmf_lm *m, float *cs, size_t past, size_t T) {
    const size_t half = m->hd / 2;
    const float theta = (float)m->config.hf.rope_theta;
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < half; i++) {
            const float inv = 1.0f / powf(theta, (float)(2 * i) / (float)m->hd);
            const float a = (float)(past + t) * inv;
            cs[t * m->hd + i] = cosf(a);
            cs[t * m->hd + half + i] = sinf(a);
        }
}

/* x (B*T rows of ld floats, `heads` heads of hd) rotated in place: HF's rotate_half layout,
 * q * cos + rotate_half(q) * sin with rotate_half(x1, x2) = (-x2, x1) over the two halves */
static void rope_apply(const nmf_lm *m, float *x, size_t ld, size_t heads, size_t B, size_t T,
                       const float *cs) {
    const size_t hd = m->hd, half = hd / 2;
    for (size_t r = 0; r < B * T; r++) {
        const float *c = cs + (r % T) * hd, *s = c + half;
        for (size_t h = 0; h < heads; h++) {
            float *x1 = x + r * ld + h * hd, *x2 = x1 + half;
            for (size_t i = 0; i < half; i++) {
                const float a = x1[i], b = x2[i];
                x1[i] = a * c[i] + -b * s[i];
                x2[i] = b * c[i] + a * s[i];
            }
        }
    }
}

static int key_valid(const nmf_lm_kv *kv, size_t b, size_t T, size_t t) {
    return !kv->mask || kv->mask[b * T + t] != 0;
}

/* Keys for sequence b (BERT's padding mask drops masked keys: their exp(score + finfo.min) is
 * exactly 0 in HF's softmax); 0 when every key is masked. */
static size_t valid_keys(const nmf_lm_kv *kv, size_t b, size_t T) {
    size_t n = 0;
    for (size_t t = 0; t < T; t++) n += key_valid(kv, b, T, t);
    return n;
}

/* Appends the keys / values of the T new tokens (rows of ld floats, kv heads of hd) to layer l
 * of kv at positions past ..: (B, KV, cap, hd) each. With a mask only the valid keys, packed;
 * a sequence whose keys are all masked keeps them all (HF then averages every value). */
static void kv_store(const nmf_lm *m, const nmf_lm_kv *kv, int l, size_t B, size_t T,
                     const float *k, const float *v, size_t ld) {
    const size_t KV = m->kv_heads, hd = m->hd, cap = kv->cap;
    float *K = kv->base + (size_t)l * kv->layer_stride, *V = K + B * KV * cap * hd;
    for (size_t b = 0; b < B; b++) {
        const int all = valid_keys(kv, b, T) == 0;
        size_t pos = kv->past;
        for (size_t t = 0; t < T; t++) {
            if (!all && !key_valid(kv, b, T, t)) continue;
            for (size_t h = 0; h < KV; h++) {
                const size_t src = (b * T + t) * ld + h * hd, dst = ((b * KV + h) * cap + pos) * hd;
                memcpy(K + dst, k + src, hd * sizeof(float));
                memcpy(V + dst, v + src, hd * sizeof(float));
            }
            pos++;
        }
    }
}

/* Whether block l's linears compute in int8 (a model's linears agree: nmf_lm_set_precision) */
static int int8_block(const nmf_lm *m, int l) {
    const size_t kinds = (size_t)m->desc.kind_count;
    for (size_t k = 0; k < kinds; k++) {
        const nmf_linear *lin = m->lin[(size_t)l * kinds + k];
        if (lin) return nmf_linear_precision(lin) == NMF_PREC_INT8;
    }
    return 0;
}

/* att (BT, Q) = softmax(q k^T / sqrt(hd)) v per (sequence, head) over layer l's keys: query
 * head h reads kv head h / (heads / kv_heads); causal for decoders (the T queries are the last
 * of past + T keys), over the valid keys for BERT. Threads over (sequence, head) pairs. */
static nmf_status attend(const nmf_lm *m, float *att, const float *q, size_t ldq,
                         const nmf_lm_kv *kv, int l, size_t B, size_t T) {
    const size_t H = m->heads, KV = m->kv_heads, hd = m->hd, cap = kv->cap, rep = H / KV;
    const float *K = kv->base + (size_t)l * kv->layer_stride, *V = K + B * KV * cap * hd;
    const int causal = !m->k.encoder;
    const nmf_lm_arena *a = &m->arena;
    const long pairs = (long)(B * H);
    const size_t tk = kv->past + T;
    /* int8 models attend in int8 where it pays: the prefill, BERT, evaluation windows; decode
     * steps (a query a call) keep f32 */
    const int q8 = int8_block(m, l) && nmf_attention_q8_pays(T, hd);
    int threads = a->threads < (int)pairs ? a->threads : (int)pairs;
    if (4.0 * (double)pairs * (double)T * (double)tk * (double)hd < 262144.0) threads = 1;
    if (tk > a->tk || kv->past + T > cap)
        return nmf_error(NMF_ERR_INVALID_ARG, "attention: %zu keys exceed the arena / cache (internal)", tk);
    int failed = 0;
#pragma omp parallel for schedule(static) num_threads(threads) reduction(| : failed)
    for (long bh = 0; bh < pairs; bh++) {
        const size_t b = (size_t)bh / H, h = (size_t)bh % H, g = h / rep;
        const size_t valid = kv->mask ? valid_keys(kv, b, T) : tk;
        const nmf_attention_shape s = {
            .Tq = T, .Tk = valid ? valid : T, .d = hd, .ldq = ldq, .ldk = hd, .ldv = hd, .ldo = m->Q,
            .scale = valid ? 1.0f / sqrtf((float)hd) : 0.0f, /* all masked: equal scores */
            .causal = causal};
        const size_t kvo = (b * KV + g) * cap * hd;
        failed |= (q8 ? nmf_attention_forward_q8 : nmf_attention_forward)(
                      att + b * T * m->Q + h * hd, q + b * T * ldq + h * hd, K + kvo, V + kvo, &s,
                      a->work + (size_t)omp_get_thread_num() * a->work_per) != NMF_OK;
    }
    return failed ? nmf_error(NMF_ERR_INVALID_ARG, "attention failed (internal): %s", nmf_last_error()) : NMF_OK;
}

/* ---- stem ---- */

/* x (D) = row `row` of a 16-bit embedding table (V, D), widened (exactly) */
static void widen_row(float *x, const nmf_linear *table, size_t row, size_t D) {
    nmf_dtype dt = NMF_DTYPE_BF16;
    const uint16_t *w = nmf_linear_weights16(table, &dt) + row * D;
    if (dt == NMF_DTYPE_F16)
        for (size_t d = 0; d < D; d++) x[d] = nmf_f16_to_f32(w[d]);
    else
        for (size_t d = 0; d < D; d++) x[d] = nmf_bf16_to_f32(w[d]);
}

void nmf_lm_embed(const nmf_lm *m, const int64_t *ids, const int64_t *types, size_t B, size_t T,
                  size_t past, const nmf_lm_observer *o) {
    const size_t D = m->D;
    const float *word = nmf_lm_param(m, m->k.word, -1), *pos = nmf_lm_param(m, m->k.pos, -1);
    const float *type = nmf_lm_param(m, m->k.type, -1);
    float *x = m->arena.x; // (BT, D)
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            const size_t r = b * T + t;
            float *xr = x + r * D;
            if (word) memcpy(xr, word + (size_t)ids[r] * D, D * sizeof(float));
            else widen_row(xr, m->embed16, (size_t)ids[r], D);
            if (type) { /* BERT: (word + token type) + position, HF's order */
                const float *ty = type + (size_t)(types ? types[r] : 0) * D;
                for (size_t d = 0; d < D; d++) xr[d] += ty[d];
            }
            if (pos)
                for (size_t d = 0; d < D; d++) xr[d] += pos[(past + t) * D + d];
        }
    nmf_lm_observe(m, o, NMF_LOP_EMBED, -1, x, B * T, D);
    if (m->k.emb_ln_w >= 0) {
        nmf_layernorm_forward(x, x, nmf_lm_param(m, m->k.emb_ln_w, -1), nmf_lm_param(m, m->k.emb_ln_b, -1),
                              B * T, D, m->eps);
        nmf_lm_observe(m, o, NMF_LOP_EMBED_NORM, -1, x, B * T, D);
    }
}

/* ---- blocks ---- */

/* hid (BT, I) = act(fc1(h)) [* up(h)]; tmp (BT, D) = fc2(hid) */
static nmf_status mlp(const nmf_lm *m, const float *h, int l, size_t BT, const nmf_lm_observer *o) {
    const nmf_lm_kinds *k = &m->k;
    const nmf_lm_arena *a = &m->arena;
    const size_t I = m->I;
    nmf_status st;
    const int watched = o && o->fn;
    /* exact GELU fuses into the linear unless an observer wants fc1 and GELU apart */
    const int fuse = !k->gated && !watched && m->config.hf.hidden_act == NMF_HF_ACT_GELU;
    if (fuse) /* (BERT) fc1, GELU and fc2 in one call: the hidden activations may stay in the
               * kernels' layout (nmf_linear_forward_mlp) */
        return nmf_linear_forward_mlp(a->tmp, a->hid, h, nmf_lm_linear(m, k->fc1_w, l),
                                      nmf_lm_param(m, k->fc1_b, l), NMF_ACT_GELU,
                                      nmf_lm_linear(m, k->fc2_w, l), nmf_lm_param(m, k->fc2_b, l), BT);
    if ((st = linear(m, a->hid, h, k->fc1_w, k->fc1_b, l, BT, NMF_ACT_NONE))) return st;
    nmf_lm_observe(m, o, NMF_LOP_FC1, l, a->hid, BT, I);
    if (k->gated) {
        if ((st = linear(m, a->up, h, k->up_w, k->up_b, l, BT, NMF_ACT_NONE))) return st;
        nmf_lm_observe(m, o, NMF_LOP_UP, l, a->up, BT, I);
    }
    activation(m, a->hid, BT * I, nmf_lm_linear(m, k->fc1_w, l));
    nmf_lm_observe(m, o, NMF_LOP_ACT, l, a->hid, BT, I);
    if (k->gated) {
        float *g = a->hid;
        const float *u = a->up;
        for (size_t i = 0; i < BT * I; i++) g[i] *= u[i];
        nmf_lm_observe(m, o, NMF_LOP_MUL, l, a->hid, BT, I);
    }
    if ((st = linear(m, a->tmp, a->hid, k->fc2_w, k->fc2_b, l, BT, NMF_ACT_NONE))) return st;
    nmf_lm_observe(m, o, NMF_LOP_FC2, l, a->tmp, BT, m->D);
    return NMF_OK;
}

/* q/k/v of h (BT, D): GPT-2's fused c_attn into q (BT, 3D), else q (BT, Q), k, v (BT, KVW);
 * RoPE applied; keys and values appended to kv. Sets the query pointer and stride. */
static nmf_status qkv(const nmf_lm *m, const float *h, int l, size_t B, size_t T,
                      const nmf_lm_kv *kv, const nmf_lm_observer *o, size_t *ldq) {
    const nmf_lm_kinds *k = &m->k;
    const nmf_lm_arena *a = &m->arena;
    const size_t BT = B * T;
    nmf_status st;
    if (k->qkv_w >= 0) { /* (BT, 3, heads, hd) */
        if ((st = linear(m, a->q, h, k->qkv_w, k->qkv_b, l, BT, NMF_ACT_NONE))) return st;
        nmf_lm_observe(m, o, NMF_LOP_QKV, l, a->q, BT, 3 * m->D);
        *ldq = 3 * m->D;
        kv_store(m, kv, l, B, T, a->q + m->D, a->q + 2 * m->D, 3 * m->D);
        return NMF_OK;
    }
    if ((st = linear(m, a->q, h, k->q_w, k->q_b, l, BT, NMF_ACT_NONE))) return st;
    nmf_lm_observe(m, o, NMF_LOP_Q, l, a->q, BT, m->Q);
    if ((st = linear(m, a->k, h, k->k_w, k->k_b, l, BT, NMF_ACT_NONE))) return st;
    nmf_lm_observe(m, o, NMF_LOP_K, l, a->k, BT, m->KVW);
    if ((st = linear(m, a->v, h, k->v_w, k->v_b, l, BT, NMF_ACT_NONE))) return st;
    nmf_lm_observe(m, o, NMF_LOP_V, l, a->v, BT, m->KVW);
    if (k->rope) { /* the table of these positions was filled by the caller */
        rope_apply(m, a->q, m->Q, m->heads, B, T, a->rope);
        nmf_lm_observe(m, o, NMF_LOP_ROPE_Q, l, a->q, BT, m->Q);
        rope_apply(m, a->k, m->KVW, m->kv_heads, B, T, a->rope);
        nmf_lm_observe(m, o, NMF_LOP_ROPE_K, l, a->k, BT, m->KVW);
    }
    *ldq = m->Q;
    kv_store(m, kv, l, B, T, a->k, a->v, m->KVW);
    return NMF_OK;
}

void nmf_lm_rope_prepare(const nmf_lm *m, size_t past, size_t T) {
    if (m->k.rope) rope_table(m, m->arena.rope, past, T);
}

nmf_status nmf_lm_block_forward(const nmf_lm *m, int l, size_t B, size_t T, const nmf_lm_kv *kv,
                                const nmf_lm_observer *o) {
    const nmf_lm_kinds *k = &m->k;
    const nmf_lm_arena *a = &m->arena;
    const size_t BT = B * T, D = m->D;
    size_t ldq;
    nmf_status st;
    if (k->encoder) { /* BERT, post-LN: x = LN(x + attn), x = LN(x + mlp) */
        if ((st = qkv(m, a->x, l, B, T, kv, o, &ldq)) || (st = attend(m, a->att, a->q, ldq, kv, l, B, T)))
            return st;
        nmf_lm_observe(m, o, NMF_LOP_ATTN, l, a->att, BT, m->Q);
        if ((st = linear(m, a->tmp, a->att, k->o_w, k->o_b, l, BT, NMF_ACT_NONE))) return st;
        nmf_lm_observe(m, o, NMF_LOP_PROJ, l, a->tmp, BT, D);
        add_norm(m, a->x, a->tmp, a->tmp, a->x, k->n1_w, k->n1_b, l, BT);
        nmf_lm_observe(m, o, NMF_LOP_ADD1, l, a->tmp, BT, D);
        nmf_lm_observe(m, o, NMF_LOP_NORM1, l, a->x, BT, D);
        if ((st = mlp(m, a->x, l, BT, o))) return st;
        add_norm(m, a->x, a->tmp, a->tmp, a->x, k->n2_w, k->n2_b, l, BT);
        nmf_lm_observe(m, o, NMF_LOP_ADD2, l, a->tmp, BT, D);
        nmf_lm_observe(m, o, NMF_LOP_NORM2, l, a->x, BT, D);
        return NMF_OK;
    }
    /* decoder, pre-norm: x += attn(norm1(x)), x += mlp(norm2(x)) */
    norm(m, a->ln, a->x, k->n1_w, k->n1_b, l, BT);
    nmf_lm_observe(m, o, NMF_LOP_NORM1, l, a->ln, BT, D);
    if ((st = qkv(m, a->ln, l, B, T, kv, o, &ldq)) || (st = attend(m, a->att, a->q, ldq, kv, l, B, T)))
        return st;
    nmf_lm_observe(m, o, NMF_LOP_ATTN, l, a->att, BT, m->Q);
    if ((st = linear(m, a->tmp, a->att, k->o_w, k->o_b, l, BT, NMF_ACT_NONE))) return st;
    nmf_lm_observe(m, o, NMF_LOP_PROJ, l, a->tmp, BT, D);
    add_norm(m, a->ln, a->x, a->x, a->tmp, k->n2_w, k->n2_b, l, BT);
    nmf_lm_observe(m, o, NMF_LOP_ADD1, l, a->x, BT, D);
    nmf_lm_observe(m, o, NMF_LOP_NORM2, l, a->ln, BT, D);
    if ((st = mlp(m, a->ln, l, BT, o))) return st;
    nmf_add_forward(a->x, a->x, a->tmp, BT * D);
    nmf_lm_observe(m, o, NMF_LOP_ADD2, l, a->x, BT, D);
    return NMF_OK;
}

/* ---- tails ---- */

nmf_status nmf_lm_tail(const nmf_lm *m, float *out, size_t B, size_t T, int last_only,
                       float *pooler_output, const nmf_lm_observer *o) {
    const nmf_lm_kinds *k = &m->k;
    const nmf_lm_arena *a = &m->arena;
    const size_t D = m->D;
    const nmf_hf_head head = m->config.hf.head;
    if (k->encoder) { /* BERT: the last hidden state; pooler tanh(dense(x[:, 0])); classifier */
        if (head == NMF_HF_HEAD_NONE) memcpy(out, a->x, B * T * D * sizeof(float));
        const float *pool_w = nmf_lm_param(m, k->pool_w, -1);
        if (!pool_w) return NMF_OK;
        for (size_t b = 0; b < B; b++) memcpy(a->sel + b * D, a->x + b * T * D, D * sizeof(float));
        nmf_lm_dense(a->sel2, a->sel, pool_w, nmf_lm_param(m, k->pool_b, -1), B, D, D); // (B, D)
        nmf_lm_observe(m, o, NMF_LOP_POOLER, -1, a->sel2, B, D);
        for (size_t i = 0; i < B * D; i++) a->sel2[i] = tanhf(a->sel2[i]);
        nmf_lm_observe(m, o, NMF_LOP_POOL_TANH, -1, a->sel2, B, D);
        if (pooler_output) memcpy(pooler_output, a->sel2, B * D * sizeof(float));
        if (head == NMF_HF_HEAD_CLASSIFIER) {
            nmf_lm_dense(out, a->sel2, nmf_lm_param(m, k->cls_w, -1), nmf_lm_param(m, k->cls_b, -1), B, D,
                         m->labels); // (B, labels)
            nmf_lm_observe(m, o, NMF_LOP_CLASSIFIER, -1, out, B, m->labels);
        }
        return NMF_OK;
    }
    /* decoders: final norm, then logits = h W^T (W: lm_head, or the tied embedding) */
    size_t rows = B * T;
    const float *src = a->x;
    if (last_only) {
        for (size_t b = 0; b < B; b++) memcpy(a->sel + b * D, a->x + (b * T + T - 1) * D, D * sizeof(float));
        src = a->sel, rows = B;
    }
    float *h = head == NMF_HF_HEAD_LM ? (last_only ? a->sel2 : a->ln) : out;
    norm(m, h, src, k->nf_w, k->nf_b, -1, rows);
    nmf_lm_observe(m, o, NMF_LOP_NORM, -1, h, rows, D);
    if (head != NMF_HF_HEAD_LM) return NMF_OK;
    if (m->head16 || m->head8) { /* kept 16-bit (the embedding's layer when tied), or int8 */
        nmf_status st = nmf_linear_forward(out, h, m->head16 ? m->head16 : m->head8, NULL, rows,
                                           NMF_ACT_NONE); // (rows, V)
        if (st) return st;
    } else {
        const float *W = nmf_lm_param(m, k->head_w, -1);
        if (!W) W = nmf_lm_param(m, k->word, -1); /* tied */
        nmf_gemm(0, 1, rows, m->V, D, 1.0f, h, D, W, D, 0.0f, out, m->V); // (rows, D)(D, V)
    }
    nmf_lm_observe(m, o, NMF_LOP_LM_HEAD, -1, out, rows, m->V);
    return NMF_OK;
}
