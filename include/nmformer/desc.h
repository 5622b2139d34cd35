/* The model description: what every part of nmformer (loading, saving, prune, convert, info,
 * inference, training, the STA) reads instead of its own name lists and shape logic.
 *
 * A model = its config + a parameter table. The table has one row per tensor of a checkpoint
 * (its name as the family's users spell it, shape, role, whether it is an N:M-eligible linear
 * and which axis is the linear's input dimension), in checkpoint order, and places every tensor
 * in one parameter buffer (llm.c style: one allocation per parameter set, tensors of one kind
 * stacked over the blocks). A family adds a kind list (its parameter kinds, in buffer order) and
 * a table builder; docs/MODEL.md explains the design. */
#ifndef NMFORMER_DESC_H
#define NMFORMER_DESC_H

#include "nmformer/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a parameter is for. Weight decay, pruning and initialisation follow from it. */
typedef enum {
    NMF_ROLE_EMBED = 0, /* input embedding weight (ViT: the patch conv as a matrix; token and
                         * token-type embeddings) */
    NMF_ROLE_CLS,       /* learned class token */
    NMF_ROLE_POS,       /* learned position embedding */
    NMF_ROLE_NORM_W,    /* norm scale */
    NMF_ROLE_NORM_B,    /* norm shift */
    NMF_ROLE_LINEAR_W,  /* weight of a linear inside a block */
    NMF_ROLE_BIAS,      /* bias of a linear (blocks and embedding) */
    NMF_ROLE_HEAD_W,    /* classifier / LM head weight */
    NMF_ROLE_HEAD_B,
    NMF_ROLE_COUNT
} nmf_param_role;
NMF_API const char *nmf_param_role_name(nmf_param_role r);
/* Weight decay applies to matrices (embedding, block linears, head), not to biases, norms,
 * class token or position embedding, as timm does. */
NMF_API int nmf_param_role_decays(nmf_param_role r);

/* Initialises x[0..n) as a parameter of this role, timm-style: norm scales 1; biases and norm
 * shifts 0; the class token N(0, 1e-6^2); every other tensor (embedding, position, linear and
 * head weights) N(0, 0.02^2); normals truncated at 2 std (core/rng.h), drawn from *rng. */
NMF_API void nmf_param_role_init(nmf_param_role r, float *x, size_t n, uint64_t *rng);

/* A kind of parameter: one per block (stacked over the blocks in the buffer) or one per model. */
typedef struct {
    const char *name;    /* per-block kinds: the name after the block prefix ("attn.qkv.weight") */
    nmf_param_role role;
    int per_block;
    int nm;              /* N:M-eligible: groups of M run along in_axis */
    int in_axis;         /* linear weights: the axis of the input dimension (ViT [out, in]: 1;
                          * GPT-2's Conv1D [in, out]: 0); -1 for everything else */
} nmf_param_kind;

/* Which tensors a parameter buffer holds. */
typedef enum {
    NMF_LAYOUT_ALL = 0, /* every parameter (training: weights, gradients, AdamW moments) */
    NMF_LAYOUT_DENSE,   /* all but the N:M-eligible weights, which live in nmf_linear (inference) */
    NMF_LAYOUT_COUNT
} nmf_layout;

/* One tensor of the model. */
typedef struct {
    char name[64];     /* full name ("blocks.3.attn.qkv.weight") */
    int kind;          /* index into the family's kind list (ViT: nmf_vit_param) */
    int block;         /* block index; -1 for per-model kinds */
    int ndim;
    int64_t shape[NMF_MAX_DIMS];
    size_t numel;
    size_t rows, cols; /* 2-D view: linear weights (out, in) whatever the storage order; else
                        * (1, numel) -- (D, C*P*P) for the patch conv */
} nmf_param;

#define NMF_DESC_MAX_KINDS 32

typedef struct {
    nmf_model_config config;
    const char *family;          /* "ViT", "BERT", "GPT-2", "LLaMA" */
    const nmf_param_kind *kinds; /* the family's kind list (static), kind_count entries */
    int kind_count;
    nmf_param *params;           /* checkpoint order; count entries (malloc'd) */
    size_t count;
    /* where kind k's block-0 tensor starts in each layout's buffer (SIZE_MAX: not in it), its
     * size per block, and each layout's total size in floats */
    size_t kind_offset[NMF_LAYOUT_COUNT][NMF_DESC_MAX_KINDS];
    size_t kind_numel[NMF_DESC_MAX_KINDS];
    size_t kind_first[NMF_DESC_MAX_KINDS]; /* row of the kind's first (block 0) tensor */
    size_t floats[NMF_LAYOUT_COUNT];
} nmf_model_desc;

/* The description of a validated config (the config's arch picks the family). */
NMF_API nmf_status nmf_model_describe(nmf_model_desc *d, const nmf_model_config *c);
NMF_API void nmf_model_desc_free(nmf_model_desc *d);
/* The row of a tensor name; NULL if the model has no such tensor. */
NMF_API const nmf_param *nmf_model_desc_find(const nmf_model_desc *d, const char *name);
/* Float offset of parameter p in a layout's buffer; SIZE_MAX when the layout does not hold it. */
NMF_API size_t nmf_model_desc_offset(const nmf_model_desc *d, nmf_layout l, const nmf_param *p);
static inline const nmf_param_kind *nmf_param_kind_of(const nmf_model_desc *d, const nmf_param *p) {
    return &d->kinds[p->kind];
}
/* The block-0 (or only) tensor of kind k: its shape and 2-D view stand for every block's. */
static inline const nmf_param *nmf_model_desc_kind_row(const nmf_model_desc *d, int k) {
    return &d->params[d->kind_first[k]];
}
/* Checks that s holds exactly the model's tensors with the right shapes; N:M storage only for
 * N:M-eligible ones. The detail names the first missing / extra / misshapen tensor. */
NMF_API nmf_status nmf_model_desc_check(const nmf_model_desc *d, const nmf_tensor_set *s);

/* The row of kind k in block `block` (-1 for per-model kinds); NULL if there is none. */
NMF_API const nmf_param *nmf_model_desc_at(const nmf_model_desc *d, int kind, int block);
/* Checks s against the table (nmf_model_desc_check), then writes every tensor the layout holds
 * into buf (d->floats[l] floats), dense (N:M tensors unpacked); a non-finite value is
 * NMF_ERR_NUMERIC naming the tensor and the index. */
NMF_API nmf_status nmf_model_load_dense(const nmf_model_desc *d, const nmf_tensor_set *s, nmf_layout l,
                                float *buf);

/* ---- the ViT family (timm names) -------------------------------------------------------- */
/* Its kinds, in buffer order. */
typedef enum {
    NMF_VP_PATCH_W = 0, /* (D, C*P*P)  patch_embed.proj.weight (a conv, flattened) */
    NMF_VP_PATCH_B,     /* (D) */
    NMF_VP_CLS,         /* (D)         cls_token */
    NMF_VP_POS,         /* (T, D)      pos_embed */
    NMF_VP_LN1_W,       /* (L, D) */
    NMF_VP_LN1_B,       /* (L, D) */
    NMF_VP_QKV_W,       /* (L, 3D, D)  N:M-eligible */
    NMF_VP_QKV_B,       /* (L, 3D) */
    NMF_VP_PROJ_W,      /* (L, D, D)   N:M-eligible */
    NMF_VP_PROJ_B,      /* (L, D) */
    NMF_VP_LN2_W,       /* (L, D) */
    NMF_VP_LN2_B,       /* (L, D) */
    NMF_VP_FC1_W,       /* (L, H, D)   N:M-eligible */
    NMF_VP_FC1_B,       /* (L, H) */
    NMF_VP_FC2_W,       /* (L, D, H)   N:M-eligible */
    NMF_VP_FC2_B,       /* (L, D) */
    NMF_VP_NORM_W,      /* (D) */
    NMF_VP_NORM_B,      /* (D) */
    NMF_VP_HEAD_W,      /* (K, D) */
    NMF_VP_HEAD_B,      /* (K) */
    NMF_VP_COUNT
} nmf_vit_param;

/* The struct of pointers over one parameter buffer, one pointer per kind in kind order (block
 * kinds point at block 0; block l is + l * per-block size). NULL where the layout has no such
 * tensor. */
typedef struct {
    float *patch_w, *patch_b, *cls, *pos;
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    float *norm_w, *norm_b, *head_w, *head_b;
} nmf_vit_params;

/* ---- the ViT's op list: what a block computes, in order ---------------------------------
 * One row per op of a block (and of the model around the blocks); the STA schedule lowers it
 * onto the accelerator's units, and its ids are the ones an observer of the forward sees
 * (nmf_vit_op, model.h). Inputs name the producing op: NMF_OPIN_BLOCK is the block's input (the
 * previous block's last op, or the embedding), NMF_OPIN_NONE no input. */
typedef enum {
    NMF_OPK_EMBED = 0, /* linear over patches + cls + pos */
    NMF_OPK_NORM,      /* LayerNorm with weight kind `weight` (its bias is the next kind) */
    NMF_OPK_LINEAR,    /* x W^T + b with weight kind `weight` (an LM head: the embedding's when tied) */
    NMF_OPK_ATTENTION, /* softmax(Q K^T / sqrt(hd)) V per head: from a fused (3, heads, hd) qkv when
                        * in1 is NMF_OPIN_NONE, else q (heads, hd) = in0, k and v (kv_heads, hd) =
                        * in1, in2 (query head h reads kv head h / (heads / kv_heads)); causal for
                        * the decoder families (GPT-2, LLaMA), over the padding mask for BERT */
    NMF_OPK_ADD,       /* residual add of its two inputs */
    NMF_OPK_GELU,      /* exact (erf) GELU */
    /* token families */
    NMF_OPK_EMBED_TOKENS, /* rows of the embedding `weight` by token id (+ position, + token type,
                           * as the family has them) */
    NMF_OPK_RMSNORM,   /* x rsqrt(mean(x^2) + eps) w, in f32 (LLaMA) */
    NMF_OPK_ROPE,      /* rotary position embedding of each head, HF's rotate_half layout */
    NMF_OPK_GELU_TANH, /* gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    NMF_OPK_RELU,
    NMF_OPK_SILU,      /* x sigmoid(x) */
    NMF_OPK_MUL,       /* elementwise product of its two inputs (SwiGLU: act(gate) * up) */
    NMF_OPK_TANH,      /* BERT's pooler activation */
    NMF_OPK_COUNT
} nmf_op_kind;
enum { NMF_OPIN_NONE = -2, NMF_OPIN_BLOCK = -1 };
typedef struct {
    int op;            /* nmf_vit_op (ViT) or nmf_lm_op (token families) */
    const char *name;  /* after the block prefix for block ops (nmf_model_op_name) */
    const char *out;   /* short name of its output tensor ("ln1", "qkv", ...) */
    nmf_op_kind kind;
    int weight;        /* weight kind (the family's nmf_*_param), -1 when it has none */
    int in0, in1;      /* producing ops (same id space as `op`) or NMF_OPIN_* */
    int cls_only;      /* runs on the class token alone (ViT's tail, BERT's pooler) */
    int in2;           /* a third input (attention's v); NMF_OPIN_NONE otherwise */
} nmf_op_row;
/* Op ids of every family stay below this (arrays indexed by op id). */
#define NMF_OP_ID_MAX 32
/* The ops of a block, in order (count: *n), and those before and after the blocks. */
NMF_API const nmf_op_row *nmf_vit_block_ops(int *n);
NMF_API const nmf_op_row *nmf_vit_stem_ops(int *n);
NMF_API const nmf_op_row *nmf_vit_tail_ops(int *n);

/* ---- every family's op list (src/model/lm_desc.c) ------------------------------------------
 * What a validated config's model computes, in order: the ops before the blocks (stem), those of
 * one block, those after (tail). ViT: its lists above. Token families: rows with nmf_lm_op ids
 * and the family's weight kinds (nmf_bert_param, ...); the activation op follows the config's
 * hidden_act, the tail its head (BERT: pooler + classifier when present; decoders: final norm,
 * LM head when present, tied or not). nmf_lm_forward_observed emits exactly these ops, in this
 * order, per block. NULL (*n = 0) for a config of no known family. */
NMF_API const nmf_op_row *nmf_model_stem_ops(const nmf_model_config *c, int *n);
NMF_API const nmf_op_row *nmf_model_block_ops(const nmf_model_config *c, int *n);
NMF_API const nmf_op_row *nmf_model_tail_ops(const nmf_model_config *c, int *n);
/* The name an observer sees for row r of block `block` (-1: stem / tail): the family's block
 * prefix ("blocks.3.", "encoder.layer.3.", "h.3.", "layers.3.") + r->name. Returns buf. */
NMF_API const char *nmf_model_op_name(const nmf_model_config *c, const nmf_op_row *r, int block,
                                      char *buf, size_t cap);

/* Op ids of the token families: one id space for the three (an op plays the same part in each;
 * its row says which weight it reads). */
typedef enum {
    NMF_LOP_EMBED = 0, /* stem: embeddings (B*T, D) */
    NMF_LOP_EMBED_NORM, /* BERT embeddings.LayerNorm */
    NMF_LOP_NORM1,     /* decoders: ln_1 / input_layernorm; BERT: attention.output.LayerNorm */
    NMF_LOP_Q,         /* (B*T, heads*hd) */
    NMF_LOP_K,         /* (B*T, kv_heads*hd) */
    NMF_LOP_V,
    NMF_LOP_QKV,       /* GPT-2's c_attn (B*T, 3D) */
    NMF_LOP_ROPE_Q,    /* LLaMA */
    NMF_LOP_ROPE_K,
    NMF_LOP_ATTN,      /* (B*T, heads*hd) */
    NMF_LOP_PROJ,      /* (B*T, D) */
    NMF_LOP_ADD1,
    NMF_LOP_NORM2,     /* decoders: ln_2 / post_attention_layernorm; BERT: output.LayerNorm */
    NMF_LOP_FC1,       /* intermediate.dense / c_fc / gate_proj (B*T, I) */
    NMF_LOP_UP,        /* LLaMA up_proj */
    NMF_LOP_ACT,       /* the config's activation of FC1 */
    NMF_LOP_MUL,       /* LLaMA act(gate) * up */
    NMF_LOP_FC2,       /* output.dense / mlp.c_proj / down_proj (B*T, D) */
    NMF_LOP_ADD2,
    NMF_LOP_NORM,      /* tail: ln_f / norm (decoders) */
    NMF_LOP_POOLER,    /* BERT pooler.dense on x[:, 0] (B, D) */
    NMF_LOP_POOL_TANH,
    NMF_LOP_CLASSIFIER, /* (B, labels) */
    NMF_LOP_LM_HEAD,   /* (B*T, vocab) */
    NMF_LOP_COUNT
} nmf_lm_op;

/* Points p into buf, a buffer of d->floats[l] floats in layout l. */
NMF_API void nmf_vit_params_bind(const nmf_model_desc *d, nmf_layout l, float *buf, nmf_vit_params *p);

/* The kind's name after "blocks.{i}." for block kinds, the full timm name otherwise. */
NMF_API const char *nmf_vit_param_name(nmf_vit_param p);
NMF_API int nmf_vit_param_is_block(nmf_vit_param p);
NMF_API int nmf_vit_param_prunable(nmf_vit_param p); /* N:M-eligible */
NMF_API int nmf_vit_param_decays(nmf_vit_param p);

/* ---- the token families (Hugging Face names; src/model/hf_desc.c) -----------------------
 * Names are HF's, after the checkpoint's prefix (config hf.prefix: "bert.", "transformer.",
 * "model." or ""), except the heads' (classifier.*, lm_head.*), which HF never prefixes. Block
 * kinds follow "encoder.layer.{i}." (BERT), "h.{i}." (GPT-2), "layers.{i}." (LLaMA). The kind
 * lists are in state_dict order, which is also the buffer order. Optional kinds (pooler,
 * classifier, an untied lm_head, LLaMA's biases) are in the table only when the config has them. */
typedef enum {
    NMF_BP_WORD = 0, /* (V, D)   embeddings.word_embeddings.weight */
    NMF_BP_POS,      /* (P, D)   embeddings.position_embeddings.weight */
    NMF_BP_TYPE,     /* (TV, D)  embeddings.token_type_embeddings.weight */
    NMF_BP_EMB_LN_W, /* (D)      embeddings.LayerNorm.weight */
    NMF_BP_EMB_LN_B,
    NMF_BP_Q_W,      /* (L, D, D)  attention.self.query.weight   N:M */
    NMF_BP_Q_B,
    NMF_BP_K_W,      /* (L, D, D)  attention.self.key.weight     N:M */
    NMF_BP_K_B,
    NMF_BP_V_W,      /* (L, D, D)  attention.self.value.weight   N:M */
    NMF_BP_V_B,
    NMF_BP_AO_W,     /* (L, D, D)  attention.output.dense.weight N:M */
    NMF_BP_AO_B,
    NMF_BP_ALN_W,    /* (L, D)     attention.output.LayerNorm.weight (post-norm) */
    NMF_BP_ALN_B,
    NMF_BP_I_W,      /* (L, I, D)  intermediate.dense.weight     N:M */
    NMF_BP_I_B,
    NMF_BP_O_W,      /* (L, D, I)  output.dense.weight           N:M */
    NMF_BP_O_B,
    NMF_BP_OLN_W,    /* (L, D)     output.LayerNorm.weight */
    NMF_BP_OLN_B,
    NMF_BP_POOL_W,   /* (D, D)   pooler.dense.weight (dense: a head) */
    NMF_BP_POOL_B,
    NMF_BP_CLS_W,    /* (K, D)   classifier.weight (no prefix) */
    NMF_BP_CLS_B,
    NMF_BP_COUNT
} nmf_bert_param;

typedef enum {
    NMF_GP_WTE = 0,  /* (V, D)   wte.weight (also the tied lm_head) */
    NMF_GP_WPE,      /* (P, D)   wpe.weight */
    NMF_GP_LN1_W,    /* (L, D)   ln_1.weight */
    NMF_GP_LN1_B,
    NMF_GP_ATTN_W,   /* (L, D, 3D) attn.c_attn.weight   Conv1D [in, out], N:M along axis 0 */
    NMF_GP_ATTN_B,   /* (L, 3D) */
    NMF_GP_PROJ_W,   /* (L, D, D)  attn.c_proj.weight   [in, out], N:M */
    NMF_GP_PROJ_B,
    NMF_GP_LN2_W,    /* (L, D)   ln_2.weight */
    NMF_GP_LN2_B,
    NMF_GP_FC_W,     /* (L, D, I)  mlp.c_fc.weight      [in, out], N:M */
    NMF_GP_FC_B,     /* (L, I) */
    NMF_GP_MPROJ_W,  /* (L, I, D)  mlp.c_proj.weight    [in, out], N:M */
    NMF_GP_MPROJ_B,
    NMF_GP_LNF_W,    /* (D)      ln_f.weight */
    NMF_GP_LNF_B,
    NMF_GP_HEAD_W,   /* (V, D)   lm_head.weight, only when untied (no prefix) */
    NMF_GP_COUNT
} nmf_gpt2_param;

typedef enum {
    NMF_LP_EMBED = 0, /* (V, D)      embed_tokens.weight */
    NMF_LP_Q_W,       /* (L, H*hd, D)  self_attn.q_proj.weight  N:M */
    NMF_LP_Q_B,       /* (L, H*hd)     only with attention_bias */
    NMF_LP_K_W,       /* (L, KV*hd, D) self_attn.k_proj.weight  N:M */
    NMF_LP_K_B,
    NMF_LP_V_W,       /* (L, KV*hd, D) self_attn.v_proj.weight  N:M */
    NMF_LP_V_B,
    NMF_LP_O_W,       /* (L, D, H*hd)  self_attn.o_proj.weight  N:M */
    NMF_LP_O_B,
    NMF_LP_GATE_W,    /* (L, I, D)     mlp.gate_proj.weight     N:M */
    NMF_LP_GATE_B,    /* only with mlp_bias */
    NMF_LP_UP_W,      /* (L, I, D)     mlp.up_proj.weight       N:M */
    NMF_LP_UP_B,
    NMF_LP_DOWN_W,    /* (L, D, I)     mlp.down_proj.weight     N:M */
    NMF_LP_DOWN_B,
    NMF_LP_LN1_W,     /* (L, D)        input_layernorm.weight (RMSNorm) */
    NMF_LP_LN2_W,     /* (L, D)        post_attention_layernorm.weight */
    NMF_LP_NORM_W,    /* (D)           norm.weight */
    NMF_LP_HEAD_W,    /* (V, D)        lm_head.weight, only when untied (no prefix) */
    NMF_LP_COUNT
} nmf_llama_param;

#ifdef __cplusplus
}
#endif
#endif
