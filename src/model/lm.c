/* Token models (BERT, GPT-2, LLaMA): construction from a tensor set in HF names or at random,
 * loading, sizes. The parameter table is the contract: N:M-eligible block weights become
 * nmf_linear objects (dense or N:M as held), everything else lands in one dense buffer.
 * GPT-2's Conv1D weights, stored [in, out], are transposed once to the (out, in) the linears
 * want (block_linear.c, which builds every model's block linears). The forward is in
 * lm_forward.c / lm_block.c. */
#include <stdlib.h>
#include <string.h>

#include "model/block_linear.h"
#include "model/lm_internal.h"
#include "model/staged.h"
#include "nmformer/io.h"

/* Each family's parts of the shared forward. */
static const nmf_lm_kinds bert_kinds = {
    .encoder = 1, .word = NMF_BP_WORD, .pos = NMF_BP_POS, .type = NMF_BP_TYPE,
    .emb_ln_w = NMF_BP_EMB_LN_W, .emb_ln_b = NMF_BP_EMB_LN_B,
    .n1_w = NMF_BP_ALN_W, .n1_b = NMF_BP_ALN_B, .n2_w = NMF_BP_OLN_W, .n2_b = NMF_BP_OLN_B,
    .qkv_w = -1, .qkv_b = -1, .q_w = NMF_BP_Q_W, .q_b = NMF_BP_Q_B, .k_w = NMF_BP_K_W,
    .k_b = NMF_BP_K_B, .v_w = NMF_BP_V_W, .v_b = NMF_BP_V_B, .o_w = NMF_BP_AO_W, .o_b = NMF_BP_AO_B,
    .fc1_w = NMF_BP_I_W, .fc1_b = NMF_BP_I_B, .up_w = -1, .up_b = -1, .fc2_w = NMF_BP_O_W,
    .fc2_b = NMF_BP_O_B, .nf_w = -1, .nf_b = -1, .pool_w = NMF_BP_POOL_W, .pool_b = NMF_BP_POOL_B,
    .cls_w = NMF_BP_CLS_W, .cls_b = NMF_BP_CLS_B, .head_w = -1,
};
static const nmf_lm_kinds gpt2_kinds = {
    .word = NMF_GP_WTE, .pos = NMF_GP_WPE, .type = -1, .emb_ln_w = -1, .emb_ln_b = -1,
    .n1_w = NMF_GP_LN1_W, .n1_b = NMF_GP_LN1_B, .n2_w = NMF_GP_LN2_W, .n2_b = NMF_GP_LN2_B,
    .qkv_w = NMF_GP_ATTN_W, .qkv_b = NMF_GP_ATTN_B, .q_w = -1, .q_b = -1, .k_w = -1, .k_b = -1,
    .v_w = -1, .v_b = -1, .o_w = NMF_GP_PROJ_W, .o_b = NMF_GP_PROJ_B, .fc1_w = NMF_GP_FC_W,
    .fc1_b = NMF_GP_FC_B, .up_w = -1, .up_b = -1, .fc2_w = NMF_GP_MPROJ_W, .fc2_b = NMF_GP_MPROJ_B,
    .nf_w = NMF_GP_LNF_W, .nf_b = NMF_GP_LNF_B, .pool_w = -1, .pool_b = -1, .cls_w = -1,
    .cls_b = -1, .head_w = NMF_GP_HEAD_W,
};
static const nmf_lm_kinds llama_kinds = {
    .rms = 1, .rope = 1, .gated = 1, .word = NMF_LP_EMBED, .pos = -1, .type = -1,
    .emb_ln_w = -1, .emb_ln_b = -1, .n1_w = NMF_LP_LN1_W, .n1_b = -1, .n2_w = NMF_LP_LN2_W,
    .n2_b = -1, .qkv_w = -1, .qkv_b = -1, .q_w = NMF_LP_Q_W, .q_b = NMF_LP_Q_B, .k_w = NMF_LP_K_W,
    .k_b = NMF_LP_K_B, .v_w = NMF_LP_V_W, .v_b = NMF_LP_V_B, .o_w = NMF_LP_O_W, .o_b = NMF_LP_O_B,
    .fc1_w = NMF_LP_GATE_W, .fc1_b = NMF_LP_GATE_B, .up_w = NMF_LP_UP_W, .up_b = NMF_LP_UP_B,
    .fc2_w = NMF_LP_DOWN_W, .fc2_b = NMF_LP_DOWN_B, .nf_w = NMF_LP_NORM_W, .nf_b = -1,
    .pool_w = -1, .pool_b = -1, .cls_w = -1, .cls_b = -1, .head_w = NMF_LP_HEAD_W,
};

static const nmf_lm_kinds *kinds_of(const nmf_model_config *c) {
    const nmf_hf_model_type t = c->hf.model_type;
    return t == NMF_HF_BERT ? &bert_kinds : t == NMF_HF_GPT2 ? &gpt2_kinds : &llama_kinds;
}

float *nmf_lm_param(const nmf_lm *m, int kind, int block) {
    if (kind < 0 || kind >= m->desc.kind_count) return NULL;
    const size_t off = m->desc.kind_offset[NMF_LAYOUT_DENSE][kind];
    if (off == SIZE_MAX) return NULL;
    return m->param_buf + off + (block > 0 ? (size_t)block * m->desc.kind_numel[kind] : 0);
}

/* Takes the kinds of skip (kind_count flags, or NULL) out of the description's dense layout and
 * packs the others in kind order: what param_buf holds when the embedding or the head is held
 * 16-bit instead. A kind's tensors are contiguous, block after block (nmf_model_desc_offset). */
static void drop_from_dense_layout(nmf_model_desc *d, const int *skip, size_t L) {
    size_t at = 0;
    for (int k = 0; k < d->kind_count; k++) {
        size_t *off = &d->kind_offset[NMF_LAYOUT_DENSE][k];
        if (*off == SIZE_MAX) continue;
        if (skip[k]) {
            *off = SIZE_MAX;
            continue;
        }
        *off = at;
        at += d->kind_numel[k] * (d->kinds[k].per_block ? L : 1);
    }
    d->floats[NMF_LAYOUT_DENSE] = at;
}

/* m with derived sizes, its description and a zeroed parameter buffer (less the kinds of skip,
 * which may be NULL); linears NULL */
static nmf_status lm_alloc(nmf_lm **out, const nmf_model_config *c, const int *skip) {
    *out = NULL;
    if (!nmf_model_is_token(c))
        return nmf_error(NMF_ERR_UNSUPPORTED, "token model: arch '%s' is not bert, gpt2 or llama "
                         "(a ViT: use nmf_vit_create)", c->arch);
    nmf_lm *m = calloc(1, sizeof *m);
    if (!m) return nmf_error(NMF_ERR_NOMEM, "token model struct");
    nmf_status st = nmf_model_describe(&m->desc, c);
    if (st) {
        free(m);
        return st;
    }
    const nmf_hf_config *h = &c->hf;
    m->config = *c;
    m->k = *kinds_of(c);
    m->D = (size_t)h->hidden_size;
    m->I = (size_t)h->intermediate_size;
    m->heads = (size_t)h->num_attention_heads;
    m->kv_heads = (size_t)h->num_key_value_heads;
    m->hd = (size_t)h->head_dim;
    m->V = (size_t)h->vocab_size;
    m->P = (size_t)h->max_position_embeddings;
    m->L = (size_t)h->num_hidden_layers;
    m->labels = (size_t)h->num_labels;
    m->Q = m->heads * m->hd;
    m->KVW = m->kv_heads * m->hd;
    m->eps = h->norm_eps;
    if (skip) drop_from_dense_layout(&m->desc, skip, m->L);
    m->lin = calloc(m->L * (size_t)m->desc.kind_count, sizeof *m->lin);
    m->param_buf = nmf_alloc(m->desc.floats[NMF_LAYOUT_DENSE], sizeof(float));
    if (!m->lin || !m->param_buf) {
        nmf_lm_free(m);
        return nmf_error(NMF_ERR_NOMEM, "token model parameters (%zu floats)",
                         m->desc.floats[NMF_LAYOUT_DENSE]);
    }
    *out = m;
    return NMF_OK;
}

static nmf_linear **linear_slot(nmf_lm *m, const nmf_param *p) {
    return &m->lin[(size_t)p->block * (size_t)m->desc.kind_count + (size_t)p->kind];
}

/* nmf_lm_create; when owned is not NULL (it is then `tensors` itself), each tensor is removed
 * from it as soon as the model holds its own copy, so that building from a set the caller gives
 * up (nmf_lm_load) peaks near one copy of the weights, not two. src (or NULL): where the N:M
 * tensors the set holds as headers are read, one at a time as each layer is built. prec: bf16 or
 * int8 converts each block linear as soon as it is built (nmf_lm_set_precision's conversion, one
 * layer's f32 forms at a time); f32 or NMF_PREC_COUNT leaves them as built. */
/* An int8 decoder computes its logits in int8 too when its head is f32 (lm_head, or the tied
 * word embedding, in param_buf): a dense int8 layer of it, which a step reads in a quarter of the
 * bytes (GPT-2: the 50257 x 768 head is 154 MB of f32 read for every token's logits, more than
 * all its 1:8 blocks; decode 2.8x faster for 39 MB more). param_buf's f32 copy stays (the
 * embedding lookup, a tied head's, reads it). A bf16 model keeps an f32 head: rounding it into a
 * second, 16-bit copy measured 1.2x on GPT-2's decode for 77 MB more, against what bf16 is for. */
static nmf_status set_head_precision(nmf_lm *m, nmf_precision p) {
    if (p != NMF_PREC_INT8 || m->head8 || m->head16 || m->config.hf.head != NMF_HF_HEAD_LM)
        return NMF_OK;
    const float *W = nmf_lm_param(m, m->k.head_w, -1);
    if (!W) W = nmf_lm_param(m, m->k.word, -1); /* tied */
    if (!W) return NMF_OK;
    const nmf_status st = nmf_linear_create_dense_int8(&m->head8, W, m->V, m->D); // (V, D)
    return st ? nmf_error_context(st, "int8 LM head") : NMF_OK;
}

static nmf_status lm_build(nmf_lm **out, const nmf_model_config *c, const nmf_tensor_set *tensors,
                           nmf_tensor_set *owned, const nmf_block_source *src, nmf_precision prec) {
    /* the embedding and the head stay 16-bit when the set holds them so: out of param_buf */
    nmf_model_desc d;
    nmf_status st = nmf_model_describe(&d, c);
    if (st) return st;
    const nmf_lm_kinds *kinds = kinds_of(c);
    int skip[NMF_DESC_MAX_KINDS] = {0}, any = 0;
    const int kept16 = nmf_block_set_kept16(tensors); /* read with keep16 */
    for (size_t i = 0; i < d.count; i++) {
        const nmf_param *p = &d.params[i];
        const nmf_tensor *t = nmf_tensors_find(tensors, p->name);
        if (t && nmf_block_is16(t) && (p->kind == kinds->word || p->kind == kinds->head_w))
            skip[p->kind] = any = 1;
    }
    nmf_model_desc_free(&d);
    nmf_lm *m;
    st = lm_alloc(&m, c, any ? skip : NULL);
    if (st) return st;
    st = owned ? nmf_block_source_fill(src, owned, &m->desc, NMF_LAYOUT_DENSE) : NMF_OK;
    if (st == NMF_OK) st = nmf_model_load_dense(&m->desc, tensors, NMF_LAYOUT_DENSE, m->param_buf);
    for (size_t i = 0; st == NMF_OK && i < m->desc.count; i++) {
        const nmf_param *p = &m->desc.params[i];
        if (!skip[p->kind]) continue; /* (V, D): the head's (out, in), the embedding's rows */
        st = nmf_block_dense16_build(p->kind == m->k.word ? &m->embed16 : &m->head16, p,
                                     nmf_tensors_find(tensors, p->name), 0, owned != NULL, src, &m->maps);
    }
    if (st == NMF_OK && m->embed16 && !m->head16 && m->config.hf.head == NMF_HF_HEAD_LM &&
        !nmf_lm_param(m, m->k.head_w, -1))
        m->head16 = m->embed16; /* tied */
    for (size_t i = 0; st == NMF_OK && owned && i < m->desc.count; i++)
        if (!nmf_param_kind_of(&m->desc, &m->desc.params[i])->nm)
            nmf_tensors_remove(owned, m->desc.params[i].name);
    for (size_t i = 0; st == NMF_OK && i < m->desc.count; i++) {
        const nmf_param *p = &m->desc.params[i];
        if (!nmf_param_kind_of(&m->desc, p)->nm) continue;
        st = nmf_block_linear_build(linear_slot(m, p), p, nmf_param_kind_of(&m->desc, p),
                                    nmf_tensors_find(tensors, p->name), owned != NULL, kept16, src,
                                    &m->maps);
        if (st == NMF_OK && (prec == NMF_PREC_BF16 || prec == NMF_PREC_INT8) &&
            (st = nmf_linear_set_precision(*linear_slot(m, p), prec)))
            st = nmf_error_context(st, "block %d", p->block);
        if (st == NMF_OK && owned) nmf_tensors_remove(owned, p->name);
    }
    if (st == NMF_OK) st = set_head_precision(m, prec);
    if (st) {
        nmf_lm_free(m);
        return st;
    }
    *out = m;
    return NMF_OK;
}

nmf_status nmf_lm_create_shell(nmf_lm **out, const nmf_model_config *c) {
    /* the tail's kinds (final norm, pooler, heads) take no place: a shell never runs the tail */
    const nmf_lm_kinds *k = kinds_of(c);
    int skip[NMF_DESC_MAX_KINDS] = {0};
    const int tail[] = {k->nf_w, k->nf_b, k->pool_w, k->pool_b, k->cls_w, k->cls_b, k->head_w};
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
        if (tail[i] >= 0) skip[tail[i]] = 1;
    return lm_alloc(out, c, skip);
}

nmf_status nmf_lm_set_block(nmf_lm *m, int l, const nmf_tensor_set *set) {
    nmf_lm_drop_block(m, l);
    const int kept16 = nmf_block_set_kept16(set);
    nmf_status st = NMF_OK;
    for (size_t i = 0; !st && i < m->desc.count; i++) {
        const nmf_param *p = &m->desc.params[i];
        if (p->block != l || !nmf_param_kind_of(&m->desc, p)->nm) continue;
        nmf_tensor *t = nmf_tensors_find(set, p->name);
        st = t ? nmf_block_linear_build(linear_slot(m, p), p, nmf_param_kind_of(&m->desc, p), t, 0,
                                        kept16, NULL, &m->maps)
               : nmf_error(NMF_ERR_NOT_FOUND, "tensor '%s' missing", p->name);
    }
    if (st) nmf_lm_drop_block(m, l);
    return st;
}

void nmf_lm_drop_block(nmf_lm *m, int l) {
    nmf_linear **lin = &m->lin[(size_t)l * (size_t)m->desc.kind_count];
    for (int k = 0; k < m->desc.kind_count; k++) {
        nmf_linear_free(lin[k]);
        lin[k] = NULL;
    }
}

nmf_status nmf_lm_create(nmf_lm **out, const nmf_model_config *c, const nmf_tensor_set *tensors) {
    if (!out || !c || !tensors) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_lm_create: NULL argument");
    *out = NULL;
    return lm_build(out, c, tensors, NULL, NULL, NMF_PREC_COUNT);
}

nmf_status nmf_lm_create_from(nmf_lm **out, const nmf_model_config *c, nmf_tensor_set *tensors) {
    if (!out || !c || !tensors)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_lm_create_from: NULL argument");
    *out = NULL;
    return lm_build(out, c, tensors, tensors, NULL, NMF_PREC_COUNT);
}

nmf_status nmf_lm_create_random(nmf_lm **out, const nmf_model_config *c, nmf_pattern pattern,
                                uint64_t seed) {
    if (!out || !c) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_lm_create_random: NULL argument");
    *out = NULL;
    if (!(pattern.n == 0 && pattern.m == 0) && !nmf_pattern_valid(pattern))
        return nmf_error(NMF_ERR_INVALID_ARG, "pattern %d:%d invalid", pattern.n, pattern.m);
    nmf_lm *m;
    nmf_status st = lm_alloc(&m, c, NULL);
    if (st) return st;
    uint64_t rng = seed;
    for (size_t i = 0; st == NMF_OK && i < m->desc.count; i++) {
        const nmf_param *p = &m->desc.params[i];
        const nmf_param_kind *k = nmf_param_kind_of(&m->desc, p);
        if (!k->nm) {
            nmf_param_role_init(k->role, m->param_buf + nmf_model_desc_offset(&m->desc, NMF_LAYOUT_DENSE, p),
                                p->numel, &rng);
            continue;
        }
        float *w = malloc(p->numel * sizeof(float)); /* (out, in); one weight at a time */
        if (!w) {
            st = nmf_error(NMF_ERR_NOMEM, "random weight '%s'", p->name);
            break;
        }
        nmf_param_role_init(k->role, w, p->numel, &rng);
        if (pattern.n == 0) {
            st = nmf_linear_create_dense(linear_slot(m, p), w, p->rows, p->cols);
        } else {
            nmf_nm_matrix a;
            st = nmf_nm_pack(&a, w, p->rows, p->cols, pattern, 0);
            if (st == NMF_OK) {
                st = nmf_linear_create_nm(linear_slot(m, p), &a);
                nmf_nm_free(&a);
            }
        }
        free(w);
    }
    if (st) {
        nmf_lm_free(m);
        return st;
    }
    *out = m;
    return NMF_OK;
}

nmf_status nmf_lm_load(nmf_lm **out, const char *path, const char *name) {
    return nmf_lm_load_with(out, path, name, NULL, NMF_PREC_COUNT);
}

nmf_status nmf_lm_load_with(nmf_lm **out, const char *path, const char *name,
                            const nmf_config_overrides *overrides, nmf_precision prec) {
    if (!out || !path) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_lm_load: NULL argument");
    *out = NULL;
    if ((unsigned)prec > NMF_PREC_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_lm_load: precision %d unknown", (int)prec);
    /* a family candidate's dense tensors read now (16-bit ones kept unless a precision is asked
     * for), each N:M tensor only when its layer is built, so the decoded N:M forms never coexist
     * (memory ~ the candidate's stored bytes; docs/PERFORMANCE.md, billion-parameter models) */
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_block_source src;
    nmf_status st = nmf_block_source_open(&src, path, name, NULL, overrides, prec == NMF_PREC_COUNT, 1,
                                          &c, &s);
    if (st == NMF_OK) st = lm_build(out, &c, &s, &s, &src, prec);
    nmf_tensors_free(&s);
    nmf_block_source_close(&src);
    return st;
}

void nmf_lm_free(nmf_lm *m) {
    if (!m) return;
    if (m->lin)
        for (size_t i = 0; i < m->L * (size_t)m->desc.kind_count; i++) nmf_linear_free(m->lin[i]);
    free(m->lin);
    if (m->head16 != m->embed16) nmf_linear_free(m->head16);
    nmf_linear_free(m->embed16);
    nmf_linear_free(m->head8);
    nmf_block_maps_free(&m->maps); /* after the linears that read from them */
    nmf_free(m->param_buf);
    nmf_model_desc_free(&m->desc);
    nmf_free(m->arena.storage);
    free(m);
}

const nmf_model_config *nmf_lm_get_config(const nmf_lm *m) { return m ? &m->config : NULL; }

size_t nmf_lm_output_floats(const nmf_lm *m, size_t B, size_t T) {
    if (!m) return 0;
    switch (m->config.hf.head) {
    case NMF_HF_HEAD_LM: return B * T * m->V;
    case NMF_HF_HEAD_CLASSIFIER: return B * m->labels;
    default: return B * T * m->D;
    }
}

nmf_status nmf_lm_set_precision(nmf_lm *m, nmf_precision p) {
    if (!m) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_lm_set_precision: NULL model");
    for (size_t i = 0; i < m->L * (size_t)m->desc.kind_count; i++) {
        if (!m->lin[i]) continue;
        const nmf_status st = nmf_linear_set_precision(m->lin[i], p);
        if (st) return nmf_error_context(st, "block %zu", i / (size_t)m->desc.kind_count);
    }
    return set_head_precision(m, p);
}

size_t nmf_lm_weight_bytes(const nmf_lm *m) {
    if (!m) return 0;
    size_t bytes = m->desc.floats[NMF_LAYOUT_DENSE] * sizeof(float);
    for (size_t i = 0; i < m->L * (size_t)m->desc.kind_count; i++)
        bytes += nmf_linear_weight_bytes(m->lin[i]);
    bytes += nmf_linear_weight_bytes(m->embed16); /* 0 when NULL */
    if (m->head16 != m->embed16) bytes += nmf_linear_weight_bytes(m->head16);
    bytes += nmf_linear_weight_bytes(m->head8);
    return bytes;
}
