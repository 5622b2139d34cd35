/* Decoder LM training passes vs PyTorch (tests/ref/make_lm_train_fixtures.py): loss, logits and
 * every parameter gradient of a tiny byte-level GPT-2 (tied head, Conv1D weights [in, out]),
 * dense and with 2:4 / 1:8 SR-STE masks, the losses of 10 AdamW steps; then the exported model
 * (dense and packed N:M) run by the inference forward (nmf_lm) gives the training forward's
 * logits. Tolerance as test_grad.c: per tensor max|c - ref| <= 1e-4 * max|ref|. */
#include <cjson/cJSON.h>

#include "nmformer/desc.h"
#include "nmformer/io.h"
#include "nmformer/lm.h"
#include "nmformer/train.h"
#include "grad_fixture.h"
#include "test.h"

#define TOL 1e-4

static nmf_tensor_set fx;
static nmf_model_config cfg;
static nmf_model_desc desc;
static int B, T, ids[256], targets[256];

/* Element i of the reference (HF layout) of row p, as the training buffer holds it (Conv1D
 * weights as their (out, in) view): index of the buffer's element o*cols + c */
static size_t ref_index(const nmf_param *p, size_t k) {
    if (nmf_param_kind_of(&desc, p)->in_axis != 0) return k;
    size_t o = k / p->cols, i = k % p->cols;
    return i * p->rows + o; /* [in, out] */
}

static void check_case(nmf_vit_train *m, const char *cas, nmf_pattern pat, float lambda) {
    char name[160];
    CHECK_OK(nmf_vit_train_set_pattern(m, pat));
    float loss = 0;
    int correct = -1;
    CHECK_OK(nmf_lm_train_forward(m, ids, targets, B, &loss, &correct));
    CHECK(correct >= 0 && correct <= B * T);
    snprintf(name, sizeof name, "%s.loss", cas);
    const nmf_tensor *ref_loss = fixture_get(&fx, name);
    if (ref_loss) CHECK_MSG(fabs(loss - ref_loss->data[0]) <= TOL * fabs(ref_loss->data[0]),
                            "%s: loss %.8f vs %.8f", cas, loss, ref_loss->data[0]);
    snprintf(name, sizeof name, "%s.logits", cas);
    const nmf_tensor *ref_logits = nmf_tensors_find(&fx, name);
    if (ref_logits) {
        const float *z = nmf_vit_train_logits(m);
        double err = 0;
        for (size_t i = 0; i < ref_logits->numel; i++) err = fmax(err, fabs(z[i] - ref_logits->data[i]));
        CHECK_MSG(err <= TOL * max_abs(ref_logits->data, ref_logits->numel), "%s: logits err %.3g",
                  cas, err);
    }
    CHECK_OK(nmf_vit_train_backward(m));
    nmf_vit_train_srste_decay(m, lambda);

    int tensors = 0, masks = 0;
    double worst = 0;
    const float *gmem = nmf_vit_train_grad_mem(m);
    for (size_t r = 0; r < desc.count; r++) {
        const nmf_param *p = &desc.params[r];
        snprintf(name, sizeof name, "%s.grad.%s", cas, p->name);
        const nmf_tensor *ref = fixture_get(&fx, name);
        if (!ref || ref->numel != p->numel) {
            CHECK(ref && ref->numel == p->numel);
            continue;
        }
        const int layer = p->block < 0 ? 0 : p->block;
        const float *w = nmf_vit_train_param_ptr(m, (nmf_vit_param)p->kind, layer);
        const float *g = gmem + (w - nmf_vit_train_param_mem(m));
        double scale = max_abs(ref->data, p->numel), err = 0;
        for (size_t k = 0; k < p->numel; k++) err = fmax(err, fabs(g[k] - ref->data[ref_index(p, k)]));
        double rel = scale > 0 ? err / scale : err;
        worst = fmax(worst, rel);
        CHECK_MSG(rel <= TOL, "%s: grad of %s: max err %.3g, rel %.3g", cas, p->name, err, rel);
        tensors++;
        const uint8_t *mk = nmf_vit_train_mask(m, (nmf_vit_param)p->kind, layer);
        if (pat.m && nmf_param_kind_of(&desc, p)->nm) {
            snprintf(name, sizeof name, "%s.mask.%s", cas, p->name);
            const nmf_tensor *rm = fixture_get(&fx, name);
            int diff = 0;
            for (size_t k = 0; rm && mk && k < p->numel; k++)
                diff += (rm->data[ref_index(p, k)] != 0) != mk[k];
            CHECK_MSG(rm && mk && diff == 0, "%s: mask of %s differs in %d places", cas, p->name,
                      diff);
            masks++;
        }
    }
    CHECK(tensors == (int)desc.count && tensors == 2 + 12 * 2 + 2);
    CHECK(pat.m == 0 || masks == 4 * 2);
    printf("%s: loss %.6f, %d gradients, worst relative error %.2e\n", cas, loss, tensors, worst);
}

static void check_adamw(nmf_vit_train *m, const char *cas, nmf_pattern pat, float lambda,
                        const cJSON *adam) {
    CHECK_OK(fixture_load_params(&fx, m));
    CHECK_OK(nmf_vit_train_set_pattern(m, pat));
    nmf_vit_train_reset_optimizer(m);
    nmf_adamw_config c = {
        .lr = (float)cJSON_GetObjectItem(adam, "lr")->valuedouble,
        .beta1 = (float)cJSON_GetObjectItem(adam, "beta1")->valuedouble,
        .beta2 = (float)cJSON_GetObjectItem(adam, "beta2")->valuedouble,
        .eps = (float)cJSON_GetObjectItem(adam, "eps")->valuedouble,
        .weight_decay = (float)cJSON_GetObjectItem(adam, "weight_decay")->valuedouble,
        .grad_clip = (float)cJSON_GetObjectItem(adam, "clip")->valuedouble,
    };
    int warmup = cJSON_GetObjectItem(adam, "warmup")->valueint;
    int steps = cJSON_GetObjectItem(adam, "steps")->valueint;
    float lr_max = c.lr, lr_min = (float)cJSON_GetObjectItem(adam, "lr_min")->valuedouble;
    char name[64];
    snprintf(name, sizeof name, "adamw.%s.losses", cas);
    const nmf_tensor *ref = fixture_get(&fx, name);
    if (!ref || ref->numel != (size_t)steps) return;
    double worst = 0;
    for (int s = 0; s < steps; s++) {
        c.lr = nmf_lr_cosine(s, steps, warmup, lr_max, lr_min);
        CHECK_OK(nmf_vit_train_update_masks(m));
        float loss = 0;
        CHECK_OK(nmf_lm_train_forward(m, ids, targets, B, &loss, NULL));
        CHECK_OK(nmf_vit_train_backward(m));
        nmf_vit_train_srste_decay(m, lambda);
        nmf_vit_train_adamw_step(m, &c, s + 1);
        double rel = fabs(loss - ref->data[s]) / fabs(ref->data[s]);
        worst = fmax(worst, rel);
        CHECK_MSG(rel <= TOL, "adamw %s step %d: loss %.8f vs %.8f (rel %.2e)", cas, s, loss,
                  ref->data[s], rel);
    }
    printf("adamw %s: %d steps, worst relative loss error %.2e\n", cas, steps, worst);
}

/* The exported model (packed N:M when a pattern is set) in the inference forward gives the
 * training forward's logits. */
static void check_inference(nmf_vit_train *m, nmf_pattern pat) {
    CHECK_OK(fixture_load_params(&fx, m));
    CHECK_OK(nmf_vit_train_set_pattern(m, pat));
    CHECK_OK(nmf_lm_train_forward(m, ids, NULL, B, NULL, NULL));
    nmf_tensor_set s;
    CHECK_OK(nmf_vit_train_export(m, 1, &s));
    nmf_lm *lm = NULL;
    CHECK_OK(nmf_lm_create(&lm, &cfg, &s));
    const int V = cfg.hf.vocab_size;
    float *out = calloc((size_t)B * T * V, sizeof(float));
    int64_t id64[256];
    for (int i = 0; i < B * T; i++) id64[i] = ids[i];
    if (lm && out) {
        CHECK_OK(nmf_lm_forward(lm, out, id64, (size_t)B, (size_t)T, NULL));
        const float *z = nmf_vit_train_logits(m);
        double err = 0;
        for (size_t i = 0; i < (size_t)B * T * V; i++) err = fmax(err, fabs(z[i] - out[i]));
        double scale = max_abs(z, (size_t)B * T * V);
        CHECK_MSG(err <= TOL * scale, "inference %d:%d: logits differ by %.3g (scale %.3g)", pat.n,
                  pat.m, err, scale);
        printf("inference forward of the exported %d:%d model: max logit difference %.2e\n",
               pat.n, pat.m, err);
    }
    free(out);
    nmf_lm_free(lm);
    nmf_tensors_free(&s);
}

int main(void) {
    CHECK_OK(nmf_safetensors_read(test_source_path("tests/fixtures/train/lm_grad_check.safetensors"),
                                  &fx));
    const char *json = nmf_tensors_get_meta(&fx, NMF_CONFIG_META_KEY);
    CHECK(json != NULL);
    if (!json) return test_finish("test_lm_grad");
    CHECK_OK(nmf_model_config_from_json(json, &cfg));
    CHECK_OK(nmf_model_describe(&desc, &cfg));
    float lambda = (float)atof(nmf_tensors_get_meta(&fx, "lambda"));
    CHECK(lambda > 0);
    const nmf_tensor *ti = fixture_get(&fx, "ids"), *tt = fixture_get(&fx, "targets");
    if (!ti || !tt || ti->ndim != 2 || ti->numel > 256) return test_finish("test_lm_grad");
    B = (int)ti->shape[0], T = (int)ti->shape[1];
    for (int i = 0; i < B * T; i++) ids[i] = (int)ti->data[i], targets[i] = (int)tt->data[i];

    nmf_vit_train *m = NULL;
    CHECK_OK(nmf_vit_train_create(&m, &cfg, 4));
    if (!m) return test_finish("test_lm_grad");
    CHECK(nmf_vit_train_is_lm(m) && nmf_vit_train_seq_len(m) == T);
    CHECK_OK(fixture_load_params(&fx, m));
    check_case(m, "dense", (nmf_pattern){0, 0}, 0.0f);
    for (int kernels = 1; kernels >= 0; kernels--) {
        printf("N:M kernels %s\n", kernels ? "on" : "off");
        nmf_vit_train_use_nm_kernels(m, kernels);
        check_case(m, "nm2_4", (nmf_pattern){2, 4}, lambda);
        check_case(m, "nm1_8", (nmf_pattern){1, 8}, lambda);
    }
    nmf_vit_train_use_nm_kernels(m, 1);

    cJSON *adam = cJSON_Parse(nmf_tensors_get_meta(&fx, "adamw"));
    CHECK(adam != NULL);
    if (adam) {
        check_adamw(m, "dense", (nmf_pattern){0, 0}, 0.0f, adam);
        check_adamw(m, "nm2_4", (nmf_pattern){2, 4}, lambda, adam);
        cJSON_Delete(adam);
    }
    check_inference(m, (nmf_pattern){0, 0});
    check_inference(m, (nmf_pattern){2, 4});

    /* bad calls: a clear status, no crash */
    int bad[256];
    memcpy(bad, ids, sizeof bad);
    bad[5] = 256;
    CHECK_STATUS(nmf_lm_train_forward(m, bad, targets, B, NULL, NULL), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_lm_train_forward(m, ids, bad, B, NULL, NULL), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_lm_train_forward(m, ids, targets, 5, NULL, NULL), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_vit_train_forward(m, NULL, NULL, 1, NULL, NULL), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_vit_train_set_pattern(m, (nmf_pattern){1, 32}), NMF_ERR_SHAPE);
    nmf_vit_train_free(m);
    /* what the trainer does not support: an untied head, another family */
    nmf_model_config c2 = cfg;
    c2.hf.tie_word_embeddings = 0;
    CHECK_STATUS(nmf_vit_train_create(&m, &c2, 4), NMF_ERR_UNSUPPORTED);
    nmf_model_desc_free(&desc);
    nmf_tensors_free(&fx);
    return test_finish("test_lm_grad");
}
