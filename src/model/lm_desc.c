/* Every family's op list behind one accessor: what the model computes, in order (desc.h). The
 * ViT's lists live in vit_desc.c; the token families' are here, one table per block kind and
 * activation (the activation op's kind follows hidden_act). The rows are what the STA schedule
 * lowers and what nmf_lm_forward_observed emits. */
#include <stdio.h>
#include <string.h>

#include "model/desc_internal.h"
#include "nmformer/model.h" /* nmf_vit_op */

#define NONE NMF_OPIN_NONE
#define BLK NMF_OPIN_BLOCK

/* ---- stems ---- */
static const nmf_op_row bert_stem[] = {
    {NMF_LOP_EMBED, "embeddings", "x0", NMF_OPK_EMBED_TOKENS, NMF_BP_WORD, NONE, NONE, 0, NONE},
    {NMF_LOP_EMBED_NORM, "embeddings.LayerNorm", "x0n", NMF_OPK_NORM, NMF_BP_EMB_LN_W, NMF_LOP_EMBED,
     NONE, 0, NONE},
};
static const nmf_op_row gpt2_stem[] = {
    {NMF_LOP_EMBED, "wte+wpe", "x0", NMF_OPK_EMBED_TOKENS, NMF_GP_WTE, NONE, NONE, 0, NONE},
};
static const nmf_op_row llama_stem[] = {
    {NMF_LOP_EMBED, "embed_tokens", "x0", NMF_OPK_EMBED_TOKENS, NMF_LP_EMBED, NONE, NONE, 0, NONE},
};

/* ---- blocks: ACT is the activation op's kind ---- */
/* BERT, post-LN: x1 = LN(x + proj(attn(q, k, v))), x2 = LN(x1 + fc2(act(fc1(x1)))) */
#define BERT_BLOCK(ACT)                                                                           \
    {NMF_LOP_Q, "attention.self.query", "q", NMF_OPK_LINEAR, NMF_BP_Q_W, BLK, NONE, 0, NONE},     \
    {NMF_LOP_K, "attention.self.key", "k", NMF_OPK_LINEAR, NMF_BP_K_W, BLK, NONE, 0, NONE},       \
    {NMF_LOP_V, "attention.self.value", "v", NMF_OPK_LINEAR, NMF_BP_V_W, BLK, NONE, 0, NONE},     \
    {NMF_LOP_ATTN, "attention.self", "attn", NMF_OPK_ATTENTION, -1, NMF_LOP_Q, NMF_LOP_K, 0,      \
     NMF_LOP_V},                                                                                  \
    {NMF_LOP_PROJ, "attention.output.dense", "proj", NMF_OPK_LINEAR, NMF_BP_AO_W, NMF_LOP_ATTN,   \
     NONE, 0, NONE},                                                                              \
    {NMF_LOP_ADD1, "attention.output.add", "x1a", NMF_OPK_ADD, -1, BLK, NMF_LOP_PROJ, 0, NONE},   \
    {NMF_LOP_NORM1, "attention.output.LayerNorm", "x1", NMF_OPK_NORM, NMF_BP_ALN_W, NMF_LOP_ADD1, \
     NONE, 0, NONE},                                                                              \
    {NMF_LOP_FC1, "intermediate.dense", "fc1", NMF_OPK_LINEAR, NMF_BP_I_W, NMF_LOP_NORM1, NONE, 0,\
     NONE},                                                                                       \
    {NMF_LOP_ACT, "intermediate.act", "act", ACT, -1, NMF_LOP_FC1, NONE, 0, NONE},                \
    {NMF_LOP_FC2, "output.dense", "fc2", NMF_OPK_LINEAR, NMF_BP_O_W, NMF_LOP_ACT, NONE, 0, NONE}, \
    {NMF_LOP_ADD2, "output.add", "x2a", NMF_OPK_ADD, -1, NMF_LOP_NORM1, NMF_LOP_FC2, 0, NONE},    \
    {NMF_LOP_NORM2, "output.LayerNorm", "x2", NMF_OPK_NORM, NMF_BP_OLN_W, NMF_LOP_ADD2, NONE, 0,  \
     NONE}

/* GPT-2, pre-LN: x1 = x + c_proj(attn(c_attn(ln_1(x)))), x2 = x1 + c_proj(act(c_fc(ln_2(x1)))) */
#define GPT2_BLOCK(ACT)                                                                           \
    {NMF_LOP_NORM1, "ln_1", "ln1", NMF_OPK_NORM, NMF_GP_LN1_W, BLK, NONE, 0, NONE},               \
    {NMF_LOP_QKV, "attn.c_attn", "qkv", NMF_OPK_LINEAR, NMF_GP_ATTN_W, NMF_LOP_NORM1, NONE, 0,    \
     NONE},                                                                                       \
    {NMF_LOP_ATTN, "attn", "attn", NMF_OPK_ATTENTION, -1, NMF_LOP_QKV, NONE, 0, NONE},            \
    {NMF_LOP_PROJ, "attn.c_proj", "proj", NMF_OPK_LINEAR, NMF_GP_PROJ_W, NMF_LOP_ATTN, NONE, 0,   \
     NONE},                                                                                       \
    {NMF_LOP_ADD1, "add1", "x1", NMF_OPK_ADD, -1, BLK, NMF_LOP_PROJ, 0, NONE},                    \
    {NMF_LOP_NORM2, "ln_2", "ln2", NMF_OPK_NORM, NMF_GP_LN2_W, NMF_LOP_ADD1, NONE, 0, NONE},      \
    {NMF_LOP_FC1, "mlp.c_fc", "fc1", NMF_OPK_LINEAR, NMF_GP_FC_W, NMF_LOP_NORM2, NONE, 0, NONE},  \
    {NMF_LOP_ACT, "mlp.act", "act", ACT, -1, NMF_LOP_FC1, NONE, 0, NONE},                         \
    {NMF_LOP_FC2, "mlp.c_proj", "fc2", NMF_OPK_LINEAR, NMF_GP_MPROJ_W, NMF_LOP_ACT, NONE, 0,      \
     NONE},                                                                                       \
    {NMF_LOP_ADD2, "add2", "x2", NMF_OPK_ADD, -1, NMF_LOP_ADD1, NMF_LOP_FC2, 0, NONE}

/* LLaMA, pre-RMSNorm, RoPE on q and k, GQA, SwiGLU: x2 = x1 + down(act(gate(h)) * up(h)) */
#define LLAMA_BLOCK(ACT)                                                                          \
    {NMF_LOP_NORM1, "input_layernorm", "ln1", NMF_OPK_RMSNORM, NMF_LP_LN1_W, BLK, NONE, 0, NONE}, \
    {NMF_LOP_Q, "self_attn.q_proj", "q", NMF_OPK_LINEAR, NMF_LP_Q_W, NMF_LOP_NORM1, NONE, 0,      \
     NONE},                                                                                       \
    {NMF_LOP_K, "self_attn.k_proj", "k", NMF_OPK_LINEAR, NMF_LP_K_W, NMF_LOP_NORM1, NONE, 0,      \
     NONE},                                                                                       \
    {NMF_LOP_V, "self_attn.v_proj", "v", NMF_OPK_LINEAR, NMF_LP_V_W, NMF_LOP_NORM1, NONE, 0,      \
     NONE},                                                                                       \
    {NMF_LOP_ROPE_Q, "self_attn.rope_q", "qr", NMF_OPK_ROPE, -1, NMF_LOP_Q, NONE, 0, NONE},       \
    {NMF_LOP_ROPE_K, "self_attn.rope_k", "kr", NMF_OPK_ROPE, -1, NMF_LOP_K, NONE, 0, NONE},       \
    {NMF_LOP_ATTN, "self_attn", "attn", NMF_OPK_ATTENTION, -1, NMF_LOP_ROPE_Q, NMF_LOP_ROPE_K, 0, \
     NMF_LOP_V},                                                                                  \
    {NMF_LOP_PROJ, "self_attn.o_proj", "proj", NMF_OPK_LINEAR, NMF_LP_O_W, NMF_LOP_ATTN, NONE, 0, \
     NONE},                                                                                       \
    {NMF_LOP_ADD1, "add1", "x1", NMF_OPK_ADD, -1, BLK, NMF_LOP_PROJ, 0, NONE},                    \
    {NMF_LOP_NORM2, "post_attention_layernorm", "ln2", NMF_OPK_RMSNORM, NMF_LP_LN2_W,             \
     NMF_LOP_ADD1, NONE, 0, NONE},                                                                \
    {NMF_LOP_FC1, "mlp.gate_proj", "gate", NMF_OPK_LINEAR, NMF_LP_GATE_W, NMF_LOP_NORM2, NONE, 0, \
     NONE},                                                                                       \
    {NMF_LOP_UP, "mlp.up_proj", "up", NMF_OPK_LINEAR, NMF_LP_UP_W, NMF_LOP_NORM2, NONE, 0, NONE}, \
    {NMF_LOP_ACT, "mlp.act", "act", ACT, -1, NMF_LOP_FC1, NONE, 0, NONE},                         \
    {NMF_LOP_MUL, "mlp.mul", "mul", NMF_OPK_MUL, -1, NMF_LOP_ACT, NMF_LOP_UP, 0, NONE},           \
    {NMF_LOP_FC2, "mlp.down_proj", "fc2", NMF_OPK_LINEAR, NMF_LP_DOWN_W, NMF_LOP_MUL, NONE, 0,    \
     NONE},                                                                                       \
    {NMF_LOP_ADD2, "add2", "x2", NMF_OPK_ADD, -1, NMF_LOP_ADD1, NMF_LOP_FC2, 0, NONE}

/* one table per (family, hidden_act), in nmf_hf_act order */
#define PER_ACT(BLOCK)                                                                            \
    {{BLOCK(NMF_OPK_GELU)}, {BLOCK(NMF_OPK_GELU_TANH)}, {BLOCK(NMF_OPK_RELU)}, {BLOCK(NMF_OPK_SILU)}}
static const nmf_op_row bert_block[NMF_HF_ACT_COUNT][12] = PER_ACT(BERT_BLOCK);
static const nmf_op_row gpt2_block[NMF_HF_ACT_COUNT][10] = PER_ACT(GPT2_BLOCK);
static const nmf_op_row llama_block[NMF_HF_ACT_COUNT][16] = PER_ACT(LLAMA_BLOCK);
_Static_assert(NMF_HF_ACT_GELU == 0 && NMF_HF_ACT_GELU_TANH == 1 && NMF_HF_ACT_RELU == 2 &&
               NMF_HF_ACT_SILU == 3 && NMF_HF_ACT_COUNT == 4, "PER_ACT follows nmf_hf_act");
_Static_assert(NMF_LOP_COUNT <= NMF_OP_ID_MAX && NMF_OP_COUNT <= NMF_OP_ID_MAX, "NMF_OP_ID_MAX");

/* ---- tails: a prefix of the table, by what the checkpoint has ---- */
static const nmf_op_row bert_tail[] = { /* the pooler (when present), then the classifier */
    {NMF_LOP_POOLER, "pooler.dense", "pool", NMF_OPK_LINEAR, NMF_BP_POOL_W, BLK, NONE, 1, NONE},
    {NMF_LOP_POOL_TANH, "pooler.activation", "pooled", NMF_OPK_TANH, -1, NMF_LOP_POOLER, NONE, 1, NONE},
    {NMF_LOP_CLASSIFIER, "classifier", "logits", NMF_OPK_LINEAR, NMF_BP_CLS_W, NMF_LOP_POOL_TANH,
     NONE, 1, NONE},
};
#define DECODER_TAIL(NORM, NORM_W, HEAD_W)                                                        \
    {{NMF_LOP_NORM, NORM, "xf", NMF_OPK_NORM, NORM_W, BLK, NONE, 0, NONE},                        \
     {NMF_LOP_LM_HEAD, "lm_head", "logits", NMF_OPK_LINEAR, HEAD_W, NMF_LOP_NORM, NONE, 0, NONE}}
static const nmf_op_row gpt2_tail[2][2] = {DECODER_TAIL("ln_f", NMF_GP_LNF_W, NMF_GP_WTE),
                                           DECODER_TAIL("ln_f", NMF_GP_LNF_W, NMF_GP_HEAD_W)};
static const nmf_op_row llama_tail[2][2] = {DECODER_TAIL("norm", NMF_LP_NORM_W, NMF_LP_EMBED),
                                            DECODER_TAIL("norm", NMF_LP_NORM_W, NMF_LP_HEAD_W)};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* the family of a config: -1 for ViT, the token family, or -2 for none */
static int family(const nmf_model_config *c) {
    if (c && !strcmp(c->arch, "vit")) return -1;
    if (!c || !nmf_model_is_token(c) || (unsigned)c->hf.model_type >= NMF_HF_MODEL_TYPE_COUNT ||
        (unsigned)c->hf.hidden_act >= NMF_HF_ACT_COUNT)
        return -2;
    return (int)c->hf.model_type;
}

const nmf_op_row *nmf_model_stem_ops(const nmf_model_config *c, int *n) {
    switch (family(c)) {
    case -1: return nmf_vit_stem_ops(n);
    case NMF_HF_BERT: return *n = COUNT(bert_stem), bert_stem;
    case NMF_HF_GPT2: return *n = COUNT(gpt2_stem), gpt2_stem;
    case NMF_HF_LLAMA: return *n = COUNT(llama_stem), llama_stem;
    default: return *n = 0, NULL;
    }
}

const nmf_op_row *nmf_model_block_ops(const nmf_model_config *c, int *n) {
    switch (family(c)) {
    case -1: return nmf_vit_block_ops(n);
    case NMF_HF_BERT: return *n = COUNT(bert_block[0]), bert_block[c->hf.hidden_act];
    case NMF_HF_GPT2: return *n = COUNT(gpt2_block[0]), gpt2_block[c->hf.hidden_act];
    case NMF_HF_LLAMA: return *n = COUNT(llama_block[0]), llama_block[c->hf.hidden_act];
    default: return *n = 0, NULL;
    }
}

const nmf_op_row *nmf_model_tail_ops(const nmf_model_config *c, int *n) {
    const nmf_hf_config *h = c ? &c->hf : NULL;
    const int lm = h && h->head == NMF_HF_HEAD_LM, untied = lm && !h->tie_word_embeddings;
    switch (family(c)) {
    case -1: return nmf_vit_tail_ops(n);
    case NMF_HF_BERT: /* BertModel with or without its pooler; the classifier reads the pooler */
        *n = h->head == NMF_HF_HEAD_CLASSIFIER ? 3 : h->pooler ? 2 : 0;
        return bert_tail;
    case NMF_HF_GPT2: return *n = 1 + lm, gpt2_tail[untied];
    case NMF_HF_LLAMA: return *n = 1 + lm, llama_tail[untied];
    default: return *n = 0, NULL;
    }
}

const char *nmf_model_op_name(const nmf_model_config *c, const nmf_op_row *r, int block, char *buf,
                              size_t cap) {
    if (!buf || cap == 0) return "";
    char prefix[32] = "";
    if (block >= 0) {
        const int f = family(c);
        /* the format comes from a fixed table (never from data): one %d */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(prefix, sizeof prefix, f >= 0 ? nmf_hf_block_format((nmf_hf_model_type)f) : "blocks.%d.",
                 block);
#pragma GCC diagnostic pop
    }
    snprintf(buf, cap, "%s%s", prefix, r ? r->name : "?");
    return buf;
}
