/* Lowering a ViT to the accelerator's list of operations.
 *
 *   patch_embed (dense)                                   image -> x0  (+ cls, pos folded in)
 *   per block i:
 *     blocks.i.norm1      vector LayerNorm               x -> ln1
 *     blocks.i.attn.qkv   sparse (N:M) or dense           ln1 -> qkv
 *     blocks.i.attn.qk    dense x dense, per head         Q K^T -> scores (score buffer only)
 *     blocks.i.attn.softmax softmax unit, per head        scores -> P (score buffer only)
 *     blocks.i.attn.av    dense x dense, per head         P V -> attn
 *     blocks.i.attn.proj  sparse                          attn -> proj
 *     blocks.i.add1       vector add                      x + proj -> x1
 *     blocks.i.norm2      vector LayerNorm                x1 -> ln2
 *     blocks.i.mlp.fc1    sparse                          ln2 -> fc1
 *     blocks.i.mlp.gelu   vector GELU                     fc1 -> gelu
 *     blocks.i.mlp.fc2    sparse                          gelu -> fc2
 *     blocks.i.add2       vector add                      x1 + fc2 -> x (next block)
 *   norm (vector, class token only), head (dense, class token only)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/sta.h"
#include "sta/sta_internal.h"

static const char *const kind_names[] = {"sparse", "dense", "softmax", "vector"};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == NMF_STA_OP_KIND_COUNT, "kind names");
const char *nmf_sta_op_kind_name(nmf_sta_op_kind k) {
    return (unsigned)k < NMF_STA_OP_KIND_COUNT ? kind_names[k] : "?";
}

typedef struct {
    nmf_sta_schedule *s;
    size_t op_cap, t_cap;
} builder;

static int add_tensor(builder *b, const char *name, int64_t elems) {
    nmf_sta_schedule *s = b->s;
    if (s->tensor_count == b->t_cap) {
        size_t cap = b->t_cap ? b->t_cap * 2 : 64;
        nmf_sta_tensor *t = realloc(s->tensors, cap * sizeof *t);
        if (!t) return -1;
        s->tensors = t;
        b->t_cap = cap;
    }
    nmf_sta_tensor *t = &s->tensors[s->tensor_count];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->elems = elems;
    return (int)s->tensor_count++;
}

static nmf_sta_op *add_op(builder *b, const char *name, nmf_sta_op_kind kind, int block) {
    nmf_sta_schedule *s = b->s;
    if (s->op_count == b->op_cap) {
        size_t cap = b->op_cap ? b->op_cap * 2 : 64;
        nmf_sta_op *o = realloc(s->ops, cap * sizeof *o);
        if (!o) return NULL;
        s->ops = o;
        b->op_cap = cap;
    }
    nmf_sta_op *o = &s->ops[s->op_count++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->kind = kind;
    o->block = block;
    o->batch = 1;
    o->in[0] = o->in[1] = -1;
    o->out = -1;
    o->attn_group = -1;
    return o;
}

/* A linear y[T][out] = x[T][in] W^T: sparse when the weight is N:M (real nm tensor, or synthetic
 * pattern), dense otherwise. */
static nmf_status add_linear(builder *b, const char *name, int block, int64_t rows, int64_t out,
                             int64_t in, nmf_pattern synth, const nmf_tensor_set *w,
                             const char *wname, int x, int y) {
    const nmf_nm_matrix *nm = NULL;
    if (w) {
        nmf_tensor *t = nmf_tensors_find(w, wname);
        if (!t) return nmf_error(NMF_ERR_NOT_FOUND, "sta schedule: tensor %s missing", wname);
        if (t->nm) {
            nm = t->nm;
            nmf_status st = nmf_nm_validate(nm); /* positions index the multiplexers */
            if (st) return st;
            if ((int64_t)nm->rows != out || (int64_t)nm->cols != in)
                return nmf_error(NMF_ERR_SHAPE, "sta schedule: %s is [%zu,%zu], expected [%lld,%lld]",
                                 wname, nm->rows, nm->cols, (long long)out, (long long)in);
        }
        synth = nm ? nm->pattern : (nmf_pattern){0, 0};
    }
    int sparse = synth.n > 0;
    nmf_sta_op *o = add_op(b, name, sparse ? NMF_STA_OP_SPARSE : NMF_STA_OP_DENSE, block);
    if (!o) return nmf_error(NMF_ERR_NOMEM, "sta schedule: out of memory");
    o->rows = rows;
    o->cols = out;
    o->k = in;
    o->pattern = synth;
    o->weights = nm;
    o->weight_from_dram = 1;
    o->in[0] = x;
    o->out = y;
    return NMF_OK;
}

static nmf_status add_vector(builder *b, const char *name, int block, nmf_sta_vec_op vec,
                             int64_t rows, int64_t width, int in0, int in1, int out) {
    nmf_sta_op *o = add_op(b, name, NMF_STA_OP_VECTOR, block);
    if (!o) return nmf_error(NMF_ERR_NOMEM, "sta schedule: out of memory");
    o->vec = vec;
    o->rows = rows;
    o->k = width;
    o->in[0] = in0;
    o->in[1] = in1;
    o->out = out;
    return NMF_OK;
}

static nmf_status build(nmf_sta_schedule *s, const nmf_vit_config *vit, const nmf_tensor_set *w,
                        nmf_pattern synth, int tokens) {
    memset(s, 0, sizeof *s);
    nmf_status st = nmf_vit_config_validate(vit);
    if (st) return st;
    s->vit = *vit;
    int T = tokens > 0 ? tokens : nmf_vit_tokens(vit);
    if (T < 2 || T > 65536)
        return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: tokens %d out of range [2, 65536]", T);
    s->tokens = T;
    s->seed = 0x5eed5eedULL;
    builder b = {s, 0, 0};
    const int64_t D = vit->dim, H = nmf_vit_hidden(vit), heads = vit->heads, dh = D / heads;
    const int64_t pk = (int64_t)vit->in_chans * vit->patch * vit->patch;
    char name[64], wname[96];
#define TRY(x)                       \
    do {                             \
        if ((st = (x))) goto fail;   \
    } while (0)
#define TENSOR(var, nm, elems)                                                          \
    do {                                                                                \
        if ((var = add_tensor(&b, nm, elems)) < 0) {                                    \
            st = nmf_error(NMF_ERR_NOMEM, "sta schedule: out of memory");               \
            goto fail;                                                                  \
        }                                                                               \
    } while (0)
    int image, x;
    TENSOR(image, "image", (T - 1) * pk);
    TENSOR(x, "x0", T * D);
    TRY(add_linear(&b, "patch_embed", -1, T - 1, D, pk, (nmf_pattern){0, 0}, NULL, NULL, image, x));
    s->pattern = synth;
    for (int i = 0; i < vit->depth; i++) {
        int ln1, qkv, attn, proj, x1, ln2, fc1, gelu, fc2, x2;
#define T_(var, suffix, elems)                               \
        snprintf(name, sizeof name, "b%d.%s", i, suffix);    \
        TENSOR(var, name, elems)
        T_(ln1, "ln1", T * D);
        T_(qkv, "qkv", T * 3 * D);
        T_(attn, "attn", T * D);
        T_(proj, "proj", T * D);
        T_(x1, "x1", T * D);
        T_(ln2, "ln2", T * D);
        T_(fc1, "fc1", T * H);
        T_(gelu, "gelu", T * H);
        T_(fc2, "fc2", T * D);
        T_(x2, "x2", T * D);
#undef T_
        snprintf(name, sizeof name, "blocks.%d.norm1", i);
        TRY(add_vector(&b, name, i, NMF_STA_VEC_LAYERNORM, T, D, x, -1, ln1));
        snprintf(name, sizeof name, "blocks.%d.attn.qkv", i);
        snprintf(wname, sizeof wname, "%s.weight", name);
        TRY(add_linear(&b, name, i, T, 3 * D, D, synth, w, wname, ln1, qkv));
        nmf_sta_op *o;
        snprintf(name, sizeof name, "blocks.%d.attn.qk", i);
        if (!(o = add_op(&b, name, NMF_STA_OP_DENSE, i))) goto nomem;
        o->rows = T, o->cols = T, o->k = dh, o->batch = (int)heads;
        o->in[0] = qkv, o->in[1] = qkv, o->attn_group = i;
        snprintf(name, sizeof name, "blocks.%d.attn.softmax", i);
        if (!(o = add_op(&b, name, NMF_STA_OP_SOFTMAX, i))) goto nomem;
        o->rows = T, o->k = T, o->batch = (int)heads, o->attn_group = i;
        snprintf(name, sizeof name, "blocks.%d.attn.av", i);
        if (!(o = add_op(&b, name, NMF_STA_OP_DENSE, i))) goto nomem;
        o->rows = T, o->cols = dh, o->k = T, o->batch = (int)heads;
        o->in[1] = qkv, o->out = attn, o->attn_group = i;
        snprintf(name, sizeof name, "blocks.%d.attn.proj", i);
        snprintf(wname, sizeof wname, "%s.weight", name);
        TRY(add_linear(&b, name, i, T, D, D, synth, w, wname, attn, proj));
        snprintf(name, sizeof name, "blocks.%d.add1", i);
        TRY(add_vector(&b, name, i, NMF_STA_VEC_ADD, T, D, x, proj, x1));
        snprintf(name, sizeof name, "blocks.%d.norm2", i);
        TRY(add_vector(&b, name, i, NMF_STA_VEC_LAYERNORM, T, D, x1, -1, ln2));
        snprintf(name, sizeof name, "blocks.%d.mlp.fc1", i);
        snprintf(wname, sizeof wname, "%s.weight", name);
        TRY(add_linear(&b, name, i, T, H, D, synth, w, wname, ln2, fc1));
        snprintf(name, sizeof name, "blocks.%d.mlp.gelu", i);
        TRY(add_vector(&b, name, i, NMF_STA_VEC_GELU, T, H, fc1, -1, gelu));
        snprintf(name, sizeof name, "blocks.%d.mlp.fc2", i);
        snprintf(wname, sizeof wname, "%s.weight", name);
        TRY(add_linear(&b, name, i, T, D, H, synth, w, wname, gelu, fc2));
        snprintf(name, sizeof name, "blocks.%d.add2", i);
        TRY(add_vector(&b, name, i, NMF_STA_VEC_ADD, T, D, x1, fc2, x2));
        x = x2;
    }
    int nrm, logits;
    TENSOR(nrm, "norm", D);
    TENSOR(logits, "logits", vit->num_classes);
    TRY(add_vector(&b, "norm", -1, NMF_STA_VEC_LAYERNORM, 1, D, x, -1, nrm));
    TRY(add_linear(&b, "head", -1, 1, vit->num_classes, D, (nmf_pattern){0, 0}, NULL, NULL, nrm,
                   logits));
    /* With real weights, report the pattern when all block linears share one. */
    if (w) {
        nmf_pattern common = {0, 0};
        int mixed = 0, first = 1;
        for (size_t i = 0; i < s->op_count; i++) {
            const nmf_sta_op *op = &s->ops[i];
            if (!op->weight_from_dram || op->block < 0) continue;
            if (first) common = op->pattern, first = 0;
            else if (op->pattern.n != common.n || op->pattern.m != common.m) mixed = 1;
        }
        s->pattern = mixed ? (nmf_pattern){0, 0} : common;
    }
    return NMF_OK;
nomem:
    st = nmf_error(NMF_ERR_NOMEM, "sta schedule: out of memory");
fail:
    nmf_sta_schedule_free(s);
    return st;
#undef TRY
#undef TENSOR
}

nmf_status nmf_sta_schedule_model(nmf_sta_schedule *s, const nmf_vit_config *vit,
                                  const nmf_tensor_set *weights, int tokens) {
    if (!s || !vit || !weights) return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: NULL");
    return build(s, vit, weights, (nmf_pattern){0, 0}, tokens);
}

nmf_status nmf_sta_schedule_synthetic(nmf_sta_schedule *s, const nmf_vit_config *vit,
                                      nmf_pattern p, int tokens) {
    if (!s || !vit) return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: NULL");
    if (p.n != 0 && !nmf_pattern_valid(p))
        return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: invalid pattern %d:%d", p.n, p.m);
    return build(s, vit, NULL, p, tokens);
}

void nmf_sta_schedule_free(nmf_sta_schedule *s) {
    if (!s) return;
    free(s->ops);
    free(s->tensors);
    memset(s, 0, sizeof *s);
}
