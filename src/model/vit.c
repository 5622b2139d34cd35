/* ViT construction: the parameter buffer + struct of pointers, the block linears (dense or N:M),
 * from a tensor set or random for the shape library. The forward is in vit_forward.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/block_linear.h"
#include "model/staged.h"
#include "model/vit_internal.h"

/* m with derived sizes, its description, the parameter buffer (zeroed) and pointers; linears NULL */
static nmf_status vit_alloc(nmf_vit **out, const nmf_model_config *c) {
    *out = NULL;
    nmf_vit *m = calloc(1, sizeof *m);
    if (!m) return nmf_error(NMF_ERR_NOMEM, "model struct");
    nmf_status st = nmf_model_describe(&m->desc, c);
    if (st) {
        free(m);
        return st;
    }
    m->config = *c;
    m->D = (size_t)c->dim;
    m->H = (size_t)nmf_vit_hidden(c);
    m->heads = (size_t)c->heads;
    m->head_dim = m->D / m->heads;
    m->grid = (size_t)nmf_vit_grid(c);
    m->P = m->grid * m->grid;
    m->T = m->P + 1;
    m->K = (size_t)c->in_chans * (size_t)c->patch * (size_t)c->patch;
    m->classes = (size_t)c->num_classes;
    m->blocks = calloc((size_t)c->depth, sizeof *m->blocks);
    m->param_buf = nmf_alloc(m->desc.floats[NMF_LAYOUT_DENSE], sizeof(float));
    if (!m->blocks || !m->param_buf) {
        nmf_vit_free(m);
        return nmf_error(NMF_ERR_NOMEM, "model parameters (%zu floats)", m->desc.floats[NMF_LAYOUT_DENSE]);
    }
    nmf_vit_params_bind(&m->desc, NMF_LAYOUT_DENSE, m->param_buf, &m->p);
    *out = m;
    return NMF_OK;
}

/* Where a block linear's weight goes. */
static nmf_linear **linear_slot(nmf_vit *m, const nmf_param *p) {
    nmf_vit_block *k = &m->blocks[p->block];
    switch ((nmf_vit_param)p->kind) {
    case NMF_VP_QKV_W: return &k->qkv;
    case NMF_VP_PROJ_W: return &k->proj;
    case NMF_VP_FC1_W: return &k->fc1;
    case NMF_VP_FC2_W: return &k->fc2;
    default: return NULL;
    }
}

typedef nmf_status (*fill_fn)(const nmf_param *p, const nmf_param_kind *k, float *dense,
                              nmf_linear **lin, void *ctx);

/* Fills every row of the table: the table is the contract. N:M-eligible weights become linears,
 * everything else lands in the parameter buffer. */
static nmf_status for_each_param(nmf_vit *m, fill_fn fill, void *ctx) {
    for (size_t i = 0; i < m->desc.count; i++) {
        const nmf_param *p = &m->desc.params[i];
        const nmf_param_kind *k = nmf_param_kind_of(&m->desc, p);
        float *dense = NULL;
        nmf_linear **lin = NULL;
        if (k->nm) lin = linear_slot(m, p);
        else dense = m->param_buf + nmf_model_desc_offset(&m->desc, NMF_LAYOUT_DENSE, p);
        if (k->nm && !lin)
            return nmf_error(NMF_ERR_INVALID_ARG, "model: no linear for '%s' (internal)", p->name);
        nmf_status st = fill(p, k, dense, lin, ctx);
        if (st) return st;
    }
    return NMF_OK;
}

/* The block linears from their tensors (the dense rest is loaded by nmf_model_load_dense), as
 * every model builds them (block_linear.h): a set read keeping 16-bit values (kept16) gives dense
 * 16-bit and compact bf16 N:M layers. */
typedef struct {
    const nmf_tensor_set *tensors;
    nmf_tensor_set *owned; /* the same set when the caller gives it up (nmf_vit_create_from) */
    int kept16;
    const nmf_block_source *src; /* where N:M headers are read (nmf_vit_load); NULL */
    nmf_precision prec;          /* bf16 / int8: each linear converted as it is built */
    nmf_block_maps *maps;        /* the model's: mappings of weights used in place */
} linear_ctx;

static nmf_status fill_linear(const nmf_param *spec, const nmf_param_kind *k, float *dense,
                              nmf_linear **lin, void *vctx) {
    if (dense) return NMF_OK;
    const linear_ctx *ctx = vctx;
    nmf_tensor *t = nmf_tensors_find(ctx->tensors, spec->name);
    nmf_status st = nmf_block_linear_build(lin, spec, k, t, ctx->owned != NULL, ctx->kept16, ctx->src,
                                           ctx->maps);
    if (st == NMF_OK && (ctx->prec == NMF_PREC_BF16 || ctx->prec == NMF_PREC_INT8))
        st = nmf_linear_set_precision(*lin, ctx->prec); /* nmf_vit_set_precision's conversion */
    if (st && nmf_last_error()[0] == '\0') st = nmf_error(st, "linear '%s'", spec->name);
    if (st == NMF_OK && ctx->owned) nmf_tensors_remove(ctx->owned, spec->name); /* built: drop it */
    return st;
}

/* An int8 model's patch embedding runs in int8 too, as a dense int8 layer made from W_pe (DeiT-
 * small: its f32 product was ~8 % of the 1:8 int8 forward); f32 and bf16 models keep the f32
 * product on param_buf's W_pe, which stays (training and the f32 path read it). */
static nmf_status set_stem_precision(nmf_vit *m, nmf_precision p) {
    if (p != NMF_PREC_INT8 || m->stem) return NMF_OK;
    const nmf_status st = nmf_linear_create_dense_int8(&m->stem, m->p.patch_w, m->D, m->K);
    return st ? nmf_error_context(st, "int8 patch embedding") : NMF_OK;
}

/* nmf_vit_create; owned (NULL, or tensors itself): each tensor removed from it once the model
 * holds its own copy, so that building from a set the caller gives up peaks near one copy. src
 * (or NULL): where the N:M tensors the set holds as headers are read, one layer at a time. prec:
 * bf16 or int8 converts each block linear as it is built; f32 or NMF_PREC_COUNT leaves them. */
static nmf_status vit_build(nmf_vit **out, const nmf_model_config *c, const nmf_tensor_set *tensors,
                            nmf_tensor_set *owned, const nmf_block_source *src, nmf_precision prec) {
    *out = NULL;
    nmf_vit *m;
    nmf_status st = vit_alloc(&m, c);
    if (st) return st;
    /* kept16 read before any tensor is dropped */
    linear_ctx ctx = {tensors, owned, nmf_block_set_kept16(tensors), src, prec, &m->maps};
    st = owned ? nmf_block_source_fill(src, owned, &m->desc, NMF_LAYOUT_DENSE) : NMF_OK;
    if (st == NMF_OK) st = nmf_model_load_dense(&m->desc, tensors, NMF_LAYOUT_DENSE, m->param_buf);
    for (size_t i = 0; st == NMF_OK && owned && i < m->desc.count; i++)
        if (!nmf_param_kind_of(&m->desc, &m->desc.params[i])->nm)
            nmf_tensors_remove(owned, m->desc.params[i].name);
    if (!st) st = for_each_param(m, fill_linear, &ctx);
    if (!st && prec != NMF_PREC_COUNT) st = set_stem_precision(m, prec);
    if (st) {
        nmf_vit_free(m);
        return st;
    }
    *out = m;
    return NMF_OK;
}

nmf_status nmf_vit_create_shell(nmf_vit **out, const nmf_model_config *c) {
    return vit_alloc(out, c);
}

nmf_status nmf_vit_set_block(nmf_vit *m, int l, const nmf_tensor_set *set) {
    nmf_vit_drop_block(m, l);
    linear_ctx ctx = {set, NULL, nmf_block_set_kept16(set), NULL, NMF_PREC_COUNT, &m->maps};
    nmf_status st = NMF_OK;
    for (size_t i = 0; !st && i < m->desc.count; i++) {
        const nmf_param *p = &m->desc.params[i];
        const nmf_param_kind *k = nmf_param_kind_of(&m->desc, p);
        if (p->block != l || !k->nm) continue;
        nmf_linear **lin = linear_slot(m, p);
        if (!lin) st = nmf_error(NMF_ERR_INVALID_ARG, "model: no linear for '%s' (internal)", p->name);
        else if (!nmf_tensors_find(set, p->name)) st = nmf_error(NMF_ERR_NOT_FOUND, "tensor '%s' missing", p->name);
        else st = fill_linear(p, k, NULL, lin, &ctx);
    }
    if (st) nmf_vit_drop_block(m, l);
    return st;
}

void nmf_vit_drop_block(nmf_vit *m, int l) {
    nmf_vit_block *k = &m->blocks[l];
    nmf_linear_free(k->qkv);
    nmf_linear_free(k->proj);
    nmf_linear_free(k->fc1);
    nmf_linear_free(k->fc2);
    memset(k, 0, sizeof *k);
}

nmf_status nmf_vit_create(nmf_vit **out, const nmf_model_config *c, const nmf_tensor_set *tensors) {
    if (!out || !c || !tensors) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_vit_create: NULL argument");
    return vit_build(out, c, tensors, NULL, NULL, NMF_PREC_COUNT);
}

nmf_status nmf_vit_create_from(nmf_vit **out, const nmf_model_config *c, nmf_tensor_set *tensors) {
    if (!out || !c || !tensors) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_vit_create_from: NULL argument");
    return vit_build(out, c, tensors, tensors, NULL, NMF_PREC_COUNT);
}

nmf_status nmf_vit_load(nmf_vit **out, const char *path, const char *name,
                        const nmf_model_config *fallback_config) {
    return nmf_vit_load_with(out, path, name, fallback_config, NULL, NMF_PREC_COUNT);
}

nmf_status nmf_vit_load_with(nmf_vit **out, const char *path, const char *name,
                             const nmf_model_config *fallback_config,
                             const nmf_config_overrides *overrides, nmf_precision prec) {
    if (!out || !path) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_vit_load: NULL argument");
    *out = NULL;
    if ((unsigned)prec > NMF_PREC_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_vit_load: precision %d unknown", (int)prec);
    /* weights as stored unless a precision is asked for (BF16/F16 block linears 16-bit); a family
     * candidate's N:M tensors read one layer at a time, as nmf_lm_load reads them */
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_block_source src;
    nmf_status st = nmf_block_source_open(&src, path, name, fallback_config, overrides,
                                          prec == NMF_PREC_COUNT, 0, &c, &s);
    if (st == NMF_OK) st = vit_build(out, &c, &s, &s, &src, prec);
    nmf_tensors_free(&s);
    nmf_block_source_close(&src);
    return st;
}

nmf_precision nmf_vit_get_precision(const nmf_vit *m) {
    return m && m->blocks ? nmf_linear_precision(m->blocks[0].qkv) : NMF_PREC_F32;
}

/* ---- random initialisation (shape library) ---- */

typedef struct {
    uint64_t state;
    nmf_pattern pattern;
} random_ctx;

/* every tensor initialised by its role (nmf_param_role_init), tensor by tensor */
static nmf_status fill_random(const nmf_param *spec, const nmf_param_kind *k, float *dense,
                              nmf_linear **lin, void *vctx) {
    random_ctx *ctx = vctx;
    if (dense) {
        nmf_param_role_init(k->role, dense, spec->numel, &ctx->state);
        return NMF_OK;
    }
    const size_t rows = spec->rows, cols = spec->cols;
    float *w = malloc(rows * cols * sizeof(float)); /* one weight at a time: peak stays low */
    if (!w) return nmf_error(NMF_ERR_NOMEM, "random weight '%s'", spec->name);
    nmf_param_role_init(k->role, w, rows * cols, &ctx->state);
    nmf_status st;
    if (ctx->pattern.n == 0) {
        st = nmf_linear_create_dense(lin, w, rows, cols);
    } else {
        nmf_nm_matrix a;
        st = nmf_nm_pack(&a, w, rows, cols, ctx->pattern, 0);
        if (st == NMF_OK) {
            st = nmf_linear_create_nm(lin, &a);
            nmf_nm_free(&a);
        }
    }
    free(w);
    return st;
}

nmf_status nmf_vit_create_random(nmf_vit **out, const nmf_model_config *c, nmf_pattern pattern,
                                 uint64_t seed) {
    if (!out || !c) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_vit_create_random: NULL argument");
    *out = NULL;
    if (!(pattern.n == 0 && pattern.m == 0) && !nmf_pattern_valid(pattern))
        return nmf_error(NMF_ERR_INVALID_ARG, "pattern %d:%d invalid", pattern.n, pattern.m);
    nmf_vit *m;
    nmf_status st = vit_alloc(&m, c);
    if (st) return st;
    random_ctx ctx = {.state = seed, .pattern = pattern};
    st = for_each_param(m, fill_random, &ctx);
    if (st) {
        nmf_vit_free(m);
        return st;
    }
    *out = m;
    return NMF_OK;
}

void nmf_vit_free(nmf_vit *m) {
    if (!m) return;
    nmf_linear_free(m->stem);
    if (m->blocks)
        for (int b = 0; b < m->config.depth; b++) nmf_vit_drop_block(m, b);
    free(m->blocks);
    nmf_block_maps_free(&m->maps); /* after the linears that read from them */
    nmf_free(m->param_buf);
    nmf_model_desc_free(&m->desc);
    nmf_free(m->arena.storage);
    free(m);
}

nmf_status nmf_vit_set_precision(nmf_vit *m, nmf_precision p) {
    if (!m) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_vit_set_precision: NULL model");
    for (int b = 0; b < m->config.depth; b++) {
        nmf_vit_block *k = &m->blocks[b];
        nmf_linear *lins[4] = {k->qkv, k->proj, k->fc1, k->fc2};
        for (int i = 0; i < 4; i++) {
            const nmf_status st = nmf_linear_set_precision(lins[i], p);
            if (st) return st;
        }
    }
    return set_stem_precision(m, p);
}

const nmf_model_config *nmf_vit_get_config(const nmf_vit *m) { return &m->config; }

size_t nmf_vit_weight_bytes(const nmf_vit *m) {
    size_t bytes = m->desc.floats[NMF_LAYOUT_DENSE] * sizeof(float) + nmf_linear_weight_bytes(m->stem);
    for (int b = 0; b < m->config.depth; b++) {
        const nmf_vit_block *k = &m->blocks[b];
        bytes += nmf_linear_weight_bytes(k->qkv) + nmf_linear_weight_bytes(k->proj) +
                 nmf_linear_weight_bytes(k->fc1) + nmf_linear_weight_bytes(k->fc2);
    }
    return bytes;
}

size_t nmf_vit_arena_bytes(const nmf_vit *m) { return m->arena.floats * sizeof(float); }
