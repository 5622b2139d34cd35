/* Decoding with the key/value cache equals re-running the whole sequence: for every decoder
 * fixture (and random GQA / N:M models), the prompt through the cache gives the full forward's
 * logits, and each cached step -- one token, or a chunk of several -- gives the logits of a full
 * forward over the sequence so far, within 1e-5 of the largest logit, on every ISA. Sampling is
 * deterministic in its seed and top-k 1 is greedy. */
#include "model/lm_test_util.h"

static const char *const decoders[] = {
    "gpt2_lm", "gpt2_lm_2to4", "gpt2_long_bf16", "llama_gqa6x2", "llama_gqa6x2_2to8",
    "llama_gqa4x1_tied_bf16", "llama_mha5_t1_f16",
};

/* seq (B, total): the prompt (T) then tokens; checks cached steps against full forwards */
static void check_cached(nmf_lm *m, const char *label, const int64_t *seq, size_t B, size_t total,
                         size_t T) {
    const nmf_model_config *c = nmf_lm_get_config(m);
    const size_t V = c->hf.head == NMF_HF_HEAD_LM ? (size_t)c->hf.vocab_size : (size_t)c->hf.hidden_size;
    float *full = malloc(B * total * V * sizeof(float)), *step = malloc(B * total * V * sizeof(float));
    int64_t *prefix = malloc(B * total * sizeof(int64_t)), *chunk = malloc(B * total * sizeof(int64_t));
    nmf_kv_cache *cache = NULL;
    CHECK_OK(nmf_kv_cache_create(&cache, m, B, total));
    if (!cache) return;
    for (size_t b = 0; b < B; b++) memcpy(prefix + b * T, seq + b * total, T * sizeof(int64_t));
    CHECK_OK(nmf_lm_forward_cached(m, cache, step, prefix, T, 0));
    CHECK_OK(nmf_lm_forward(m, full, prefix, B, T, NULL));
    double e = rel_err(step, full, B * T * V);
    CHECK_MSG(e <= 1e-5, "%s: cached prompt %.3g", label, e);
    CHECK(nmf_kv_cache_length(cache) == T);
    /* then the rest: one token at a time, the last steps as one chunk of up to 3 */
    size_t t = T;
    while (t < total) {
        const size_t n = total - t <= 3 && total - T > 3 ? total - t : 1;
        for (size_t b = 0; b < B; b++) memcpy(chunk + b * n, seq + b * total + t, n * sizeof(int64_t));
        CHECK_OK(nmf_lm_forward_cached(m, cache, step, chunk, n, n == 1));
        for (size_t b = 0; b < B; b++) memcpy(prefix + b * (t + n), seq + b * total, (t + n) * sizeof(int64_t));
        CHECK_OK(nmf_lm_forward(m, full, prefix, B, t + n, NULL));
        double worst = 0;
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < n; j++) { /* row j of the chunk = position t + j */
                const float *want = full + (b * (t + n) + t + j) * V;
                const float *got = n == 1 ? step + b * V : step + (b * n + j) * V;
                double ej = rel_err(got, want, V);
                worst = ej > worst ? ej : worst;
            }
        CHECK_MSG(worst <= 1e-5, "%s: cached step at %zu (+%zu) %.3g", label, t, n, worst);
        t += n;
    }
    CHECK(nmf_kv_cache_length(cache) == total);
    nmf_kv_cache_free(cache);
    free(full);
    free(step);
    free(prefix);
    free(chunk);
}

static void test_fixtures(void) {
    const nmf_isa best = nmf_cpu_best_isa();
    for (size_t i = 0; i < sizeof decoders / sizeof decoders[0]; i++) {
        nmf_lm *m = NULL;
        CHECK_OK(nmf_lm_load(&m, fixture_path(decoders[i], NULL), NULL));
        if (!m) continue;
        nmf_id_array ids = fixture_ids(decoders[i], "input_ids.npy");
        nmf_id_array gen = fixture_ids(decoders[i], "generate.npy");
        for (int isa = NMF_ISA_SCALAR; isa <= (int)best; isa++) {
            nmf_set_isa((nmf_isa)isa);
            char label[96];
            snprintf(label, sizeof label, "%s (%s)", decoders[i], nmf_isa_name((nmf_isa)isa));
            check_cached(m, label, gen.data, (size_t)gen.shape[0], (size_t)gen.shape[1], (size_t)ids.shape[1]);
        }
        nmf_set_isa(best);
        nmf_id_array_free(&ids);
        nmf_id_array_free(&gen);
        nmf_lm_free(m);
    }
}

/* random models: LLaMA with GQA 4x2 and biases, GPT-2 without a head, both N:M 2:4; 70 tokens
 * (attention tiles of 64 keys crossed while decoding) */
static void test_random(void) {
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(fixture_path("llama_gqa6x2", NULL), NULL, NULL, &c, &s));
    nmf_tensors_free(&s);
    c.hf.hidden_size = 32, c.hf.num_attention_heads = 4, c.hf.num_key_value_heads = 2, c.hf.head_dim = 8;
    c.hf.attention_bias = 1, c.hf.mlp_bias = 1, c.hf.max_position_embeddings = 80;
    nmf_model_config g;
    CHECK_OK(nmf_load_model(fixture_path("gpt2_model_t1", NULL), NULL, NULL, &g, &s));
    nmf_tensors_free(&s);
    g.hf.max_position_embeddings = 80;
    const nmf_model_config *cs[] = {&c, &g};
    for (int k = 0; k < 2; k++) {
        nmf_lm *m = NULL;
        CHECK_OK(nmf_lm_create_random(&m, cs[k], (nmf_pattern){2, 4}, 5 + (uint64_t)k));
        if (!m) continue;
        const size_t B = 2, total = 70, T = 5;
        int64_t seq[2 * 70];
        uint64_t r = 99;
        for (size_t i = 0; i < B * total; i++) seq[i] = (int64_t)((r = r * 6364136223846793005ull + 1) >> 33) % cs[k]->hf.vocab_size;
        check_cached(m, k ? "random gpt2 2:4" : "random llama gqa 2:4", seq, B, total, T);
        nmf_lm_free(m);
    }
}

static void test_sampling(void) {
    nmf_lm *m = NULL;
    CHECK_OK(nmf_lm_load(&m, fixture_path("gpt2_lm", NULL), NULL));
    if (!m) return;
    nmf_id_array ids = fixture_ids("gpt2_lm", "input_ids.npy");
    nmf_id_array gen = fixture_ids("gpt2_lm", "generate.npy");
    const size_t B = (size_t)ids.shape[0], T = (size_t)ids.shape[1], total = (size_t)gen.shape[1];
    int64_t *a = malloc(B * total * sizeof(int64_t)), *b = malloc(B * total * sizeof(int64_t));
    nmf_sampling top1 = {1.0f, 1, 7}, hot = {1.5f, 5, 7}, hot2 = {1.5f, 5, 8};
    CHECK_OK(nmf_lm_generate(m, a, ids.data, B, T, total - T, &top1, 0, NULL));
    CHECK(!memcmp(a, gen.data, B * total * sizeof(int64_t))); /* top-1 is greedy */
    CHECK_OK(nmf_lm_generate(m, a, ids.data, B, T, total - T, &hot, 0, NULL));
    CHECK_OK(nmf_lm_generate(m, b, ids.data, B, T, total - T, &hot, 30, NULL)); /* a larger cache */
    CHECK(!memcmp(a, b, B * total * sizeof(int64_t))); /* same seed, same tokens */
    int differ = 0;
    for (size_t i = 0; i < B * total; i++) {
        CHECK(a[i] >= 0 && a[i] < 67);
        differ |= a[i] != gen.data[i];
    }
    CHECK(differ); /* temperature 1.5 over 5 candidates leaves greedy on some of 10 steps x 2 */
    CHECK_OK(nmf_lm_generate(m, b, ids.data, B, T, total - T, &hot2, 0, NULL));
    for (size_t s = 0; s < B; s++) /* the prompt is copied whatever the seed */
        CHECK(!memcmp(a + s * total, ids.data + s * T, T * sizeof(int64_t)) &&
              !memcmp(b + s * total, ids.data + s * T, T * sizeof(int64_t)));
    /* each sampled token is among the step's 5 best: replay with the cache */
    nmf_kv_cache *cache = NULL;
    CHECK_OK(nmf_kv_cache_create(&cache, m, B, total));
    float logits[2 * 67];
    int64_t step[2];
    for (size_t t = T; cache && t < total; t++) {
        if (t == T) CHECK_OK(nmf_lm_forward_cached(m, cache, logits, ids.data, T, 1));
        else CHECK_OK(nmf_lm_forward_cached(m, cache, logits, step, 1, 1));
        for (size_t s = 0; s < B; s++) {
            const float chosen = logits[s * 67 + (size_t)a[s * total + t]];
            int above = 0;
            for (size_t v = 0; v < 67; v++) above += logits[s * 67 + v] > chosen;
            CHECK_MSG(above < 5, "step %zu: sampled token ranks %d", t, above + 1);
            step[s] = a[s * total + t];
        }
    }
    nmf_kv_cache_free(cache);
    free(a);
    free(b);
    nmf_id_array_free(&ids);
    nmf_id_array_free(&gen);
    nmf_lm_free(m);
}

int main(void) {
    test_fixtures();
    test_random();
    test_sampling();
    return test_finish("test_lm_decode");
}
