/* Training engine vs PyTorch (tests/ref/make_train_fixtures.py): loss and every parameter
 * gradient of a tiny ViT, dense and with 2:4 / 1:8 SR-STE masks (incl. the lambda term), and
 * the losses of 10 AdamW steps. Tolerance: relative 1e-4, per tensor as
 * max|c - ref| <= 1e-4 * max|ref| (element-wise relative error is meaningless where a
 * gradient crosses zero). */
#include <cjson/cJSON.h>

#include "nmformer/io.h"
#include "nmformer/train.h"
#include "grad_fixture.h"
#include "test.h"

#define TOL 1e-4

static nmf_tensor_set fx;
static nmf_model_config cfg;

/* Compares every gradient (and mask, for masked cases) with the fixture. */
static void check_case(nmf_vit_train *m, const char *cas, nmf_pattern pat, float lambda) {
    char name[160];
    CHECK_OK(nmf_vit_train_set_pattern(m, pat));
    const nmf_tensor *x = fixture_get(&fx, "x"), *lab = fixture_get(&fx, "labels");
    if (!x || !lab) return;
    int B = (int)lab->numel, labels[64];
    for (int b = 0; b < B; b++) labels[b] = (int)lab->data[b];
    float loss = 0;
    CHECK_OK(nmf_vit_train_forward(m, x->data, labels, B, &loss, NULL));
    snprintf(name, sizeof name, "%s.loss", cas);
    const nmf_tensor *ref_loss = fixture_get(&fx, name);
    if (ref_loss) CHECK_MSG(fabs(loss - ref_loss->data[0]) <= TOL * fabs(ref_loss->data[0]),
                            "%s: loss %.8f vs %.8f", cas, loss, ref_loss->data[0]);
    CHECK_OK(nmf_vit_train_backward(m));
    nmf_vit_train_srste_decay(m, lambda);

    int tensors = 0;
    double worst = 0;
    for (int p = 0; p < NMF_VP_COUNT; p++) {
        int layers = nmf_vit_param_is_block(p) ? cfg.depth : 1;
        size_t per = nmf_vit_train_param_size(m, p) / (size_t)layers;
        for (int l = 0; l < layers; l++) {
            char tname[96];
            if (nmf_vit_param_is_block(p))
                snprintf(tname, sizeof tname, "blocks.%d.%s", l, nmf_vit_param_name(p));
            else
                snprintf(tname, sizeof tname, "%s", nmf_vit_param_name(p));
            snprintf(name, sizeof name, "%s.grad.%s", cas, tname);
            const nmf_tensor *ref = fixture_get(&fx, name);
            if (!ref) continue;
            CHECK(ref->numel == per);
            if (ref->numel != per) continue;
            /* the gradient lives at the same offset in the grad buffer as the param in its own */
            size_t off = (size_t)(nmf_vit_train_param_ptr(m, p, l) - nmf_vit_train_param_mem(m));
            const float *g = nmf_vit_train_grad_mem(m) + off;
            double scale = max_abs(ref->data, per), err = 0;
            for (size_t i = 0; i < per; i++) err = fmax(err, fabs(g[i] - ref->data[i]));
            double rel = scale > 0 ? err / scale : err;
            worst = fmax(worst, rel);
            CHECK_MSG(rel <= TOL, "%s: grad of %s: max err %.3g, rel %.3g", cas, tname, err, rel);
            tensors++;
            if (nmf_vit_param_prunable(p) && pat.m) {
                snprintf(name, sizeof name, "%s.mask.%s", cas, tname);
                const nmf_tensor *rm = fixture_get(&fx, name);
                const uint8_t *mk = nmf_vit_train_mask(m, p, l);
                int diff = 0;
                for (size_t i = 0; rm && mk && i < per; i++) diff += (rm->data[i] != 0) != mk[i];
                CHECK_MSG(rm && mk && diff == 0, "%s: mask of %s differs in %d places", cas, tname,
                          diff);
            }
        }
    }
    CHECK(tensors == 4 + 12 * cfg.depth + 4);
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
    const nmf_tensor *x = fixture_get(&fx, "x"), *lab = fixture_get(&fx, "labels");
    if (!ref || !x || !lab || ref->numel != (size_t)steps) return;
    int B = (int)lab->numel, labels[64];
    for (int b = 0; b < B; b++) labels[b] = (int)lab->data[b];
    double worst = 0;
    for (int s = 0; s < steps; s++) {
        c.lr = nmf_lr_cosine(s, steps, warmup, lr_max, lr_min);
        CHECK_OK(nmf_vit_train_update_masks(m));
        float loss = 0;
        CHECK_OK(nmf_vit_train_forward(m, x->data, labels, B, &loss, NULL));
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

int main(void) {
    CHECK_OK(nmf_safetensors_read(test_source_path("tests/fixtures/train/grad_check.safetensors"),
                                  &fx));
    nmf_model_config_default(&cfg);
    const char *json = nmf_tensors_get_meta(&fx, NMF_CONFIG_META_KEY);
    CHECK(json != NULL);
    if (!json) return test_finish("test_grad");
    CHECK_OK(nmf_model_config_from_json(json, &cfg));
    float lambda = (float)atof(nmf_tensors_get_meta(&fx, "lambda"));
    CHECK(lambda > 0);

    nmf_vit_train *m = NULL;
    CHECK_OK(nmf_vit_train_create(&m, &cfg, 8));
    if (!m) return test_finish("test_grad");
    CHECK_OK(fixture_load_params(&fx, m));
    check_case(m, "dense", (nmf_pattern){0, 0}, 0.0f);
    /* masked linears through the N:M kernels (default), then through dense BLAS on W*mask */
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

    /* hostile-ish calls */
    CHECK_STATUS(nmf_vit_train_forward(m, fixture_get(&fx, "x")->data, NULL, 9, NULL, NULL),
                 NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_vit_train_set_pattern(m, (nmf_pattern){1, 32}), NMF_ERR_SHAPE);
    nmf_vit_train_free(m);
    nmf_tensors_free(&fx);
    return test_finish("test_grad");
}
