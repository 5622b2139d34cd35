/* Functional mode: the simulator's fixed-point datapath gives logits bit-identical to the plain-C
 * fixed-point reference (fxp_ref.c), on small random ViTs with N:M weights, for int8 and int16,
 * per-tensor and per-channel scales, and designs whose tiles cut layers unevenly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/model.h"
#include "nmformer/sta.h"
#include "nmformer/desc.h"
#include "test.h"

static float randn(unsigned long long *s) {
    float u = 0;
    for (int i = 0; i < 6; i++) u += test_rand_float(s);
    return u * 0.7071f;
}

/* A random ViT (timm names) whose block linears are held N:M (pattern p; {0,0}: dense). */
static nmf_status make_model(const nmf_model_config *c, nmf_pattern p, unsigned long long seed,
                             nmf_tensor_set *set) {
    nmf_tensors_init(set);
    nmf_model_desc desc;
    nmf_status st = nmf_model_describe(&desc, c);
    if (st) return st;
    const nmf_param *specs = desc.params;
    const size_t count = desc.count;
    for (size_t i = 0; i < count && !st; i++) {
        size_t n = 1;
        for (int d = 0; d < specs[i].ndim; d++) n *= (size_t)specs[i].shape[d];
        float *w = malloc(n * sizeof *w);
        if (!w) {
            st = NMF_ERR_NOMEM;
            break;
        }
        int is_norm_w = strstr(specs[i].name, "norm") && strstr(specs[i].name, ".weight");
        float scale = specs[i].ndim >= 2 ? 1.0f / sqrtf((float)specs[i].shape[specs[i].ndim - 1]) : 0.1f;
        if (!strcmp(specs[i].name, "patch_embed.proj.weight")) scale = 0.3f;
        for (size_t k = 0; k < n; k++) w[k] = is_norm_w ? 1.0f + 0.2f * randn(&seed) : scale * randn(&seed);
        if (nmf_param_kind_of(&desc, &specs[i])->nm && p.n) {
            nmf_nm_matrix nm;
            st = nmf_nm_pack(&nm, w, (size_t)specs[i].shape[0], (size_t)specs[i].shape[1], p, 0);
            if (!st) st = nmf_tensors_add_nm(set, specs[i].name, &nm, NULL);
        } else {
            st = nmf_tensors_add_dense(set, specs[i].name, specs[i].ndim, specs[i].shape, w, NULL);
        }
        free(w);
    }
    nmf_model_desc_free(&desc);
    return st;
}

static nmf_model_config small_config(void) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.img_size = 12;
    c.patch = 4; /* 9 patches + cls = 10 tokens */
    c.in_chans = 2;
    c.dim = 32;
    c.depth = 2;
    c.heads = 2;
    c.mlp_ratio = 2.0f;
    c.num_classes = 5;
    return c;
}

typedef struct {
    const char *what;
    int bits, acc;
    nmf_sta_scale scale;
    int dpus, lanes, score_kib, softmax_lanes, vector_lanes;
    nmf_pattern p;
} variant;

static int run_variant(const variant *v, int corrupt) {
    nmf_model_config c = small_config();
    nmf_tensor_set set;
    CHECK_OK(make_model(&c, v->p, 1234 + (unsigned long long)v->bits, &set));
    nmf_sta_config hw;
    nmf_sta_config_default(&hw);
    hw.data_bits = v->bits;
    hw.acc_bits = v->acc;
    hw.weight_scale = v->scale;
    hw.dpus = v->dpus;
    hw.lanes_per_dpu = v->lanes;
    hw.score_buf_kib = v->score_kib;
    hw.softmax_lanes = v->softmax_lanes;
    hw.vector_lanes = v->vector_lanes;
    CHECK_OK(nmf_sta_config_validate(&hw));
    const size_t img = (size_t)c.in_chans * c.img_size * c.img_size, ncal = 8, ntest = 6;
    float *x = malloc((ncal + ntest) * img * sizeof *x);
    unsigned long long s = 99;
    for (size_t i = 0; i < (ncal + ntest) * img; i++) x[i] = randn(&s);
    nmf_fx_model q;
    int mismatches = 0;
    CHECK_OK(nmf_fx_quantize_model(&q, &c, &set, &hw, x, ncal));
    if (corrupt && q.blocks && q.blocks[0].fc1.pos) {
        /* a wrong multiplexer selection in the simulator's packed copy must be caught */
        uint8_t *pos = q.blocks[0].fc1.pos;
        int m = q.blocks[0].fc1.pattern.m, n = q.blocks[0].fc1.pattern.n;
        for (int k = 0; k < n; k++) pos[k] = (uint8_t)((pos[k] + 1 + (n - 1)) % m);
    }
    float *f32 = malloc(ntest * (size_t)c.num_classes * sizeof *f32);
    CHECK_OK(nmf_sta_f32_forward(f32, x + ncal * img, ntest, &c, &set, NULL, 0));
    int16_t *xq = malloc(img * sizeof *xq);
    int64_t sim[8], ref[8];
    float fx[8];
    double maxerr = 0, maxlogit = 0;
    for (size_t b = 0; b < ntest && q.blocks; b++) {
        nmf_fx_quantize_input(xq, x + (ncal + b) * img, img, &q);
        CHECK_OK(nmf_sta_functional_forward(sim, xq, &q, &hw));
        CHECK_OK(nmf_fx_ref_forward(ref, xq, &q));
        if (memcmp(sim, ref, (size_t)c.num_classes * sizeof sim[0])) mismatches++;
        nmf_fx_logits_to_f32(fx, sim, &q);
        for (int o = 0; o < c.num_classes; o++) {
            double d = fabs((double)fx[o] - f32[b * (size_t)c.num_classes + (size_t)o]); /* as nmf_sta_verify */
            if (d > maxerr) maxerr = d;
            if (fabs(f32[b * (size_t)c.num_classes + (size_t)o]) > maxlogit)
                maxlogit = fabs(f32[b * (size_t)c.num_classes + (size_t)o]);
        }
    }
    printf("%-44s mismatched images %d/%zu, max |logit - f32| %.5f (max |logit| %.3f)\n", v->what,
           mismatches, ntest, maxerr, maxlogit);
    if (!corrupt) {
        /* the library's verification workflow reports exactly what the loop above found; with
         * the f32 predictions as labels, f32 is always right and fixed point right where the two
         * agree */
        int labels[8];
        for (size_t b = 0; b < ntest; b++) {
            const float *z = f32 + b * (size_t)c.num_classes;
            labels[b] = 0;
            for (int o = 1; o < c.num_classes; o++)
                if (z[o] > z[labels[b]]) labels[b] = o;
        }
        nmf_sta_verify_result r;
        CHECK_OK(nmf_sta_verify(&r, &hw, &c, &set, x, ncal, x + ncal * img, labels, ntest));
        CHECK(r.images == ntest && r.calibration_images == ncal && r.mismatched == (size_t)mismatches);
        CHECK_MSG(r.cpu_mismatched == 0, "%s: the CPU's fixed-point mode differs on %zu images", v->what,
                  r.cpu_mismatched); /* run/eval --sta */
        CHECK_MSG(r.max_abs_logit_error == maxerr, "%s: verify max error %g, loop %g", v->what,
                  r.max_abs_logit_error, maxerr);
        CHECK(r.correct_f32 == ntest && r.correct_fixed == r.top1_agree && r.top1_agree <= ntest);
        CHECK_STATUS(nmf_sta_verify(&r, &hw, &c, &set, x, 0, x, NULL, ntest), NMF_ERR_INVALID_ARG);
        CHECK_MSG(mismatches == 0, "%s: functional vs reference differ", v->what);
        /* the fixed-point model tracks f32 (test images beyond the 8 calibration images saturate) */
        CHECK_MSG(maxerr < (v->bits == 16 ? 0.05 : 0.3) * (maxlogit > 1 ? maxlogit : 1),
                  "%s: max error %g", v->what, maxerr);
    }
    free(f32);
    free(xq);
    free(x);
    nmf_fx_model_free(&q);
    nmf_tensors_free(&set);
    return mismatches;
}

static void test_primitives(void) {
    CHECK(nmf_fx_shift_round(5, 1) == 3);   /* 2.5 -> 3 (half up) */
    CHECK(nmf_fx_shift_round(-5, 1) == -2); /* -2.5 -> -2 (half up) */
    CHECK(nmf_fx_shift_round(-7, 2) == -2); /* -1.75 */
    CHECK(nmf_fx_sat(200, 8) == 127 && nmf_fx_sat(-200, 8) == -128 && nmf_fx_sat(5, 8) == 5);
    CHECK(nmf_fx_div_round(7, 2) == 4 && nmf_fx_div_round(-7, 2) == -4 && nmf_fx_div_round(6, 4) == 2);
    CHECK(nmf_fx_quantize(0.5f, 1.0f, 8) == 1 && nmf_fx_quantize(-0.5f, 1.0f, 8) == -1);
    CHECK(nmf_fx_quantize(1e9f, 1.0f, 16) == 32767);
    unsigned long long s = 5;
    for (int i = 0; i < 20000; i++) {
        uint64_t v = test_rand_u64(&s) >> (test_rand_u64(&s) % 64);
        uint64_t r = nmf_fx_isqrt(v);
        CHECK(r * r <= v && (r + 1) * (r + 1) > v);
        double real = exp((test_rand_float(&s) * 20.0));
        nmf_fx_rq rq;
        if (nmf_fx_rq_from_real(real, &rq) == NMF_OK) {
            double got = ldexp((double)rq.mult, -rq.shift);
            CHECK(rq.mult >= 16384 && rq.mult < 32768);
            CHECK(fabs(got - real) / real <= 1.0 / 32768);
        }
    }
    CHECK_STATUS(nmf_fx_rq_from_real(-1.0, &(nmf_fx_rq){0, 0}), NMF_ERR_NUMERIC);
    /* exp: 2^(-u/65536) within 1e-4 relative (table + interpolation, Q15 result) over [0, 8) */
    double worst = 0;
    for (uint64_t u = 0; u < (8u << 16); u += 37) {
        double want = 32768.0 * exp2(-(double)u / 65536.0);
        double got = nmf_fx_exp2_neg(u);
        double err = fabs(got - want);
        if (want > 256 && err / want > worst) worst = err / want;
        CHECK(err <= 1.0 + want * 1e-4);
    }
    printf("exp2 approximation: worst relative error %.2e (values > 256/32768)\n", worst);
    CHECK(nmf_fx_exp2_neg(0) == 32768 && nmf_fx_exp2_neg(16u << 16) == 0);
}

/* The sta module's own f32 forward (calibration, accuracy reference) agrees with the model
 * module's nmf_vit_forward (checked against PyTorch in tests/model). */
static void test_f32_matches_model(void) {
    nmf_model_config c = small_config();
    nmf_tensor_set set;
    CHECK_OK(make_model(&c, (nmf_pattern){2, 8}, 42, &set));
    const size_t img = (size_t)c.in_chans * c.img_size * c.img_size, n = 3;
    float x[3 * 2 * 12 * 12], a[3 * 5], b[3 * 5];
    unsigned long long s = 7;
    for (size_t i = 0; i < n * img; i++) x[i] = randn(&s);
    CHECK_OK(nmf_sta_f32_forward(a, x, n, &c, &set, NULL, 0));
    nmf_vit *m = NULL;
    CHECK_OK(nmf_vit_create(&m, &c, &set));
    if (m) {
        CHECK_OK(nmf_vit_forward(m, b, x, n));
        for (size_t i = 0; i < n * (size_t)c.num_classes; i++) CHECK_NEAR(a[i], b[i], 1e-4);
        nmf_vit_free(m);
    }
    nmf_tensors_free(&set);
}

int main(void) {
    test_primitives();
    test_f32_matches_model();
    const variant variants[] = {
        {"int8, per-channel, 2:4, 8 DPUs x 4 lanes", 8, 32, NMF_STA_SCALE_CHANNEL, 8, 4, 256, 64, 64, {2, 4}},
        {"int8, per-tensor, 2:8, 5 DPUs x 8 lanes", 8, 32, NMF_STA_SCALE_TENSOR, 5, 8, 1, 3, 5, {2, 8}},
        {"int8, per-channel, 1:8, 256 DPUs x 16 lanes", 8, 32, NMF_STA_SCALE_CHANNEL, 256, 16, 256, 64, 64, {1, 8}},
        {"int16, per-channel, 2:8, 7 DPUs x 16 lanes", 16, 48, NMF_STA_SCALE_CHANNEL, 7, 16, 1, 7, 3, {2, 8}},
        {"int16, per-tensor, 4:8, 3 DPUs x 4 lanes", 16, 48, NMF_STA_SCALE_TENSOR, 3, 4, 256, 64, 64, {4, 8}},
        {"int8, per-channel, 3:8 (L % N != 0), 9x16", 8, 32, NMF_STA_SCALE_CHANNEL, 9, 16, 256, 64, 64, {3, 8}},
        {"int8, dense weights, 16 DPUs x 8 lanes", 8, 32, NMF_STA_SCALE_CHANNEL, 16, 8, 256, 64, 64, {0, 0}},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) run_variant(&variants[i], 0);
    /* negative control: a corrupted mux selection is detected */
    int bad = run_variant(&variants[0], 1);
    CHECK(bad > 0);
    /* too narrow an accumulator is rejected, naming the key */
    {
        nmf_model_config c = small_config();
        nmf_tensor_set set;
        CHECK_OK(make_model(&c, (nmf_pattern){2, 4}, 5, &set));
        nmf_sta_config hw;
        nmf_sta_config_default(&hw);
        hw.acc_bits = 17;
        float x[2 * 12 * 12];
        for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = 0.01f * (float)i;
        nmf_fx_model q;
        CHECK_STATUS(nmf_fx_quantize_model(&q, &c, &set, &hw, x, 1), NMF_ERR_INVALID_ARG);
        CHECK(strstr(nmf_last_error(), "numeric.acc_bits") != NULL);
        nmf_tensors_free(&set);
    }
    return test_finish("sta_functional");
}
