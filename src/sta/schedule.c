/* Lowering a model's op list (nmformer/desc.h: nmf_model_stem/block/tail_ops, one list per family)
 * to the accelerator's list of operations. For a ViT that gives:
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
 *
 * The token families lower the same way, op by op in their HF names ("h.3.attn.c_attn",
 * "layers.3.mlp.gate_proj"): linears on the engine (N:M-eligible ones sparse), attention as
 * qk/softmax/av groups (GQA: query head h reads kv head h / (heads / kv_heads)), and every other
 * op on the vector unit (LayerNorm, RMSNorm, RoPE, activations, SwiGLU's product, the embedding
 * gather; docs/STA.md, "token families"). A decoder's prefill writes each block's keys and values
 * to the cache in DRAM; its decode step runs one token and reads T cached positions back.
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
    o->model_op = -1;
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

static const char *const vec_names[] = {"layernorm", "gelu", "add", "rmsnorm", "act", "mul", "rope",
                                        "embed"};
_Static_assert(sizeof vec_names / sizeof vec_names[0] == NMF_STA_VEC_COUNT, "vector op names");
const char *nmf_sta_vec_op_name(nmf_sta_vec_op v) {
    return (unsigned)v < NMF_STA_VEC_COUNT ? vec_names[v] : "?";
}
const char *nmf_sta_phase_name(nmf_sta_phase p) {
    return p == NMF_STA_PREFILL ? "prefill" : p == NMF_STA_DECODE ? "decode" : "?";
}

/* State of the lowering: the output tensor and width of every op of the current block (by op
 * id), and the block's input. */
typedef struct {
    builder b;
    const nmf_model_desc *d;
    const nmf_model_config *c;
    const nmf_tensor_set *w;
    nmf_pattern synth;
    int64_t T;       /* rows through the blocks: T (prefill) or 1 (decode) */
    int64_t keys;    /* keys each query attends to: T (prefill) or T + 1 (decode) */
    int token;       /* a token family */
    int decoder;     /* GPT-2, LLaMA: causal, with a key/value cache */
    nmf_sta_phase phase;
    int tensor[NMF_OP_ID_MAX];
    int64_t width[NMF_OP_ID_MAX];
    int block_in;
    int64_t block_in_width;
} lowering;

static int input_of(const lowering *l, int op, int64_t *width) {
    if (op == NMF_OPIN_NONE) return *width = 0, -1;
    if (op == NMF_OPIN_BLOCK) return *width = l->block_in_width, l->block_in;
    *width = l->width[op];
    return l->tensor[op];
}

static const nmf_param *weight_of(const lowering *l, const nmf_op_row *r, int block) {
    return nmf_model_desc_at(l->d, r->weight, l->d->kinds[r->weight].per_block ? block : -1);
}

/* The output width of a row, from its weight or its input. */
static int64_t out_width(const lowering *l, const nmf_op_row *r, int block) {
    int64_t w0;
    input_of(l, r->in0, &w0);
    switch (r->kind) {
    case NMF_OPK_EMBED:
    case NMF_OPK_LINEAR: return (int64_t)weight_of(l, r, block)->rows;
    case NMF_OPK_EMBED_TOKENS: return (int64_t)weight_of(l, r, block)->cols; /* (vocab, D) */
    case NMF_OPK_ATTENTION: return r->in1 == NMF_OPIN_NONE ? w0 / 3 : w0; /* fused (3, heads, hd) */
    default: return w0;
    }
}

/* Rows an op runs on: the class token / first position (cls_only), the last position (a
 * decoder's tail: what generation reads), or every row. */
static int64_t rows_of(const lowering *l, const nmf_op_row *r, int block) {
    if (r->cls_only) return 1;
    if (block < 0 && l->decoder && r->kind != NMF_OPK_EMBED_TOKENS) return 1;
    return l->T;
}

static nmf_status nomem(void) { return nmf_error(NMF_ERR_NOMEM, "sta schedule: out of memory"); }

/* Q K^T (score buffer only), softmax unit, P V: head-interleaved as one group. q: (rows, heads*hd);
 * k, v: (keys, kv_heads*hd) tensors. */
static nmf_status add_attention(lowering *l, const char *name, int block, int64_t rows, int64_t width,
                                int q, int k, int v, int out) {
    const nmf_model_config *c = l->c;
    const int64_t heads = l->token ? c->hf.num_attention_heads : c->heads, dh = width / heads;
    nmf_sta_op *o;
    char sub[80], base[64];
    snprintf(base, sizeof base, "%s", name);
    char *dot = strrchr(base, '.'); /* "blocks.3.attn.av" -> "blocks.3.attn" */
    if (!l->token && dot) *dot = '\0';
    snprintf(sub, sizeof sub, "%s.qk", base);
    if (!(o = add_op(&l->b, sub, NMF_STA_OP_DENSE, block))) return nomem();
    o->rows = rows, o->cols = l->keys, o->k = dh, o->batch = (int)heads;
    o->in[0] = q, o->in[1] = k, o->attn_group = block;
    snprintf(sub, sizeof sub, "%s.softmax", base);
    if (!(o = add_op(&l->b, sub, NMF_STA_OP_SOFTMAX, block))) return nomem();
    o->rows = rows, o->k = l->keys, o->batch = (int)heads, o->attn_group = block;
    if (l->token) snprintf(sub, sizeof sub, "%s.av", base);
    else snprintf(sub, sizeof sub, "%s", name);
    if (!(o = add_op(&l->b, sub, NMF_STA_OP_DENSE, block))) return nomem();
    o->rows = rows, o->cols = dh, o->k = l->keys, o->batch = (int)heads;
    o->in[0] = -1, o->in[1] = v, o->out = out, o->attn_group = block;
    return NMF_OK;
}

/* The cached keys or values of a block in decode: T + 1 positions of kv_heads * hd, in DRAM. */
static int cache_tensor(lowering *l, int block, const char *what, int64_t width) {
    char name[64];
    snprintf(name, sizeof name, "b%d.%s_cache", block, what);
    int t = add_tensor(&l->b, name, l->keys * width);
    if (t >= 0) l->b.s->tensors[t].in_dram = 1;
    return t;
}

/* The vector unit's op for a row kind; -1 for kinds that are not vector ops. */
static int vec_of(nmf_op_kind k) {
    switch (k) {
    case NMF_OPK_NORM: return NMF_STA_VEC_LAYERNORM;
    case NMF_OPK_RMSNORM: return NMF_STA_VEC_RMSNORM;
    case NMF_OPK_ADD: return NMF_STA_VEC_ADD;
    case NMF_OPK_GELU: return NMF_STA_VEC_GELU;
    case NMF_OPK_GELU_TANH:
    case NMF_OPK_RELU:
    case NMF_OPK_SILU:
    case NMF_OPK_TANH: return NMF_STA_VEC_ACT;
    case NMF_OPK_MUL: return NMF_STA_VEC_MUL;
    case NMF_OPK_ROPE: return NMF_STA_VEC_ROPE;
    default: return -1;
    }
}

/* ops[first..) lower the model's op `model_op` */
static void tag_ops(nmf_sta_schedule *s, size_t first, int model_op) {
    for (size_t i = first; i < s->op_count; i++) s->ops[i].model_op = model_op;
}

/* Lowers rows[0..n) of block `block` (-1: stem or tail): their output tensors first, then the
 * ops, as the accelerator runs them. */
static nmf_status lower(lowering *l, const nmf_op_row *rows, int n, int block) {
    char name[64], prefix_name[64];
    for (int i = 0; i < n; i++) {
        const nmf_op_row *r = &rows[i];
        l->width[r->op] = out_width(l, r, block);
        if (block >= 0) snprintf(name, sizeof name, "b%d.%s", block, r->out);
        else snprintf(name, sizeof name, "%s", r->out);
        if ((l->tensor[r->op] = add_tensor(&l->b, name, rows_of(l, r, block) * l->width[r->op])) < 0)
            return nomem();
    }
    /* a decoder's prefill writes every block's keys and values to the cache */
    if (block >= 0 && l->decoder && l->phase == NMF_STA_PREFILL)
        for (int i = 0; i < n; i++)
            if (rows[i].kind == NMF_OPK_ATTENTION) {
                const int kv[3] = {rows[i].in0, rows[i].in1, rows[i].in2};
                for (int j = rows[i].in1 == NMF_OPIN_NONE ? 0 : 1; j < 3; j++) /* fused: the qkv */
                    if (kv[j] >= 0) l->b.s->tensors[l->tensor[kv[j]]].in_dram = 1;
            }
    for (int i = 0; i < n; i++) {
        const nmf_op_row *r = &rows[i];
        const int64_t T = rows_of(l, r, block), width = l->width[r->op];
        int64_t w0, w1, w2;
        int in0 = input_of(l, r->in0, &w0), in1 = input_of(l, r->in1, &w1), out = l->tensor[r->op];
        int in2 = input_of(l, r->in2, &w2);
        const size_t first_op = l->b.s->op_count; /* the ops of this row: first_op.. */
        nmf_model_op_name(l->c, r, block, prefix_name, sizeof prefix_name);
        snprintf(name, sizeof name, "%s", prefix_name);
        nmf_status st = NMF_OK;
        int vec = vec_of(r->kind);
        if (vec >= 0) {
            st = add_vector(&l->b, name, block, (nmf_sta_vec_op)vec, T, width, in0,
                            r->kind == NMF_OPK_ADD || r->kind == NMF_OPK_MUL ? in1 : -1, out);
            if (st) return st;
            tag_ops(l->b.s, first_op, r->op);
            continue;
        }
        switch (r->kind) {
        case NMF_OPK_EMBED: {
            const nmf_param *pw = nmf_model_desc_at(l->d, r->weight, -1);
            if ((in0 = add_tensor(&l->b, "image", (l->T - 1) * (int64_t)pw->cols)) < 0) return nomem();
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
        case NMF_OPK_EMBED_TOKENS: {
            /* rows gathered from DRAM by token id; the positional rows (and BERT's token-type
             * rows, counted with them) are the second operand. LLaMA has none. */
            int words = add_tensor(&l->b, "embed_rows", T * width), pos = -1;
            if (words < 0) return nomem();
            if (strcmp(l->c->arch, "llama") && (pos = add_tensor(&l->b, "position_rows", T * width)) < 0)
                return nomem();
            st = add_vector(&l->b, name, block, NMF_STA_VEC_EMBED, T, width, words, pos, out);
            break;
        }
        case NMF_OPK_LINEAR: {
            const nmf_param *pw = weight_of(l, r, block);
            int nm = nmf_param_kind_of(l->d, pw)->nm; /* only N:M-eligible linears may be sparse */
            st = add_linear(&l->b, name, block, T, width, (int64_t)pw->cols,
                            nm ? l->synth : (nmf_pattern){0, 0}, nm ? l->w : NULL, pw->name, in0, out);
            break;
        }
        case NMF_OPK_ATTENTION: {
            int k = in0, v = in0; /* ViT / GPT-2: one fused qkv tensor */
            if (r->in1 != NMF_OPIN_NONE) k = in1, v = in2;
            if (l->decoder && l->phase == NMF_STA_DECODE) {
                const int64_t kv_width = (int64_t)l->c->hf.num_key_value_heads * l->c->hf.head_dim;
                if ((k = cache_tensor(l, block, "k", kv_width)) < 0 ||
                    (v = cache_tensor(l, block, "v", kv_width)) < 0)
                    return nomem();
            }
            st = add_attention(l, name, block, T, width, in0, k, v, out);
            break;
        }
        default: return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: op kind %d (internal)", r->kind);
        }
        if (st) return st;
        tag_ops(l->b.s, first_op, r->op);
    }
    return NMF_OK;
}

static nmf_status build(nmf_sta_schedule *s, const nmf_model_config *c, const nmf_tensor_set *w,
                        nmf_pattern synth, int tokens, nmf_sta_phase phase) {
    memset(s, 0, sizeof *s);
    if ((unsigned)phase >= NMF_STA_PHASE_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: phase %d", (int)phase);
    nmf_model_desc d;
    nmf_status st = nmf_model_describe(&d, c);
    if (st) return st;
    const int token = nmf_model_is_token(c);
    const int decoder = token && c->hf.model_type != NMF_HF_BERT;
    int T = tokens > 0 ? tokens : token ? 128 : nmf_vit_tokens(c);
    if (token && tokens <= 0 && T > c->hf.max_position_embeddings - (phase == NMF_STA_DECODE))
        T = c->hf.max_position_embeddings - (phase == NMF_STA_DECODE);
    const char *bad = NULL;
    if (phase == NMF_STA_DECODE && !decoder) bad = "the decode phase is for decoders (GPT-2, LLaMA)";
    else if (T < (token ? 1 : 2) || T > 65536) bad = "tokens out of range";
    else if (token && (int64_t)T + (phase == NMF_STA_DECODE) > c->hf.max_position_embeddings)
        bad = "more positions than max_position_embeddings";
    if (bad) {
        nmf_model_desc_free(&d);
        return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: %s (%s, %d tokens, %s)", bad, c->arch, T,
                         nmf_sta_phase_name(phase));
    }
    s->vit = *c;
    s->phase = phase;
    s->tokens = T;
    s->seed = 0x5eed5eedULL;
    s->pattern = synth;
    const int64_t rows = phase == NMF_STA_DECODE ? 1 : T, keys = phase == NMF_STA_DECODE ? T + 1 : T;
    lowering l = {{s, 0, 0}, &d, c, w, synth, rows, keys, token, decoder, phase, {0}, {0}, -1, 0};
    int n;
    const nmf_op_row *ops = nmf_model_stem_ops(c, &n);
    if (!ops) st = nmf_error(NMF_ERR_UNSUPPORTED, "sta schedule: no op list for arch '%s'", c->arch);
    if (!st) st = lower(&l, ops, n, -1);
    if (!st) l.block_in = l.tensor[ops[n - 1].op], l.block_in_width = l.width[ops[n - 1].op];
    ops = st ? NULL : nmf_model_block_ops(c, &n);
    for (int i = 0; ops && i < nmf_model_layers(c) && !st; i++) {
        st = lower(&l, ops, n, i);
        l.block_in = l.tensor[ops[n - 1].op], l.block_in_width = l.width[ops[n - 1].op];
    }
    if (!st) {
        ops = nmf_model_tail_ops(c, &n);
        if (n > 0) st = lower(&l, ops, n, -1);
    }
    nmf_model_desc_free(&d);
    if (st) {
        nmf_sta_schedule_free(s);
        return st;
    }
    /* the model's output crosses DRAM: the last op's tensor is the one a host reads */
    if (s->op_count && s->ops[s->op_count - 1].out >= 0) {
        nmf_sta_tensor *o = &s->tensors[s->ops[s->op_count - 1].out];
        if (strcmp(o->name, "logits")) o->in_dram = 1;
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
    return build(s, vit, weights, (nmf_pattern){0, 0}, tokens, NMF_STA_PREFILL);
}

nmf_status nmf_sta_schedule_synthetic(nmf_sta_schedule *s, const nmf_model_config *vit,
                                      nmf_pattern p, int tokens) {
    return nmf_sta_schedule_build(s, vit, NULL, p, tokens, NMF_STA_PREFILL);
}

nmf_status nmf_sta_schedule_build(nmf_sta_schedule *s, const nmf_model_config *c,
                                  const nmf_tensor_set *weights, nmf_pattern p, int tokens,
                                  nmf_sta_phase phase) {
    if (!s || !c) return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: NULL");
    if (weights) p = (nmf_pattern){0, 0};
    else if (p.n != 0 && !nmf_pattern_valid(p))
        return nmf_error(NMF_ERR_INVALID_ARG, "sta schedule: invalid pattern %d:%d", p.n, p.m);
    return build(s, c, weights, p, tokens, phase);
}

void nmf_sta_schedule_free(nmf_sta_schedule *s) {
    if (!s) return;
    free(s->ops);
    free(s->tensors);
    memset(s, 0, sizeof *s);
}
