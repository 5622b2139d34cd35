/* The token families' model config: which family, head and tensor names a Hugging Face
 * checkpoint has. config.json says the sizes; the tensor names say how the checkpoint was saved
 * (BertForSequenceClassification prefixes "bert.", GPT2LMHeadModel "transformer.", the hub's
 * original gpt2 nothing), so a model written back keeps the names it came with. */
#include <stdio.h>
#include <string.h>

#include "nmformer/config.h"

static const char *const arch_names[NMF_HF_MODEL_TYPE_COUNT] = {"bert", "gpt2", "llama"};
/* the prefix each family's task models put before the base model's tensors */
static const char *const family_prefix[NMF_HF_MODEL_TYPE_COUNT] = {"bert.", "transformer.", "model."};

int nmf_model_is_token(const nmf_model_config *c) {
    for (int t = 0; c && t < NMF_HF_MODEL_TYPE_COUNT; t++)
        if (!strcmp(c->arch, arch_names[t])) return 1;
    return 0;
}

int nmf_model_layers(const nmf_model_config *c) {
    return nmf_model_is_token(c) ? c->hf.num_hidden_layers : c->depth;
}

static int has_prefix(const nmf_tensor_set *s, const char *prefix) {
    for (size_t i = 0; s && i < s->count; i++)
        if (!strncmp(s->items[i].name, prefix, strlen(prefix))) return 1;
    return 0;
}

static int has(const nmf_tensor_set *s, const char *prefix, const char *name) {
    char full[128];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return s && nmf_tensors_find(s, full) != NULL;
}

/* The head an architecture name implies; -1 for one we do not implement. */
static int head_of_architecture(nmf_hf_model_type t, const char *a) {
    static const struct {
        nmf_hf_model_type type;
        const char *name;
        nmf_hf_head head;
    } known[] = {
        {NMF_HF_BERT, "BertModel", NMF_HF_HEAD_NONE},
        {NMF_HF_BERT, "BertForSequenceClassification", NMF_HF_HEAD_CLASSIFIER},
        {NMF_HF_GPT2, "GPT2Model", NMF_HF_HEAD_NONE},
        {NMF_HF_GPT2, "GPT2LMHeadModel", NMF_HF_HEAD_LM},
        {NMF_HF_LLAMA, "LlamaModel", NMF_HF_HEAD_NONE},
        {NMF_HF_LLAMA, "LlamaForCausalLM", NMF_HF_HEAD_LM},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].type == t && !strcmp(known[i].name, a)) return (int)known[i].head;
    return -1;
}

/* GPT-2 checkpoints saved by older transformers hold the causal-mask buffers h.{i}.attn.bias
 * (1, 1, n_positions, n_positions) and h.{i}.attn.masked_bias: constants, not parameters. */
static void drop_gpt2_buffers(nmf_tensor_set *s, const char *prefix, int layers) {
    char name[128];
    for (int l = 0; s && l < layers; l++) {
        snprintf(name, sizeof name, "%sh.%d.attn.bias", prefix, l);
        nmf_tensor *t = nmf_tensors_find(s, name);
        if (t && t->ndim == 4) nmf_tensors_remove(s, name);
        snprintf(name, sizeof name, "%sh.%d.attn.masked_bias", prefix, l);
        nmf_tensors_remove(s, name);
    }
}

/* A tied head stored anyway: dropped when it is the embedding, refused when it is not. */
static nmf_status drop_tied_head(nmf_tensor_set *s, const char *embed_name) {
    nmf_tensor *head = nmf_tensors_find(s, "lm_head.weight"), *embed = nmf_tensors_find(s, embed_name);
    if (!head) return NMF_OK;
    /* both f32, or both kept 16-bit in one dtype (nmf_load_model_keep16) */
    int same = embed && head->numel == embed->numel &&
               ((head->data && embed->data &&
                 !memcmp(head->data, embed->data, head->numel * sizeof(float))) ||
                (head->data16 && embed->data16 && head->stored_dtype == embed->stored_dtype &&
                 !memcmp(head->data16, embed->data16, head->numel * sizeof(uint16_t))));
    if (!same)
        return nmf_error(NMF_ERR_FORMAT, "tensor 'lm_head.weight' differs from '%s' but "
                         "config.json says tie_word_embeddings", embed_name);
    nmf_tensors_remove(s, "lm_head.weight");
    return NMF_OK;
}

nmf_status nmf_model_config_from_hf(nmf_model_config *c, const nmf_hf_config *hf, nmf_tensor_set *s) {
    if (!c || !hf || (unsigned)hf->model_type >= NMF_HF_MODEL_TYPE_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_model_config_from_hf: bad argument");
    const nmf_hf_model_type t = hf->model_type;
    memset(c, 0, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "%s", arch_names[t]);
    c->hf = *hf;
    nmf_hf_config *h = &c->hf;
    int arch_head = -1;
    if (hf->architecture[0] && (arch_head = head_of_architecture(t, hf->architecture)) < 0)
        return nmf_error(NMF_ERR_UNSUPPORTED, "config.json: architecture '%s' is not supported "
                         "(%s)", hf->architecture,
                         t == NMF_HF_BERT ? "BertModel, BertForSequenceClassification"
                         : t == NMF_HF_GPT2 ? "GPT2Model, GPT2LMHeadModel"
                                            : "LlamaModel, LlamaForCausalLM");
    if (!s) { /* names as HF's save_pretrained writes them for that architecture */
        h->head = arch_head < 0 ? NMF_HF_HEAD_NONE : (nmf_hf_head)arch_head;
        snprintf(h->prefix, sizeof h->prefix, "%s", h->head == NMF_HF_HEAD_NONE ? "" : family_prefix[t]);
        h->pooler = t == NMF_HF_BERT;
        return NMF_OK;
    }
    snprintf(h->prefix, sizeof h->prefix, "%s", has_prefix(s, family_prefix[t]) ? family_prefix[t] : "");
    switch (t) {
    case NMF_HF_BERT:
        h->pooler = has(s, h->prefix, "pooler.dense.weight");
        h->head = has(s, "", "classifier.weight") ? NMF_HF_HEAD_CLASSIFIER : NMF_HF_HEAD_NONE;
        break;
    case NMF_HF_GPT2:
        drop_gpt2_buffers(s, h->prefix, h->num_hidden_layers);
        /* the tied head is usually not stored: the architecture (or the LM model's prefix) says
         * whether there is one */
        h->head = arch_head >= 0 ? (nmf_hf_head)arch_head
                  : (h->prefix[0] || has(s, "", "lm_head.weight")) ? NMF_HF_HEAD_LM : NMF_HF_HEAD_NONE;
        break;
    case NMF_HF_LLAMA:
        h->head = arch_head >= 0 ? (nmf_hf_head)arch_head
                  : (h->prefix[0] || has(s, "", "lm_head.weight")) ? NMF_HF_HEAD_LM : NMF_HF_HEAD_NONE;
        break;
    default: break;
    }
    if (arch_head >= 0 && (nmf_hf_head)arch_head != h->head)
        return nmf_error(NMF_ERR_FORMAT, "config.json: architecture '%s' but the weights %s",
                         hf->architecture, h->head == NMF_HF_HEAD_CLASSIFIER
                                               ? "hold 'classifier.weight'"
                                               : "hold no 'classifier.weight'");
    if (h->head == NMF_HF_HEAD_LM && h->tie_word_embeddings) {
        char embed[64];
        snprintf(embed, sizeof embed, "%s%s", h->prefix, t == NMF_HF_LLAMA ? "embed_tokens.weight" : "wte.weight");
        return drop_tied_head(s, embed);
    }
    return NMF_OK;
}
