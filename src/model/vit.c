/* ViT construction: the parameter buffer + struct of pointers, the block linears (dense or N:M),
 * from a tensor set or random for the shape library. The forward is in vit_forward.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "model/vit_internal.h"

nmf_status nmf_vit_alloc(nmf_vit **out, const nmf_vit_config *c) {
    *out = NULL;
    nmf_status st = nmf_vit_config_validate(c);
    if (st) return st;
    nmf_vit *m = calloc(1, sizeof *m);
    if (!m) return nmf_error(NMF_ERR_NOMEM, "model struct");
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
    /* Sizes are bounded by nmf_vit_config_validate (dim <= 16384, T <= 65536, ...), so these
     * products fit comfortably in size_t on 64-bit. */
    size_t D = m->D, H = m->H;
    size_t per_block = 2 * D + 3 * D + D + 2 * D + H + D;
    m->param_floats = D + m->T * D + D * m->K + D + 2 * D + m->classes * D + m->classes +
                      (size_t)c->depth * per_block;
    m->param_buf = nmf_alloc(m->param_floats, sizeof(float));
    if (!m->blocks || !m->param_buf) {
        nmf_vit_free(m);
        return nmf_error(NMF_ERR_NOMEM, "model parameters (%zu floats)", m->param_floats);
    }
    float *p = m->param_buf;
#define TAKE(ptr, n) (ptr = p, p += (n))
    TAKE(m->p.cls_token, D);
    TAKE(m->p.pos_embed, m->T * D);
    TAKE(m->p.patch_w, D * m->K);
    TAKE(m->p.patch_b, D);
    for (int b = 0; b < c->depth; b++) {
        nmf_vit_block *k = &m->blocks[b];
        TAKE(k->norm1_w, D);
        TAKE(k->norm1_b, D);
        TAKE(k->qkv_b, 3 * D);
        TAKE(k->proj_b, D);
        TAKE(k->norm2_w, D);
        TAKE(k->norm2_b, D);
        TAKE(k->fc1_b, H);
        TAKE(k->fc2_b, D);
    }
    TAKE(m->p.norm_w, D);
    TAKE(m->p.norm_b, D);
    TAKE(m->p.head_w, m->classes * D);
    TAKE(m->p.head_b, m->classes);
#undef TAKE
    if ((size_t)(p - m->param_buf) != m->param_floats) { /* layout and size formula disagree */
        nmf_vit_free(m);
        return nmf_error(NMF_ERR_INVALID_ARG, "model: parameter layout mismatch (internal)");
    }
    *out = m;
    return NMF_OK;
}

nmf_status nmf_vit_slot(nmf_vit *m, const char *name, float **dense, size_t *count,
                        nmf_linear ***lin) {
    size_t D = m->D, H = m->H;
    *dense = NULL;
    *lin = NULL;
    *count = 0;
    int b = -1, used = 0;
    if (sscanf(name, "blocks.%d.%n", &b, &used) == 1 && used > 0) {
        if (b < 0 || b >= m->config.depth)
            return nmf_error(NMF_ERR_FORMAT, "tensor '%s': block index out of range", name);
        nmf_vit_block *k = &m->blocks[b];
        const char *s = name + used;
        struct { const char *suffix; float *ptr; size_t n; nmf_linear **lin; } map[] = {
            {"norm1.weight", k->norm1_w, D, NULL},  {"norm1.bias", k->norm1_b, D, NULL},
            {"attn.qkv.weight", NULL, 0, &k->qkv},  {"attn.qkv.bias", k->qkv_b, 3 * D, NULL},
            {"attn.proj.weight", NULL, 0, &k->proj}, {"attn.proj.bias", k->proj_b, D, NULL},
            {"norm2.weight", k->norm2_w, D, NULL},  {"norm2.bias", k->norm2_b, D, NULL},
            {"mlp.fc1.weight", NULL, 0, &k->fc1},   {"mlp.fc1.bias", k->fc1_b, H, NULL},
            {"mlp.fc2.weight", NULL, 0, &k->fc2},   {"mlp.fc2.bias", k->fc2_b, D, NULL},
        };
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (!strcmp(s, map[i].suffix)) {
                *dense = map[i].ptr;
                *count = map[i].n;
                *lin = map[i].lin;
                return NMF_OK;
            }
        return nmf_error(NMF_ERR_FORMAT, "unexpected tensor '%s'", name);
    }
    struct { const char *name; float *ptr; size_t n; } top[] = {
        {"cls_token", m->p.cls_token, D},
        {"pos_embed", m->p.pos_embed, m->T * D},
        {"patch_embed.proj.weight", m->p.patch_w, D * m->K},
        {"patch_embed.proj.bias", m->p.patch_b, D},
        {"norm.weight", m->p.norm_w, D},
        {"norm.bias", m->p.norm_b, D},
        {"head.weight", m->p.head_w, m->classes * D},
        {"head.bias", m->p.head_b, m->classes},
    };
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (!strcmp(name, top[i].name)) {
            *dense = top[i].ptr;
            *count = top[i].n;
            return NMF_OK;
        }
    return nmf_error(NMF_ERR_FORMAT, "unexpected tensor '%s'", name);
}

/* Every slot of the spec list must end up filled: the spec list is the contract. */
static nmf_status for_each_spec(nmf_vit *m, nmf_status (*fill)(nmf_vit *, const nmf_tensor_spec *,
                                                               float *, size_t, nmf_linear **,
                                                               void *),
                                void *ctx) {
    nmf_tensor_spec *specs = NULL;
    size_t count = 0;
    nmf_status st = nmf_vit_tensor_specs(&m->config, &specs, &count);
    for (size_t i = 0; st == NMF_OK && i < count; i++) {
        float *dense;
        size_t n;
        nmf_linear **lin;
        st = nmf_vit_slot(m, specs[i].name, &dense, &n, &lin);
        if (st) break;
        size_t numel = 1;
        for (int d = 0; d < specs[i].ndim; d++) numel *= (size_t)specs[i].shape[d];
        if ((lin == NULL) == (specs[i].prunable != 0) || (dense && numel != n)) {
            st = nmf_error(NMF_ERR_INVALID_ARG, "model: slot of '%s' disagrees with its spec",
                           specs[i].name);
            break;
        }
        st = fill(m, &specs[i], dense, n, lin, ctx);
    }
    free(specs);
    return st;
}

static nmf_status fill_from_tensors(nmf_vit *m, const nmf_tensor_spec *spec, float *dense,
                                    size_t n, nmf_linear **lin, void *ctx) {
    (void)m;
    (void)n;
    const nmf_tensor *t = nmf_tensors_find((const nmf_tensor_set *)ctx, spec->name);
    if (!t) return nmf_error(NMF_ERR_NOT_FOUND, "tensor '%s' missing", spec->name);
    nmf_status st = NMF_OK;
    if (dense) {
        st = nmf_tensor_dense(t, dense);
        for (size_t i = 0; st == NMF_OK && i < n; i++)
            if (!isfinite(dense[i]))
                st = nmf_error(NMF_ERR_NUMERIC, "tensor '%s': non-finite value at %zu", spec->name, i);
        return st;
    }
    if (t->nm) {
        st = nmf_nm_validate(t->nm);
        size_t kept = t->nm->rows * t->nm->groups * (size_t)t->nm->pattern.n;
        for (size_t i = 0; st == NMF_OK && i < kept; i++)
            if (!isfinite(t->nm->values[i]))
                st = nmf_error(NMF_ERR_NUMERIC, "tensor '%s': non-finite kept value %zu", spec->name, i);
        if (st == NMF_OK) st = nmf_linear_create_nm(lin, t->nm);
    } else if (t->data) {
        for (size_t i = 0; i < t->numel; i++)
            if (!isfinite(t->data[i]))
                return nmf_error(NMF_ERR_NUMERIC, "tensor '%s': non-finite value at %zu", spec->name, i);
        st = nmf_linear_create_dense(lin, t->data, (size_t)spec->shape[0], (size_t)spec->shape[1]);
    } else {
        st = nmf_error(NMF_ERR_FORMAT, "tensor '%s' holds no data", spec->name);
    }
    if (st && nmf_last_error()[0] == '\0') st = nmf_error(st, "linear '%s'", spec->name);
    return st;
}

nmf_status nmf_vit_create(nmf_vit **out, const nmf_vit_config *c, const nmf_tensor_set *tensors) {
    if (!out || !c || !tensors) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_vit_create: NULL argument");
    *out = NULL;
    nmf_status st = nmf_vit_check_tensors(c, tensors);
    if (st) return st;
    nmf_vit *m;
    st = nmf_vit_alloc(&m, c);
    if (st) return st;
    st = for_each_spec(m, fill_from_tensors, (void *)tensors);
    if (st) {
        nmf_vit_free(m);
        return st;
    }
    *out = m;
    return NMF_OK;
}

/* ---- random initialisation (shape library) ---- */

typedef struct {
    uint64_t state;
    nmf_pattern pattern;
} random_ctx;

/* N(0, std^2) truncated at 2 std (core/rng.h) */
static void randn(float *x, size_t n, float std, uint64_t *s) {
    for (size_t i = 0; i < n; i++) x[i] = std * nmf_rng_trunc_normal(s);
}

static nmf_status fill_random(nmf_vit *m, const nmf_tensor_spec *spec, float *dense, size_t n,
                              nmf_linear **lin, void *vctx) {
    (void)m;
    random_ctx *ctx = vctx;
    if (dense) {
        int is_norm_w = strstr(spec->name, "norm") && strstr(spec->name, ".weight");
        if (is_norm_w)
            for (size_t i = 0; i < n; i++) dense[i] = 1.0f;
        else if (strstr(spec->name, ".bias"))
            for (size_t i = 0; i < n; i++) dense[i] = 0.0f;
        else
            randn(dense, n, 0.02f, &ctx->state);
        return NMF_OK;
    }
    size_t rows = (size_t)spec->shape[0], cols = (size_t)spec->shape[1];
    float *w = malloc(rows * cols * sizeof(float)); /* one weight at a time: peak stays low */
    if (!w) return nmf_error(NMF_ERR_NOMEM, "random weight '%s'", spec->name);
    randn(w, rows * cols, 0.02f, &ctx->state);
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

nmf_status nmf_vit_create_random(nmf_vit **out, const nmf_vit_config *c, nmf_pattern pattern,
                                 uint64_t seed) {
    if (!out || !c) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_vit_create_random: NULL argument");
    *out = NULL;
    if (!(pattern.n == 0 && pattern.m == 0) && !nmf_pattern_valid(pattern))
        return nmf_error(NMF_ERR_INVALID_ARG, "pattern %d:%d invalid", pattern.n, pattern.m);
    nmf_vit *m;
    nmf_status st = nmf_vit_alloc(&m, c);
    if (st) return st;
    random_ctx ctx = {.state = seed, .pattern = pattern};
    st = for_each_spec(m, fill_random, &ctx);
    if (st) {
        nmf_vit_free(m);
        return st;
    }
    *out = m;
    return NMF_OK;
}

void nmf_vit_free(nmf_vit *m) {
    if (!m) return;
    if (m->blocks)
        for (int b = 0; b < m->config.depth; b++) {
            nmf_linear_free(m->blocks[b].qkv);
            nmf_linear_free(m->blocks[b].proj);
            nmf_linear_free(m->blocks[b].fc1);
            nmf_linear_free(m->blocks[b].fc2);
        }
    free(m->blocks);
    nmf_free(m->param_buf);
    nmf_free(m->arena.storage);
    free(m);
}

const nmf_vit_config *nmf_vit_get_config(const nmf_vit *m) { return &m->config; }

size_t nmf_vit_weight_bytes(const nmf_vit *m) {
    size_t bytes = m->param_floats * sizeof(float);
    for (int b = 0; b < m->config.depth; b++) {
        const nmf_vit_block *k = &m->blocks[b];
        bytes += nmf_linear_weight_bytes(k->qkv) + nmf_linear_weight_bytes(k->proj) +
                 nmf_linear_weight_bytes(k->fc1) + nmf_linear_weight_bytes(k->fc2);
    }
    return bytes;
}

size_t nmf_vit_arena_bytes(const nmf_vit *m) { return m->arena.floats * sizeof(float); }
