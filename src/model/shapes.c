/* The one table of named model shapes (presets): the Fashion-MNIST ViTs we train, the DeiT
 * shapes (Touvron et al. 2021), and the token families at the sizes their users run (BERT-base,
 * GPT-2 small and medium, a LLaMA of TinyLlama-1.1B's shape and a small LLaMA), which the
 * benchmarks and the STA simulator use without weights. The default config is the table's first
 * row. A token shape is the config.json its Hugging Face model has, read by the same parser as a
 * model folder's (nmf_hf_config_parse), so its defaults (eps, activation, tying) are HF's. */
#include <stdio.h>
#include <string.h>

#include "nmformer/config.h"
#include "nmformer/io.h"

typedef struct {
    const char *name;
    int img_size, patch, in_chans, dim, depth, heads;
    float mlp_ratio;
    int num_classes;
    float mean, std;     /* input normalisation: one scalar each (see nmf_model_config) */
    const char *hf_json; /* token families: config.json; NULL for a ViT */
} shape_entry;

/* ImageNet's channel means (0.485, 0.456, 0.406) and stds (0.229, 0.224, 0.225) averaged to one
 * scalar each: 0.449 ~ 0.45 and 0.226. Fashion-MNIST: the training split's mean and std. */
#define IMAGENET 224, 16, 3
#define IMAGENET_NORM 0.45f, 0.226f
#define FMNIST 28, 7, 1
#define FMNIST_NORM 0.2860f, 0.3530f
#define TOKEN 0, 0, 0, 0, 0, 0, 0.0f, 0, 0.0f, 0.0f

static const shape_entry shapes[] = {
    {"vit-fmnist", FMNIST, 64, 4, 4, 2.0f, 10, FMNIST_NORM, NULL}, /* `train` demo, the default */
    {"vit-fmnist-full", FMNIST, 128, 6, 4, 2.0f, 10, FMNIST_NORM, NULL}, /* `train --config full` */
    {"deit-tiny", IMAGENET, 192, 12, 3, 4.0f, 1000, IMAGENET_NORM, NULL},
    {"deit-small", IMAGENET, 384, 12, 6, 4.0f, 1000, IMAGENET_NORM, NULL},
    {"deit-base", IMAGENET, 768, 12, 12, 4.0f, 1000, IMAGENET_NORM, NULL},
    /* bert-base-uncased (BertModel with its pooler) */
    {"bert-base", TOKEN,
     "{\"model_type\":\"bert\",\"architectures\":[\"BertModel\"],\"hidden_size\":768,"
     "\"num_hidden_layers\":12,\"num_attention_heads\":12,\"intermediate_size\":3072,"
     "\"vocab_size\":30522,\"max_position_embeddings\":512,\"type_vocab_size\":2}"},
    /* the hub's gpt2 and gpt2-medium, as GPT2LMHeadModel (lm_head tied to wte) */
    {"gpt2", TOKEN,
     "{\"model_type\":\"gpt2\",\"architectures\":[\"GPT2LMHeadModel\"],\"n_embd\":768,"
     "\"n_layer\":12,\"n_head\":12,\"vocab_size\":50257,\"n_positions\":1024}"},
    {"gpt2-medium", TOKEN,
     "{\"model_type\":\"gpt2\",\"architectures\":[\"GPT2LMHeadModel\"],\"n_embd\":1024,"
     "\"n_layer\":24,\"n_head\":16,\"vocab_size\":50257,\"n_positions\":1024}"},
    /* TinyLlama-1.1B's shape: 32 heads of 64 over 4 kv heads (GQA 8:1), untied head */
    {"llama-1.1b", TOKEN,
     "{\"model_type\":\"llama\",\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":2048,"
     "\"num_hidden_layers\":22,\"num_attention_heads\":32,\"num_key_value_heads\":4,"
     "\"intermediate_size\":5632,\"vocab_size\":32000,\"max_position_embeddings\":2048,"
     "\"rms_norm_eps\":1e-05,\"rope_theta\":10000.0,\"tie_word_embeddings\":false}"},
    /* a small LLaMA at GPT-2 small's width: 12 heads of 64 over 4 kv heads (GQA 3:1) */
    {"llama-small", TOKEN,
     "{\"model_type\":\"llama\",\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":768,"
     "\"num_hidden_layers\":12,\"num_attention_heads\":12,\"num_key_value_heads\":4,"
     "\"intermediate_size\":2048,\"vocab_size\":32000,\"max_position_embeddings\":2048,"
     "\"rms_norm_eps\":1e-05,\"rope_theta\":10000.0,\"tie_word_embeddings\":false}"},
};
#define SHAPE_COUNT (sizeof shapes / sizeof shapes[0])

static nmf_status fill(nmf_model_config *c, const shape_entry *e) {
    memset(c, 0, sizeof *c);
    if (e->hf_json) {
        nmf_hf_config hf;
        nmf_status st = nmf_hf_config_parse(e->hf_json, strlen(e->hf_json), e->name, &hf);
        return st ? st : nmf_model_config_from_hf(c, &hf, NULL);
    }
    snprintf(c->arch, sizeof c->arch, "vit");
    c->img_size = e->img_size;
    c->patch = e->patch;
    c->in_chans = e->in_chans;
    c->dim = e->dim;
    c->depth = e->depth;
    c->heads = e->heads;
    c->mlp_ratio = e->mlp_ratio;
    c->num_classes = e->num_classes;
    c->mean = e->mean;
    c->std = e->std;
    return NMF_OK;
}

void nmf_model_config_default(nmf_model_config *c) { (void)fill(c, &shapes[0]); }

const char *nmf_model_shape_name(size_t i) { return i < SHAPE_COUNT ? shapes[i].name : NULL; }

nmf_status nmf_model_shape_config(const char *name, nmf_model_config *c) {
    char known[512] = "";
    for (size_t i = 0; i < SHAPE_COUNT; i++) {
        if (name && !strcmp(name, shapes[i].name)) return fill(c, &shapes[i]);
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", shapes[i].name);
    }
    return nmf_error(NMF_ERR_NOT_FOUND, "unknown shape '%s' (%s)", name ? name : "(null)", known);
}
