/* Model configuration (timm-style ViT) and the tensor names/shapes it implies.
 * Travels as JSON in the safetensors __metadata__ key "nmformer.config" and in .nmf files. */
#ifndef NMFORMER_CONFIG_H
#define NMFORMER_CONFIG_H

#include "nmformer/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NMF_CONFIG_META_KEY "nmformer.config"

/* ---- token families (BERT, GPT-2, LLaMA): Hugging Face's config.json, read by
 *      src/io/hf_config.c (docs/HF.md) ---- */
typedef enum { NMF_HF_BERT = 0, NMF_HF_GPT2, NMF_HF_LLAMA, NMF_HF_MODEL_TYPE_COUNT } nmf_hf_model_type;
/* Activation names as in HF's ACT2FN: "gelu" (exact erf), "gelu_new" (tanh; "gelu_pytorch_tanh"
 * and "gelu_fast" are read as the same), "relu", "silu" ("swish" is read as the same). */
typedef enum {
    NMF_HF_ACT_GELU = 0,
    NMF_HF_ACT_GELU_TANH,
    NMF_HF_ACT_RELU,
    NMF_HF_ACT_SILU,
    NMF_HF_ACT_COUNT
} nmf_hf_act;
/* What sits on top of the blocks, from architectures[0] (or the tensors when it is absent). */
typedef enum {
    NMF_HF_HEAD_NONE = 0, /* BertModel, GPT2Model, LlamaModel: the last hidden state is the output */
    NMF_HF_HEAD_LM,       /* GPT2LMHeadModel, LlamaForCausalLM: logits over the vocabulary per token */
    NMF_HF_HEAD_CLASSIFIER, /* BertForSequenceClassification: num_labels logits per sequence */
    NMF_HF_HEAD_COUNT
} nmf_hf_head;
NMF_API const char *nmf_hf_model_type_name(nmf_hf_model_type t); /* "bert", "gpt2", "llama" */
NMF_API const char *nmf_hf_act_name(nmf_hf_act a);               /* "gelu", "gelu_new", "relu", "silu" */

/* config.json as read, validated, with each family's key names mapped onto one set of fields
 * (docs/HF.md has the table of keys, defaults and limits). Optional keys take the defaults of
 * the HF config class, so a config written by any transformers version reads the same. */
typedef struct {
    nmf_hf_model_type model_type;
    char architecture[64];       /* architectures[0]; "" when absent */
    int hidden_size;             /* GPT-2: n_embd */
    int num_hidden_layers;       /* GPT-2: n_layer */
    int num_attention_heads;     /* GPT-2: n_head; divides hidden_size */
    int num_key_value_heads;     /* LLaMA (default num_attention_heads, divides it); others: heads */
    int head_dim;                /* hidden_size / num_attention_heads (even for LLaMA: RoPE) */
    int intermediate_size;       /* GPT-2: n_inner, null -> 4 * n_embd */
    int vocab_size;
    int max_position_embeddings; /* GPT-2: n_positions */
    int type_vocab_size;         /* BERT (default 2); 0 for GPT-2 and LLaMA */
    float norm_eps;              /* BERT layer_norm_eps (1e-12), GPT-2 layer_norm_epsilon (1e-5),
                                    LLaMA rms_norm_eps (1e-6) */
    double rope_theta;           /* LLaMA (default 10000); 0 for BERT and GPT-2 */
    int tie_word_embeddings;     /* default 1 for BERT and GPT-2, 0 for LLaMA */
    nmf_hf_act hidden_act;       /* BERT/LLaMA hidden_act ("gelu" / "silu"), GPT-2 activation_function
                                    ("gelu_new") */
    int attention_bias, mlp_bias; /* LLaMA: biases on q/k/v/o and on the MLP (default 0); BERT and
                                     GPT-2 always have biases and report 1 */
    int num_labels;              /* len(id2label), else num_labels, else 2 (PretrainedConfig) */
    /* What the checkpoint holds and how it names it: not config.json keys, but decided from the
     * tensor names (nmf_model_config_from_hf) and kept so that a model written back has the
     * names it came with. */
    nmf_hf_head head;            /* the head on top of the blocks */
    int pooler;                  /* BERT: pooler.dense present (BertModel's add_pooling_layer) */
    char prefix[16];             /* "bert.", "transformer.", "model." or "": before every tensor
                                    name but the head's (classifier.*, lm_head.*) */
} nmf_hf_config;

/* A model's config. arch names the family: "vit" uses the fields below up to std; "bert",
 * "gpt2" and "llama" (the token families) use hf alone (the ViT fields stay zero). */
typedef struct {
    char arch[16];   /* "vit", "bert", "gpt2", "llama" */
    int img_size;    /* square input, pixels */
    int patch;       /* patch size; img_size % patch == 0 */
    int in_chans;
    int dim;         /* embedding width */
    int depth;       /* number of blocks */
    int heads;       /* dim % heads == 0 */
    float mlp_ratio; /* hidden = dim * mlp_ratio (must be an integer) */
    int num_classes;
    float mean, std; /* input normalisation after scaling pixels to [0,1] */
    nmf_hf_config hf; /* token families */
} nmf_model_config;

/* 1 for the token families (arch bert, gpt2, llama). */
NMF_API int nmf_model_is_token(const nmf_model_config *c);
/* Blocks of the model (ViT depth, HF num_hidden_layers). */
NMF_API int nmf_model_layers(const nmf_model_config *c);
/* A token family's model config from a validated config.json and the checkpoint's tensors:
 * arch from model_type; hf.prefix, hf.pooler and hf.head from the tensor names (architectures[0],
 * when given, must agree: "BertForSequenceClassification" without classifier.weight is an
 * error naming it). A tied head's lm_head.weight, which some writers store anyway, is removed
 * from s when it equals the embedding (an error when it differs). s may be NULL: names from
 * architectures[0] alone (HF's defaults: BertModel with a pooler, no prefix; *LMHeadModel /
 * *ForCausalLM / *ForSequenceClassification with theirs). */
NMF_API nmf_status nmf_model_config_from_hf(nmf_model_config *c, const nmf_hf_config *hf,
                                            nmf_tensor_set *s);
/* config.json text as transformers writes it for this config (model_type, architectures, the
 * family's own key names), so that the folder loads in transformers. malloc'd; NULL: no memory. */
NMF_API char *nmf_hf_config_to_json(const nmf_hf_config *c);

/* Config values a caller gives next to a model file (the CLI's --dim, --heads, ... flags);
 * 0 = not given. */
typedef struct {
    int img_size, patch, in_chans, dim, depth, heads, num_classes;
    float mlp_ratio;
} nmf_config_overrides;
/* Applies the given values of o to *c. from_file: *c is the file's own config, and a given value
 * that differs from it is NMF_ERR_INVALID_ARG naming the key ("dim 32 contradicts the file's
 * config (dim 16)"), never a silent override. */
NMF_API nmf_status nmf_model_config_override(nmf_model_config *c, const nmf_config_overrides *o, int from_file);
static inline int nmf_config_overrides_any(const nmf_config_overrides *o) {
    return o && (o->img_size || o->patch || o->in_chans || o->dim || o->depth || o->heads ||
                 o->num_classes || o->mlp_ratio != 0.0f);
}

/* Named shapes, one table (src/model/shapes.c): "vit-fmnist" (28x28x1, patch 7, dim 64, depth 4,
 * heads 4, ratio 2, 10 classes, mean 0.2860, std 0.3530: the default and the `train` demo),
 * "vit-fmnist-full" (dim 128, depth 6: `train --config full`), "deit-tiny" (192 dim, 3 heads),
 * "deit-small" (384, 6), "deit-base" (768, 12); the DeiTs are 224x224x3, patch 16, depth 12,
 * mlp_ratio 4, 1000 classes, mean 0.45, std 0.226 (ImageNet's averaged). Token families (arch and
 * hf as read from the model's config.json): "bert-base" (BertModel with pooler: 768, 12 layers,
 * 12 heads, 3072, vocab 30522, 512 positions, 2 token types), "gpt2" (GPT2LMHeadModel: 768, 12,
 * 12, vocab 50257, 1024 positions), "gpt2-medium" (1024, 24, 16), "llama-1.1b" (TinyLlama-1.1B's
 * LlamaForCausalLM: 2048, 22 layers, 32 heads, 4 kv heads, 5632, vocab 32000, 2048 positions,
 * theta 1e4, untied head), "llama-small" (768, 12 layers, 12 heads, 4 kv heads, 2048, as
 * llama-1.1b otherwise). NMF_ERR_NOT_FOUND for other names (the detail lists the known ones). */
NMF_API nmf_status nmf_model_shape_config(const char *name, nmf_model_config *c);
/* The i-th shape's name, in table order (for listings); NULL past the end. */
NMF_API const char *nmf_model_shape_name(size_t i);
/* The default config: shape "vit-fmnist". */
NMF_API void nmf_model_config_default(nmf_model_config *c);
NMF_API nmf_status nmf_model_config_validate(const nmf_model_config *c);
/* Unknown keys are ignored; missing keys keep the values already in *c (so callers can start from
 * defaults or from command-line flags). Malformed JSON / wrong types are NMF_ERR_FORMAT. */
NMF_API nmf_status nmf_model_config_from_json(const char *json, nmf_model_config *c);
/* malloc'd JSON text; NULL on allocation failure. */
NMF_API char *nmf_model_config_to_json(const nmf_model_config *c);

static inline int nmf_vit_grid(const nmf_model_config *c) { return c->img_size / c->patch; }
static inline int nmf_vit_tokens(const nmf_model_config *c) {
    return nmf_vit_grid(c) * nmf_vit_grid(c) + 1; /* patches + class token */
}
static inline int nmf_vit_hidden(const nmf_model_config *c) {
    return (int)(c->dim * c->mlp_ratio + 0.5f);
}

/* Checks that s holds exactly the tensors of the config with the right shapes (the model
 * description's table, nmformer/desc.h); the detail names the first missing / extra / misshapen
 * tensor. */
NMF_API nmf_status nmf_model_check_tensors(const nmf_model_config *c, const nmf_tensor_set *s);

#ifdef __cplusplus
}
#endif
#endif
