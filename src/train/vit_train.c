/* The trainable ViT: parameter/gradient/AdamW buffers (one each, same layout), activations saved
 * for backward, N:M masks, and the forward/backward passes built from layers.c. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/train.h"
#include "train/layers.h"
#include "train/train_internal.h"

/* rows/cols of one layer's 2-D view of kind p (linear weights: (out, in)) */
static void param_dims(const nmf_vit_train *m, int p, size_t *rows, size_t *cols) {
    const nmf_param *r = nmf_model_desc_kind_row(&m->desc, p);
    *rows = r->rows;
    *cols = r->cols;
}

static size_t layer_numel(const nmf_vit_train *m, int p) { return m->desc.kind_numel[p]; }
static int is_block(const nmf_vit_train *m, int p) { return m->desc.kinds[p].per_block; }
static int prunable(const nmf_vit_train *m, int p) { return m->desc.kinds[p].nm; }

/* GPT-2's block kinds under the shared block's (ViT) names: the same pre-norm block */
static const int gpt2_block_kind[NMF_VP_COUNT] = {
    [NMF_VP_PATCH_W] = -1, [NMF_VP_PATCH_B] = -1, [NMF_VP_CLS] = -1, [NMF_VP_POS] = -1,
    [NMF_VP_LN1_W] = NMF_GP_LN1_W,   [NMF_VP_LN1_B] = NMF_GP_LN1_B,
    [NMF_VP_QKV_W] = NMF_GP_ATTN_W,  [NMF_VP_QKV_B] = NMF_GP_ATTN_B,
    [NMF_VP_PROJ_W] = NMF_GP_PROJ_W, [NMF_VP_PROJ_B] = NMF_GP_PROJ_B,
    [NMF_VP_LN2_W] = NMF_GP_LN2_W,   [NMF_VP_LN2_B] = NMF_GP_LN2_B,
    [NMF_VP_FC1_W] = NMF_GP_FC_W,    [NMF_VP_FC1_B] = NMF_GP_FC_B,
    [NMF_VP_FC2_W] = NMF_GP_MPROJ_W, [NMF_VP_FC2_B] = NMF_GP_MPROJ_B,
    [NMF_VP_NORM_W] = -1, [NMF_VP_NORM_B] = -1, [NMF_VP_HEAD_W] = -1, [NMF_VP_HEAD_B] = -1,
};

/* The family's shape: the ViT, or a GPT-2 LM head model with a tied head (what we train). */
static nmf_status family_shape(nmf_vit_train *m, const nmf_model_config *cfg) {
    if (!nmf_model_is_token(cfg)) {
        m->L = cfg->depth;
        m->shape = nmf_vit_block_shape(cfg);
        for (int k = 0; k < NMF_VP_COUNT; k++) m->blk_kind[k] = nmf_vit_param_is_block(k) ? k : -1;
        if (nmf_vit_tokens(cfg) > NMF_TRAIN_MAX_T)
            return nmf_error(NMF_ERR_UNSUPPORTED, "%d tokens: training supports at most %d",
                             nmf_vit_tokens(cfg), NMF_TRAIN_MAX_T);
        return NMF_OK;
    }
    const nmf_hf_config *h = &cfg->hf;
    if (h->model_type != NMF_HF_GPT2)
        return nmf_error(NMF_ERR_UNSUPPORTED, "training supports the ViT and GPT-2 decoders, not "
                         "arch '%s'", cfg->arch);
    if (h->head != NMF_HF_HEAD_LM || !h->tie_word_embeddings)
        return nmf_error(NMF_ERR_UNSUPPORTED, "GPT-2 training needs an LM head tied to wte "
                         "(GPT2LMHeadModel, tie_word_embeddings)");
    if (h->hidden_act != NMF_HF_ACT_GELU_TANH && h->hidden_act != NMF_HF_ACT_GELU)
        return nmf_error(NMF_ERR_UNSUPPORTED, "GPT-2 training: activation '%s' (gelu_new or gelu)",
                         nmf_hf_act_name(h->hidden_act));
    if (h->max_position_embeddings > NMF_TRAIN_MAX_T)
        return nmf_error(NMF_ERR_UNSUPPORTED, "%d positions: training supports at most %d",
                         h->max_position_embeddings, NMF_TRAIN_MAX_T);
    m->lm = 1;
    m->L = h->num_hidden_layers;
    m->shape = (nmf_block_shape){(size_t)h->max_position_embeddings, (size_t)h->hidden_size,
                                 (size_t)h->intermediate_size, (size_t)h->num_attention_heads,
                                 h->norm_eps, 1, h->hidden_act == NMF_HF_ACT_GELU_TANH};
    memcpy(m->blk_kind, gpt2_block_kind, sizeof m->blk_kind);
    return NMF_OK;
}

/* ---- create / free ------------------------------------------------------------------------ */
nmf_status nmf_vit_train_create(nmf_vit_train **out, const nmf_model_config *cfg, int max_batch) {
    *out = NULL;
    nmf_status st = nmf_model_config_validate(cfg);
    if (st != NMF_OK) return st;
    if (max_batch < 1 || max_batch > 65536)
        return nmf_error(NMF_ERR_INVALID_ARG, "batch %d out of range 1..65536", max_batch);
    nmf_vit_train *m = calloc(1, sizeof *m);
    if (!m) return nmf_error(NMF_ERR_NOMEM, "nmf_vit_train_create");
    m->cfg = *cfg;
    m->max_batch = max_batch;
    if ((st = family_shape(m, cfg)) != NMF_OK || (st = nmf_model_describe(&m->desc, cfg))) {
        free(m);
        return st;
    }
    size_t L = (size_t)m->L, total = m->desc.floats[NMF_LAYOUT_ALL], mtotal = 0;
    for (int p = 0; p < m->desc.kind_count; p++) {
        m->offsets[p] = m->desc.kind_offset[NMF_LAYOUT_ALL][p];
        m->sizes[p] = m->offsets[p] == SIZE_MAX ? 0 : layer_numel(m, p) * (is_block(m, p) ? L : 1);
        if (prunable(m, p)) {
            m->mask_offsets[p] = mtotal;
            mtotal += m->sizes[p];
        }
    }
    m->num_params = total;
    m->mask_total = mtotal;
    m->param_mem = nmf_alloc(total, sizeof(float));
    m->grad_mem = nmf_alloc(total + NMF_GRAD_TAIL, sizeof(float));
    m->m_mem = nmf_alloc(total, sizeof(float));
    m->v_mem = nmf_alloc(total, sizeof(float));
    m->masked_mem = nmf_alloc(mtotal, sizeof(float));
    m->mask_mem = nmf_alloc(mtotal, 1);
    if (!m->param_mem || !m->grad_mem || !m->m_mem || !m->v_mem || !m->masked_mem ||
        !m->mask_mem) {
        nmf_vit_train_free(m);
        return nmf_error(NMF_ERR_NOMEM, "training buffers for %zu parameters", total);
    }
    m->use_nm_kernels = 1;
    for (int p = 0; p < m->desc.kind_count; p++)
        if (prunable(m, p) && !(m->lin[p] = calloc(L, sizeof(nmf_linear *)))) {
            nmf_vit_train_free(m);
            return nmf_error(NMF_ERR_NOMEM, "linear table");
        }
    if (!m->lm) {
        nmf_vit_params_bind(&m->desc, NMF_LAYOUT_ALL, m->param_mem, &m->params);
        nmf_vit_params_bind(&m->desc, NMF_LAYOUT_ALL, m->grad_mem, &m->grads);
    }
    for (int p = 0; p < m->desc.kind_count; p++)
        m->fw.k[p] = m->sizes[p] ? m->param_mem + m->offsets[p] : NULL;

    /* activations (llm.c ActivationTensors): one buffer, saved per layer where backward needs.
     * R rows reach the tail: the class tokens (ViT) or every token (LM) */
    size_t B = (size_t)max_batch, T = m->shape.T, D = m->shape.D, H = m->shape.H;
    size_t NH = m->shape.heads, BT = B * T, R = m->lm ? BT : B;
    size_t K = m->lm ? (size_t)cfg->hf.vocab_size : (size_t)cfg->num_classes;
    size_t NP = m->lm ? 0 : T - 1;
    size_t CPP = m->lm ? 0 : (size_t)cfg->in_chans * cfg->patch * cfg->patch;
    size_t CLS = m->lm ? 0 : B * D;
    size_t asizes[ACT_COUNT] = {
        [ACT_PATCHES] = B * NP * CPP, [ACT_PE] = B * NP * D,  [ACT_ENCODED] = BT * D,
        [ACT_LN1] = L * BT * D,       [ACT_LN1_MEAN] = L * BT, [ACT_LN1_RSTD] = L * BT,
        [ACT_QKV] = L * BT * 3 * D,   [ACT_ATT] = L * B * NH * T * T, [ACT_ATTY] = L * BT * D,
        [ACT_RES2] = L * BT * D,      [ACT_LN2] = L * BT * D, [ACT_LN2_MEAN] = L * BT,
        [ACT_LN2_RSTD] = L * BT,      [ACT_FCH] = L * BT * H, [ACT_FCH_GELU] = L * BT * H,
        [ACT_FCH_CDF] = L * BT * H,
        [ACT_RES3] = L * BT * D,      [ACT_TMP] = BT * D,     [ACT_CLSX] = CLS,
        [ACT_LNF] = R * D,            [ACT_LNF_MEAN] = R,     [ACT_LNF_RSTD] = R,
        [ACT_LOGITS] = R * K,         [ACT_PROBS] = R * K,    [ACT_LOSSES] = R,
        /* gradient scratch, reused by every layer */
        [ACT_DLOGITS] = R * K,        [ACT_DLNF] = R * D,     [ACT_DCLSX] = CLS,
        [ACT_DRES] = BT * D,          [ACT_DFCHG] = BT * H,   [ACT_DFCH] = BT * H,
        [ACT_DLN2] = BT * D,          [ACT_DATTY] = BT * D,   [ACT_DQKV] = BT * 3 * D,
        [ACT_DLN1] = BT * D,          [ACT_DPE] = B * NP * D,
    };
    size_t atotal = 0;
    for (int a = 0; a < ACT_COUNT; a++) atotal += asizes[a];
    m->act_mem = nmf_alloc(atotal, sizeof(float));
    m->labels = nmf_alloc(R, sizeof(int));
    if (m->lm) m->ids = nmf_alloc(BT, sizeof(int));
    m->nscratch = nmf_get_threads();
    m->scratch = nmf_alloc((size_t)m->nscratch * attention_scratch_floats((int)T, (int)D, (int)NH),
                           sizeof(float));
    if (!m->act_mem || !m->labels || !m->scratch || (m->lm && !m->ids)) {
        nmf_vit_train_free(m);
        return nmf_error(NMF_ERR_NOMEM, "activations for batch %d (%zu floats)", max_batch, atotal);
    }
    float *a = m->act_mem;
    for (int i = 0; i < ACT_COUNT; i++) {
        m->act[i] = a;
        m->act_sizes[i] = asizes[i];
        a += asizes[i];
    }
    *out = m;
    return NMF_OK;
}

static void free_linears(nmf_vit_train *m) {
    for (int p = 0; p < NMF_DESC_MAX_KINDS; p++)
        for (int l = 0; m->lin[p] && l < m->L; l++) {
            nmf_linear_free(m->lin[p][l]);
            m->lin[p][l] = NULL;
        }
}

void nmf_vit_train_free(nmf_vit_train *m) {
    if (!m) return;
    free_linears(m);
    for (int p = 0; p < NMF_DESC_MAX_KINDS; p++) free(m->lin[p]);
    nmf_model_desc_free(&m->desc);
    nmf_free(m->param_mem);
    nmf_free(m->grad_mem);
    nmf_free(m->m_mem);
    nmf_free(m->v_mem);
    nmf_free(m->masked_mem);
    nmf_free(m->mask_mem);
    nmf_free(m->act_mem);
    nmf_free(m->labels);
    nmf_free(m->ids);
    nmf_free(m->scratch);
    free(m);
}

const nmf_model_config *nmf_vit_train_config(const nmf_vit_train *m) { return &m->cfg; }
size_t nmf_vit_train_num_params(const nmf_vit_train *m) { return m->num_params; }
size_t nmf_vit_train_param_size(const nmf_vit_train *m, nmf_vit_param p) {
    return (int)p >= 0 && (int)p < m->desc.kind_count ? m->sizes[p] : 0;
}
nmf_vit_params *nmf_vit_train_params(nmf_vit_train *m) { return &m->params; }
nmf_vit_params *nmf_vit_train_grads(nmf_vit_train *m) { return &m->grads; }
float *nmf_vit_train_param_mem(nmf_vit_train *m) { return m->param_mem; }
float *nmf_vit_train_grad_mem(nmf_vit_train *m) { return m->grad_mem; }
float *nmf_vit_train_m_mem(nmf_vit_train *m) { return m->m_mem; }
float *nmf_vit_train_v_mem(nmf_vit_train *m) { return m->v_mem; }
size_t nmf_vit_train_mask_bytes(const nmf_vit_train *m) { return m->mask_total; }
uint8_t *nmf_vit_train_mask_mem(nmf_vit_train *m) { return m->mask_mem; }
nmf_pattern nmf_vit_train_pattern(const nmf_vit_train *m) { return m->pattern; }
const float *nmf_vit_train_logits(const nmf_vit_train *m) { return m->act[ACT_LOGITS]; }

float *nmf_vit_train_param_ptr(nmf_vit_train *m, nmf_vit_param p, int layer) {
    size_t per = layer_numel(m, p);
    return m->param_mem + m->offsets[p] + (is_block(m, p) ? (size_t)layer * per : 0);
}

uint8_t *nmf_vit_train_mask(nmf_vit_train *m, nmf_vit_param p, int layer) {
    if (!prunable(m, p) || m->pattern.m == 0) return NULL;
    return m->mask_mem + m->mask_offsets[p] + (size_t)layer * layer_numel(m, p);
}

/* ---- init ---------------------------------------------------------------------------------- */
void nmf_vit_train_init(nmf_vit_train *m, uint64_t seed) {
    uint64_t s = seed ^ 0x6E6D666F726D6572ull; /* "nmformer" */
    /* kind by kind in buffer order, each kind's blocks in one draw (the seed's stream) */
    for (int p = 0; p < m->desc.kind_count; p++)
        if (m->sizes[p])
            nmf_param_role_init(m->desc.kinds[p].role, m->param_mem + m->offsets[p], m->sizes[p], &s);
    nmf_vit_train_refresh_masked(m);
}

/* ---- N:M masks ------------------------------------------------------------------------------ */
nmf_status nmf_vit_train_use_pattern(nmf_vit_train *m, nmf_pattern p) {
    m->lin_dirty = 1;
    if (p.n == 0 && p.m == 0) {
        m->pattern = p;
        for (int q = 0; q < m->desc.kind_count; q++)
            if (prunable(m, q)) m->fw.k[q] = m->param_mem + m->offsets[q];
        return NMF_OK;
    }
    if (!nmf_pattern_valid(p))
        return nmf_error(NMF_ERR_INVALID_ARG, "invalid N:M pattern %d:%d", p.n, p.m);
    if (m->shape.D % (size_t)p.m || m->shape.H % (size_t)p.m)
        return nmf_error(NMF_ERR_SHAPE,
                         "pattern %d:%d: dim %zu and hidden %zu must be multiples of %d", p.n, p.m,
                         m->shape.D, m->shape.H, p.m);
    m->pattern = p;
    for (int q = 0; q < m->desc.kind_count; q++)
        if (prunable(m, q)) m->fw.k[q] = m->masked_mem + m->mask_offsets[q];
    return NMF_OK;
}

nmf_status nmf_vit_train_set_pattern(nmf_vit_train *m, nmf_pattern p) {
    nmf_status st = nmf_vit_train_use_pattern(m, p);
    return st == NMF_OK ? nmf_vit_train_update_masks(m) : st;
}

nmf_status nmf_vit_train_update_masks(nmf_vit_train *m) {
    if (m->pattern.m == 0) return NMF_OK;
    for (int q = 0; q < m->desc.kind_count; q++) {
        if (!prunable(m, q)) continue;
        size_t rows, cols;
        param_dims(m, q, &rows, &cols);
        /* layers are stacked, so all layers form one (L*rows, cols) matrix */
        nmf_status st = nmf_nm_mask(m->mask_mem + m->mask_offsets[q], m->param_mem + m->offsets[q],
                                    rows * (size_t)m->L, cols, m->pattern, 0);
        if (st != NMF_OK) return st;
    }
    nmf_vit_train_refresh_masked(m);
    return NMF_OK;
}

void nmf_vit_train_use_nm_kernels(nmf_vit_train *m, int on) {
    m->use_nm_kernels = on != 0;
    m->lin_dirty = 1;
}

/* Packs every masked linear for the N:M kernels (or frees them when not in use). */
static nmf_status build_linears(nmf_vit_train *m) {
    free_linears(m);
    m->lin_dirty = 0;
    if (m->pattern.m == 0 || !m->use_nm_kernels) return NMF_OK;
    for (int q = 0; q < m->desc.kind_count; q++) {
        if (!prunable(m, q)) continue;
        size_t rows, cols;
        param_dims(m, q, &rows, &cols);
        for (int l = 0; l < m->L; l++) {
            size_t off = (size_t)l * rows * cols;
            nmf_nm_matrix nm;
            nmf_status st = nmf_nm_pack_masked(&nm, m->masked_mem + m->mask_offsets[q] + off,
                                               m->mask_mem + m->mask_offsets[q] + off, rows, cols,
                                               m->pattern, 0);
            if (st != NMF_OK) return st;
            st = nmf_linear_create_nm(&m->lin[q][l], &nm);
            nmf_nm_free(&nm);
            if (st != NMF_OK) return st;
        }
    }
    return NMF_OK;
}

void nmf_vit_train_refresh_masked(nmf_vit_train *m) {
    m->lin_dirty = 1;
    m->masked_stale = 1;
}

/* Recomputes W*mask if refresh_masked marked it stale. */
static void sync_masked(nmf_vit_train *m) {
    if (!m->masked_stale) return;
    m->masked_stale = 0;
    if (m->pattern.m == 0) return;
    for (int q = 0; q < m->desc.kind_count; q++) {
        if (!prunable(m, q)) continue;
        const float *w = m->param_mem + m->offsets[q];
        const uint8_t *mk = m->mask_mem + m->mask_offsets[q];
        float *o = m->masked_mem + m->mask_offsets[q];
        for (size_t i = 0; i < m->sizes[q]; i++) o[i] = mk[i] ? w[i] : 0.0f;
    }
}

void nmf_vit_train_srste_decay(nmf_vit_train *m, float lambda) {
    if (m->pattern.m == 0 || lambda == 0.0f) return;
    for (int q = 0; q < m->desc.kind_count; q++) {
        if (!prunable(m, q)) continue;
        const float *w = m->param_mem + m->offsets[q];
        const uint8_t *mk = m->mask_mem + m->mask_offsets[q];
        float *g = m->grad_mem + m->offsets[q];
        for (size_t i = 0; i < m->sizes[q]; i++)
            if (!mk[i]) g[i] += lambda * w[i];
    }
}

void nmf_vit_train_mask_grads(nmf_vit_train *m) {
    if (m->pattern.m == 0) return;
    for (int q = 0; q < m->desc.kind_count; q++) {
        if (!prunable(m, q)) continue;
        const uint8_t *mk = m->mask_mem + m->mask_offsets[q];
        float *g = m->grad_mem + m->offsets[q];
        for (size_t i = 0; i < m->sizes[q]; i++)
            if (!mk[i]) g[i] = 0.0f;
    }
}

/* first failure wins; later calls still run (they only touch scratch) */
static void keep(nmf_status *st, nmf_status s) {
    if (*st == NMF_OK) *st = s;
}

/* The block tensors of buffer `k` (one pointer per kind: the weights the passes use, or the
 * gradients) under the shared block's names. */
static void block_view(const nmf_vit_train *m, float *const *k, nmf_vit_params *v) {
    float **slot = (float **)v;
    for (int q = 0; q < NMF_VP_COUNT; q++) slot[q] = m->blk_kind[q] >= 0 ? k[m->blk_kind[q]] : NULL;
}

static void grad_pointers(const nmf_vit_train *m, float **g) {
    for (int p = 0; p < m->desc.kind_count; p++) g[p] = m->sizes[p] ? m->grad_mem + m->offsets[p] : NULL;
}

/* Block l's linears for the shared block (NULL: dense weights) */
static nmf_vit_block block_linears(const nmf_vit_train *m, int l) {
    const int *k = m->blk_kind;
    return (nmf_vit_block){m->lin[k[NMF_VP_QKV_W]][l], m->lin[k[NMF_VP_PROJ_W]][l],
                           m->lin[k[NMF_VP_FC1_W]][l], m->lin[k[NMF_VP_FC2_W]][l]};
}

int nmf_train_count_argmax(const float *logits, const int *labels, int R, int K) {
    int n = 0;
    for (int r = 0; r < R; r++) {
        const float *z = logits + (size_t)r * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[best]) best = k;
        n += best == labels[r];
    }
    return n;
}

/* ---- forward --------------------------------------------------------------------------------- */
nmf_status nmf_train_blocks_forward(nmf_vit_train *m, int B, const float *enc, const float **out) {
    const size_t T = m->shape.T, D = m->shape.D, H = m->shape.H, NH = m->shape.heads;
    const size_t BT = (size_t)B * T;
    float **a = m->act;
    sync_masked(m);
    if (m->lin_dirty) {
        nmf_status st = build_linears(m);
        if (st != NMF_OK) return st;
    }
    nmf_vit_params w;
    block_view(m, m->fw.k, &w);
    nmf_status lst = NMF_OK;
    // the blocks: the one block forward (model/vit_block.c), saving what backward needs
    const float *residual = enc;
    for (int l = 0; l < m->L && lst == NMF_OK; l++) {
        const nmf_vit_block lin = block_linears(m, l);
        const nmf_vit_block_io io = {
            .x_in = residual,
            .x1 = a[ACT_RES2] + l * BT * D,
            .x_out = a[ACT_RES3] + l * BT * D,
            .ln1 = a[ACT_LN1] + l * BT * D,
            .ln2 = a[ACT_LN2] + l * BT * D,
            .qkv = a[ACT_QKV] + l * BT * 3 * D,
            .atty = a[ACT_ATTY] + l * BT * D,
            .fc1 = a[ACT_FCH] + l * BT * H,
            .gelu = a[ACT_FCH_GELU] + l * BT * H,
            .tmp = a[ACT_TMP],
        };
        const nmf_vit_tape tape = {
            .ln1_mean = a[ACT_LN1_MEAN] + l * BT, .ln1_rstd = a[ACT_LN1_RSTD] + l * BT,
            .ln2_mean = a[ACT_LN2_MEAN] + l * BT, .ln2_rstd = a[ACT_LN2_RSTD] + l * BT,
            .att = a[ACT_ATT] + (size_t)l * B * NH * T * T,
            .gelu_cdf = a[ACT_FCH_CDF] + l * BT * H,
            .scratch = m->scratch, .nscratch = m->nscratch,
        };
        lst = nmf_vit_block_forward(&m->shape, &w, &lin, l, (size_t)B, &io, &tape, NULL);
        residual = io.x_out;
    }
    *out = residual;
    return lst;
}

nmf_status nmf_vit_train_forward(nmf_vit_train *m, const float *x, const int *labels, int B,
                                 float *loss, int *correct) {
    if (m->lm)
        return nmf_error(NMF_ERR_INVALID_ARG, "this is a language model: nmf_lm_train_forward");
    if (B < 1 || B > m->max_batch)
        return nmf_error(NMF_ERR_INVALID_ARG, "batch %d out of range 1..%d", B, m->max_batch);
    const nmf_model_config *c = &m->cfg;
    const int K = c->num_classes;
    const nmf_vit_params *w = &m->fw.vit;
    float **a = m->act;
    m->B = B;
    m->has_labels = labels != NULL;
    sync_masked(m);

    float *enc = a[ACT_ENCODED]; // (B, T, D): [cls; patches] + pos
    (void)nmf_vit_embed_forward(c, w, NULL, x, (size_t)B, a[ACT_PATCHES], a[ACT_PE], enc); /* f32: no error */
    const float *residual;
    nmf_status st = nmf_train_blocks_forward(m, B, enc, &residual);
    if (st != NMF_OK) return st;
    // the class token of every example -> final norm -> head
    nmf_vit_head_forward(c, w, residual, (size_t)B, a[ACT_CLSX], a[ACT_LNF], a[ACT_LNF_MEAN],
                         a[ACT_LNF_RSTD], a[ACT_LOGITS]);

    const float *logits = a[ACT_LOGITS];
    for (int b = 0; b < B; b++)
        for (int k = 0; k < K; k++)
            if (!isfinite(logits[(size_t)b * K + k]))
                return nmf_error(NMF_ERR_NUMERIC,
                                 "non-finite logit (example %d): training diverged", b);
    if (labels) {
        for (int b = 0; b < B; b++) {
            if (labels[b] < 0 || labels[b] >= K)
                return nmf_error(NMF_ERR_INVALID_ARG, "label %d out of range 0..%d", labels[b],
                                 K - 1);
            m->labels[b] = labels[b];
        }
        float l = crossentropy_forward(a[ACT_PROBS], a[ACT_LOSSES], logits, labels, B, K);
        if (loss) *loss = l;
    }
    if (correct) *correct = labels ? nmf_train_count_argmax(logits, labels, B, K) : 0;
    return NMF_OK;
}

/* ---- backward -------------------------------------------------------------------------------- */
nmf_status nmf_train_blocks_backward(nmf_vit_train *m, int B, float *dres) {
    const size_t T = m->shape.T, D = m->shape.D, H = m->shape.H, BT = (size_t)B * T;
    const int NH = (int)m->shape.heads, causal = m->shape.causal;
    float *gk[NMF_DESC_MAX_KINDS];
    grad_pointers(m, gk);
    nmf_vit_params wv, gv;
    block_view(m, m->fw.k, &wv);
    block_view(m, gk, &gv);
    const nmf_vit_params *w = &wv, *g = &gv;
    float **a = m->act;
    nmf_status lst = NMF_OK;
#define ZERO(id, n) memset(a[id], 0, (n) * sizeof(float))
/* dinp was zeroed just before, so the kernels' "dx = dy W" (overwrite) equals "dx += dy W" */
#define LINEAR_BACKWARD(lin, dinp, dw, db, dout, inp, w_, N, C, OC)                      \
    do {                                                                              \
        if (lin) {                                                                    \
            keep(&lst, nmf_linear_backward_input(dinp, dout, lin, N));                \
            matmul_backward(NULL, dw, db, dout, inp, w_, N, C, OC);                   \
        } else {                                                                      \
            matmul_backward(dinp, dw, db, dout, inp, w_, N, C, OC);                   \
        }                                                                             \
    } while (0)

    for (int l = m->L - 1; l >= 0; l--) {
        const nmf_vit_block lin = block_linears(m, l);
        const float *residual = l == 0 ? a[ACT_ENCODED] : a[ACT_RES3] + (l - 1) * BT * D;
        const float *ln1 = a[ACT_LN1] + l * BT * D, *ln1_mean = a[ACT_LN1_MEAN] + l * BT;
        const float *ln1_rstd = a[ACT_LN1_RSTD] + l * BT, *qkv = a[ACT_QKV] + l * BT * 3 * D;
        const float *att = a[ACT_ATT] + (size_t)l * B * NH * T * T;
        const float *atty = a[ACT_ATTY] + l * BT * D, *res2 = a[ACT_RES2] + l * BT * D;
        const float *ln2 = a[ACT_LN2] + l * BT * D, *ln2_mean = a[ACT_LN2_MEAN] + l * BT;
        const float *ln2_rstd = a[ACT_LN2_RSTD] + l * BT, *fch = a[ACT_FCH] + l * BT * H;
        const float *fchg = a[ACT_FCH_GELU] + l * BT * H, *cdf = a[ACT_FCH_CDF] + l * BT * H;

        // res3 = res2 + fc2(gelu(fc1(ln2(res2)))): dres passes through to res2 unchanged
        ZERO(ACT_DFCHG, BT * H);
        LINEAR_BACKWARD(lin.fc2, a[ACT_DFCHG], g->fc2_w + l * D * H, g->fc2_b + l * D, dres, fchg,
                        w->fc2_w + l * D * H, BT, H, D);
        ZERO(ACT_DFCH, BT * H);
        if (m->shape.gelu_tanh) gelu_tanh_backward(a[ACT_DFCH], fch, cdf, a[ACT_DFCHG], BT * H);
        else gelu_backward(a[ACT_DFCH], fch, cdf, a[ACT_DFCHG], BT * H);
        ZERO(ACT_DLN2, BT * D);
        LINEAR_BACKWARD(lin.fc1, a[ACT_DLN2], g->fc1_w + l * H * D, g->fc1_b + l * H, a[ACT_DFCH],
                        ln2, w->fc1_w + l * H * D, BT, D, H);
        layernorm_backward(dres, g->ln2_w + l * D, g->ln2_b + l * D, a[ACT_DLN2], res2,
                           w->ln2_w + l * D, ln2_mean, ln2_rstd, BT, D);
        // res2 = residual + proj(attn(qkv(ln1(residual))))
        ZERO(ACT_DATTY, BT * D);
        LINEAR_BACKWARD(lin.proj, a[ACT_DATTY], g->proj_w + l * D * D, g->proj_b + l * D, dres,
                        atty, w->proj_w + l * D * D, BT, D, D);
        ZERO(ACT_DQKV, BT * 3 * D);
        attention_backward(a[ACT_DQKV], a[ACT_DATTY], qkv, att, B, (int)T, (int)D, NH, causal,
                           m->scratch, m->nscratch);
        ZERO(ACT_DLN1, BT * D);
        LINEAR_BACKWARD(lin.qkv, a[ACT_DLN1], g->qkv_w + l * 3 * D * D, g->qkv_b + l * 3 * D,
                        a[ACT_DQKV], ln1, w->qkv_w + l * 3 * D * D, BT, D, 3 * D);
        layernorm_backward(dres, g->ln1_w + l * D, g->ln1_b + l * D, a[ACT_DLN1], residual,
                           w->ln1_w + l * D, ln1_mean, ln1_rstd, BT, D);
    }
#undef ZERO
#undef LINEAR_BACKWARD
    if (lst != NMF_OK) return nmf_error(NMF_ERR_INVALID_ARG, "N:M linear backward failed: %s",
                                        nmf_last_error());
    return NMF_OK;
}

nmf_status nmf_vit_train_backward(nmf_vit_train *m) {
    if (!m->has_labels || m->B < 1)
        return nmf_error(NMF_ERR_INVALID_ARG, "backward needs a forward with labels first");
    if (m->lm) return nmf_lm_train_backward(m);
    const nmf_model_config *c = &m->cfg;
    const int B = m->B, T = (int)m->shape.T, NP = T - 1;
    const size_t D = m->shape.D, K = (size_t)c->num_classes;
    const size_t CPP = (size_t)c->in_chans * c->patch * c->patch, BT = (size_t)B * T;
    const nmf_vit_params *w = &m->fw.vit;
    nmf_vit_params *g = &m->grads;
    float **a = m->act;

    memset(m->grad_mem, 0, m->num_params * sizeof(float));
    memset(a[ACT_DLOGITS], 0, (size_t)B * K * sizeof(float));
    crossentropy_backward(a[ACT_DLOGITS], a[ACT_PROBS], m->labels, B, (int)K,
                          m->loss_denom > 0 ? m->loss_denom : B);
    memset(a[ACT_DLNF], 0, (size_t)B * D * sizeof(float));
    matmul_backward(a[ACT_DLNF], g->head_w, g->head_b, a[ACT_DLOGITS], a[ACT_LNF], w->head_w,
                    (size_t)B, D, K);
    memset(a[ACT_DCLSX], 0, (size_t)B * D * sizeof(float));
    layernorm_backward(a[ACT_DCLSX], g->norm_w, g->norm_b, a[ACT_DLNF], a[ACT_CLSX], w->norm_w,
                       a[ACT_LNF_MEAN], a[ACT_LNF_RSTD], (size_t)B, D);
    // dres (B,T,D) = dL/d(output of the last block): only class-token rows are non-zero
    float *dres = a[ACT_DRES];
    memset(dres, 0, BT * D * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(dres + (size_t)b * T * D, a[ACT_DCLSX] + b * D, D * sizeof(float));
    nmf_status st = nmf_train_blocks_backward(m, B, dres);
    if (st != NMF_OK) return st;
    // encoded = [cls; patch embeddings] + pos
    float *dpe = a[ACT_DPE];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = dres + ((size_t)b * T + t) * D;
            float *dpos = g->pos + (size_t)t * D;
            for (size_t i = 0; i < D; i++) dpos[i] += d[i];
            if (t == 0)
                for (size_t i = 0; i < D; i++) g->cls[i] += d[i];
            else
                memcpy(dpe + ((size_t)b * NP + t - 1) * D, d, D * sizeof(float));
        }
    matmul_backward(NULL, g->patch_w, g->patch_b, dpe, a[ACT_PATCHES], w->patch_w, (size_t)B * NP,
                    CPP, D);
    return NMF_OK;
}

/* ---- optimizer ------------------------------------------------------------------------------- */
float nmf_vit_train_adamw_step(nmf_vit_train *m, const nmf_adamw_config *c, int t) {
    double sq = 0.0;
    for (size_t i = 0; i < m->num_params; i++) sq += (double)m->grad_mem[i] * m->grad_mem[i];
    float norm = (float)sqrt(sq);
    float coef = 1.0f;
    if (c->grad_clip > 0.0f) {
        float k = c->grad_clip / (norm + 1e-6f);
        if (k < 1.0f) coef = k;
    }
    /* torch.optim.AdamW's arithmetic, so 10 steps match PyTorch closely */
    const double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
    const float step_size = (float)(c->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    for (int p = 0; p < m->desc.kind_count; p++) {
        if (!m->sizes[p]) continue;
        float *w = m->param_mem + m->offsets[p], *g = m->grad_mem + m->offsets[p];
        float *mm = m->m_mem + m->offsets[p], *vv = m->v_mem + m->offsets[p];
        const float decay =
            nmf_param_role_decays(m->desc.kinds[p].role) ? 1.0f - c->lr * c->weight_decay : 1.0f;
        const size_t n = m->sizes[p];
#pragma omp parallel for schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * coef;
            w[i] *= decay;
            mm[i] = c->beta1 * mm[i] + (1.0f - c->beta1) * gi;
            vv[i] = c->beta2 * vv[i] + (1.0f - c->beta2) * gi * gi;
            float denom = sqrtf(vv[i]) / bc2_sqrt + c->eps;
            w[i] -= step_size * mm[i] / denom;
        }
    }
    nmf_vit_train_refresh_masked(m);
    return norm;
}

void nmf_vit_train_reset_optimizer(nmf_vit_train *m) {
    memset(m->m_mem, 0, m->num_params * sizeof(float));
    memset(m->v_mem, 0, m->num_params * sizeof(float));
}

float nmf_lr_cosine(int step, int total, int warmup, float lr_max, float lr_min) {
    if (warmup > 0 && step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (total <= warmup) return lr_max;
    double progress = (double)(step - warmup) / (double)(total - warmup);
    if (progress > 1.0) progress = 1.0;
    return lr_min + (lr_max - lr_min) * 0.5f * (float)(1.0 + cos(M_PI * progress));
}

/* ---- tensors in / out -------------------------------------------------------------------- */
/* dst (cols, rows) = src (rows, cols)^T: between a Conv1D's [in, out] storage and the (out, in)
 * view the training buffer holds */
static void transpose(float *dst, const float *src, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
}

static int stored_in_out(const nmf_vit_train *m, const nmf_param *d) {
    return m->desc.kinds[d->kind].in_axis == 0;
}

/* The largest tensor stored [in, out] (0: none) */
static size_t max_in_out(const nmf_vit_train *m) {
    size_t n = 0;
    for (size_t i = 0; i < m->desc.count; i++)
        if (stored_in_out(m, &m->desc.params[i]) && m->desc.params[i].numel > n)
            n = m->desc.params[i].numel;
    return n;
}

nmf_status nmf_vit_train_import(nmf_vit_train *m, const nmf_tensor_set *s) {
    /* like the inference loader: a NaN here would only surface later as "diverged" */
    nmf_status st = nmf_model_load_dense(&m->desc, s, NMF_LAYOUT_ALL, m->param_mem);
    if (st != NMF_OK) return st;
    const size_t n = max_in_out(m);
    float *tmp = n ? nmf_alloc(n, sizeof(float)) : NULL;
    if (n && !tmp) return nmf_error(NMF_ERR_NOMEM, "import");
    for (size_t i = 0; i < m->desc.count && n; i++) {
        const nmf_param *d = &m->desc.params[i];
        if (!stored_in_out(m, d)) continue;
        float *w = nmf_vit_train_param_ptr(m, (nmf_vit_param)d->kind, d->block < 0 ? 0 : d->block);
        memcpy(tmp, w, d->numel * sizeof(float));
        transpose(w, tmp, d->cols, d->rows); /* [in, out] -> (out, in) */
    }
    nmf_free(tmp);
    if (m->pattern.m) return nmf_vit_train_update_masks(m);
    return NMF_OK;
}

nmf_status nmf_vit_train_export(nmf_vit_train *m, int pack_nm, nmf_tensor_set *out) {
    nmf_tensors_init(out);
    sync_masked(m);
    const size_t n = max_in_out(m);
    float *tmp = n ? nmf_alloc(n, sizeof(float)) : NULL;
    if (n && !tmp) return nmf_error(NMF_ERR_NOMEM, "export");
    nmf_status st = NMF_OK;
    for (size_t i = 0; i < m->desc.count && st == NMF_OK; i++) {
        const nmf_param *d = &m->desc.params[i];
        nmf_vit_param p = (nmf_vit_param)d->kind;
        int layer = d->block < 0 ? 0 : d->block;
        const int in_out = stored_in_out(m, d);
        const float *data = nmf_vit_train_param_ptr(m, p, layer);
        uint8_t *mask = nmf_vit_train_mask(m, p, layer);
        if (mask) {
            if (pack_nm) { /* the (out, in) view packs; the tensor keeps its storage shape */
                nmf_nm_matrix nm;
                st = nmf_nm_pack_masked(&nm, data, mask, d->rows, d->cols, m->pattern, 0);
                if (st == NMF_OK) {
                    st = nmf_tensors_add_nm_transposed(out, d->name, &nm, in_out, NULL);
                    if (st != NMF_OK) nmf_nm_free(&nm);
                }
                continue;
            }
            /* dense but pruned: the masked copy */
            data = m->masked_mem + m->mask_offsets[p] + (size_t)layer * d->numel;
        }
        if (in_out) { /* (out, in) -> [in, out] */
            transpose(tmp, data, d->rows, d->cols);
            data = tmp;
        }
        st = nmf_tensors_add_dense(out, d->name, d->ndim, d->shape, data, NULL);
    }
    nmf_free(tmp);
    if (st == NMF_OK) {
        char *json = nmf_model_config_to_json(&m->cfg);
        if (!json) st = nmf_error(NMF_ERR_NOMEM, "config JSON");
        else {
            st = nmf_tensors_set_meta(out, NMF_CONFIG_META_KEY, json);
            free(json);
        }
    }
    if (st != NMF_OK) nmf_tensors_free(out);
    return st;
}

nmf_status nmf_vit_train_evaluate(nmf_vit_train *m, const nmf_dataset *ds, const size_t *idx,
                                  size_t count, double *accuracy, double *mean_loss) {
    long long right = 0;
    double loss_sum = 0.0;
    nmf_status st = nmf_vit_train_count_correct(m, ds, idx, count, &right, &loss_sum);
    if (st != NMF_OK) return st;
    if (accuracy) *accuracy = (double)right / (double)count;
    if (mean_loss) *mean_loss = loss_sum / (double)count;
    return NMF_OK;
}

nmf_status nmf_vit_train_count_correct(nmf_vit_train *m, const nmf_dataset *ds, const size_t *idx,
                                       size_t count, long long *right_out, double *loss_out) {
    const nmf_model_config *c = &m->cfg;
    if (ds->rows != c->img_size || ds->cols != c->img_size || c->in_chans != 1)
        return nmf_error(NMF_ERR_SHAPE, "dataset images %dx%d (1 channel) do not fit the model "
                         "(%d px, %d channels)", ds->rows, ds->cols, c->img_size, c->in_chans);
    if (count == 0) return nmf_error(NMF_ERR_INVALID_ARG, "evaluate: no examples");
    size_t pix = (size_t)ds->rows * ds->cols;
    float *x = nmf_alloc((size_t)m->max_batch * pix, sizeof(float));
    int *lab = nmf_alloc((size_t)m->max_batch, sizeof(int));
    size_t *ix = nmf_alloc((size_t)m->max_batch, sizeof(size_t));
    if (!x || !lab || !ix) {
        nmf_free(x), nmf_free(lab), nmf_free(ix);
        return nmf_error(NMF_ERR_NOMEM, "evaluate buffers");
    }
    nmf_status st = NMF_OK;
    long long right = 0;
    double loss_sum = 0.0;
    for (size_t s = 0; s < count && st == NMF_OK; s += (size_t)m->max_batch) {
        int B = (int)(count - s < (size_t)m->max_batch ? count - s : (size_t)m->max_batch);
        for (int b = 0; b < B; b++) ix[b] = idx ? idx[s + b] : s + b;
        st = nmf_dataset_batch(x, lab, ds, ix, (size_t)B, c->mean, c->std);
        float loss = 0.0f;
        int correct = 0;
        if (st == NMF_OK) st = nmf_vit_train_forward(m, x, lab, B, &loss, &correct);
        right += correct;
        loss_sum += (double)loss * B;
    }
    m->has_labels = 0; /* evaluation batches are not for backward */
    nmf_free(x), nmf_free(lab), nmf_free(ix);
    if (st != NMF_OK) return st;
    *right_out = right;
    if (loss_out) *loss_out = loss_sum;
    return NMF_OK;
}
