/* Token-model API: the observer sees exactly the family's op list (stem, every block, tail) in
 * order, with the family's names, and observing changes nothing (f32, and int8: the fused MLP's
 * GELU is the layers' own when run apart); BERT's padding mask makes padded
 * tokens irrelevant; bad input is a clear error (ids out of range, too many positions, a cache
 * without room, options a family does not take). */
#include "model/lm_test_util.h"
#include "nmformer/model.h"

#define MAX_EVENTS 256

typedef struct {
    int n;
    int op[MAX_EVENTS], block[MAX_EVENTS];
    char name[MAX_EVENTS][48];
    size_t rows[MAX_EVENTS], cols[MAX_EVENTS];
    float *last; /* copy of the last event's data */
} trace;

static void record(const nmf_op_event *e, void *ctx) {
    trace *t = ctx;
    if (t->n < MAX_EVENTS) {
        t->op[t->n] = e->op, t->block[t->n] = e->block, t->rows[t->n] = e->rows, t->cols[t->n] = e->cols;
        snprintf(t->name[t->n], sizeof t->name[0], "%s", e->name);
    }
    free(t->last);
    t->last = malloc(e->rows * e->cols * sizeof(float));
    memcpy(t->last, e->data, e->rows * e->cols * sizeof(float));
    t->n++;
}

static void test_observer(const char *fixture, int act, int int8) {
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(fixture_path(fixture, NULL), NULL, NULL, &c, &s));
    if (act >= 0) c.hf.hidden_act = (nmf_hf_act)act; /* every activation's list */
    nmf_lm *m = NULL;
    CHECK_OK(nmf_lm_create(&m, &c, &s));
    nmf_tensors_free(&s);
    if (!m) return;
    if (int8) CHECK_OK(nmf_lm_set_precision(m, NMF_PREC_INT8)); /* (its GELU: the layers') */
    nmf_id_array ids = fixture_ids(fixture, "input_ids.npy");
    const size_t B = (size_t)ids.shape[0], T = (size_t)ids.shape[1], n_out = nmf_lm_output_floats(m, B, T);
    float *y0 = malloc(n_out * sizeof(float)), *y1 = malloc(n_out * sizeof(float));
    CHECK_OK(nmf_lm_forward(m, y0, ids.data, B, T, NULL));
    trace t = {0};
    CHECK_OK(nmf_lm_forward_observed(m, y1, ids.data, B, T, NULL, record, &t));
    CHECK_MSG(!memcmp(y0, y1, n_out * sizeof(float)), "%s: observing changed the output", fixture);
    /* the expected sequence: stem, L x block, tail */
    int ns, nb, nt, k = 0;
    const nmf_op_row *stem = nmf_model_stem_ops(&c, &ns), *blk = nmf_model_block_ops(&c, &nb);
    const nmf_op_row *tail = nmf_model_tail_ops(&c, &nt);
    const int L = c.hf.num_hidden_layers, want = ns + L * nb + nt;
    CHECK_MSG(t.n == want, "%s: %d events, the op list has %d", fixture, t.n, want);
    for (int part = 0; part < 3; part++) {
        const nmf_op_row *rows = part == 0 ? stem : part == 1 ? blk : tail;
        const int n = part == 0 ? ns : part == 1 ? nb : nt, reps = part == 1 ? L : 1;
        for (int b = 0; b < reps; b++)
            for (int i = 0; i < n && k < t.n && k < MAX_EVENTS; i++, k++) {
                char name[64];
                nmf_model_op_name(&c, &rows[i], part == 1 ? b : -1, name, sizeof name);
                CHECK_MSG(t.op[k] == rows[i].op && t.block[k] == (part == 1 ? b : -1) &&
                          !strcmp(t.name[k], name),
                          "%s: event %d is %s (op %d), the list says %s (op %d)", fixture, k, t.name[k],
                          t.op[k], name, rows[i].op);
                /* widths follow the op: heads * hd for q / attention, I for the MLP hidden */
                if (rows[i].op == NMF_LOP_ACT) CHECK(t.cols[k] == (size_t)c.hf.intermediate_size);
                if (rows[i].op == NMF_LOP_ATTN) CHECK(t.cols[k] == (size_t)c.hf.hidden_size);
                if (rows[i].op == NMF_LOP_K)
                    CHECK(t.cols[k] == (size_t)(c.hf.num_key_value_heads * c.hf.head_dim));
            }
    }
    /* what the last op saw is the output (the last hidden state of a bare BERT is its last norm) */
    if (t.last && c.hf.head != NMF_HF_HEAD_NONE) CHECK(!memcmp(t.last, y1, n_out * sizeof(float)));
    free(t.last);
    free(y0);
    free(y1);
    nmf_id_array_free(&ids);
    nmf_lm_free(m);
}

static void test_vit_lists(void) {
    nmf_model_config v;
    nmf_model_config_default(&v);
    int n1, n2;
    CHECK(nmf_model_block_ops(&v, &n1) == nmf_vit_block_ops(&n2) && n1 == n2 && n1 == 10);
    const nmf_op_row *tail = nmf_model_tail_ops(&v, &n1);
    char name[64];
    CHECK(!strcmp(nmf_model_op_name(&v, &nmf_vit_block_ops(&n2)[1], 3, name, sizeof name), "blocks.3.attn.qkv"));
    CHECK(n1 == 2 && tail[1].op == NMF_OP_HEAD);
    nmf_model_config bad;
    memset(&bad, 0, sizeof bad);
    CHECK(nmf_model_block_ops(&bad, &n1) == NULL && n1 == 0);
}

/* BERT: tokens under a 0 mask do not change the others' outputs; a fully masked sequence stays
 * finite (HF averages every value then) */
static void test_bert_mask(void) {
    nmf_lm *m = NULL;
    CHECK_OK(nmf_lm_load(&m, fixture_path("bert_cls_pad", NULL), NULL));
    if (!m) return;
    nmf_id_array ids = fixture_ids("bert_cls_pad", "input_ids.npy");
    nmf_id_array mask = fixture_ids("bert_cls_pad", "attention_mask.npy");
    nmf_id_array types = fixture_ids("bert_cls_pad", "token_type_ids.npy");
    const size_t B = (size_t)ids.shape[0], T = (size_t)ids.shape[1], K = 3;
    float y0[3 * 3], y1[3 * 3];
    nmf_lm_inputs in = {types.data, mask.data, NULL};
    CHECK_OK(nmf_lm_forward(m, y0, ids.data, B, T, &in));
    int changed = 0;
    for (size_t i = 0; i < B * T; i++)
        if (!mask.data[i]) ids.data[i] = (ids.data[i] + 17) % 101, types.data[i] ^= 1, changed++;
    CHECK(changed > 0);
    CHECK_OK(nmf_lm_forward(m, y1, ids.data, B, T, &in));
    CHECK(rel_err(y1, y0, B * K) <= 1e-6);
    /* without the mask the padded tokens count: the outputs move */
    nmf_lm_inputs nomask = {types.data, NULL, NULL};
    CHECK_OK(nmf_lm_forward(m, y1, ids.data, B, T, &nomask));
    CHECK(rel_err(y1, y0, B * K) > 1e-4);
    for (size_t t = 0; t < T; t++) mask.data[t] = 0; /* sequence 0 fully masked */
    CHECK_OK(nmf_lm_forward(m, y1, ids.data, B, T, &in));
    for (size_t i = 0; i < B * K; i++) CHECK(isfinite(y1[i]));
    CHECK(rel_err(y1 + K, y0 + K, (B - 1) * K) <= 1e-6); /* the others unchanged */
    /* bad options */
    mask.data[0] = 2;
    CHECK_STATUS(nmf_lm_forward(m, y1, ids.data, B, T, &in), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "attention_mask 2 (sequence 0, position 0)"));
    mask.data[0] = 1, types.data[T + 1] = 2;
    CHECK_STATUS(nmf_lm_forward(m, y1, ids.data, B, T, &in), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "token type 2 (sequence 1, position 1)"));
    nmf_kv_cache *cache = NULL;
    CHECK_STATUS(nmf_kv_cache_create(&cache, m, 1, 4), NMF_ERR_UNSUPPORTED); /* an encoder */
    int64_t g[16];
    CHECK_STATUS(nmf_lm_generate(m, g, ids.data, 1, 3, 2, NULL, 0, NULL), NMF_ERR_UNSUPPORTED);
    nmf_id_array_free(&ids);
    nmf_id_array_free(&mask);
    nmf_id_array_free(&types);
    nmf_lm_free(m);
}

static void test_errors(void) {
    nmf_lm *m = NULL, *other = NULL;
    CHECK_OK(nmf_lm_load(&m, fixture_path("gpt2_lm", NULL), NULL)); /* vocab 67, 32 positions */
    CHECK_OK(nmf_lm_load(&other, fixture_path("gpt2_lm_2to4", NULL), NULL));
    if (!m || !other) return;
    int64_t ids[2 * 40] = {0};
    float *out = malloc(2 * 40 * 67 * sizeof(float));
    ids[5] = 67; /* sequence 1, position 2 of T = 3 */
    CHECK_STATUS(nmf_lm_forward(m, out, ids, 2, 3, NULL), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "token id 67 (sequence 1, position 2)"));
    ids[5] = -1;
    CHECK_STATUS(nmf_lm_forward(m, out, ids, 2, 3, NULL), NMF_ERR_INVALID_ARG);
    ids[5] = 0;
    CHECK_STATUS(nmf_lm_forward(m, out, ids, 1, 33, NULL), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "max_position_embeddings (32)"));
    CHECK_OK(nmf_lm_forward(m, out, ids, 1, 32, NULL));
    CHECK_STATUS(nmf_lm_forward(m, out, ids, 0, 3, NULL), NMF_ERR_INVALID_ARG);
    const int64_t mask[3] = {1, 1, 1};
    nmf_lm_inputs in = {NULL, mask, NULL};
    CHECK_STATUS(nmf_lm_forward(m, out, ids, 1, 3, &in), NMF_ERR_INVALID_ARG); /* BERT only */
    /* the cache */
    nmf_kv_cache *cache = NULL;
    CHECK_STATUS(nmf_kv_cache_create(&cache, m, 2, 33), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_kv_cache_create(&cache, m, 0, 8), NMF_ERR_INVALID_ARG);
    CHECK_OK(nmf_kv_cache_create(&cache, m, 2, 4));
    CHECK(nmf_kv_cache_bytes(m, 2, 4) == 2 * 2 * 2 * 4 * 24 * sizeof(float));
    CHECK_OK(nmf_lm_forward_cached(m, cache, out, ids, 3, 0));
    CHECK_STATUS(nmf_lm_forward_cached(m, cache, out, ids, 2, 0), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "holds 3 of 4 positions, no room for 2 more"));
    CHECK(nmf_kv_cache_length(cache) == 3);
    CHECK_STATUS(nmf_lm_forward_cached(other, cache, out, ids, 1, 0), NMF_ERR_INVALID_ARG);
    ids[1] = 99; /* a failed step leaves the cache as it was */
    CHECK_STATUS(nmf_lm_forward_cached(m, cache, out, ids, 1, 1), NMF_ERR_INVALID_ARG);
    CHECK(nmf_kv_cache_length(cache) == 3);
    ids[1] = 0;
    CHECK_OK(nmf_lm_forward_cached(m, cache, out, ids, 1, 1));
    CHECK(nmf_kv_cache_length(cache) == 4);
    nmf_kv_cache_reset(cache);
    CHECK(nmf_kv_cache_length(cache) == 0);
    nmf_kv_cache_free(cache);
    /* generate: bounds */
    int64_t seq[2 * 40];
    CHECK_STATUS(nmf_lm_generate(m, seq, ids, 2, 3, 5, NULL, 7, NULL), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_lm_generate(m, seq, ids, 1, 30, 3, NULL, 0, NULL), NMF_ERR_INVALID_ARG);
    nmf_sampling bad = {-1.0f, 0, 1};
    CHECK_STATUS(nmf_lm_generate(m, seq, ids, 1, 3, 3, &bad, 0, NULL), NMF_ERR_INVALID_ARG);
    CHECK_OK(nmf_lm_generate(m, seq, ids, 2, 3, 0, NULL, 0, NULL)); /* no new tokens: the prompt */
    CHECK_OK(nmf_lm_generate(m, seq, ids, 2, 3, 1, NULL, 4, NULL));
    free(out);
    nmf_lm_free(m);
    nmf_lm_free(other);
    /* create: a ViT config, a missing tensor */
    nmf_model_config v;
    nmf_model_config_default(&v);
    CHECK_STATUS(nmf_lm_create_random(&m, &v, (nmf_pattern){0, 0}, 1), NMF_ERR_UNSUPPORTED);
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(fixture_path("llama_gqa6x2", NULL), NULL, NULL, &c, &s));
    nmf_tensors_remove(&s, "model.layers.1.mlp.up_proj.weight");
    CHECK_STATUS(nmf_lm_create(&m, &c, &s), NMF_ERR_NOT_FOUND);
    CHECK(strstr(nmf_last_error(), "model.layers.1.mlp.up_proj.weight"));
    nmf_tensors_free(&s);
    CHECK_STATUS(nmf_lm_create_random(&m, &c, (nmf_pattern){3, 2}, 1), NMF_ERR_INVALID_ARG);
}

int main(void) {
    const char *fx[] = {"bert_cls_pad", "bert_long_f16", "gpt2_lm", "gpt2_model_t1", "llama_gqa6x2",
                        "llama_gqa4x1_tied_bf16"};
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) test_observer(fx[i], -1, 0);
    for (int a = 0; a < NMF_HF_ACT_COUNT; a++) {
        test_observer("bert_cls_pad", a, 0);
        test_observer("llama_gqa6x2", a, 0);
    }
    test_observer("bert_cls_pad", -1, 1); /* int8: the fused MLP's bits observed apart too */
    test_observer("gpt2_lm", -1, 1);
    test_vit_lists();
    test_bert_mask();
    test_errors();
    return test_finish("test_lm_api");
}
