/* Hugging Face model folders: every fixture of tests/fixtures/hf (written by
 * tests/ref/make_hf_fixtures.py) loads with the config and tensors its manifest states (shape and
 * CRC-32 of every tensor); sharded folders equal their single-file twins bit for bit; hostile
 * config.json values (one per rule) and hostile shard indexes are refused with the key or the
 * tensor named. */
#include <cjson/cJSON.h>
#include <sys/stat.h>

#include "io_test_util.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* tests/fixtures/hf/<name> under the source tree (4 rotating static buffers). */
static char *fixture_dir(const char *name) {
    static char buf[4][4200];
    static int next;
    char *b = buf[next++ & 3];
    const char *root = test_source_path("tests/fixtures/hf");
    size_t n = strlen(root);
    memcpy(b, root, n + 1);
    snprintf(b + n, sizeof buf[0] - n, "/%s", name);
    return b;
}

static cJSON *read_json(const char *path) {
    size_t size;
    uint8_t *text = read_bytes(path, &size);
    cJSON *j = cJSON_ParseWithLength((const char *)text, size);
    free(text);
    if (!j) {
        fprintf(stderr, "%s: not JSON\n", path);
        exit(1);
    }
    return j;
}

static uint32_t tensor_crc(const nmf_tensor *t) {
    return nmf_crc32_update(0, (const uint8_t *)t->data, t->numel * sizeof(float));
}

/* Unlinks every file of the scratch folder (it holds no directories). */
static void clear_tmp(void) {
    DIR *d = opendir(tmp_dir());
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(tmp_path(e->d_name));
    closedir(d);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

/* The two sets hold the same names, shapes and values, bit for bit. */
static int same_tensors(const nmf_tensor_set *a, const nmf_tensor_set *b) {
    if (a->count != b->count) return 0;
    for (size_t i = 0; i < a->count; i++) {
        const nmf_tensor *x = &a->items[i], *y = nmf_tensors_find(b, x->name);
        if (!y || x->ndim != y->ndim || x->numel != y->numel ||
            memcmp(x->shape, y->shape, sizeof x->shape) ||
            memcmp(x->data, y->data, x->numel * sizeof(float)))
            return 0;
    }
    return 1;
}

/* ---- fixtures --------------------------------------------------------------------------- */

static void check_config(const char *name, const nmf_hf_config *c, const cJSON *want) {
    const char *type = cJSON_GetObjectItem(want, "model_type")->valuestring;
    CHECK_MSG(!strcmp(nmf_hf_model_type_name(c->model_type), type), "%s: model_type %s", name,
              nmf_hf_model_type_name(c->model_type));
    const struct {
        const char *key;
        int value;
    } ints[] = {{"hidden_size", c->hidden_size},
                {"num_hidden_layers", c->num_hidden_layers},
                {"num_attention_heads", c->num_attention_heads},
                {"num_key_value_heads", c->num_key_value_heads},
                {"intermediate_size", c->intermediate_size},
                {"vocab_size", c->vocab_size},
                {"max_position_embeddings", c->max_position_embeddings},
                {"type_vocab_size", c->type_vocab_size},
                {"tie_word_embeddings", c->tie_word_embeddings},
                {"num_labels", c->num_labels}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        const cJSON *v = cJSON_GetObjectItem(want, ints[i].key);
        CHECK_MSG(v && v->valuedouble == ints[i].value, "%s: %s = %d, manifest %g", name,
                  ints[i].key, ints[i].value, v ? v->valuedouble : -1.0);
    }
    CHECK(c->head_dim * c->num_attention_heads == c->hidden_size);
    CHECK_MSG(c->norm_eps == (float)cJSON_GetObjectItem(want, "norm_eps")->valuedouble,
              "%s: norm_eps %g", name, c->norm_eps);
    CHECK_MSG(c->rope_theta == cJSON_GetObjectItem(want, "rope_theta")->valuedouble,
              "%s: rope_theta %g", name, c->rope_theta);
    CHECK_MSG(!strcmp(nmf_hf_act_name(c->hidden_act),
                      cJSON_GetObjectItem(want, "hidden_act")->valuestring),
              "%s: act %s", name, nmf_hf_act_name(c->hidden_act));
    CHECK(c->architecture[0] != '\0');
}

static char *join(const char *dir, const char *file) {
    static char buf[4400];
    snprintf(buf, sizeof buf, "%s/%s", dir, file);
    return buf;
}

/* The fixture's .npy files fit its config: ids in [0, vocab), outputs [B, T, vocab] logits,
 * [B, labels] class logits or [B, T, hidden] states, generations that extend the prompt. */
static void check_arrays(const char *name, const char *dir, const nmf_hf_config *c, const cJSON *fx) {
    nmf_id_array ids, gen;
    CHECK_OK(nmf_npy_read_ids(join(dir, "input_ids.npy"), &ids));
    int in_vocab = ids.ndim == 2 && ids.numel > 0;
    for (size_t i = 0; in_vocab && i < ids.numel; i++) in_vocab = ids.data[i] >= 0 && ids.data[i] < c->vocab_size;
    CHECK_MSG(in_vocab, "%s: input_ids", name);
    int64_t B = ids.shape[0], T = ids.shape[1];
    const cJSON *outs = cJSON_GetObjectItem(fx, "outputs"), *o;
    cJSON_ArrayForEach(o, outs) {
        char file[64];
        snprintf(file, sizeof file, "%s.npy", o->string);
        nmf_array y;
        CHECK_OK(nmf_npy_read(join(dir, file), &y));
        int64_t last = !strcmp(o->string, "logits")
                           ? (y.ndim == 3 ? c->vocab_size : c->num_labels)
                           : c->hidden_size;
        int ok = y.ndim >= 2 && y.shape[0] == B && y.shape[y.ndim - 1] == last &&
                 (y.ndim == 2 || y.shape[1] == T) && y.ndim == cJSON_GetArraySize(o);
        for (size_t i = 0; ok && i < y.numel; i++) ok = isfinite(y.data[i]);
        CHECK_MSG(ok, "%s: %s does not fit the config", name, file);
        nmf_array_free(&y);
    }
    const cJSON *g = cJSON_GetObjectItem(fx, "generate");
    if (cJSON_IsArray(g)) {
        CHECK_OK(nmf_npy_read_ids(join(dir, "generate.npy"), &gen));
        int ok = gen.ndim == 2 && gen.shape[0] == B && gen.shape[1] > T;
        for (int64_t b = 0; ok && b < B; b++)
            for (int64_t t = 0; ok && t < gen.shape[1]; t++) {
                int64_t v = gen.data[b * gen.shape[1] + t];
                ok = t < T ? v == ids.data[b * T + t] : v >= 0 && v < c->vocab_size;
            }
        CHECK_MSG(ok, "%s: generate.npy does not extend input_ids", name);
        nmf_id_array_free(&gen);
    }
    nmf_id_array_free(&ids);
}

static void fixtures(void) {
    cJSON *manifest = read_json(test_source_path("tests/fixtures/hf/manifest.json"));
    const cJSON *list = cJSON_GetObjectItem(manifest, "fixtures"), *fx;
    CHECK(cJSON_GetArraySize(list) >= 12);
    int families[NMF_HF_MODEL_TYPE_COUNT] = {0}, sharded = 0;
    cJSON_ArrayForEach(fx, list) {
        const char *name = cJSON_GetObjectItem(fx, "name")->valuestring;
        const char *dir = fixture_dir(name);
        nmf_hf_config c;
        nmf_tensor_set s;
        nmf_status st = nmf_hf_folder_read(dir, &c, &s);
        CHECK_MSG(st == NMF_OK, "%s: %s", name, nmf_last_error());
        if (st) continue;
        families[c.model_type]++;
        sharded += cJSON_GetObjectItem(fx, "shards")->valueint > 1;
        check_config(name, &c, cJSON_GetObjectItem(fx, "config"));
        const cJSON *tensors = cJSON_GetObjectItem(fx, "tensors"), *t;
        CHECK_MSG(s.count == (size_t)cJSON_GetArraySize(tensors), "%s: %zu tensors", name, s.count);
        cJSON_ArrayForEach(t, tensors) {
            const char *tname = cJSON_GetArrayItem(t, 0)->valuestring;
            const cJSON *shape = cJSON_GetArrayItem(t, 1);
            const nmf_tensor *x = nmf_tensors_find(&s, tname);
            CHECK_MSG(x != NULL, "%s: tensor %s missing", name, tname);
            if (!x) continue;
            int same_shape = x->ndim == cJSON_GetArraySize(shape);
            for (int d = 0; same_shape && d < x->ndim; d++)
                same_shape = x->shape[d] == (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
            CHECK_MSG(same_shape, "%s: %s shape", name, tname);
            CHECK_MSG(x->data && tensor_crc(x) == (uint32_t)cJSON_GetArrayItem(t, 2)->valuedouble,
                      "%s: %s values differ from PyTorch's (crc %08x)", name, tname,
                      x->data ? tensor_crc(x) : 0);
        }
        check_arrays(name, dir, &c, fx);
        /* the stored dtype of every tensor is the fixture's */
        nmf_tensor_set s2;
        nmf_dtype *dtypes = NULL, want;
        CHECK_OK(nmf_dtype_parse(cJSON_GetObjectItem(fx, "dtype")->valuestring, &want));
        CHECK_OK(nmf_hf_weights_read(dir, &s2, &dtypes));
        int all = dtypes != NULL && same_tensors(&s, &s2);
        for (size_t i = 0; all && i < s2.count; i++) all = dtypes[i] == want;
        CHECK_MSG(all, "%s: dtypes or a second read differ", name);
        CHECK(nmf_tensors_get_meta(&s2, "format") && !strcmp(nmf_tensors_get_meta(&s2, "format"), "pt"));
        free(dtypes);
        nmf_tensors_free(&s2);
        nmf_tensors_free(&s);
    }
    for (int f = 0; f < NMF_HF_MODEL_TYPE_COUNT; f++)
        CHECK_MSG(families[f] >= 3, "%s: %d fixtures", nmf_hf_model_type_name(f), families[f]);
    CHECK(sharded >= 1);
    cJSON_Delete(manifest);
}

/* The committed sharded LLaMA equals its single-file twin; and a BERT split here into three F16
 * shards by the library's own writer reads back as the single file, dtypes included. */
static void sharded_equals_single(void) {
    nmf_tensor_set a, b;
    nmf_hf_config ca, cb;
    CHECK_OK(nmf_hf_folder_read(fixture_dir("llama_gqa6x2"), &ca, &a));
    CHECK_OK(nmf_hf_folder_read(fixture_dir("llama_gqa6x2_sharded"), &cb, &b));
    CHECK(a.count == 21 && same_tensors(&a, &b));
    CHECK(ca.model_type == cb.model_type && ca.hidden_size == cb.hidden_size &&
          ca.num_key_value_heads == cb.num_key_value_heads && ca.vocab_size == cb.vocab_size);
    nmf_tensors_free(&a);
    nmf_tensors_free(&b);

    nmf_dtype *dt = NULL, *dt2 = NULL;
    CHECK_OK(nmf_hf_weights_read(fixture_dir("bert_long_f16"), &a, &dt));
    clear_tmp();
    cJSON *index = cJSON_CreateObject();
    cJSON *map = cJSON_AddObjectToObject(index, "weight_map");
    for (int s = 0; s < 3; s++) {
        nmf_tensor_set part;
        nmf_tensors_init(&part);
        char file[64];
        snprintf(file, sizeof file, "model-%05d-of-00003.safetensors", s + 1);
        for (size_t i = (size_t)s; i < a.count; i += 3) { /* interleaved: shards hold every third */
            const nmf_tensor *t = &a.items[i];
            CHECK_OK(nmf_tensors_add_dense(&part, t->name, t->ndim, t->shape, t->data, NULL));
            cJSON_AddStringToObject(map, t->name, file);
        }
        CHECK_OK(nmf_safetensors_write(tmp_path(file), &part, NMF_DTYPE_F16));
        nmf_tensors_free(&part);
    }
    char *text = cJSON_Print(index);
    write_text(tmp_path("model.safetensors.index.json"), text);
    free(text);
    cJSON_Delete(index);
    CHECK_OK(nmf_hf_weights_read(tmp_dir(), &b, &dt2));
    CHECK(a.count == 23 && same_tensors(&a, &b));
    int f16 = dt && dt2;
    for (size_t i = 0; f16 && i < b.count; i++) f16 = dt2[i] == NMF_DTYPE_F16 && dt[i] == NMF_DTYPE_F16;
    CHECK(f16);
    free(dt);
    free(dt2);
    nmf_tensors_free(&a);
    nmf_tensors_free(&b);
    clear_tmp();
}

/* ---- hostile config.json ---------------------------------------------------------------- */

static const char *const base_configs[NMF_HF_MODEL_TYPE_COUNT] = {
    "{\"model_type\":\"bert\",\"architectures\":[\"BertForSequenceClassification\"],"
    "\"hidden_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":3,\"intermediate_size\":48,"
    "\"vocab_size\":101,\"max_position_embeddings\":40,\"type_vocab_size\":2,"
    "\"layer_norm_eps\":1e-12,\"hidden_act\":\"gelu\",\"id2label\":{\"0\":\"A\",\"1\":\"B\",\"2\":\"C\"}}",
    "{\"model_type\":\"gpt2\",\"architectures\":[\"GPT2LMHeadModel\"],\"n_embd\":24,\"n_layer\":2,"
    "\"n_head\":3,\"n_positions\":32,\"vocab_size\":67,\"n_inner\":null,\"layer_norm_epsilon\":1e-5,"
    "\"activation_function\":\"gelu_new\"}",
    "{\"model_type\":\"llama\",\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":48,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":6,\"num_key_value_heads\":2,"
    "\"intermediate_size\":64,\"vocab_size\":83,\"max_position_embeddings\":64,"
    "\"rms_norm_eps\":1e-6,\"rope_theta\":10000.0,\"tie_word_embeddings\":false,"
    "\"hidden_act\":\"silu\",\"rope_scaling\":null}",
};

/* base config of family f with key set to the JSON text value (NULL: key removed); parsed. */
static nmf_status parse_edited(nmf_hf_model_type f, const char *key, const char *value,
                               nmf_hf_config *c) {
    cJSON *j = cJSON_Parse(base_configs[f]);
    cJSON_DeleteItemFromObjectCaseSensitive(j, key);
    if (value) cJSON_AddItemToObject(j, key, cJSON_Parse(value));
    char *text = cJSON_PrintUnformatted(j);
    nmf_status st = nmf_hf_config_parse(text, strlen(text), "cfg.json", c);
    free(text);
    cJSON_Delete(j);
    return st;
}

typedef struct {
    nmf_hf_model_type family;
    const char *key, *value; /* value NULL: key deleted */
    nmf_status want;
    const char *needle; /* NULL: "'<key>'" */
} config_case;

static const config_case bad_configs[] = {
    {NMF_HF_BERT, "model_type", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_BERT, "model_type", "\"mistral\"", NMF_ERR_UNSUPPORTED, "mistral"},
    {NMF_HF_BERT, "model_type", "3", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "hidden_size", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_BERT, "hidden_size", "null", NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_BERT, "hidden_size", "0", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "hidden_size", "-24", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "hidden_size", "24.5", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "hidden_size", "\"24\"", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "hidden_size", "true", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "hidden_size", "1e300", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "hidden_size", "131072", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "num_hidden_layers", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_BERT, "num_hidden_layers", "100000", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "num_attention_heads", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_BERT, "num_attention_heads", "5", NMF_ERR_FORMAT, "'num_attention_heads' (5) does not divide 'hidden_size' (24)"},
    {NMF_HF_BERT, "num_attention_heads", "0", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "intermediate_size", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_BERT, "intermediate_size", "4194304", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "vocab_size", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_BERT, "vocab_size", "0", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "vocab_size", "4194305", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "vocab_size", "1e12", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "max_position_embeddings", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_BERT, "max_position_embeddings", "-1", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "type_vocab_size", "0", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "layer_norm_eps", "0", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "layer_norm_eps", "-1e-5", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "layer_norm_eps", "\"1e-12\"", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "hidden_act", "\"mish\"", NMF_ERR_UNSUPPORTED, NULL},
    {NMF_HF_BERT, "hidden_act", "7", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "id2label", "{\"0\":\"A\",\"2\":\"C\"}", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "id2label", "{\"0\":\"A\",\"00\":\"B\"}", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "id2label", "{\"0\":\"A\",\"-1\":\"B\"}", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "id2label", "{}", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "id2label", "[\"A\"]", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "id2label", "{\"0\":1}", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "num_labels", "2", NMF_ERR_FORMAT, "'num_labels' is 2 but 'id2label' has 3"},
    {NMF_HF_BERT, "num_labels", "0", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "position_embedding_type", "\"relative_key\"", NMF_ERR_UNSUPPORTED, NULL},
    {NMF_HF_BERT, "is_decoder", "true", NMF_ERR_UNSUPPORTED, NULL},
    {NMF_HF_BERT, "architectures", "\"BertModel\"", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "architectures", "[1]", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "tie_word_embeddings", "1", NMF_ERR_FORMAT, NULL},
    {NMF_HF_GPT2, "n_embd", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_GPT2, "n_layer", "0", NMF_ERR_FORMAT, NULL},
    {NMF_HF_GPT2, "n_head", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_GPT2, "n_head", "5", NMF_ERR_FORMAT, "'n_head' (5) does not divide 'n_embd' (24)"},
    {NMF_HF_GPT2, "n_positions", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_GPT2, "n_inner", "0", NMF_ERR_FORMAT, NULL},
    {NMF_HF_GPT2, "vocab_size", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_GPT2, "layer_norm_epsilon", "1", NMF_ERR_FORMAT, NULL},
    {NMF_HF_GPT2, "activation_function", "\"quick_gelu\"", NMF_ERR_UNSUPPORTED, NULL},
    {NMF_HF_GPT2, "scale_attn_weights", "false", NMF_ERR_UNSUPPORTED, NULL},
    {NMF_HF_GPT2, "scale_attn_by_inverse_layer_idx", "true", NMF_ERR_UNSUPPORTED, NULL},
    {NMF_HF_LLAMA, "num_key_value_heads", "4", NMF_ERR_FORMAT, "'num_key_value_heads' (4) does not divide 'num_attention_heads' (6)"},
    {NMF_HF_LLAMA, "num_key_value_heads", "12", NMF_ERR_FORMAT, NULL},
    {NMF_HF_LLAMA, "num_key_value_heads", "0", NMF_ERR_FORMAT, NULL},
    {NMF_HF_LLAMA, "num_attention_heads", "16", NMF_ERR_FORMAT, "odd"}, /* head size 3 */
    {NMF_HF_LLAMA, "rope_theta", "0", NMF_ERR_FORMAT, NULL},
    {NMF_HF_LLAMA, "rope_theta", "\"1e4\"", NMF_ERR_FORMAT, NULL},
    {NMF_HF_LLAMA, "rms_norm_eps", "-0.0", NMF_ERR_FORMAT, NULL},
    /* regression (fuzz_hf_config): positive as a double, 0 as the float the norms use */
    {NMF_HF_LLAMA, "rms_norm_eps", "1e-46", NMF_ERR_FORMAT, NULL},
    {NMF_HF_BERT, "layer_norm_eps", "1e-87", NMF_ERR_FORMAT, NULL},
    {NMF_HF_LLAMA, "rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8.0}", NMF_ERR_UNSUPPORTED, NULL},
    {NMF_HF_LLAMA, "head_dim", "16", NMF_ERR_UNSUPPORTED, NULL},
    {NMF_HF_LLAMA, "intermediate_size", NULL, NMF_ERR_NOT_FOUND, NULL},
    {NMF_HF_LLAMA, "intermediate_size", "2000000", NMF_ERR_FORMAT, NULL},
    {NMF_HF_LLAMA, "attention_bias", "\"no\"", NMF_ERR_FORMAT, NULL},
    {NMF_HF_LLAMA, "vocab_size", "-83", NMF_ERR_FORMAT, NULL},
};

static void hostile_configs(void) {
    nmf_hf_config c;
    for (int f = 0; f < NMF_HF_MODEL_TYPE_COUNT; f++) {
        CHECK_OK(nmf_hf_config_parse(base_configs[f], strlen(base_configs[f]), "cfg.json", &c));
        CHECK(c.model_type == (nmf_hf_model_type)f);
    }
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        const config_case *k = &bad_configs[i];
        char needle[256];
        snprintf(needle, sizeof needle, "'%s'", k->key);
        nmf_clear_error();
        nmf_status st = parse_edited(k->family, k->key, k->value, &c);
        const char *want = k->needle ? k->needle : needle;
        CHECK_MSG(st == k->want && strstr(nmf_last_error(), want) && strstr(nmf_last_error(), "cfg.json"),
                  "%s %s=%s: got %s (%s), want %s naming %s", nmf_hf_model_type_name(k->family),
                  k->key, k->value ? k->value : "(deleted)", nmf_strerror(st), nmf_last_error(),
                  nmf_strerror(k->want), want);
    }
    /* whole-text problems */
    const char *dup = "{\"model_type\":\"bert\",\"model_type\":\"gpt2\"}";
    CHECK_FAILS(nmf_hf_config_parse(dup, strlen(dup), "cfg.json", &c), NMF_ERR_FORMAT,
                "'model_type' appears twice");
    CHECK_FAILS(nmf_hf_config_parse("[1]", 3, "cfg.json", &c), NMF_ERR_FORMAT, "JSON object");
    CHECK_FAILS(nmf_hf_config_parse("{} x", 4, "cfg.json", &c), NMF_ERR_FORMAT, "JSON object");
    CHECK_FAILS(nmf_hf_config_parse("", 0, "cfg.json", &c), NMF_ERR_FORMAT, "cfg.json");
    CHECK_FAILS(nmf_hf_config_read("/nonexistent-nmf-dir", &c), NMF_ERR_IO,
                "/nonexistent-nmf-dir/config.json");
    /* every truncation of a valid config is refused (and, under ASan, read in bounds) */
    for (int f = 0; f < NMF_HF_MODEL_TYPE_COUNT; f++) {
        size_t n = strlen(base_configs[f]);
        int refused = 1;
        for (size_t len = 0; len < n; len++) {
            char *cut = malloc(len ? len : 1); /* exactly len bytes: no terminator to lean on */
            memcpy(cut, base_configs[f], len);
            refused &= nmf_hf_config_parse(cut, len, "cfg.json", &c) != NMF_OK;
            free(cut);
        }
        CHECK_MSG(refused, "%s: a truncated config.json was accepted", nmf_hf_model_type_name(f));
    }
}

/* Keys HF leaves out take the HF class defaults; the GPT-2 names map onto the common fields. */
static void config_defaults(void) {
    nmf_hf_config c;
    CHECK_OK(nmf_hf_config_parse(base_configs[NMF_HF_GPT2], strlen(base_configs[NMF_HF_GPT2]), "g", &c));
    CHECK(c.hidden_size == 24 && c.num_hidden_layers == 2 && c.num_attention_heads == 3 &&
          c.num_key_value_heads == 3 && c.head_dim == 8 && c.intermediate_size == 96 &&
          c.max_position_embeddings == 32 && c.norm_eps == 1e-5f && c.tie_word_embeddings == 1 &&
          c.hidden_act == NMF_HF_ACT_GELU_TANH && c.attention_bias == 1 && c.type_vocab_size == 0);
    CHECK_OK(parse_edited(NMF_HF_GPT2, "n_inner", "40", &c));
    CHECK(c.intermediate_size == 40);
    CHECK_OK(parse_edited(NMF_HF_GPT2, "layer_norm_epsilon", NULL, &c));
    CHECK(c.norm_eps == 1e-5f);
    CHECK_OK(parse_edited(NMF_HF_GPT2, "activation_function", "\"gelu_pytorch_tanh\"", &c));
    CHECK(c.hidden_act == NMF_HF_ACT_GELU_TANH);
    CHECK_OK(parse_edited(NMF_HF_LLAMA, "num_key_value_heads", NULL, &c));
    CHECK(c.num_key_value_heads == 6 && c.head_dim == 8 && c.tie_word_embeddings == 0);
    CHECK_OK(parse_edited(NMF_HF_LLAMA, "rope_theta", NULL, &c));
    CHECK(c.rope_theta == 10000.0 && c.norm_eps == 1e-6f && c.attention_bias == 0 && c.mlp_bias == 0);
    CHECK_OK(parse_edited(NMF_HF_LLAMA, "head_dim", "8", &c));
    CHECK_OK(parse_edited(NMF_HF_LLAMA, "hidden_act", "\"swish\"", &c));
    CHECK(c.hidden_act == NMF_HF_ACT_SILU);
    CHECK_OK(parse_edited(NMF_HF_LLAMA, "tie_word_embeddings", "true", &c));
    CHECK(c.tie_word_embeddings == 1);
    CHECK_OK(parse_edited(NMF_HF_BERT, "id2label", NULL, &c));
    CHECK(c.num_labels == 2 && c.type_vocab_size == 2 && c.norm_eps == 1e-12f &&
          c.hidden_act == NMF_HF_ACT_GELU && !strcmp(c.architecture, "BertForSequenceClassification"));
    CHECK_OK(parse_edited(NMF_HF_BERT, "num_labels", "3", &c));
    CHECK(c.num_labels == 3);
    CHECK_OK(parse_edited(NMF_HF_BERT, "architectures", "[]", &c));
    CHECK(c.architecture[0] == '\0');
}

/* ---- hostile shard indexes -------------------------------------------------------------- */

#define S1 "model-00001-of-00002.safetensors"
#define S2 "model-00002-of-00002.safetensors"

static void write_shard(const char *file, const char *const *names, int count) {
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    for (int i = 0; i < count; i++) {
        int64_t shape[2] = {2, 3 + i};
        nmf_tensor *t;
        CHECK_OK(nmf_tensors_add_dense(&s, names[i], 2, shape, NULL, &t));
        for (size_t k = 0; k < t->numel; k++) t->data[k] = (float)(k + 10 * i) + 0.25f;
    }
    CHECK_OK(nmf_tensors_set_meta(&s, "format", "pt")); /* as save_pretrained */
    CHECK_OK(nmf_safetensors_write(tmp_path(file), &s, NMF_DTYPE_F32));
    nmf_tensors_free(&s);
}

/* Writes `index` as the folder's index and expects nmf_hf_weights_read to fail with `want`
 * naming `needle`, leaving the set empty. */
static void index_fails(const char *index, nmf_status want, const char *needle) {
    write_text(tmp_path("model.safetensors.index.json"), index);
    nmf_tensor_set s;
    nmf_clear_error();
    nmf_status st = nmf_hf_weights_read(tmp_dir(), &s, NULL);
    CHECK_MSG(st == want && strstr(nmf_last_error(), needle) && s.count == 0,
              "index %s: got %s (%s), want %s naming %s", index, nmf_strerror(st),
              nmf_last_error(), nmf_strerror(want), needle);
    nmf_tensors_free(&s);
}

static void hostile_indexes(void) {
    clear_tmp();
    nmf_tensor_set s;
    /* an empty folder, then one with only the pickle format */
    CHECK_FAILS(nmf_hf_weights_read(tmp_dir(), &s, NULL), NMF_ERR_NOT_FOUND, "model.safetensors");
    write_text(tmp_path("pytorch_model.bin"), "PK");
    CHECK_FAILS(nmf_hf_weights_read(tmp_dir(), &s, NULL), NMF_ERR_UNSUPPORTED, "pytorch_model.bin");
    CHECK_FAILS(nmf_hf_folder_read(tmp_dir(), &(nmf_hf_config){0}, &s), NMF_ERR_IO, "config.json");
    unlink(tmp_path("pytorch_model.bin"));

    const char *const n1[] = {"x", "y"}, *const n2[] = {"z"}, *const other[] = {"w", "x"};
    write_shard(S1, n1, 2);
    write_shard(S2, n2, 1);
    write_shard("other.safetensors", other, 2);
    write_bytes(tmp_path("bad.safetensors"), "\x10\0\0\0\0\0\0\0{\"z\":", 13); /* header cut short */
    const char *good = "{\"metadata\":{\"total_size\":84},\"weight_map\":{\"x\":\"" S1
                       "\",\"y\":\"" S1 "\",\"z\":\"" S2 "\"}}";
    write_text(tmp_path("model.safetensors.index.json"), good);
    nmf_dtype *dt = NULL;
    CHECK_OK(nmf_hf_weights_read(tmp_dir(), &s, &dt));
    CHECK(s.count == 3 && dt && dt[0] == NMF_DTYPE_F32);
    const nmf_tensor *y = nmf_tensors_find(&s, "y"), *z = nmf_tensors_find(&s, "z");
    CHECK(y && y->shape[1] == 4 && y->data[5] == 15.25f && z && z->shape[1] == 3 && z->data[1] == 1.25f);
    free(dt);
    nmf_tensors_free(&s);
    /* every truncation of the good index is refused */
    int refused = 1;
    for (size_t len = 0; len < strlen(good); len++) {
        write_bytes(tmp_path("model.safetensors.index.json"), good, len);
        refused &= nmf_hf_weights_read(tmp_dir(), &s, NULL) != NMF_OK && s.count == 0;
        nmf_tensors_free(&s);
    }
    CHECK(refused);

    index_fails("not json", NMF_ERR_FORMAT, "model.safetensors.index.json");
    index_fails("{\"metadata\":{}}", NMF_ERR_NOT_FOUND, "'weight_map'");
    index_fails("{\"weight_map\":[]}", NMF_ERR_FORMAT, "'weight_map'");
    index_fails("{\"weight_map\":{}}", NMF_ERR_FORMAT, "no tensors");
    index_fails("{\"weight_map\":{\"x\":5}}", NMF_ERR_FORMAT, "'x'");
    /* shard names that leave the folder */
    index_fails("{\"weight_map\":{\"x\":\"../" S1 "\",\"y\":\"" S1 "\",\"z\":\"" S2 "\"}}",
                NMF_ERR_FORMAT, "tensor 'x' is mapped to '../" S1 "'");
    char abs[1024];
    snprintf(abs, sizeof abs, "{\"weight_map\":{\"x\":\"%s\",\"y\":\"" S1 "\",\"z\":\"" S2 "\"}}",
             tmp_path(S1));
    index_fails(abs, NMF_ERR_FORMAT, "tensor 'x' is mapped to '/");
    index_fails("{\"weight_map\":{\"x\":\"sub/" S1 "\"}}", NMF_ERR_FORMAT, "'x'");
    index_fails("{\"weight_map\":{\"x\":\"..\"}}", NMF_ERR_FORMAT, "'x'");
    index_fails("{\"weight_map\":{\"x\":\"model.bin\"}}", NMF_ERR_FORMAT, "'x'");
    index_fails("{\"weight_map\":{\"x\":\".safetensors\"}}", NMF_ERR_FORMAT, "'x'");
    /* a tensor listed twice (json.load would keep the last, cJSON the first) */
    index_fails("{\"weight_map\":{\"x\":\"" S1 "\",\"y\":\"" S1 "\",\"z\":\"" S2 "\",\"x\":\"" S2 "\"}}",
                NMF_ERR_FORMAT, "tensor 'x' twice");
    /* listed but absent from its shard */
    index_fails("{\"weight_map\":{\"x\":\"" S1 "\",\"y\":\"" S1 "\",\"z\":\"" S2 "\",\"ghost\":\"" S2 "\"}}",
                NMF_ERR_NOT_FOUND, "tensor 'ghost' is listed but " S2);
    /* in a shard but not listed */
    index_fails("{\"weight_map\":{\"x\":\"" S1 "\",\"z\":\"" S2 "\"}}", NMF_ERR_FORMAT,
                "tensor 'y' is not listed");
    /* mapped to the wrong shard */
    index_fails("{\"weight_map\":{\"x\":\"" S1 "\",\"y\":\"" S2 "\",\"z\":\"" S2 "\"}}",
                NMF_ERR_FORMAT, "tensor 'y' is in " S1 " but the index maps it to " S2);
    /* present in two shards: other.safetensors holds x too */
    index_fails("{\"weight_map\":{\"w\":\"other.safetensors\",\"x\":\"" S1 "\",\"y\":\"" S1
                "\",\"z\":\"" S2 "\"}}",
                NMF_ERR_FORMAT, "tensor 'x' is in");
    /* a shard that does not exist, a shard that is corrupt */
    index_fails("{\"weight_map\":{\"x\":\"" S1 "\",\"y\":\"" S1 "\",\"z\":\"gone.safetensors\"}}",
                NMF_ERR_IO, "gone.safetensors");
    index_fails("{\"weight_map\":{\"x\":\"" S1 "\",\"y\":\"" S1 "\",\"z\":\"bad.safetensors\"}}",
                NMF_ERR_FORMAT, "bad.safetensors");
    /* shards whose metadata disagree */
    nmf_tensor_set m;
    nmf_tensors_init(&m);
    int64_t one = 1;
    CHECK_OK(nmf_tensors_add_dense(&m, "z", 1, &one, NULL, NULL));
    CHECK_OK(nmf_tensors_set_meta(&m, "format", "tf"));
    CHECK_OK(nmf_safetensors_write(tmp_path("tf.safetensors"), &m, NMF_DTYPE_F32));
    nmf_tensors_free(&m);
    index_fails("{\"weight_map\":{\"x\":\"" S1 "\",\"y\":\"" S1 "\",\"z\":\"tf.safetensors\"}}",
                NMF_ERR_FORMAT, "'format'");

    /* model.safetensors wins over the index, as in transformers */
    write_text(tmp_path("model.safetensors.index.json"), "broken");
    const char *const q[] = {"q"};
    write_shard("model.safetensors", q, 1);
    CHECK_OK(nmf_hf_weights_read(tmp_dir(), &s, NULL));
    CHECK(s.count == 1 && nmf_tensors_find(&s, "q"));
    nmf_tensors_free(&s);
    clear_tmp();
}

int main(void) {
    fixtures();
    sharded_equals_single();
    hostile_configs();
    config_defaults();
    hostile_indexes();
    rm_tmp_dir();
    return test_finish("io_hf_folder");
}
