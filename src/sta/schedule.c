/* Lowering the model description's op list (nmformer/desc.h: nmf_vit_stem/block/tail_ops) to the
 * accelerator's list of operations. For a ViT that gives:
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

#include "nmformer/desc.h"
#include "nmformer/model.h"
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

/* State of the lowering: the output tensor and width of every op of the current block (by op
 * id), and the block's input. */
typedef struct {
    builder b;
    const nmf_model_desc *d;
    const nmf_tensor_set *w;
    nmf_pattern synth;
    int64_t T;
    int tensor[NMF_OP_COUNT];
    int64_t width[NMF_OP_COUNT];
    int block_in;
    int64_t block_in_width;
} lowering;

static int input_of(const lowering *l, int op, int64_t *width) {
    if (op == NMF_OPIN_NONE) return *width = 0, -1;
    if (op == NMF_OPIN_BLOCK) return *width = l->block_in_width, l->block_in;
    *width = l->width[op];
    return l->tensor[op];
}

/* The output width of a row, from its weight or its input. */
static int64_t out_width(const lowering *l, const nmf_op_row *r, int block) {
    int64_t w0;
    input_of(l, r->in0, &w0);
    switch (r->kind) {
    case NMF_OPK_EMBED:
    case NMF_OPK_LINEAR:
        return (int64_t)nmf_model_desc_at(l->d, r->weight, nmf_vit_param_is_block(r->weight) ? block : -1)->rows;
    case NMF_OPK_ATTENTION: return w0 / 3; /* (3, heads, hd) -> (heads, hd) */
    default: return w0;
    }
}

/* Lowers rows[0..n) of block `block` (-1: stem or tail): their output tensors first, then the
 * ops, as the accelerator runs them. */
static nmf_status lower(lowering *l, const nmf_op_row *rows, int n, int block) {
    const nmf_model_config *v = &l->d->config;
    char name[64];
    for (int i = 0; i < n; i++) {
        const nmf_op_row *r = &rows[i];
        int64_t rows_n = r->cls_only ? 1 : l->T; /* the embedding's output includes the cls token */
        l->width[r->op] = out_width(l, r, block);
        if (block >= 0) snprintf(name, sizeof name, "b%d.%s", block, r->out);
        else snprintf(name, sizeof name, "%s", r->out);
        if ((l->tensor[r->op] = add_tensor(&l->b, name, rows_n * l->width[r->op])) < 0)
            return nmf_error(NMF_ERR_NOMEM, "sta schedule: out of memory");
    }
    for (int i = 0; i < n; i++) {
        const nmf_op_row *r = &rows[i];
        const int64_t T = r->cls_only ? 1 : l->T, width = l->width[r->op];
        int64_t w0, w1;
        int in0 = input_of(l, r->in0, &w0), in1 = input_of(l, r->in1, &w1), out = l->tensor[r->op];
        if (block >= 0) snprintf(name, sizeof name, "blocks.%d.%s", block, r->name);
        else snprintf(name, sizeof name, "%s", r->name);
        nmf_status st = NMF_OK;
        switch (r->kind) {
        case NMF_OPK_EMBED: {
            const nmf_param *pw = nmf_model_desc_at(l->d, r->weight, -1);
            if ((in0 = add_tensor(&l->b, "image", (l->T - 1) * (int64_t)pw->cols)) < 0)
                return nmf_error(NMF_ERR_NOMEM, "sta schedule: out of memory");
            /* the image tensor comes first: swap it in front of x0 */
            nmf_sta_tensor tmp = l->b.s->tensors[in0];
            l->b.s->tensors[in0] = l->b.s->tensors[out];
            l->b.s->tensors[out] = tmp;
            int t = in0;
            in0 = out, out = t;
            l->tensor[r->op] = out;
            st = add_linear(&l->b, name, block, l->T - 1, width, (int64_t)pw->cols, (nmf_pattern){0, 0},
                            NULL, NULL, in0, out);
            break;
        }
        case NMF_OPK_LINEAR: {
            const nmf_param *pw = nmf_model_desc_at(l->d, r->weight, block);
            int nm = nmf_param_kind_of(l->d, pw)->nm; /* only N:M-eligible linears may be sparse */
            st = add_linear(&l->b, name, block, T, width, (int64_t)pw->cols,
                            nm ? l->synth : (nmf_pattern){0, 0}, nm ? l->w : NULL, pw->name, in0, out);
            break;
        }
        case NMF_OPK_NORM:
            st = add_vector(&l->b, name, block, NMF_STA_VEC_LAYERNORM, T, width, in0, -1, out);
            break;
        case NMF_OPK_ADD: st = add_vector(&l->b, name, block, NMF_STA_VEC_ADD, T, width, in0, in1, out); break;
        case NMF_OPK_GELU: st = add_vector(&l->b, name, block, NMF_STA_VEC_GELU, T, width, in0, -1, out); break;
        case NMF_OPK_ATTENTION: {
            /* Q K^T (score buffer only), softmax unit, P V: head-interleaved as one group */
            const int64_t heads = v->heads, dh = width / heads;
            nmf_sta_op *o;
            char sub[64];
            snprintf(sub, sizeof sub, "blocks.%d.attn.qk", block);
            if (!(o = add_op(&l->b, sub, NMF_STA_OP_DENSE, block))) goto nomem;
            o->rows = T, o->cols = T, o->k = dh, o->batch = (int)heads;
            o->in[0] = in0, o->in[1] = in0, o->attn_group = block;
            snprintf(sub, sizeof sub, "blocks.%d.attn.softmax", block);
            if (!(o = add_op(&l->b, sub, NMF_STA_OP_SOFTMAX, block))) goto nomem;
            o->rows = T, o->k = T, o->batch = (int)heads, o->attn_group = block;
            if (!(o = add_op(&l->b, name, NMF_STA_OP_DENSE, block))) goto nomem;
            o->rows = T, o->cols = dh, o->k = T, o->batch = (int)heads;
            o->in[1] = in0, o->out = out, o->attn_group = block;
            break;
        }
        default: return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: op kind %d (internal)", r->kind);
        }
        if (st) return st;
    }
    return NMF_OK;
nomem:
    return nmf_error(NMF_ERR_NOMEM, "sta schedule: out of memory");
}

static nmf_status build(nmf_sta_schedule *s, const nmf_model_config *vit, const nmf_tensor_set *w,
                        nmf_pattern synth, int tokens) {
    memset(s, 0, sizeof *s);
    nmf_model_desc d;
    nmf_status st = nmf_model_describe(&d, vit);
    if (st) return st;
    s->vit = *vit;
    int T = tokens > 0 ? tokens : nmf_vit_tokens(vit);
    if (T < 2 || T > 65536) {
        nmf_model_desc_free(&d);
        return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: tokens %d out of range [2, 65536]", T);
    }
    s->tokens = T;
    s->seed = 0x5eed5eedULL;
    s->pattern = synth;
    lowering l = {{s, 0, 0}, &d, w, synth, T, {0}, {0}, -1, 0};
    int n;
    const nmf_op_row *rows = nmf_vit_stem_ops(&n);
    st = lower(&l, rows, n, -1);
    l.block_in = l.tensor[rows[n - 1].op], l.block_in_width = l.width[rows[n - 1].op];
    rows = nmf_vit_block_ops(&n);
    for (int i = 0; i < vit->depth && !st; i++) {
        st = lower(&l, rows, n, i);
        l.block_in = l.tensor[rows[n - 1].op], l.block_in_width = l.width[rows[n - 1].op];
    }
    if (!st) {
        rows = nmf_vit_tail_ops(&n);
        st = lower(&l, rows, n, -1);
    }
    nmf_model_desc_free(&d);
    if (st) {
        nmf_sta_schedule_free(s);
        return st;
    }
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
}

nmf_status nmf_sta_schedule_model(nmf_sta_schedule *s, const nmf_model_config *vit,
                                  const nmf_tensor_set *weights, int tokens) {
    if (!s || !vit || !weights) return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: NULL");
    return build(s, vit, weights, (nmf_pattern){0, 0}, tokens);
}

nmf_status nmf_sta_schedule_synthetic(nmf_sta_schedule *s, const nmf_model_config *vit,
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
