/* The token families' parameter tables against real checkpoints: every fixture of
 * tests/fixtures/hf loads through nmf_load_model (an HF folder) and matches its family's table
 * exactly (no tensor missing, none extra, every shape); the head, prefix and pooler are read
 * from the names; the model config survives its JSON (.nmf metadata) and config.json round
 * trips; tensors that disagree with config.json are refused naming the tensor. */
#include "../io/io_test_util.h"
#include "nmformer/desc.h"

static const struct {
    const char *name, *arch, *prefix;
    nmf_hf_head head;
    int pooler;
    size_t tensors; /* 2-layer models: the table's row count */
} cases[] = {
    /* BERT: 5 embedding tensors + 16 per layer + pooler 2 + classifier 2 */
    {"bert_cls_pad", "bert", "bert.", NMF_HF_HEAD_CLASSIFIER, 1, 5 + 16 * 2 + 4},
    {"bert_cls_pad_2to8", "bert", "bert.", NMF_HF_HEAD_CLASSIFIER, 1, 5 + 16 * 2 + 4},
    /* GPT-2: wte, wpe + 12 per layer + ln_f 2; the tied lm_head is not a row */
    {"gpt2_lm", "gpt2", "transformer.", NMF_HF_HEAD_LM, 0, 2 + 12 * 2 + 2},
    {"gpt2_lm_2to4", "gpt2", "transformer.", NMF_HF_HEAD_LM, 0, 2 + 12 * 2 + 2},
    /* LLaMA: embed + 9 per layer + norm + untied lm_head */
    {"llama_gqa6x2", "llama", "model.", NMF_HF_HEAD_LM, 0, 1 + 9 * 2 + 2},
    {"llama_gqa6x2_sharded", "llama", "model.", NMF_HF_HEAD_LM, 0, 1 + 9 * 2 + 2},
    {"llama_gqa6x2_2to8", "llama", "model.", NMF_HF_HEAD_LM, 0, 1 + 9 * 2 + 2},
};

static char *fixture(const char *name) {
    static char buf[4200];
    snprintf(buf, sizeof buf, "%.4095s/%.64s", test_source_path("tests/fixtures/hf"), name);
    return buf;
}

static void test_fixtures_load(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nmf_model_config c;
        nmf_tensor_set s;
        nmf_status st = nmf_load_model(fixture(cases[i].name), NULL, NULL, &c, &s);
        CHECK_MSG(st == NMF_OK, "%s: %s", cases[i].name, nmf_last_error());
        if (st) continue;
        CHECK(!strcmp(c.arch, cases[i].arch));
        CHECK_MSG(!strcmp(c.hf.prefix, cases[i].prefix), "%s: prefix '%s'", cases[i].name, c.hf.prefix);
        CHECK(c.hf.head == cases[i].head);
        CHECK(c.hf.pooler == cases[i].pooler);
        nmf_model_desc d;
        CHECK_OK(nmf_model_describe(&d, &c));
        CHECK_MSG(d.count == cases[i].tensors && s.count == d.count, "%s: %zu rows, %zu tensors",
                  cases[i].name, d.count, s.count);
        /* every N:M-eligible row is a block linear with a 2-D (out, in) view */
        for (size_t r = 0; r < d.count; r++) {
            const nmf_param *p = &d.params[r];
            if (!nmf_param_kind_of(&d, p)->nm) continue;
            CHECK(p->block >= 0 && p->ndim == 2 && p->rows * p->cols == p->numel);
        }
        /* the config as .nmf metadata: JSON and back, same table */
        char *json = nmf_model_config_to_json(&c);
        nmf_model_config back;
        memset(&back, 0, sizeof back);
        CHECK_OK(nmf_model_config_from_json(json, &back));
        CHECK_MSG(back.hf.head == c.hf.head && back.hf.pooler == c.hf.pooler &&
                  !strcmp(back.hf.prefix, c.hf.prefix) && back.hf.hidden_size == c.hf.hidden_size,
                  "%s: %s", cases[i].name, json);
        nmf_model_desc d2;
        CHECK_OK(nmf_model_describe(&d2, &back));
        CHECK(d2.count == d.count);
        for (size_t r = 0; r < d.count && r < d2.count; r++)
            CHECK(!strcmp(d.params[r].name, d2.params[r].name));
        nmf_model_desc_free(&d2);
        free(json);
        nmf_model_desc_free(&d);
        nmf_tensors_free(&s);
    }
}

/* GPT-2's [in, out] storage: the 2-D view is (out, in) */
static void test_gpt2_view(void) {
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(fixture("gpt2_lm"), NULL, NULL, &c, &s));
    nmf_model_desc d;
    CHECK_OK(nmf_model_describe(&d, &c));
    const nmf_param *p = nmf_model_desc_find(&d, "transformer.h.1.mlp.c_fc.weight");
    CHECK(p && p->shape[0] == c.hf.hidden_size && p->shape[1] == c.hf.intermediate_size);
    CHECK(p && p->rows == (size_t)c.hf.intermediate_size && p->cols == (size_t)c.hf.hidden_size);
    CHECK(p && nmf_param_kind_of(&d, p)->in_axis == 0);
    nmf_model_desc_free(&d);
    nmf_tensors_free(&s);
}

/* config.json written by nmf_hf_config_to_json parses back to the same config */
static void test_config_json_round_trip(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nmf_model_config c;
        nmf_tensor_set s;
        if (nmf_load_model(fixture(cases[i].name), NULL, NULL, &c, &s)) continue;
        char *text = nmf_hf_config_to_json(&c.hf);
        CHECK(text != NULL);
        nmf_hf_config h;
        CHECK_OK(nmf_hf_config_parse(text, strlen(text), "round trip", &h));
        CHECK(h.model_type == c.hf.model_type && h.hidden_size == c.hf.hidden_size &&
              h.num_hidden_layers == c.hf.num_hidden_layers &&
              h.num_key_value_heads == c.hf.num_key_value_heads &&
              h.intermediate_size == c.hf.intermediate_size && h.vocab_size == c.hf.vocab_size &&
              h.norm_eps == c.hf.norm_eps && h.rope_theta == c.hf.rope_theta &&
              h.tie_word_embeddings == c.hf.tie_word_embeddings && h.hidden_act == c.hf.hidden_act &&
              h.num_labels == c.hf.num_labels && h.type_vocab_size == c.hf.type_vocab_size);
        free(text);
        nmf_tensors_free(&s);
    }
}

/* Loads a fixture's tensors, lets edit() spoil them, checks them against the config. */
static nmf_status check_spoiled(const char *name, void (*edit)(nmf_tensor_set *s)) {
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_status st = nmf_load_model(fixture(name), NULL, NULL, &c, &s);
    if (st) return NMF_OK; /* reported by the other tests */
    edit(&s);
    st = nmf_model_check_tensors(&c, &s);
    nmf_tensors_free(&s);
    return st;
}
static void drop_query(nmf_tensor_set *s) { nmf_tensors_remove(s, "bert.encoder.layer.1.attention.self.query.weight"); }
static void extra_tensor(nmf_tensor_set *s) {
    int64_t shape[1] = {3};
    nmf_tensors_add_dense(s, "model.layers.0.self_attn.q_proj.bias", 1, shape, NULL, NULL);
}
static void wrong_kv(nmf_tensor_set *s) {
    nmf_tensor *t = nmf_tensors_find(s, "model.layers.0.self_attn.k_proj.weight");
    t->shape[0] *= 2; /* as if kv heads were 4, not 2 */
    t->shape[1] /= 2;
}

static void test_disagreeing_tensors(void) {
    CHECK_STATUS(check_spoiled("bert_cls_pad", drop_query), NMF_ERR_NOT_FOUND);
    CHECK(strstr(nmf_last_error(), "bert.encoder.layer.1.attention.self.query.weight") != NULL);
    CHECK_STATUS(check_spoiled("llama_gqa6x2", extra_tensor), NMF_ERR_FORMAT);
    CHECK(strstr(nmf_last_error(), "q_proj.bias") != NULL);
    CHECK_STATUS(check_spoiled("llama_gqa6x2", wrong_kv), NMF_ERR_SHAPE);
    CHECK(strstr(nmf_last_error(), "k_proj.weight") != NULL);
}

/* the architecture in config.json and the weights must agree */
static void test_architecture_mismatch(void) {
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_hf_config h;
    CHECK_OK(nmf_load_model(fixture("bert_cls_pad"), NULL, NULL, &c, &s));
    h = c.hf;
    snprintf(h.architecture, sizeof h.architecture, "BertModel");
    CHECK_STATUS(nmf_model_config_from_hf(&c, &h, &s), NMF_ERR_FORMAT);
    CHECK(strstr(nmf_last_error(), "classifier.weight") != NULL);
    snprintf(h.architecture, sizeof h.architecture, "BertForMaskedLM");
    CHECK_STATUS(nmf_model_config_from_hf(&c, &h, &s), NMF_ERR_UNSUPPORTED);
    CHECK(strstr(nmf_last_error(), "BertForMaskedLM") != NULL);
    nmf_tensors_free(&s);
}

int main(void) {
    test_fixtures_load();
    test_gpt2_view();
    test_config_json_round_trip();
    test_disagreeing_tensors();
    test_architecture_mismatch();
    return test_finish("hf_desc");
}
