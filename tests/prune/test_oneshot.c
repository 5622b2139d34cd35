/* One-shot pruning of whole models (nmf_prune_oneshot) and of one layer:
 *  - on inputs with outlier channels, Wanda and SparseGPT leave a smaller layer-output error
 *    ||X W^T - X W'^T|| than magnitude, at every pattern;
 *  - on every family (ViT, BERT, GPT-2 with its [in, out] weights, LLaMA), each linear's statistics
 *    come from the op that feeds it: Wanda's result equals nmf_wanda_prune on norms gathered here
 *    by hand from that op (BERT's block inputs: the previous block's output LayerNorm), and
 *    SparseGPT's block 1 equals nmf_sparsegpt_prune on the Hessian of a model whose block 0 is
 *    the pruned one (sequential), bit for bit also where the linear is not the first of its tap
 *    (BERT's key, LLaMA's k_proj: pruned with the factor the tap's first linear made in place);
 *  - calibration files: wrong dtype, shape, NaN, empty, ids out of range are refused. */
#include <unistd.h>

#include "model/prune_internal.h"
#include "nmformer/io.h"
#include "nmformer/lm.h"
#include "nmformer/prune.h"
#include "prune/prune_internal.h"
#include "test.h"

/* ||X (W - V)^T||_F for X (T, C), W and V (R, C) */
static double output_error(const float *x, const float *w, const float *v, size_t T, size_t R, size_t C) {
    double e = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t r = 0; r < R; r++) {
            double d = 0;
            for (size_t c = 0; c < C; c++) d += (double)x[t * C + c] * ((double)w[r * C + c] - v[r * C + c]);
            e += d * d;
        }
    return sqrt(e);
}

static void test_reconstruction(void) {
    enum { T = 256, R = 32, C = 64 };
    float *x = malloc(T * C * sizeof(float)), *w = malloc(R * C * sizeof(float));
    float *v = malloc(R * C * sizeof(float));
    double *sumsq = calloc(C, sizeof(double)), *xtx = calloc(C * C, sizeof(double));
    unsigned long long s = 7;
    for (size_t i = 0; i < T * C; i++) x[i] = test_rand_float(&s);
    for (size_t t = 0; t < T; t++) /* outlier channels: a few inputs 25x the others */
        for (size_t c = 5; c < C; c += 13) x[t * C + c] *= 25.0f;
    for (size_t i = 0; i < R * C; i++) w[i] = test_rand_float(&s);
    nmf_acc_sumsq(sumsq, x, T, C);
    CHECK_OK(nmf_acc_xtx(xtx, x, T, C));
    const nmf_pattern pats[] = {{4, 8}, {2, 4}, {2, 8}, {1, 8}, {1, 4}};
    for (size_t k = 0; k < sizeof pats / sizeof pats[0]; k++) {
        memcpy(v, w, R * C * sizeof(float));
        CHECK_OK(nmf_nm_prune(v, R, C, pats[k], 0));
        const double mag = output_error(x, w, v, T, R, C);
        memcpy(v, w, R * C * sizeof(float));
        CHECK_OK(nmf_wanda_prune(v, NULL, sumsq, R, C, pats[k]));
        const double wanda = output_error(x, w, v, T, R, C);
        memcpy(v, w, R * C * sizeof(float));
        CHECK_OK(nmf_sparsegpt_prune(v, NULL, xtx, R, C, pats[k], 0.01, 128));
        int is_nm = 0;
        CHECK_OK(nmf_nm_check(v, R, C, pats[k], 0, &is_nm));
        CHECK(is_nm);
        const double sgpt = output_error(x, w, v, T, R, C);
        CHECK_MSG(wanda < mag && sgpt < wanda, "%d:%d: error magnitude %g, wanda %g, sparsegpt %g",
                  pats[k].n, pats[k].m, mag, wanda, sgpt);
    }
    free(x);
    free(w);
    free(v);
    free(sumsq);
    free(xtx);
}

/* ---- whole models ---- */
typedef struct {
    int op, block;
    size_t cols;
    double *sumsq, *xtx;
} capture;

static void capture_op(const nmf_op_event *e, void *ctx) {
    capture *c = ctx;
    if (e->op != c->op || e->block != c->block) return;
    c->cols = e->cols;
    if (!c->sumsq) c->sumsq = calloc(e->cols, sizeof(double));
    if (!c->xtx) c->xtx = calloc(e->cols * e->cols, sizeof(double));
    nmf_acc_sumsq(c->sumsq, e->data, e->rows, e->cols);
    CHECK_OK(nmf_acc_xtx(c->xtx, e->data, e->rows, e->cols));
}

/* The (out, in) view of tensor `name` of s. */
static float *view(const nmf_model_config *c, const nmf_tensor_set *s, const char *name) {
    nmf_model_desc d;
    float *w = NULL;
    if (nmf_model_describe(&d, c)) return NULL;
    const nmf_param *p = nmf_model_desc_find(&d, name);
    const nmf_tensor *t = nmf_tensors_find(s, name);
    if (p && t) CHECK_OK(nmf_linear_view(&d, p, t, &w));
    nmf_model_desc_free(&d);
    return w;
}

static size_t rows_of(const nmf_model_config *c, const char *name, size_t *cols) {
    nmf_model_desc d;
    size_t r = 0;
    if (nmf_model_describe(&d, c)) return 0;
    const nmf_param *p = nmf_model_desc_find(&d, name);
    if (p) {
        r = p->rows;
        *cols = p->cols;
    }
    nmf_model_desc_free(&d);
    return r;
}

/* A tensor of a's with the values of b's (dense, same storage). */
static void take_values(nmf_tensor_set *a, const nmf_tensor_set *b, const char *name) {
    nmf_tensor *t = nmf_tensors_find(a, name);
    const nmf_tensor *u = nmf_tensors_find(b, name);
    CHECK(t && u);
    if (t && u) CHECK_OK(nmf_tensor_dense(u, t->data));
}

static void forward(const nmf_model_config *c, const nmf_tensor_set *s, const nmf_calib *cal,
                    capture *cap) {
    if (nmf_model_is_token(c)) {
        nmf_lm *m = NULL;
        CHECK_OK(nmf_lm_create(&m, c, s));
        if (!m) return;
        float *out = malloc(nmf_lm_output_floats(m, cal->count, cal->seq_len) * sizeof(float));
        CHECK_OK(nmf_lm_forward_observed(m, out, cal->ids, cal->count, cal->seq_len, NULL, capture_op, cap));
        free(out);
        nmf_lm_free(m);
    } else {
        nmf_vit *m = NULL;
        CHECK_OK(nmf_vit_create(&m, c, s));
        if (!m) return;
        float *out = malloc(cal->count * (size_t)c->num_classes * sizeof(float));
        CHECK_OK(nmf_vit_forward_observed(m, out, cal->images, cal->count, capture_op, cap));
        free(out);
        nmf_vit_free(m);
    }
}

typedef struct {
    const char *linear; /* a weight */
    int op, block;      /* the op whose output is its input */
} feed;

/* Wanda and SparseGPT on model (c, s) with cal; `wanda_feed` checked by hand for Wanda,
 * `sgpt_feed` (a linear of block 1) for SparseGPT's sequential calibration. */
static void check_model(const char *what, const nmf_model_config *c, const nmf_tensor_set *s,
                        const nmf_calib *cal, nmf_pattern p, const feed *wanda_feed, int nwanda,
                        const feed *sgpt_feed) {
    nmf_prune_options o;
    nmf_prune_options_default(&o);
    nmf_prune_stats stats;
    const nmf_pattern pats[2] = {p, {1, p.m}};
    nmf_tensor_set out[2];
    o.method = NMF_PRUNE_WANDA;
    nmf_status st = nmf_prune_oneshot(c, s, pats, 2, &o, cal, out, &stats);
    CHECK_MSG(st == NMF_OK, "%s wanda: %s", what, nmf_last_error());
    if (st) return;
    CHECK(stats.forwards == 1 && stats.samples == cal->count);
    const size_t per = c->patch ? (size_t)(c->img_size / c->patch) * (size_t)(c->img_size / c->patch) + 1
                                : cal->seq_len; /* tokens per sample */
    CHECK_MSG(stats.tokens == cal->count * per, "%s: %zu tokens", what, stats.tokens);
    for (int f = 0; f < nwanda; f++) {
        capture cap = {wanda_feed[f].op, wanda_feed[f].block, 0, NULL, NULL};
        forward(c, s, cal, &cap);
        size_t cols = 0, rows = rows_of(c, wanda_feed[f].linear, &cols);
        CHECK_MSG(cap.sumsq && cap.cols == cols, "%s: %s: its input op was not seen", what,
                  wanda_feed[f].linear);
        for (int k = 0; k < 2 && cap.sumsq && cap.cols == cols; k++) {
            float *want = view(c, s, wanda_feed[f].linear), *got = view(c, &out[k], wanda_feed[f].linear);
            CHECK(want && got);
            if (want && got) {
                CHECK_OK(nmf_wanda_prune(want, NULL, cap.sumsq, rows, cols, pats[k]));
                CHECK_MSG(!memcmp(want, got, rows * cols * sizeof(float)), "%s: wanda %s %d:%d differs",
                          what, wanda_feed[f].linear, pats[k].n, pats[k].m);
            }
            nmf_free(want);
            nmf_free(got);
        }
        free(cap.sumsq);
        free(cap.xtx);
    }
    for (int k = 0; k < 2; k++) { /* the candidates load and run */
        const nmf_tensor *t = nmf_tensors_find(&out[k], wanda_feed[0].linear);
        CHECK(t && t->nm && t->nm->pattern.n == pats[k].n);
        capture none = {-1, -5, 0, NULL, NULL};
        forward(c, &out[k], cal, &none);
        nmf_tensors_free(&out[k]);
    }

    o.method = NMF_PRUNE_SPARSEGPT;
    st = nmf_prune_oneshot(c, s, &p, 1, &o, cal, out, &stats);
    CHECK_MSG(st == NMF_OK, "%s sparsegpt: %s", what, nmf_last_error());
    if (st) return;
    CHECK(stats.forwards == (size_t)nmf_model_layers(c));
    /* block 1 was calibrated on the model with block 0 pruned */
    nmf_tensor_set hybrid;
    CHECK_OK(nmf_tensors_copy_dense(s, &hybrid));
    nmf_model_desc d;
    CHECK_OK(nmf_model_describe(&d, c));
    for (size_t i = 0; i < d.count; i++)
        if (d.kinds[d.params[i].kind].nm && d.params[i].block == 0) take_values(&hybrid, &out[0], d.params[i].name);
    nmf_model_desc_free(&d);
    capture cap = {sgpt_feed->op, sgpt_feed->block, 0, NULL, NULL};
    forward(c, &hybrid, cal, &cap);
    size_t cols = 0, rows = rows_of(c, sgpt_feed->linear, &cols);
    float *want = view(c, s, sgpt_feed->linear), *got = view(c, &out[0], sgpt_feed->linear);
    CHECK(want && got && cap.xtx && cap.cols == cols);
    if (want && got && cap.xtx && cap.cols == cols) {
        CHECK_OK(nmf_sparsegpt_prune(want, NULL, cap.xtx, rows, cols, p, o.damp, o.block_cols));
        CHECK_MSG(!memcmp(want, got, rows * cols * sizeof(float)), "%s: sparsegpt %s differs", what,
                  sgpt_feed->linear);
    }
    /* a forward of the dense model would give another Hessian, so another result */
    capture dense_cap = {sgpt_feed->op, sgpt_feed->block, 0, NULL, NULL};
    forward(c, s, cal, &dense_cap);
    float *other = view(c, s, sgpt_feed->linear);
    if (other && dense_cap.xtx && got) {
        CHECK_OK(nmf_sparsegpt_prune(other, NULL, dense_cap.xtx, rows, cols, p, o.damp, o.block_cols));
        CHECK_MSG(memcmp(other, got, rows * cols * sizeof(float)) != 0, "%s: block 1 saw the dense model", what);
    }
    nmf_free(other);
    nmf_free(want);
    nmf_free(got);
    free(cap.sumsq);
    free(cap.xtx);
    free(dense_cap.sumsq);
    free(dense_cap.xtx);
    nmf_tensors_free(&hybrid);
    nmf_tensors_free(&out[0]);
}

static void test_vit(void) {
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(test_source_path("tests/fixtures/model/vit_dense_fmnist.safetensors"), NULL,
                            NULL, &c, &s));
    nmf_calib cal = {0};
    cal.count = 6;
    cal.sample_len = 28 * 28;
    cal.images = nmf_alloc(cal.count * cal.sample_len, sizeof(float));
    unsigned long long r = 3;
    for (size_t i = 0; i < cal.count * cal.sample_len; i++) cal.images[i] = 2.0f * test_rand_float(&r);
    const feed wf[] = {{"blocks.0.attn.qkv.weight", NMF_OP_NORM1, 0},
                       {"blocks.0.attn.proj.weight", NMF_OP_ATTN, 0},
                       {"blocks.1.mlp.fc1.weight", NMF_OP_NORM2, 1},
                       {"blocks.1.mlp.fc2.weight", NMF_OP_GELU, 1}};
    const feed sf = {"blocks.1.mlp.fc2.weight", NMF_OP_GELU, 1};
    check_model("vit", &c, &s, &cal, (nmf_pattern){2, 4}, wf, 4, &sf);
    nmf_calib_free(&cal);
    nmf_tensors_free(&s);
}

static void test_token(const char *dir, const char *what, const feed *wf, int nw, const feed *sf,
                       nmf_pattern p) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/hf/%s", dir);
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_status st = nmf_load_model(test_source_path(rel), NULL, NULL, &c, &s);
    CHECK_MSG(st == NMF_OK, "%s: %s", dir, nmf_last_error());
    if (st) return;
    snprintf(rel, sizeof rel, "tests/fixtures/hf/%s/input_ids.npy", dir);
    nmf_calib cal;
    CHECK_OK(nmf_calib_load(&cal, &c, test_source_path(rel), 0));
    if (cal.count) check_model(what, &c, &s, &cal, p, wf, nw, sf);
    nmf_calib_free(&cal);
    nmf_tensors_free(&s);
}

static void test_families(void) {
    const feed gpt2[] = {{"transformer.h.0.attn.c_attn.weight", NMF_LOP_NORM1, 0},
                         {"transformer.h.1.mlp.c_proj.weight", NMF_LOP_ACT, 1}};
    const feed gpt2_s = {"transformer.h.1.mlp.c_fc.weight", NMF_LOP_NORM2, 1};
    test_token("gpt2_lm", "gpt2", gpt2, 2, &gpt2_s, (nmf_pattern){2, 4});
    /* post-norm: a block's q/k/v read the previous block's output LayerNorm */
    const feed bert[] = {{"bert.encoder.layer.0.attention.self.query.weight", NMF_LOP_EMBED_NORM, -1},
                         {"bert.encoder.layer.1.attention.self.value.weight", NMF_LOP_NORM2, 0},
                         {"bert.encoder.layer.1.output.dense.weight", NMF_LOP_ACT, 1}};
    const feed bert_s = {"bert.encoder.layer.1.attention.self.key.weight", NMF_LOP_NORM2, 0};
    test_token("bert_cls_pad", "bert", bert, 3, &bert_s, (nmf_pattern){2, 8});
    const feed llama[] = {{"model.layers.0.mlp.up_proj.weight", NMF_LOP_NORM2, 0},
                          {"model.layers.1.mlp.down_proj.weight", NMF_LOP_MUL, 1},
                          {"model.layers.1.self_attn.o_proj.weight", NMF_LOP_ATTN, 1}};
    const feed llama_s = {"model.layers.1.self_attn.k_proj.weight", NMF_LOP_NORM1, 1};
    test_token("llama_gqa6x2", "llama", llama, 3, &llama_s, (nmf_pattern){2, 8});
}

/* ---- calibration files ---- */
static void test_calib_files(void) {
    char dir[] = "/tmp/nmf_calib_XXXXXX", path[256];
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    nmf_model_config vit, gpt;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(test_source_path("tests/fixtures/model/vit_dense_fmnist.safetensors"), NULL,
                            NULL, &vit, &s));
    nmf_tensors_free(&s);
    CHECK_OK(nmf_load_model(test_source_path("tests/fixtures/hf/gpt2_lm"), NULL, NULL, &gpt, &s));
    nmf_tensors_free(&s);
    nmf_calib cal;
    float img[3 * 28 * 28] = {0};
    int64_t ids[2 * 5] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

    snprintf(path, sizeof path, "%s/ok.npy", dir);
    CHECK_OK(nmf_npy_write(path, img, 4, (int64_t[]){3, 1, 28, 28}));
    CHECK_OK(nmf_calib_load(&cal, &vit, path, 2)); /* the first 2 of 3 */
    CHECK(cal.count == 2 && cal.images && cal.sample_len == 28 * 28 && !cal.ids);
    nmf_calib_free(&cal);
    CHECK_STATUS(nmf_calib_load(&cal, &gpt, path, 0), NMF_ERR_UNSUPPORTED); /* floats for ids */
    CHECK(strstr(nmf_last_error(), "dtype") != NULL);

    snprintf(path, sizeof path, "%s/shape.npy", dir);
    CHECK_OK(nmf_npy_write(path, img, 3, (int64_t[]){3, 28, 28}));
    CHECK_STATUS(nmf_calib_load(&cal, &vit, path, 0), NMF_ERR_SHAPE);
    CHECK(strstr(nmf_last_error(), "(3, 28, 28)") != NULL);

    snprintf(path, sizeof path, "%s/nan.npy", dir);
    img[2 * 784 + 17] = NAN;
    CHECK_OK(nmf_npy_write(path, img, 4, (int64_t[]){3, 1, 28, 28}));
    CHECK_STATUS(nmf_calib_load(&cal, &vit, path, 0), NMF_ERR_NUMERIC);
    CHECK(strstr(nmf_last_error(), "image 2") != NULL);

    snprintf(path, sizeof path, "%s/empty.npy", dir);
    CHECK_OK(nmf_npy_write(path, img, 4, (int64_t[]){0, 1, 28, 28}));
    CHECK_STATUS(nmf_calib_load(&cal, &vit, path, 0), NMF_ERR_INVALID_ARG);

    snprintf(path, sizeof path, "%s/ids.npy", dir);
    CHECK_OK(nmf_npy_write_ids(path, ids, 2, (int64_t[]){2, 5}));
    CHECK_OK(nmf_calib_load(&cal, &gpt, path, 0));
    CHECK(cal.count == 2 && cal.seq_len == 5 && cal.ids && cal.ids[9] == 10 && !cal.images);
    nmf_calib_free(&cal);
    CHECK_STATUS(nmf_calib_load(&cal, &vit, path, 0), NMF_ERR_UNSUPPORTED); /* ids for images */

    ids[7] = 67; /* vocab 67 */
    snprintf(path, sizeof path, "%s/range.npy", dir);
    CHECK_OK(nmf_npy_write_ids(path, ids, 2, (int64_t[]){2, 5}));
    CHECK_STATUS(nmf_calib_load(&cal, &gpt, path, 0), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "sequence 1, position 2") != NULL);
    ids[7] = -1;
    CHECK_OK(nmf_npy_write_ids(path, ids, 2, (int64_t[]){2, 5}));
    CHECK_STATUS(nmf_calib_load(&cal, &gpt, path, 0), NMF_ERR_INVALID_ARG);

    snprintf(path, sizeof path, "%s/long.npy", dir); /* 33 tokens, 32 positions */
    int64_t longer[33] = {0};
    CHECK_OK(nmf_npy_write_ids(path, longer, 2, (int64_t[]){1, 33}));
    CHECK_STATUS(nmf_calib_load(&cal, &gpt, path, 0), NMF_ERR_SHAPE);
    CHECK_OK(nmf_npy_write_ids(path, longer, 2, (int64_t[]){0, 5}));
    CHECK_STATUS(nmf_calib_load(&cal, &gpt, path, 0), NMF_ERR_INVALID_ARG);
    CHECK_OK(nmf_npy_write_ids(path, longer, 1, (int64_t[]){5}));
    CHECK_STATUS(nmf_calib_load(&cal, &gpt, path, 0), NMF_ERR_SHAPE);

    /* a token model has no default set; calibrated methods need samples */
    CHECK_STATUS(nmf_calib_fashion_mnist(&cal, &gpt, NULL, 8), NMF_ERR_INVALID_ARG);
    nmf_prune_options o;
    nmf_prune_options_default(&o);
    o.method = NMF_PRUNE_SPARSEGPT;
    nmf_tensor_set out;
    CHECK_OK(nmf_load_model(test_source_path("tests/fixtures/hf/gpt2_lm"), NULL, NULL, &gpt, &s));
    CHECK_STATUS(nmf_prune_oneshot(&gpt, &s, &(nmf_pattern){2, 4}, 1, &o, NULL, &out, NULL),
                 NMF_ERR_INVALID_ARG);
    nmf_tensors_free(&s);
    nmf_prune_method m;
    CHECK_OK(nmf_prune_method_parse("sparsegpt", &m));
    CHECK(m == NMF_PRUNE_SPARSEGPT && !strcmp(nmf_prune_method_name(NMF_PRUNE_WANDA), "wanda"));
    CHECK_STATUS(nmf_prune_method_parse("obs", &m), NMF_ERR_INVALID_ARG);

    const char *names[] = {"ok", "shape", "nan", "empty", "ids", "range", "long"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void) {
    test_reconstruction();
    test_vit();
    test_families();
    test_calib_files();
    return test_finish("test_oneshot");
}
