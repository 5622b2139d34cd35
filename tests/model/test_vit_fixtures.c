/* The ViT engine against PyTorch (tests/ref/make_model_fixtures.py -> tests/fixtures/model/):
 * logits to max abs error <= 1e-4 on configs that vary dim, depth, heads, patch, image size,
 * channels and classes, dense and pruned 2:4 / 2:8 / 1:8. Pruned weights run both as dense
 * linears (zeros kept) and packed N:M (the sparse kernels), with the active ISA and scalar. */
#include <string.h>

#include "model/patchify.h"
#include "model/vit_internal.h"
#include "nmformer/io.h"
#include "nmformer/kernels.h"
#include "nmformer/model.h"
#include "test.h"

typedef struct {
    const char *name;
    const char *pattern; /* NULL: dense */
} fixture;

static const fixture fixtures[] = {
    {"vit_dense_fmnist", NULL}, {"vit_dense_small", NULL}, {"vit_2to4", "2:4"},
    {"vit_2to8", "2:8"},        {"vit_1to8", "1:8"},       {"vit_2to8_fmnist", "2:8"},
};

static int is_block_linear(const char *name) {
    const char *suffixes[] = {"attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight"};
    size_t n = strlen(name);
    for (size_t i = 0; i < 4; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && !strcmp(name + n - k, suffixes[i])) return 1;
    }
    return 0;
}

/* Copy of src with every block linear packed N:M (and checked to be N:M already). */
static nmf_status pack_set(nmf_tensor_set *dst, const nmf_tensor_set *src, nmf_pattern p) {
    nmf_tensors_init(dst);
    for (size_t i = 0; i < src->count; i++) {
        const nmf_tensor *t = &src->items[i];
        nmf_status st;
        if (is_block_linear(t->name)) {
            int is_nm = 0;
            st = nmf_nm_check(t->data, (size_t)t->shape[0], (size_t)t->shape[1], p, 0, &is_nm);
            if (st) return st;
            if (!is_nm) return nmf_error(NMF_ERR_FORMAT, "%s is not N:M", t->name);
            nmf_nm_matrix a;
            st = nmf_nm_pack(&a, t->data, (size_t)t->shape[0], (size_t)t->shape[1], p, 0);
            if (st == NMF_OK) st = nmf_tensors_add_nm(dst, t->name, &a, NULL);
            nmf_nm_free(&a);
        } else {
            st = nmf_tensors_add_dense(dst, t->name, t->ndim, t->shape, t->data, NULL);
        }
        if (st) return st;
    }
    for (size_t i = 0; i < src->meta_count; i++) {
        nmf_status st = nmf_tensors_set_meta(dst, src->meta[i].key, src->meta[i].value);
        if (st) return st;
    }
    return NMF_OK;
}

static double max_err(const float *a, const float *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= e)) e = isnan(d) ? INFINITY : d;
    }
    return e;
}

/* Forward of the whole batch, then image by image (arena reuse with a smaller batch). */
static void check_model(const nmf_model_config *c, const nmf_tensor_set *set, const nmf_array *x,
                        const nmf_array *want, const char *label) {
    nmf_vit *m = NULL;
    CHECK_OK(nmf_vit_create(&m, c, set));
    if (!m) return;
    size_t B = (size_t)x->shape[0], K = (size_t)c->num_classes;
    size_t per = x->numel / B;
    float *logits = calloc(B * K, sizeof(float));
    CHECK_OK(nmf_vit_forward(m, logits, x->data, B));
    double e = max_err(logits, want->data, B * K);
    CHECK_MSG(e <= 1e-4, "%s (%s): batch max abs err %.3g", label, nmf_isa_name(nmf_active_isa()), e);
    for (size_t b = 0; b < B; b++) CHECK_OK(nmf_vit_forward(m, logits + b * K, x->data + b * per, 1));
    e = max_err(logits, want->data, B * K);
    CHECK_MSG(e <= 1e-4, "%s (%s): one by one max abs err %.3g", label, nmf_isa_name(nmf_active_isa()), e);
    /* a second call with the first batch size reuses the arena and gives the same answer */
    float *again = calloc(B * K, sizeof(float));
    CHECK_OK(nmf_vit_forward(m, again, x->data, B));
    CHECK(max_err(again, want->data, B * K) <= 1e-4);
    free(again);
    free(logits);
    nmf_vit_free(m);
}

static void run_fixture(const fixture *f) {
    char path[512], label[128];
    nmf_tensor_set set;
    nmf_array x = {0}, want = {0};
    snprintf(path, sizeof path, "tests/fixtures/model/%s.safetensors", f->name);
    CHECK_OK(nmf_safetensors_read(test_source_path(path), &set));
    snprintf(path, sizeof path, "tests/fixtures/model/%s.input.npy", f->name);
    CHECK_OK(nmf_npy_read(test_source_path(path), &x));
    snprintf(path, sizeof path, "tests/fixtures/model/%s.logits.npy", f->name);
    CHECK_OK(nmf_npy_read(test_source_path(path), &want));
    nmf_model_config c;
    nmf_model_config_default(&c);
    const char *json = nmf_tensors_get_meta(&set, NMF_CONFIG_META_KEY);
    CHECK(json != NULL);
    if (json) CHECK_OK(nmf_model_config_from_json(json, &c));
    CHECK(x.ndim == 4 && want.ndim == 2 && want.shape[0] == x.shape[0] &&
          want.shape[1] == c.num_classes);
    if (test_failures) goto done;

    snprintf(label, sizeof label, "%s dense-held", f->name);
    check_model(&c, &set, &x, &want, label);
    if (f->pattern) {
        nmf_pattern p;
        nmf_tensor_set packed;
        CHECK_OK(nmf_pattern_parse(f->pattern, &p));
        CHECK_OK(pack_set(&packed, &set, p));
        snprintf(label, sizeof label, "%s packed %s", f->name, f->pattern);
        check_model(&c, &packed, &x, &want, label);
        /* every other kernel set this CPU has: scalar references, AVX2 */
        nmf_isa best = nmf_active_isa();
        for (int isa = NMF_ISA_SCALAR; isa < (int)best; isa++) {
            nmf_set_isa((nmf_isa)isa);
            check_model(&c, &packed, &x, &want, label);
            check_model(&c, &set, &x, &want, f->name);
        }
        nmf_set_isa(best);
        nmf_tensors_free(&packed);
    }
done:
    nmf_tensors_free(&set);
    nmf_array_free(&x);
    nmf_array_free(&want);
}

/* Bad inputs: config mismatch, NaN images, missing tensor. */
static void bad_inputs(void) {
    nmf_tensor_set set;
    CHECK_OK(nmf_safetensors_read(test_source_path("tests/fixtures/model/vit_2to8.safetensors"), &set));
    nmf_model_config c;
    nmf_model_config_default(&c);
    CHECK_OK(nmf_model_config_from_json(nmf_tensors_get_meta(&set, NMF_CONFIG_META_KEY), &c));
    nmf_vit *m = NULL;
    nmf_model_config wrong = c;
    wrong.dim = 32;
    wrong.heads = 4;
    CHECK_STATUS(nmf_vit_create(&m, &wrong, &set), NMF_ERR_SHAPE);
    CHECK(m == NULL);
    wrong = c;
    wrong.depth = c.depth + 1;
    CHECK_STATUS(nmf_vit_create(&m, &wrong, &set), NMF_ERR_NOT_FOUND);
    wrong = c;
    wrong.depth = c.depth - 1;
    CHECK_STATUS(nmf_vit_create(&m, &wrong, &set), NMF_ERR_FORMAT); /* extra tensors */
    wrong = c;
    wrong.heads = 3; /* 16 % 3 != 0 */
    CHECK(nmf_vit_create(&m, &wrong, &set) != NMF_OK);

    CHECK_OK(nmf_vit_create(&m, &c, &set));
    size_t per = (size_t)c.in_chans * (size_t)c.img_size * (size_t)c.img_size;
    float *x = calloc(2 * per, sizeof(float)), logits[2 * 16];
    x[per + 5] = NAN;
    CHECK_STATUS(nmf_vit_forward(m, logits, x, 2), NMF_ERR_NUMERIC);
    CHECK(strstr(nmf_last_error(), "image 1") != NULL);
    x[per + 5] = INFINITY;
    CHECK_STATUS(nmf_vit_forward(m, logits, x, 2), NMF_ERR_NUMERIC);
    /* finite but overflowing inputs: an error, not NaN logits */
    for (size_t i = per; i < 2 * per; i++) x[i] = (i % 2 ? 3e38f : -3e38f);
    CHECK_STATUS(nmf_vit_forward(m, logits, x, 2), NMF_ERR_NUMERIC);
    CHECK(strstr(nmf_last_error(), "image 1") != NULL);
    for (size_t i = per; i < 2 * per; i++) x[i] = 0.0f;
    CHECK_OK(nmf_vit_forward(m, logits, x, 2));
    CHECK_STATUS(nmf_vit_forward(m, logits, x, 0), NMF_ERR_INVALID_ARG);
    nmf_vit_free(m);
    free(x);

    /* a NaN weight is refused at load */
    nmf_tensor *t = nmf_tensors_find(&set, "blocks.0.norm1.weight");
    CHECK(t != NULL);
    if (t) t->data[0] = NAN;
    CHECK_STATUS(nmf_vit_create(&m, &c, &set), NMF_ERR_NUMERIC);
    nmf_tensors_free(&set);
}

/* Random models (the shape library path): deterministic, finite, and N:M when asked. */
static void random_models(void) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.dim = 32;
    c.depth = 2;
    c.heads = 2;
    nmf_vit *a = NULL, *b = NULL, *s = NULL;
    CHECK_OK(nmf_vit_create_random(&a, &c, (nmf_pattern){0, 0}, 7));
    CHECK_OK(nmf_vit_create_random(&b, &c, (nmf_pattern){0, 0}, 7));
    CHECK_OK(nmf_vit_create_random(&s, &c, (nmf_pattern){1, 8}, 7));
    nmf_vit *bad = NULL;
    CHECK_STATUS(nmf_vit_create_random(&bad, &c, (nmf_pattern){8, 8}, 7), NMF_ERR_INVALID_ARG);
    CHECK(bad == NULL);
    size_t per = 28 * 28;
    float x[2 * 28 * 28], la[20], lb[20], ls[20];
    unsigned long long seed = 3;
    for (size_t i = 0; i < 2 * per; i++) x[i] = test_rand_float(&seed);
    if (a && b) {
        CHECK_OK(nmf_vit_forward(a, la, x, 2));
        CHECK_OK(nmf_vit_forward(b, lb, x, 2));
        CHECK(memcmp(la, lb, sizeof la) == 0);
    }
    if (s) {
        CHECK_OK(nmf_vit_forward(s, ls, x, 2));
        int finite = 1;
        for (int i = 0; i < 20; i++) finite &= isfinite(ls[i]);
        CHECK(finite);
        CHECK(nmf_vit_weight_bytes(s) < nmf_vit_weight_bytes(a));
    }
    nmf_model_config deit;
    CHECK_OK(nmf_model_shape_config("deit-small", &deit));
    CHECK(deit.dim == 384 && deit.heads == 6 && deit.depth == 12 && nmf_vit_tokens(&deit) == 197);
    CHECK_STATUS(nmf_model_shape_config("deit-huge", &deit), NMF_ERR_NOT_FOUND);
    nmf_vit_free(a);
    nmf_vit_free(b);
    nmf_vit_free(s);
}

static void no_op(const nmf_op_event *e, void *ctx) { (void)e, (void)ctx; }

/* Inference runs each block over groups of images whose MLP activations fit 1 MiB: 257 tokens x
 * 384 hidden floats is 395 KB an image, so 5 images run as 2 + 2 + 1: the same bits as the whole
 * batch at once (an observer makes one group), f32 and int8, in an arena whose scratch holds a
 * group (the residual stream the batch). (Not the bits of each image alone: the stem's and
 * head's dense products may round differently at another row count.) */
static void batch_groups(void) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.img_size = 64;
    c.patch = 4;
    c.dim = 32;
    c.depth = 2;
    c.heads = 1; /* heads of 32: int8 blocks attend in int8 (nmf_attention_q8_pays) */
    c.mlp_ratio = 12.0f;
    const size_t B = 5, per = (size_t)c.in_chans * 64 * 64, K = (size_t)c.num_classes;
    float *x = malloc(B * per * sizeof(float)), *whole = malloc(B * K * sizeof(float));
    float *grouped = malloc(B * K * sizeof(float));
    unsigned long long seed = 11;
    for (size_t i = 0; i < B * per; i++) x[i] = test_rand_float(&seed);
    for (int int8 = 0; int8 <= 1; int8++) {
        nmf_vit *m = NULL;
        CHECK_OK(nmf_vit_create_random(&m, &c, (nmf_pattern){int8 ? 1 : 2, 8}, 5));
        if (!m) continue;
        if (int8) CHECK_OK(nmf_vit_set_precision(m, NMF_PREC_INT8));
        CHECK_OK(nmf_vit_forward(m, grouped, x, B));
        const size_t grouped_bytes = nmf_vit_arena_bytes(m);
        CHECK_OK(nmf_vit_forward_observed(m, whole, x, B, no_op, NULL));
        /* the scratch holds 2 images, not 5: 140 K of the 148 K floats an image are scratch */
        CHECK_MSG(grouped_bytes < nmf_vit_arena_bytes(m) * 6 / 10, "arena %zu bytes in groups, %zu whole",
                  grouped_bytes, nmf_vit_arena_bytes(m));
        CHECK_MSG(test_same_bits(grouped, whole, B * K, "groups vs whole batch"), "%s", int8 ? "int8" : "f32");
        nmf_vit_free(m);
    }
    free(x);
    free(whole);
    free(grouped);
}

/* keeps a copy of the stem's output (NMF_OP_EMBED) */
static void keep_embed(const nmf_op_event *e, void *ctx) {
    float **dst = ctx;
    if (e->op != NMF_OP_EMBED) return;
    *dst = malloc(e->rows * e->cols * sizeof(float));
    memcpy(*dst, e->data, e->rows * e->cols * sizeof(float));
}

/* An int8 model's patch embedding runs in int8 (a dense int8 layer of W_pe): its stem output
 * differs from the f32 model's by the quantisation (nonzero, within 2^-6 of the largest value)
 * and is the bits of that layer's product plus cls / pos, which the test rebuilds; the int8 copy
 * counts in the weight bytes. */
static void int8_stem(void) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.img_size = 32;
    c.patch = 8;
    c.dim = 32;
    c.depth = 1;
    c.heads = 2;
    const size_t B = 2, per = (size_t)c.in_chans * (size_t)c.img_size * (size_t)c.img_size;
    const size_t K = (size_t)c.in_chans * (size_t)c.patch * (size_t)c.patch;
    const size_t T = (size_t)nmf_vit_tokens(&c), P = T - 1, D = (size_t)c.dim, n = B * T * D;
    float *x = malloc(B * per * sizeof(float)), *logits = malloc(B * (size_t)c.num_classes * sizeof(float));
    unsigned long long s = 5;
    for (size_t i = 0; i < B * per; i++) x[i] = test_rand_float(&s);
    nmf_vit *f = NULL, *q = NULL;
    CHECK_OK(nmf_vit_create_random(&f, &c, (nmf_pattern){2, 4}, 3));
    CHECK_OK(nmf_vit_create_random(&q, &c, (nmf_pattern){2, 4}, 3));
    float *ef = NULL, *eq = NULL;
    if (f && q) {
        const size_t f32_bytes = nmf_vit_weight_bytes(q);
        CHECK_OK(nmf_vit_set_precision(q, NMF_PREC_INT8));
        CHECK(nmf_vit_weight_bytes(q) > f32_bytes - 4 * D * D * 4); /* blocks shrank, stem copy added */
        CHECK_OK(nmf_vit_forward_observed(f, logits, x, B, keep_embed, &ef));
        CHECK_OK(nmf_vit_forward_observed(q, logits, x, B, keep_embed, &eq));
    }
    if (ef && eq) {
        double worst = 0, top = 0;
        for (size_t i = 0; i < n; i++) {
            worst = fabs((double)eq[i] - ef[i]) > worst ? fabs((double)eq[i] - ef[i]) : worst;
            top = fabs((double)ef[i]) > top ? fabs((double)ef[i]) : top;
        }
        CHECK_MSG(worst > 0 && worst <= top / 64, "int8 stem: %.3g from f32 (largest %.3g)", worst, top);
        /* the same bits from a dense int8 layer of W_pe on the patches, then + cls / pos */
        const nmf_vit_params *pp = &q->p; /* (vit_internal.h) */
        float *patches = malloc(B * P * K * sizeof(float)), *pe = malloc(B * P * D * sizeof(float));
        nmf_patchify(patches, x, sizeof(float), B, c.in_chans, c.img_size, c.patch);
        nmf_linear *stem = NULL;
        CHECK_OK(nmf_linear_create_dense(&stem, pp->patch_w, D, K));
        CHECK_OK(nmf_linear_set_precision(stem, NMF_PREC_INT8));
        CHECK_OK(nmf_linear_forward(pe, patches, stem, pp->patch_b, B * P, NMF_ACT_NONE));
        int same = 1;
        for (size_t b = 0; b < B; b++)
            for (size_t t = 1; t < T; t++)
                for (size_t d = 0; d < D; d++)
                    same &= eq[(b * T + t) * D + d] == pe[(b * P + t - 1) * D + d] + pp->pos[t * D + d];
        CHECK_MSG(same, "int8 stem: not the dense int8 layer's bits");
        nmf_linear_free(stem);
        free(patches);
        free(pe);
    }
    free(ef);
    free(eq);
    nmf_vit_free(f);
    nmf_vit_free(q);
    free(x);
    free(logits);
}

int main(void) {
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) run_fixture(&fixtures[i]);
    int8_stem();
    bad_inputs();
    random_models();
    batch_groups();
    return test_finish("test_vit_fixtures");
}
