/* SR-STE and IDP mechanics: masks (top-N per group, recomputed as weights move), the lambda
 * term, ASP gradient masking, forward with W*mask, the IDP ramp, the LR schedule, and export of
 * N:M candidates (packed) with import back. */
#include <math.h>

#include "nmformer/io.h"
#include "nmformer/train.h"
#include "test.h"

static nmf_model_config tiny(void) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.img_size = 8;
    c.patch = 4;
    c.dim = 16;
    c.depth = 2;
    c.heads = 2;
    c.mlp_ratio = 2.0f;
    return c;
}

/* every group of M along the input dimension keeps exactly N, and they are the N largest */
static void check_masks(nmf_vit_train *m, nmf_pattern p) {
    const nmf_model_config *c = nmf_vit_train_config(m);
    int bad = 0, groups = 0;
    const nmf_vit_param q[] = {NMF_VP_QKV_W, NMF_VP_PROJ_W, NMF_VP_FC1_W, NMF_VP_FC2_W};
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < c->depth; l++) {
            const float *w = nmf_vit_train_param_ptr(m, q[k], l);
            const uint8_t *mk = nmf_vit_train_mask(m, q[k], l);
            size_t n = nmf_vit_train_param_size(m, q[k]) / (size_t)c->depth;
            for (size_t g = 0; g < n; g += (size_t)p.m, groups++) {
                int kept = 0;
                float min_kept = INFINITY, max_drop = 0;
                for (int j = 0; j < p.m; j++) {
                    float a = fabsf(w[g + j]);
                    if (mk[g + j]) kept++, min_kept = fminf(min_kept, a);
                    else max_drop = fmaxf(max_drop, a);
                }
                if (kept != p.n || min_kept < max_drop) bad++;
            }
        }
    CHECK_MSG(bad == 0 && groups > 0, "%d of %d groups violate top-%d of %d", bad, groups, p.n,
              p.m);
}

static void test_masks_and_lambda(void) {
    nmf_model_config c = tiny();
    nmf_vit_train *m = NULL;
    CHECK_OK(nmf_vit_train_create(&m, &c, 4));
    if (!m) return;
    nmf_vit_train_init(m, 7);
    CHECK(nmf_vit_train_mask(m, NMF_VP_QKV_W, 0) == NULL); /* dense: no masks */
    nmf_pattern p = {2, 4};
    CHECK_OK(nmf_vit_train_set_pattern(m, p));
    check_masks(m, p);
    CHECK(nmf_vit_train_mask(m, NMF_VP_HEAD_W, 0) == NULL); /* head is never pruned */

    /* masks follow the weights: make a pruned weight the largest of its group */
    float *w = nmf_vit_train_param_ptr(m, NMF_VP_FC1_W, 1);
    uint8_t *mk = nmf_vit_train_mask(m, NMF_VP_FC1_W, 1);
    int j = 0;
    while (mk[j]) j++;
    CHECK(j < 4);
    w[j] = 10.0f;
    CHECK_OK(nmf_vit_train_update_masks(m));
    CHECK(mk[j] == 1);
    check_masks(m, p);

    /* forward with masks == forward of a dense model holding W*mask */
    float x[4 * 64];
    int labels[4] = {1, 2, 3, 4};
    unsigned long long s = 99;
    for (int i = 0; i < 4 * 64; i++) x[i] = test_rand_float(&s);
    float loss_masked, loss_dense;
    /* N:M kernels: same values up to summation order */
    CHECK_OK(nmf_vit_train_forward(m, x, labels, 4, &loss_masked, NULL));
    float logits_nm[40], logits[40];
    memcpy(logits_nm, nmf_vit_train_logits(m), sizeof logits_nm);
    /* dense BLAS on W*mask: bit-identical to a dense model holding W*mask */
    nmf_vit_train_use_nm_kernels(m, 0);
    CHECK_OK(nmf_vit_train_forward(m, x, labels, 4, &loss_masked, NULL));
    memcpy(logits, nmf_vit_train_logits(m), sizeof logits);
    nmf_vit_train_use_nm_kernels(m, 1);
    for (int i = 0; i < 40; i++) CHECK_NEAR(logits_nm[i], logits[i], 1e-5 * (1 + fabs(logits[i])));
    nmf_vit_train *d = NULL;
    CHECK_OK(nmf_vit_train_create(&d, &c, 4));
    if (d) {
        memcpy(nmf_vit_train_param_mem(d), nmf_vit_train_param_mem(m),
               nmf_vit_train_num_params(m) * sizeof(float));
        const nmf_vit_param q[] = {NMF_VP_QKV_W, NMF_VP_PROJ_W, NMF_VP_FC1_W, NMF_VP_FC2_W};
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < c.depth; l++) {
                float *wd = nmf_vit_train_param_ptr(d, q[k], l);
                const uint8_t *mm = nmf_vit_train_mask(m, q[k], l);
                for (size_t i = 0; i < nmf_vit_train_param_size(m, q[k]) / 2; i++)
                    if (!mm[i]) wd[i] = 0.0f;
            }
        CHECK_OK(nmf_vit_train_forward(d, x, labels, 4, &loss_dense, NULL));
        CHECK(!memcmp(logits, nmf_vit_train_logits(d), sizeof logits));
        CHECK(loss_dense == loss_masked);
        nmf_vit_train_free(d);
    }

    /* the SR-STE term: grad += lambda (1 - mask) W exactly, kept weights untouched */
    CHECK_OK(nmf_vit_train_backward(m));
    size_t np = nmf_vit_train_num_params(m);
    float *before = malloc(np * sizeof(float));
    memcpy(before, nmf_vit_train_grad_mem(m), np * sizeof(float));
    const float lambda = 0.5f;
    nmf_vit_train_srste_decay(m, lambda);
    const float *g = nmf_vit_train_grad_mem(m), *pm = nmf_vit_train_param_mem(m);
    int wrong = 0, changed = 0;
    for (int q = 0; q < NMF_VP_COUNT; q++) {
        size_t off = (size_t)(nmf_vit_train_param_ptr(m, q, 0) - pm);
        const uint8_t *mq = nmf_vit_train_mask(m, q, 0);
        for (size_t i = 0; i < nmf_vit_train_param_size(m, q); i++) {
            float want = before[off + i];
            if (mq && !mq[i]) want += lambda * pm[off + i];
            if (g[off + i] != want) wrong++;
            if (g[off + i] != before[off + i]) changed++;
        }
    }
    CHECK_MSG(wrong == 0, "%d gradients differ from grad + lambda(1-mask)W", wrong);
    CHECK(changed > 0);

    /* ASP: gradients of pruned weights are zeroed */
    nmf_vit_train_mask_grads(m);
    wrong = 0;
    for (int q = 0; q < NMF_VP_COUNT; q++) {
        size_t off = (size_t)(nmf_vit_train_param_ptr(m, q, 0) - pm);
        const uint8_t *mq = nmf_vit_train_mask(m, q, 0);
        for (size_t i = 0; mq && i < nmf_vit_train_param_size(m, q); i++)
            if (!mq[i] && g[off + i] != 0.0f) wrong++;
    }
    CHECK(wrong == 0);
    free(before);

    /* export packs N:M; import of the export reproduces W*mask (pruned weights 0) */
    nmf_tensor_set ts;
    CHECK_OK(nmf_vit_train_export(m, 1, &ts));
    CHECK_OK(nmf_model_check_tensors(&c, &ts));
    nmf_tensor *t = nmf_tensors_find(&ts, "blocks.1.mlp.fc1.weight");
    CHECK(t && t->nm && t->nm->pattern.n == 2 && t->nm->pattern.m == 4);
    CHECK(nmf_tensors_get_meta(&ts, NMF_CONFIG_META_KEY) != NULL);
    nmf_vit_train *r = NULL;
    CHECK_OK(nmf_vit_train_create(&r, &c, 4));
    if (r) {
        CHECK_OK(nmf_vit_train_import(r, &ts));
        const float *wr = nmf_vit_train_param_ptr(r, NMF_VP_FC1_W, 1);
        const float *wm = nmf_vit_train_param_ptr(m, NMF_VP_FC1_W, 1);
        const uint8_t *mm = nmf_vit_train_mask(m, NMF_VP_FC1_W, 1);
        int diff = 0;
        for (size_t i = 0; i < nmf_vit_train_param_size(m, NMF_VP_FC1_W) / 2; i++)
            diff += wr[i] != (mm[i] ? wm[i] : 0.0f);
        CHECK(diff == 0);
        CHECK(!memcmp(nmf_vit_train_param_ptr(r, NMF_VP_POS, 0),
                      nmf_vit_train_param_ptr(m, NMF_VP_POS, 0),
                      nmf_vit_train_param_size(m, NMF_VP_POS) * sizeof(float)));
        /* a non-finite value in the imported weights is refused (not left to "diverge") */
        nmf_tensor *pos = nmf_tensors_find(&ts, "pos_embed");
        CHECK(pos && pos->data);
        if (pos && pos->data) {
            pos->data[3] = NAN;
            CHECK_STATUS(nmf_vit_train_import(r, &ts), NMF_ERR_NUMERIC);
        }
        nmf_vit_train_free(r);
    }
    nmf_tensors_free(&ts);

    /* back to dense: no masks, forward uses the shadow weights */
    CHECK_OK(nmf_vit_train_set_pattern(m, (nmf_pattern){0, 0}));
    CHECK(nmf_vit_train_mask(m, NMF_VP_QKV_W, 0) == NULL);
    CHECK_STATUS(nmf_vit_train_set_pattern(m, (nmf_pattern){4, 4}), NMF_ERR_INVALID_ARG);
    nmf_vit_train_free(m);
}

static void test_ramp_and_schedule(void) {
    nmf_pattern d = {0, 0}, p48 = {4, 8}, p28 = {2, 8}, p18 = {1, 8}, p24 = {2, 4};
    nmf_pattern r;
    r = nmf_idp_stage_pattern(d, p48, 100, 0, 0.3f);
    CHECK(r.n == 4 && r.m == 8); /* from dense: straight to the target */
    r = nmf_idp_stage_pattern(p48, p28, 100, 0, 0.3f);
    CHECK(r.n == 3);
    r = nmf_idp_stage_pattern(p48, p28, 100, 29, 0.3f);
    CHECK(r.n == 3);
    r = nmf_idp_stage_pattern(p48, p28, 100, 30, 0.3f);
    CHECK(r.n == 2);
    r = nmf_idp_stage_pattern(p28, p18, 100, 0, 0.3f);
    CHECK(r.n == 1); /* adjacent: no ramp */
    r = nmf_idp_stage_pattern(p48, p18, 100, 14, 0.3f);
    CHECK(r.n == 3);
    r = nmf_idp_stage_pattern(p48, p18, 100, 15, 0.3f);
    CHECK(r.n == 2);
    r = nmf_idp_stage_pattern(p48, p18, 100, 30, 0.3f);
    CHECK(r.n == 1);
    r = nmf_idp_stage_pattern(p48, p24, 100, 0, 0.3f);
    CHECK(r.n == 2 && r.m == 4); /* different M: no ramp */
    r = nmf_idp_stage_pattern(p48, p28, 100, 0, 0.0f);
    CHECK(r.n == 2); /* ramp off */

    CHECK_NEAR(nmf_lr_cosine(0, 100, 10, 1.0f, 0.1f), 0.1, 1e-7);
    CHECK_NEAR(nmf_lr_cosine(9, 100, 10, 1.0f, 0.1f), 1.0, 1e-7);
    CHECK_NEAR(nmf_lr_cosine(10, 100, 10, 1.0f, 0.1f), 1.0, 1e-7);
    CHECK_NEAR(nmf_lr_cosine(55, 100, 10, 1.0f, 0.1f), 0.55, 1e-6);
    CHECK_NEAR(nmf_lr_cosine(100, 100, 10, 1.0f, 0.1f), 0.1, 1e-7);

    nmf_train_method mth;
    CHECK_OK(nmf_train_method_parse("asp", &mth));
    CHECK(mth == NMF_METHOD_ASP && !strcmp(nmf_train_method_name(mth), "asp"));
    CHECK_STATUS(nmf_train_method_parse("magic", &mth), NMF_ERR_INVALID_ARG);
    nmf_train_options o;
    CHECK_OK(nmf_train_options_preset(&o, "demo"));
    CHECK(o.num_patterns == 3 && o.srste_lambda == 2e-4f && o.holdout == 5000);
    CHECK_OK(nmf_model_config_validate(&o.model));
    CHECK_OK(nmf_train_options_preset(&o, "full"));
    CHECK_OK(nmf_model_config_validate(&o.model));
    CHECK_STATUS(nmf_train_options_preset(&o, "huge"), NMF_ERR_INVALID_ARG);
}

int main(void) {
    test_masks_and_lambda();
    test_ramp_and_schedule();
    return test_finish("test_srste");
}
