/* The token families' descriptions (BERT, GPT-2, LLaMA): Hugging Face names, shapes and roles.
 * Each family lists its kinds in state_dict order: the kinds before its first block kind are
 * the model's own (embeddings), then the block kinds, then the model's own again (final norm,
 * pooler, heads). One builder walks that list for every family; a family says which kinds its
 * config has and their shapes. */
#include <stdio.h>
#include <string.h>

#include "model/desc_internal.h"

/* name, role, per_block, nm, in_axis */
static const nmf_param_kind bert_kinds[] = {
    [NMF_BP_WORD] = {"embeddings.word_embeddings.weight", NMF_ROLE_EMBED, 0, 0, -1},
    [NMF_BP_POS] = {"embeddings.position_embeddings.weight", NMF_ROLE_POS, 0, 0, -1},
    [NMF_BP_TYPE] = {"embeddings.token_type_embeddings.weight", NMF_ROLE_EMBED, 0, 0, -1},
    [NMF_BP_EMB_LN_W] = {"embeddings.LayerNorm.weight", NMF_ROLE_NORM_W, 0, 0, -1},
    [NMF_BP_EMB_LN_B] = {"embeddings.LayerNorm.bias", NMF_ROLE_NORM_B, 0, 0, -1},
    [NMF_BP_Q_W] = {"attention.self.query.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_BP_Q_B] = {"attention.self.query.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_BP_K_W] = {"attention.self.key.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_BP_K_B] = {"attention.self.key.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_BP_V_W] = {"attention.self.value.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_BP_V_B] = {"attention.self.value.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_BP_AO_W] = {"attention.output.dense.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_BP_AO_B] = {"attention.output.dense.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_BP_ALN_W] = {"attention.output.LayerNorm.weight", NMF_ROLE_NORM_W, 1, 0, -1},
    [NMF_BP_ALN_B] = {"attention.output.LayerNorm.bias", NMF_ROLE_NORM_B, 1, 0, -1},
    [NMF_BP_I_W] = {"intermediate.dense.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_BP_I_B] = {"intermediate.dense.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_BP_O_W] = {"output.dense.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_BP_O_B] = {"output.dense.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_BP_OLN_W] = {"output.LayerNorm.weight", NMF_ROLE_NORM_W, 1, 0, -1},
    [NMF_BP_OLN_B] = {"output.LayerNorm.bias", NMF_ROLE_NORM_B, 1, 0, -1},
    [NMF_BP_POOL_W] = {"pooler.dense.weight", NMF_ROLE_HEAD_W, 0, 0, -1},
    [NMF_BP_POOL_B] = {"pooler.dense.bias", NMF_ROLE_HEAD_B, 0, 0, -1},
    [NMF_BP_CLS_W] = {"classifier.weight", NMF_ROLE_HEAD_W, 0, 0, -1},
    [NMF_BP_CLS_B] = {"classifier.bias", NMF_ROLE_HEAD_B, 0, 0, -1},
};
_Static_assert(sizeof bert_kinds / sizeof bert_kinds[0] == NMF_BP_COUNT, "a row per nmf_bert_param");

static const nmf_param_kind gpt2_kinds[] = {
    [NMF_GP_WTE] = {"wte.weight", NMF_ROLE_EMBED, 0, 0, -1},
    [NMF_GP_WPE] = {"wpe.weight", NMF_ROLE_POS, 0, 0, -1},
    [NMF_GP_LN1_W] = {"ln_1.weight", NMF_ROLE_NORM_W, 1, 0, -1},
    [NMF_GP_LN1_B] = {"ln_1.bias", NMF_ROLE_NORM_B, 1, 0, -1},
    [NMF_GP_ATTN_W] = {"attn.c_attn.weight", NMF_ROLE_LINEAR_W, 1, 1, 0},
    [NMF_GP_ATTN_B] = {"attn.c_attn.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_GP_PROJ_W] = {"attn.c_proj.weight", NMF_ROLE_LINEAR_W, 1, 1, 0},
    [NMF_GP_PROJ_B] = {"attn.c_proj.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_GP_LN2_W] = {"ln_2.weight", NMF_ROLE_NORM_W, 1, 0, -1},
    [NMF_GP_LN2_B] = {"ln_2.bias", NMF_ROLE_NORM_B, 1, 0, -1},
    [NMF_GP_FC_W] = {"mlp.c_fc.weight", NMF_ROLE_LINEAR_W, 1, 1, 0},
    [NMF_GP_FC_B] = {"mlp.c_fc.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_GP_MPROJ_W] = {"mlp.c_proj.weight", NMF_ROLE_LINEAR_W, 1, 1, 0},
    [NMF_GP_MPROJ_B] = {"mlp.c_proj.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_GP_LNF_W] = {"ln_f.weight", NMF_ROLE_NORM_W, 0, 0, -1},
    [NMF_GP_LNF_B] = {"ln_f.bias", NMF_ROLE_NORM_B, 0, 0, -1},
    [NMF_GP_HEAD_W] = {"lm_head.weight", NMF_ROLE_HEAD_W, 0, 0, -1},
};
_Static_assert(sizeof gpt2_kinds / sizeof gpt2_kinds[0] == NMF_GP_COUNT, "a row per nmf_gpt2_param");

static const nmf_param_kind llama_kinds[] = {
    [NMF_LP_EMBED] = {"embed_tokens.weight", NMF_ROLE_EMBED, 0, 0, -1},
    [NMF_LP_Q_W] = {"self_attn.q_proj.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_LP_Q_B] = {"self_attn.q_proj.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_LP_K_W] = {"self_attn.k_proj.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_LP_K_B] = {"self_attn.k_proj.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_LP_V_W] = {"self_attn.v_proj.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_LP_V_B] = {"self_attn.v_proj.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_LP_O_W] = {"self_attn.o_proj.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_LP_O_B] = {"self_attn.o_proj.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_LP_GATE_W] = {"mlp.gate_proj.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_LP_GATE_B] = {"mlp.gate_proj.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_LP_UP_W] = {"mlp.up_proj.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_LP_UP_B] = {"mlp.up_proj.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_LP_DOWN_W] = {"mlp.down_proj.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_LP_DOWN_B] = {"mlp.down_proj.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_LP_LN1_W] = {"input_layernorm.weight", NMF_ROLE_NORM_W, 1, 0, -1},
    [NMF_LP_LN2_W] = {"post_attention_layernorm.weight", NMF_ROLE_NORM_W, 1, 0, -1},
    [NMF_LP_NORM_W] = {"norm.weight", NMF_ROLE_NORM_W, 0, 0, -1},
    [NMF_LP_HEAD_W] = {"lm_head.weight", NMF_ROLE_HEAD_W, 0, 0, -1},
};
_Static_assert(sizeof llama_kinds / sizeof llama_kinds[0] == NMF_LP_COUNT, "a row per nmf_llama_param");
_Static_assert(NMF_BP_COUNT <= NMF_DESC_MAX_KINDS && NMF_GP_COUNT <= NMF_DESC_MAX_KINDS &&
               NMF_LP_COUNT <= NMF_DESC_MAX_KINDS, "NMF_DESC_MAX_KINDS too small");

/* What a family adds to the shared builder. */
typedef struct {
    const nmf_param_kind *kinds;
    int count;
    const char *block_fmt;                   /* "h.%d." */
    int (*present)(const nmf_hf_config *h, int kind);
    int (*bare)(int kind);                   /* a head's name: no prefix */
    int (*shape)(const nmf_hf_config *h, int kind, int64_t *s); /* ndim */
} hf_family;

static int untied_lm_head(const nmf_hf_config *h) {
    return h->head == NMF_HF_HEAD_LM && !h->tie_word_embeddings;
}

/* ---- BERT ---- */
static int bert_present(const nmf_hf_config *h, int k) {
    if (k == NMF_BP_POOL_W || k == NMF_BP_POOL_B) return h->pooler;
    if (k == NMF_BP_CLS_W || k == NMF_BP_CLS_B) return h->head == NMF_HF_HEAD_CLASSIFIER;
    return 1;
}
static int bert_bare(int k) { return k == NMF_BP_CLS_W || k == NMF_BP_CLS_B; }
static int bert_shape(const nmf_hf_config *h, int k, int64_t *s) {
    const int64_t D = h->hidden_size, I = h->intermediate_size;
    switch ((nmf_bert_param)k) {
    case NMF_BP_WORD: s[0] = h->vocab_size, s[1] = D; return 2;
    case NMF_BP_POS: s[0] = h->max_position_embeddings, s[1] = D; return 2;
    case NMF_BP_TYPE: s[0] = h->type_vocab_size, s[1] = D; return 2;
    case NMF_BP_Q_W: case NMF_BP_K_W: case NMF_BP_V_W: case NMF_BP_AO_W: case NMF_BP_POOL_W:
        s[0] = D, s[1] = D; return 2;
    case NMF_BP_I_W: s[0] = I, s[1] = D; return 2;
    case NMF_BP_I_B: s[0] = I; return 1;
    case NMF_BP_O_W: s[0] = D, s[1] = I; return 2;
    case NMF_BP_CLS_W: s[0] = h->num_labels, s[1] = D; return 2;
    case NMF_BP_CLS_B: s[0] = h->num_labels; return 1;
    default: s[0] = D; return 1; /* norms and the other biases */
    }
}

/* ---- GPT-2: Conv1D weights are stored [in, out] ---- */
static int gpt2_present(const nmf_hf_config *h, int k) { return k != NMF_GP_HEAD_W || untied_lm_head(h); }
static int gpt2_bare(int k) { return k == NMF_GP_HEAD_W; }
static int gpt2_shape(const nmf_hf_config *h, int k, int64_t *s) {
    const int64_t D = h->hidden_size, I = h->intermediate_size;
    switch ((nmf_gpt2_param)k) {
    case NMF_GP_WTE: case NMF_GP_HEAD_W: s[0] = h->vocab_size, s[1] = D; return 2;
    case NMF_GP_WPE: s[0] = h->max_position_embeddings, s[1] = D; return 2;
    case NMF_GP_ATTN_W: s[0] = D, s[1] = 3 * D; return 2;
    case NMF_GP_ATTN_B: s[0] = 3 * D; return 1;
    case NMF_GP_PROJ_W: s[0] = D, s[1] = D; return 2;
    case NMF_GP_FC_W: s[0] = D, s[1] = I; return 2;
    case NMF_GP_FC_B: s[0] = I; return 1;
    case NMF_GP_MPROJ_W: s[0] = I, s[1] = D; return 2;
    default: s[0] = D; return 1;
    }
}

/* ---- LLaMA ---- */
static int llama_present(const nmf_hf_config *h, int k) {
    switch ((nmf_llama_param)k) {
    case NMF_LP_Q_B: case NMF_LP_K_B: case NMF_LP_V_B: case NMF_LP_O_B: return h->attention_bias;
    case NMF_LP_GATE_B: case NMF_LP_UP_B: case NMF_LP_DOWN_B: return h->mlp_bias;
    case NMF_LP_HEAD_W: return untied_lm_head(h);
    default: return 1;
    }
}
static int llama_bare(int k) { return k == NMF_LP_HEAD_W; }
static int llama_shape(const nmf_hf_config *h, int k, int64_t *s) {
    const int64_t D = h->hidden_size, I = h->intermediate_size, hd = h->head_dim;
    const int64_t Q = h->num_attention_heads * hd, KV = h->num_key_value_heads * hd;
    switch ((nmf_llama_param)k) {
    case NMF_LP_EMBED: case NMF_LP_HEAD_W: s[0] = h->vocab_size, s[1] = D; return 2;
    case NMF_LP_Q_W: s[0] = Q, s[1] = D; return 2;
    case NMF_LP_Q_B: s[0] = Q; return 1;
    case NMF_LP_K_W: case NMF_LP_V_W: s[0] = KV, s[1] = D; return 2;
    case NMF_LP_K_B: case NMF_LP_V_B: s[0] = KV; return 1;
    case NMF_LP_O_W: s[0] = D, s[1] = Q; return 2;
    case NMF_LP_GATE_W: case NMF_LP_UP_W: s[0] = I, s[1] = D; return 2;
    case NMF_LP_GATE_B: case NMF_LP_UP_B: s[0] = I; return 1;
    case NMF_LP_DOWN_W: s[0] = D, s[1] = I; return 2;
    default: s[0] = D; return 1;
    }
}

static const hf_family families[NMF_HF_MODEL_TYPE_COUNT] = {
    [NMF_HF_BERT] = {bert_kinds, NMF_BP_COUNT, "encoder.layer.%d.", bert_present, bert_bare, bert_shape},
    [NMF_HF_GPT2] = {gpt2_kinds, NMF_GP_COUNT, "h.%d.", gpt2_present, gpt2_bare, gpt2_shape},
    [NMF_HF_LLAMA] = {llama_kinds, NMF_LP_COUNT, "layers.%d.", llama_present, llama_bare, llama_shape},
};

/* One walk over the kinds: the model's own kinds before the first block kind, the blocks, then
 * the model's own kinds after the last. With rows NULL it only counts. */
static size_t hf_walk(const nmf_model_config *c, nmf_param *rows) {
    const nmf_hf_config *h = &c->hf;
    const hf_family *f = &families[h->model_type];
    size_t n = 0;
    int first_block = 0, end = f->count;
    while (first_block < f->count && !f->kinds[first_block].per_block) first_block++;
    while (end > first_block && !f->kinds[end - 1].per_block) end--;
    for (int phase = 0; phase < 3; phase++) {
        int lo = phase == 0 ? 0 : phase == 1 ? first_block : end;
        int hi = phase == 0 ? first_block : phase == 1 ? end : f->count;
        int blocks = phase == 1 ? h->num_hidden_layers : 1;
        for (int b = 0; b < blocks; b++)
            for (int k = lo; k < hi; k++) {
                if (!f->present(h, k)) continue;
                if (rows) {
                    nmf_param *p = &rows[n];
                    memset(p, 0, sizeof *p);
                    p->kind = k;
                    p->block = phase == 1 ? b : -1;
                    char block[32] = "";
                    if (phase == 1) snprintf(block, sizeof block, f->block_fmt, b);
                    snprintf(p->name, sizeof p->name, "%s%s%s", f->bare(k) ? "" : h->prefix, block,
                             f->kinds[k].name);
                    p->ndim = f->shape(h, k, p->shape);
                }
                n++;
            }
    }
    return n;
}
const char *nmf_hf_block_format(nmf_hf_model_type t) {
    return (unsigned)t < NMF_HF_MODEL_TYPE_COUNT ? families[t].block_fmt : "blocks.%d.";
}

static void hf_build(const nmf_model_config *c, nmf_param *rows) { hf_walk(c, rows); }
static size_t hf_count(const nmf_model_config *c) { return hf_walk(c, NULL); }

static const nmf_model_family bert_family = {"BERT", bert_kinds, NMF_BP_COUNT, hf_count, hf_build};
static const nmf_model_family gpt2_family = {"GPT-2", gpt2_kinds, NMF_GP_COUNT, hf_count, hf_build};
static const nmf_model_family llama_family = {"LLaMA", llama_kinds, NMF_LP_COUNT, hf_count, hf_build};
const nmf_model_family *nmf_bert_family(void) { return &bert_family; }
const nmf_model_family *nmf_gpt2_family(void) { return &gpt2_family; }
const nmf_model_family *nmf_llama_family(void) { return &llama_family; }
