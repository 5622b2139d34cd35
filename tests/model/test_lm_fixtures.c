/* Token models against PyTorch: every fixture of tests/fixtures/hf (BERT, GPT-2, LLaMA; dense,
 * N:M, F16/BF16, sharded, T = 1, T > 64, odd heads, GQA, vocab 67/101) loaded from its HF folder
 * and run by nmf_lm_forward on every ISA this CPU has: logits / last_hidden_state /
 * pooler_output within 1e-4 of the largest reference value; generate.npy reproduced exactly by
 * greedy nmf_lm_generate; the N:M fixtures also with their block linears packed (N:M kernels,
 * GPT-2's packed on the (out, in) view of its [in, out] storage), and their dense twins pruned
 * by nmf_model_prune reproduce the N:M fixtures' PyTorch outputs. */
#include "model/lm_test_util.h"
#include "nmformer/model.h"

static const char *const fixtures[] = {
    "bert_cls_pad", "bert_cls_pad_2to8", "bert_long_f16", "gpt2_lm", "gpt2_lm_2to4",
    "gpt2_long_bf16", "gpt2_model_t1", "llama_gqa6x2", "llama_gqa6x2_sharded", "llama_gqa6x2_2to8",
    "llama_gqa4x1_tied_bf16", "llama_mha5_t1_f16",
};

static void run_fixture(const char *name, int packed) {
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_status st = nmf_load_model(fixture_path(name, NULL), NULL, NULL, &c, &s);
    CHECK_MSG(st == NMF_OK, "%s: %s", name, nmf_last_error());
    if (st) return;
    nmf_pattern p = {0, 0};
    if (strstr(name, "2to8")) p = (nmf_pattern){2, 8};
    if (strstr(name, "2to4")) p = (nmf_pattern){2, 4};
    if (packed) {
        if (p.n == 0) {
            nmf_tensors_free(&s);
            return;
        }
        CHECK_OK(nmf_model_pack_nm(&c, &s, p)); /* GPT-2's on the (out, in) view of [in, out] */
    }
    nmf_lm *m = NULL;
    st = nmf_lm_create(&m, &c, &s);
    nmf_tensors_free(&s);
    CHECK_MSG(st == NMF_OK, "%s: %s", name, nmf_last_error());
    if (st) return;
    nmf_id_array ids = fixture_ids(name, "input_ids.npy");
    nmf_id_array mask = fixture_ids(name, "attention_mask.npy");
    nmf_id_array types = fixture_ids(name, "token_type_ids.npy");
    nmf_id_array gen = fixture_ids(name, "generate.npy");
    nmf_array want = fixture_floats(name, "logits.npy");
    if (!want.numel) want = fixture_floats(name, "last_hidden_state.npy");
    nmf_array pool = fixture_floats(name, "pooler_output.npy");
    const size_t B = (size_t)ids.shape[0], T = (size_t)ids.shape[1];
    CHECK_MSG(nmf_lm_output_floats(m, B, T) == want.numel, "%s: %zu outputs, reference %zu", name,
              nmf_lm_output_floats(m, B, T), want.numel);
    float *out = malloc(want.numel * sizeof(float));
    float *pooled = pool.numel ? malloc(pool.numel * sizeof(float)) : NULL;
    nmf_lm_inputs in = {types.numel ? types.data : NULL, mask.numel ? mask.data : NULL, pooled};
    const nmf_isa best = nmf_cpu_best_isa();
    for (int isa = NMF_ISA_SCALAR; isa <= (int)best; isa++) {
        nmf_set_isa((nmf_isa)isa);
        CHECK_OK(nmf_lm_forward(m, out, ids.data, B, T, &in));
        double e = rel_err(out, want.data, want.numel);
        CHECK_MSG(e <= 1e-4, "%s%s (%s): max |error| = %.3g x max |reference|", name,
                  packed ? " packed" : "", nmf_isa_name((nmf_isa)isa), e);
        if (pooled) {
            e = rel_err(pooled, pool.data, pool.numel);
            CHECK_MSG(e <= 1e-4, "%s pooler (%s): %.3g", name, nmf_isa_name((nmf_isa)isa), e);
        }
        if (gen.numel) { /* greedy generation with the cache reproduces the re-forwarding reference */
            const size_t total = (size_t)gen.shape[1], G = total - T;
            int64_t *seq = malloc(gen.numel * sizeof(int64_t));
            nmf_generate_stats stats;
            CHECK_OK(nmf_lm_generate(m, seq, ids.data, B, T, G, NULL, 0, &stats));
            CHECK_MSG(!memcmp(seq, gen.data, gen.numel * sizeof(int64_t)), "%s%s (%s): generation differs",
                      name, packed ? " packed" : "", nmf_isa_name((nmf_isa)isa));
            CHECK(stats.decode_tokens == B * (G - 1));
            free(seq);
        }
    }
    nmf_set_isa(best);
    printf("%s%s: ok\n", name, packed ? " (packed N:M)" : "");
    free(out);
    free(pooled);
    nmf_id_array_free(&ids);
    nmf_id_array_free(&mask);
    nmf_id_array_free(&types);
    nmf_id_array_free(&gen);
    nmf_array_free(&want);
    nmf_array_free(&pool);
    nmf_lm_free(m);
}

/* prune(dense twin) -> N:M linears -> the PyTorch outputs of the N:M fixture */
static void test_pruned_twins(void) {
    static const struct {
        const char *dense, *nm;
        nmf_pattern p;
    } twins[] = {{"bert_cls_pad", "bert_cls_pad_2to8", {2, 8}},
                 {"gpt2_lm", "gpt2_lm_2to4", {2, 4}},
                 {"llama_gqa6x2", "llama_gqa6x2_2to8", {2, 8}}};
    for (size_t i = 0; i < sizeof twins / sizeof twins[0]; i++) {
        nmf_model_config c;
        nmf_tensor_set dense, pruned;
        CHECK_OK(nmf_load_model(fixture_path(twins[i].dense, NULL), NULL, NULL, &c, &dense));
        CHECK_OK(nmf_model_prune(&c, &dense, twins[i].p, &pruned));
        nmf_tensors_free(&dense);
        nmf_lm *m = NULL;
        CHECK_OK(nmf_lm_create(&m, &c, &pruned));
        nmf_tensors_free(&pruned);
        if (!m) continue;
        nmf_id_array ids = fixture_ids(twins[i].nm, "input_ids.npy");
        nmf_id_array mask = fixture_ids(twins[i].nm, "attention_mask.npy");
        nmf_id_array types = fixture_ids(twins[i].nm, "token_type_ids.npy");
        nmf_array want = fixture_floats(twins[i].nm, "logits.npy");
        float *out = malloc(want.numel * sizeof(float));
        nmf_lm_inputs in = {types.numel ? types.data : NULL, mask.numel ? mask.data : NULL, NULL};
        CHECK_OK(nmf_lm_forward(m, out, ids.data, (size_t)ids.shape[0], (size_t)ids.shape[1], &in));
        double e = rel_err(out, want.data, want.numel);
        CHECK_MSG(e <= 1e-4, "prune(%s) vs %s: %.3g", twins[i].dense, twins[i].nm, e);
        nmf_lm *d = NULL; /* the block linears run N:M: fewer weight bytes than the dense twin's */
        CHECK_OK(nmf_lm_load(&d, fixture_path(twins[i].dense, NULL), NULL));
        CHECK(d && nmf_lm_weight_bytes(m) < nmf_lm_weight_bytes(d));
        nmf_lm_free(d);
        free(out);
        nmf_id_array_free(&ids);
        nmf_id_array_free(&mask);
        nmf_id_array_free(&types);
        nmf_array_free(&want);
        nmf_lm_free(m);
    }
}

/* nmf_lm_load on an HF folder = load + create */
static void test_load(void) {
    nmf_lm *m = NULL;
    CHECK_OK(nmf_lm_load(&m, fixture_path("llama_gqa6x2_sharded", NULL), NULL));
    CHECK(m && nmf_lm_get_config(m)->hf.num_key_value_heads == 2);
    CHECK(m && nmf_lm_weight_bytes(m) > 0);
    nmf_lm_free(m);
}

int main(void) {
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        run_fixture(fixtures[i], 0);
        run_fixture(fixtures[i], 1);
    }
    test_pruned_twins();
    test_load();
    return test_finish("test_lm_fixtures");
}
