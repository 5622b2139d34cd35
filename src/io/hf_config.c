/* Hugging Face config.json -> nmf_hf_config.
 *
 * The three families spell the same quantities differently (GPT-2: n_embd, n_layer, n_head,
 * n_positions, n_inner, layer_norm_epsilon, activation_function), so one table names each
 * field's key per family and the rest of the parser is written once. Sizes are required; keys
 * the HF config classes give defaults to (eps, activation, kv heads, rope_theta, tying, labels)
 * take those defaults. Every error names the key as it is spelled in the file. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"

#define HF_MAX_CONFIG_FILE ((size_t)16 << 20)
#define HF_MAX_KEYS 4096

/* Limits: far above any released model (LLaMA-3 405B: hidden 16384, 126 layers, vocab 128256,
 * 131072 positions), far below what would overflow a tensor size. */
#define HF_MAX_HIDDEN 65536
#define HF_MAX_LAYERS 1024
#define HF_MAX_INTERMEDIATE (1 << 20)
#define HF_MAX_VOCAB (1 << 22)
#define HF_MAX_POSITIONS (1 << 24)
#define HF_MAX_TYPE_VOCAB 1024
#define HF_MAX_LABELS 65536

static const char *const model_type_names[NMF_HF_MODEL_TYPE_COUNT] = {"bert", "gpt2", "llama"};
_Static_assert(sizeof model_type_names / sizeof model_type_names[0] == NMF_HF_MODEL_TYPE_COUNT,
               "one name per model type");

static const char *const act_names[NMF_HF_ACT_COUNT] = {"gelu", "gelu_new", "relu", "silu"};
_Static_assert(sizeof act_names / sizeof act_names[0] == NMF_HF_ACT_COUNT, "one name per act");

/* Other spellings ACT2FN maps to the same function. */
static const struct {
    const char *name;
    nmf_hf_act act;
} act_aliases[] = {{"gelu_pytorch_tanh", NMF_HF_ACT_GELU_TANH},
                   {"gelu_fast", NMF_HF_ACT_GELU_TANH}, /* the same tanh formula, refactored */
                   {"swish", NMF_HF_ACT_SILU}};

const char *nmf_hf_model_type_name(nmf_hf_model_type t) {
    return (unsigned)t < NMF_HF_MODEL_TYPE_COUNT ? model_type_names[t] : "?";
}

const char *nmf_hf_act_name(nmf_hf_act a) {
    return (unsigned)a < NMF_HF_ACT_COUNT ? act_names[a] : "?";
}

/* Each field's key in one family's config.json, and the family's defaults (HF config classes:
 * BertConfig, GPT2Config, LlamaConfig). NULL: the family has no such key. */
typedef struct {
    const char *hidden, *layers, *heads, *kv_heads, *intermediate, *positions, *eps, *act;
    float eps_default;
    nmf_hf_act act_default;
    int tie_default;
} hf_family_keys;

static const hf_family_keys family_keys[NMF_HF_MODEL_TYPE_COUNT] = {
    [NMF_HF_BERT] = {"hidden_size", "num_hidden_layers", "num_attention_heads", NULL,
                     "intermediate_size", "max_position_embeddings", "layer_norm_eps",
                     "hidden_act", 1e-12f, NMF_HF_ACT_GELU, 1},
    [NMF_HF_GPT2] = {"n_embd", "n_layer", "n_head", NULL, "n_inner", "n_positions",
                     "layer_norm_epsilon", "activation_function", 1e-5f, NMF_HF_ACT_GELU_TANH, 1},
    [NMF_HF_LLAMA] = {"hidden_size", "num_hidden_layers", "num_attention_heads",
                      "num_key_value_heads", "intermediate_size", "max_position_embeddings",
                      "rms_norm_eps", "hidden_act", 1e-6f, NMF_HF_ACT_SILU, 0},
};

typedef struct {
    const cJSON *root;
    const char *what; /* the file, for messages */
} hf_json;

/* The value of key, or NULL when it is absent or JSON null (HF writes None as null). */
static const cJSON *hf_get(const hf_json *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j->root, key);
    return cJSON_IsNull(v) ? NULL : v;
}

static nmf_status hf_int(const hf_json *j, const char *key, int required, int def, int lo, int hi,
                         int *out) {
    const cJSON *v = hf_get(j, key);
    if (!v) {
        if (required)
            return nmf_error(NMF_ERR_NOT_FOUND, "%s: missing required key '%s'", j->what, key);
        *out = def;
        return NMF_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return nmf_error(NMF_ERR_FORMAT, "%s: key '%s' must be an integer", j->what, key);
    double d = v->valuedouble;
    if (d < lo || d > hi)
        return nmf_error(NMF_ERR_FORMAT, "%s: key '%s' is %.17g, outside [%d, %d]", j->what, key, d,
                         lo, hi);
    *out = (int)d;
    return NMF_OK;
}

/* A finite number in (lo, hi]. */
static nmf_status hf_real(const hf_json *j, const char *key, double def, double lo, double hi,
                          double *out) {
    const cJSON *v = hf_get(j, key);
    if (!v) {
        *out = def;
        return NMF_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return nmf_error(NMF_ERR_FORMAT, "%s: key '%s' must be a number", j->what, key);
    if (!(v->valuedouble > lo && v->valuedouble <= hi))
        return nmf_error(NMF_ERR_FORMAT, "%s: key '%s' is %.17g, outside (%g, %g]", j->what, key,
                         v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return NMF_OK;
}

static nmf_status hf_bool(const hf_json *j, const char *key, int def, int *out) {
    const cJSON *v = hf_get(j, key);
    if (!v) {
        *out = def;
        return NMF_OK;
    }
    if (!cJSON_IsBool(v))
        return nmf_error(NMF_ERR_FORMAT, "%s: key '%s' must be true or false", j->what, key);
    *out = cJSON_IsTrue(v);
    return NMF_OK;
}

/* NULL in *out when absent. */
static nmf_status hf_string(const hf_json *j, const char *key, const char **out) {
    const cJSON *v = hf_get(j, key);
    *out = NULL;
    if (!v) return NMF_OK;
    if (!cJSON_IsString(v))
        return nmf_error(NMF_ERR_FORMAT, "%s: key '%s' must be a string", j->what, key);
    *out = v->valuestring;
    return NMF_OK;
}

/* json.load keeps the last of duplicated keys and cJSON the first: refuse the ambiguity. */
static nmf_status unique_keys(const hf_json *j) {
    if (cJSON_GetArraySize(j->root) > HF_MAX_KEYS)
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: more than %d keys", j->what, HF_MAX_KEYS);
    for (const cJSON *a = j->root->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && !strcmp(a->string, b->string))
                return nmf_error(NMF_ERR_FORMAT, "%s: key '%s' appears twice", j->what, a->string);
    return NMF_OK;
}

static nmf_status parse_model_type(const hf_json *j, nmf_hf_model_type *out) {
    const char *s;
    nmf_status st = hf_string(j, "model_type", &s);
    if (st) return st;
    if (!s) return nmf_error(NMF_ERR_NOT_FOUND, "%s: missing required key 'model_type'", j->what);
    for (int i = 0; i < NMF_HF_MODEL_TYPE_COUNT; i++)
        if (!strcmp(s, model_type_names[i])) {
            *out = (nmf_hf_model_type)i;
            return NMF_OK;
        }
    return nmf_error(NMF_ERR_UNSUPPORTED,
                     "%s: key 'model_type' is '%.64s'; supported: bert, gpt2, llama", j->what, s);
}

static nmf_status parse_architecture(const hf_json *j, char *out, size_t cap) {
    const cJSON *v = hf_get(j, "architectures");
    out[0] = '\0';
    if (!v) return NMF_OK;
    if (!cJSON_IsArray(v))
        return nmf_error(NMF_ERR_FORMAT, "%s: key 'architectures' must be a list of strings",
                         j->what);
    for (const cJSON *e = v->child; e; e = e->next)
        if (!cJSON_IsString(e))
            return nmf_error(NMF_ERR_FORMAT, "%s: key 'architectures' must be a list of strings",
                             j->what);
    if (!v->child) return NMF_OK;
    if (strlen(v->child->valuestring) >= cap)
        return nmf_error(NMF_ERR_FORMAT, "%s: key 'architectures': name longer than %zu bytes",
                         j->what, cap - 1);
    strcpy(out, v->child->valuestring);
    return NMF_OK;
}

static nmf_status parse_act(const hf_json *j, const char *key, nmf_hf_act def, nmf_hf_act *out) {
    const char *s;
    nmf_status st = hf_string(j, key, &s);
    if (st) return st;
    *out = def;
    if (!s) return NMF_OK;
    for (int i = 0; i < NMF_HF_ACT_COUNT; i++)
        if (!strcmp(s, act_names[i])) {
            *out = (nmf_hf_act)i;
            return NMF_OK;
        }
    for (size_t i = 0; i < sizeof act_aliases / sizeof act_aliases[0]; i++)
        if (!strcmp(s, act_aliases[i].name)) {
            *out = act_aliases[i].act;
            return NMF_OK;
        }
    return nmf_error(NMF_ERR_UNSUPPORTED,
                     "%s: key '%s' is '%.64s'; supported: gelu, gelu_new, gelu_pytorch_tanh, "
                     "gelu_fast, relu, silu, swish",
                     j->what, key, s);
}

/* A natural number written in decimal without leading zeros, below n. */
static int label_index(const char *s, int n, int *out) {
    if (!s || !*s || (s[0] == '0' && s[1])) return 0;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return 0;
        v = v * 10 + (*s - '0');
        if (v >= n) return 0;
    }
    *out = (int)v;
    return 1;
}

/* PretrainedConfig: num_labels is len(id2label); id2label keys are "0" .. "n-1". */
static nmf_status parse_labels(const hf_json *j, int *out) {
    const cJSON *map = hf_get(j, "id2label");
    int n = 0;
    nmf_status st = hf_int(j, "num_labels", 0, 0, 1, HF_MAX_LABELS, &n);
    if (st) return st;
    if (!map) {
        *out = n ? n : 2; /* PretrainedConfig's default */
        return NMF_OK;
    }
    if (!cJSON_IsObject(map))
        return nmf_error(NMF_ERR_FORMAT, "%s: key 'id2label' must be an object", j->what);
    int count = cJSON_GetArraySize(map);
    if (count < 1 || count > HF_MAX_LABELS)
        return nmf_error(NMF_ERR_FORMAT, "%s: key 'id2label' has %d labels, outside [1, %d]",
                         j->what, count, HF_MAX_LABELS);
    if (n && n != count)
        return nmf_error(NMF_ERR_FORMAT, "%s: key 'num_labels' is %d but 'id2label' has %d labels",
                         j->what, n, count);
    unsigned char *seen = calloc((size_t)count, 1);
    if (!seen) return nmf_error(NMF_ERR_NOMEM, "%s: id2label", j->what);
    st = NMF_OK;
    for (const cJSON *e = map->child; e && !st; e = e->next) {
        int idx;
        if (!label_index(e->string, count, &idx) || seen[idx])
            st = nmf_error(NMF_ERR_FORMAT,
                           "%s: key 'id2label': '%.32s' is not one of \"0\" .. \"%d\" (each once)",
                           j->what, e->string ? e->string : "", count - 1);
        else if (!cJSON_IsString(e))
            st = nmf_error(NMF_ERR_FORMAT, "%s: key 'id2label': label %d is not a string", j->what,
                           idx);
        else
            seen[idx] = 1;
    }
    free(seen);
    if (!st) *out = count;
    return st;
}

/* Settings that change the math in ways no nmformer forward implements: refused, not ignored. */
static nmf_status refuse_unsupported(const hf_json *j, nmf_hf_model_type t, int head_dim) {
    const char *s;
    int flag;
    nmf_status st = NMF_OK;
    switch (t) {
    case NMF_HF_BERT:
        st = hf_string(j, "position_embedding_type", &s);
        if (!st && s && strcmp(s, "absolute"))
            return nmf_error(NMF_ERR_UNSUPPORTED,
                             "%s: key 'position_embedding_type' is '%.32s'; only 'absolute' is "
                             "supported",
                             j->what, s);
        if (!st) st = hf_bool(j, "is_decoder", 0, &flag);
        if (!st && flag)
            return nmf_error(NMF_ERR_UNSUPPORTED, "%s: key 'is_decoder': BERT as a decoder is "
                             "not supported", j->what);
        break;
    case NMF_HF_GPT2:
        st = hf_bool(j, "scale_attn_weights", 1, &flag);
        if (!st && !flag)
            return nmf_error(NMF_ERR_UNSUPPORTED, "%s: key 'scale_attn_weights' false is not "
                             "supported", j->what);
        if (!st) st = hf_bool(j, "scale_attn_by_inverse_layer_idx", 0, &flag);
        if (!st && flag)
            return nmf_error(NMF_ERR_UNSUPPORTED, "%s: key 'scale_attn_by_inverse_layer_idx' "
                             "true is not supported", j->what);
        break;
    case NMF_HF_LLAMA:
        if (hf_get(j, "rope_scaling"))
            return nmf_error(NMF_ERR_UNSUPPORTED,
                             "%s: key 'rope_scaling' is set; only unscaled RoPE is supported",
                             j->what);
        if (!st) st = hf_int(j, "head_dim", 0, head_dim, 1, HF_MAX_HIDDEN, &flag);
        if (!st && flag != head_dim)
            return nmf_error(NMF_ERR_UNSUPPORTED,
                             "%s: key 'head_dim' is %d, not hidden_size / num_attention_heads = %d",
                             j->what, flag, head_dim);
        break;
    default: break;
    }
    return st;
}

static nmf_status parse_fields(const hf_json *j, nmf_hf_config *c) {
    nmf_status st = unique_keys(j);
    if (!st) st = parse_model_type(j, &c->model_type);
    if (!st) st = parse_architecture(j, c->architecture, sizeof c->architecture);
    if (st) return st;
    const hf_family_keys *k = &family_keys[c->model_type];
    if (!st) st = hf_int(j, k->hidden, 1, 0, 1, HF_MAX_HIDDEN, &c->hidden_size);
    if (!st) st = hf_int(j, k->layers, 1, 0, 1, HF_MAX_LAYERS, &c->num_hidden_layers);
    if (!st) st = hf_int(j, k->heads, 1, 0, 1, HF_MAX_HIDDEN, &c->num_attention_heads);
    if (!st) st = hf_int(j, "vocab_size", 1, 0, 1, HF_MAX_VOCAB, &c->vocab_size);
    if (!st) st = hf_int(j, k->positions, 1, 0, 1, HF_MAX_POSITIONS, &c->max_position_embeddings);
    if (st) return st;
    /* GPT2MLP: inner_dim = n_inner if not None else 4 * hidden_size */
    int gpt2 = c->model_type == NMF_HF_GPT2;
    st = hf_int(j, k->intermediate, !gpt2, 4 * c->hidden_size, 1, HF_MAX_INTERMEDIATE,
                &c->intermediate_size);
    if (st) return st;
    if (c->hidden_size % c->num_attention_heads)
        return nmf_error(NMF_ERR_FORMAT, "%s: key '%s' (%d) does not divide '%s' (%d)", j->what,
                         k->heads, c->num_attention_heads, k->hidden, c->hidden_size);
    c->head_dim = c->hidden_size / c->num_attention_heads;
    c->num_key_value_heads = c->num_attention_heads;
    if (k->kv_heads) { /* LlamaConfig: None -> num_attention_heads */
        st = hf_int(j, k->kv_heads, 0, c->num_attention_heads, 1, HF_MAX_HIDDEN,
                    &c->num_key_value_heads);
        if (st) return st;
        if (c->num_attention_heads % c->num_key_value_heads)
            return nmf_error(NMF_ERR_FORMAT, "%s: key '%s' (%d) does not divide '%s' (%d)",
                             j->what, k->kv_heads, c->num_key_value_heads, k->heads,
                             c->num_attention_heads);
    }
    if (c->model_type == NMF_HF_LLAMA && c->head_dim % 2)
        return nmf_error(NMF_ERR_FORMAT,
                         "%s: key '%s': head size %d / %d = %d is odd; rotary embeddings rotate "
                         "pairs",
                         j->what, k->heads, c->hidden_size, c->num_attention_heads, c->head_dim);
    if (c->model_type == NMF_HF_BERT)
        st = hf_int(j, "type_vocab_size", 0, 2, 1, HF_MAX_TYPE_VOCAB, &c->type_vocab_size);
    double eps = 0;
    /* above FLT_MIN: a smaller eps (found by fuzz_hf_config: 1e-46) rounds to 0 or a subnormal
     * as the float the norms use */
    if (!st) st = hf_real(j, k->eps, k->eps_default, (double)FLT_MIN, 0.5, &eps);
    c->norm_eps = (float)eps;
    if (!st && c->model_type == NMF_HF_LLAMA)
        st = hf_real(j, "rope_theta", 10000.0, 1.0, 1e12, &c->rope_theta);
    if (!st) st = hf_bool(j, "tie_word_embeddings", k->tie_default, &c->tie_word_embeddings);
    if (!st) st = parse_act(j, k->act, k->act_default, &c->hidden_act);
    c->attention_bias = c->mlp_bias = 1;
    if (!st && c->model_type == NMF_HF_LLAMA) {
        st = hf_bool(j, "attention_bias", 0, &c->attention_bias);
        if (!st) st = hf_bool(j, "mlp_bias", 0, &c->mlp_bias);
    }
    if (!st) st = parse_labels(j, &c->num_labels);
    if (!st) st = refuse_unsupported(j, c->model_type, c->head_dim);
    return st;
}

nmf_status nmf_hf_config_parse(const char *json, size_t len, const char *what, nmf_hf_config *out) {
    memset(out, 0, sizeof *out);
    if (!what) what = "config.json";
    if (!json) return nmf_error(NMF_ERR_INVALID_ARG, "%s: no text", what);
    cJSON *root = nmf_io_parse_json(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return nmf_error(NMF_ERR_FORMAT, "%s: not a JSON object", what);
    }
    hf_json j = {root, what};
    nmf_hf_config c;
    memset(&c, 0, sizeof c);
    nmf_status st = parse_fields(&j, &c);
    cJSON_Delete(root);
    if (!st) *out = c;
    return st;
}

nmf_status nmf_hf_config_read(const char *dir, nmf_hf_config *out) {
    memset(out, 0, sizeof *out);
    char *path = nmf_io_path_join(dir, "config.json");
    if (!path) return nmf_error(NMF_ERR_NOMEM, "%s: path", dir ? dir : "");
    uint8_t *text = NULL;
    size_t size = 0;
    nmf_status st = nmf_read_file(path, HF_MAX_CONFIG_FILE, &text, &size);
    if (!st) st = nmf_hf_config_parse((const char *)text, size, path, out);
    free(text);
    free(path);
    return st;
}

/* The class transformers instantiates for this family and head. */
static const char *architecture_of(const nmf_hf_config *c) {
    static const char *const names[NMF_HF_MODEL_TYPE_COUNT][NMF_HF_HEAD_COUNT] = {
        [NMF_HF_BERT] = {"BertModel", "BertForMaskedLM", "BertForSequenceClassification"},
        [NMF_HF_GPT2] = {"GPT2Model", "GPT2LMHeadModel", "GPT2ForSequenceClassification"},
        [NMF_HF_LLAMA] = {"LlamaModel", "LlamaForCausalLM", "LlamaForSequenceClassification"},
    };
    if (c->architecture[0]) return c->architecture;
    return names[c->model_type][c->head];
}

/* The double with the shortest decimal form that is still f as a float: 1e-05f is
 * 9.99999974737875e-06 as a double, and a config.json should say 1e-05, as HF's does. */
static double float_decimal(float f) {
    char buf[32];
    for (int digits = 1; digits < 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

char *nmf_hf_config_to_json(const nmf_hf_config *c) {
    if (!c || (unsigned)c->model_type >= NMF_HF_MODEL_TYPE_COUNT) return NULL;
    const hf_family_keys *k = &family_keys[c->model_type];
    cJSON *root = cJSON_CreateObject(), *arch = cJSON_CreateArray();
    if (!root || !arch) {
        cJSON_Delete(root);
        cJSON_Delete(arch);
        return NULL;
    }
    cJSON_AddItemToObject(root, "architectures", arch);
    cJSON_AddItemToArray(arch, cJSON_CreateString(architecture_of(c)));
    cJSON_AddStringToObject(root, "model_type", model_type_names[c->model_type]);
    cJSON_AddNumberToObject(root, k->hidden, c->hidden_size);
    cJSON_AddNumberToObject(root, k->layers, c->num_hidden_layers);
    cJSON_AddNumberToObject(root, k->heads, c->num_attention_heads);
    if (k->kv_heads) cJSON_AddNumberToObject(root, k->kv_heads, c->num_key_value_heads);
    cJSON_AddNumberToObject(root, k->intermediate, c->intermediate_size);
    cJSON_AddNumberToObject(root, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(root, k->positions, c->max_position_embeddings);
    cJSON_AddNumberToObject(root, k->eps, float_decimal(c->norm_eps));
    cJSON_AddStringToObject(root, k->act, act_names[c->hidden_act]);
    cJSON_AddBoolToObject(root, "tie_word_embeddings", c->tie_word_embeddings);
    if (c->model_type == NMF_HF_BERT) cJSON_AddNumberToObject(root, "type_vocab_size", c->type_vocab_size);
    if (c->model_type == NMF_HF_LLAMA) {
        cJSON_AddNumberToObject(root, "rope_theta", c->rope_theta);
        cJSON_AddBoolToObject(root, "attention_bias", c->attention_bias);
        cJSON_AddBoolToObject(root, "mlp_bias", c->mlp_bias);
    }
    /* transformers derives num_labels from id2label, so that is what it writes */
    cJSON *labels = cJSON_AddObjectToObject(root, "id2label");
    for (int i = 0; labels && i < c->num_labels; i++) {
        char key[16], value[24];
        snprintf(key, sizeof key, "%d", i);
        snprintf(value, sizeof value, "LABEL_%d", i);
        cJSON_AddStringToObject(labels, key, value);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}
