/* The CPU's fixed-point mode (nmf_fx_cpu) against the functional simulator: bit-identical logits
 * on every one of 64 Fashion-MNIST-shaped images through the tiny ViT fixtures at dense, 2:4, 2:8
 * and 1:8, for three designs (int8 with 32-bit accumulators, int16 with 48, int8 with the
 * narrowest accumulators the quantiser accepts, per-tensor scales and odd lane counts), under
 * NMF_ISA=scalar and avx2. Half the images are scaled beyond the calibration range, so inputs and
 * activations saturate. Also: each integer kernel against its scalar reference on sizes below,
 * at and above its tiles (ragged K, T, O), in every accumulation mode at the extremes of its
 * bound; and the errors of designs that cannot run a model. */
#include <stdlib.h>
#include <string.h>

#include "nmformer/io.h"
#include "nmformer/model.h"
#include "nmformer/sta.h"
#include "sta/fx_gemm.h"
#include "test.h"

/* ---- kernels -------------------------------------------------------------------------------- */

/* values in [lo, hi], with the extremes themselves often (where overflow would show) */
static int16_t draw(unsigned long long *s, int lo, int hi) {
    unsigned long long r = test_rand_u64(s);
    if (r % 4 == 0) return (int16_t)((r >> 8) % 2 ? lo : hi);
    return (int16_t)(lo + (int)((r >> 8) % (unsigned long long)(hi - lo + 1)));
}

static void test_kernels(void) {
    if (nmf_cpu_best_isa() < NMF_ISA_AVX2) printf("kernels: no AVX2 on this CPU, the scalar kernel only\n");
    /* below, at and above the 4-token and 8/16-row tiles; K ragged (odd: half a pair) */
    static const int Ts[] = {1, 2, 3, 4, 5, 9}, Os[] = {1, 7, 8, 9, 16, 17, 33}, Ks[] = {1, 2, 15, 16, 17, 33, 64};
    /* value ranges within each mode's bound (fx_acc_for): int32 needs sum |a b| < 2^31 */
    struct { fx_acc acc; int alo, ahi, blo, bhi; } modes[] = {
        {FX_ACC32, -128, 127, -127, 127},               /* int8 data: 64 x 2^14 << 2^31 */
        {FX_ACC64_PAIRS, -32768, 32767, -32767, 32767}, /* pair sums up to 2^31 - 2^16 */
        {FX_ACC64, -32768, 32767, -32768, 32767},       /* -32768^2 pairs: vpmaddwd would wrap */
    };
    unsigned long long s = 11;
    int cases = 0;
    for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++)
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
            for (size_t oi = 0; oi < sizeof Os / sizeof Os[0]; oi++)
                for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
                    const int T = Ts[ti], O = Os[oi], K = Ks[ki], tr = (int)(cases % 2);
                    const size_t lda = (size_t)K + 3, ldc = (size_t)O + 2;
                    const size_t ldb = tr ? (size_t)O + 1 : (size_t)K + 5, nb = tr ? (size_t)K * ldb : (size_t)O * ldb;
                    int16_t *A = malloc((size_t)T * lda * sizeof *A), *B = malloc(nb * sizeof *B);
                    int16_t *P = malloc(fx_panel_size(O, K) * sizeof *P);
                    int64_t *c0 = malloc((size_t)T * ldc * sizeof *c0), *c1 = malloc((size_t)T * ldc * sizeof *c1);
                    for (size_t i = 0; i < (size_t)T * lda; i++) A[i] = draw(&s, modes[mi].alo, modes[mi].ahi);
                    for (size_t i = 0; i < nb; i++) B[i] = draw(&s, modes[mi].blo, modes[mi].bhi);
                    for (size_t i = 0; i < (size_t)T * ldc; i++) c0[i] = c1[i] = 77; /* gaps untouched */
                    fx_panel_pack(P, B, ldb, O, K, tr);
                    fx_gemm_scalar(c0, ldc, A, lda, P, T, O, K, modes[mi].acc);
                    if (nmf_cpu_best_isa() >= NMF_ISA_AVX2) {
                        fx_gemm_avx2(c1, ldc, A, lda, P, T, O, K, modes[mi].acc);
                        CHECK_MSG(!memcmp(c0, c1, (size_t)T * ldc * sizeof *c0), "%s T=%d O=%d K=%d differ",
                                  fx_acc_name(modes[mi].acc), T, O, K);
                    }
                    /* the scalar kernel against the plain sum on B itself */
                    int bad = 0;
                    for (int t = 0; t < T; t++)
                        for (int o = 0; o < O; o++) {
                            int64_t want = 0;
                            for (int k = 0; k < K; k++)
                                want += (int64_t)A[(size_t)t * lda + k] * B[tr ? (size_t)k * ldb + o : (size_t)o * ldb + k];
                            bad += c0[(size_t)t * ldc + (size_t)o] != want;
                        }
                    for (int t = 0; t < T; t++) bad += c0[(size_t)t * ldc + (size_t)O] != 77;
                    CHECK_MSG(!bad, "scalar T=%d O=%d K=%d: %d wrong", T, O, K, bad);
                    cases++;
                    free(A), free(B), free(P), free(c0), free(c1);
                }
    /* an all -32768 pair is exactly the case FX_ACC64 exists for */
    int16_t a[32], b[32], p[256];
    int64_t c = 0;
    CHECK(fx_panel_size(1, 32) == 256); /* one panel of 16 pairs */
    for (int i = 0; i < 32; i++) a[i] = b[i] = -32768;
    fx_panel_pack(p, b, 32, 1, 32, 0);
    fx_gemm_for(NMF_ISA_AVX2)(&c, 1, a, 32, p, 1, 1, 32, FX_ACC64);
    CHECK(c == 32 * (int64_t)1073741824);
    /* the bound picks the narrowest exact mode */
    CHECK(fx_acc_for(128, 127, 127 * 3072) == FX_ACC32);
    CHECK(fx_acc_for(32768, 32767, 32767 * 64) == FX_ACC64_PAIRS);
    CHECK(fx_acc_for(32768, 32768, 32768 * 16) == FX_ACC64);
    printf("kernels: %d shapes x modes bit-exact against the scalar kernel and the plain sum\n", cases);
}

/* The branch-free rounding shift and division (fx_internal.h) against their plain definitions. */
static void test_arithmetic(void) {
    unsigned long long s = 5;
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        const int shift = 1 + (int)(test_rand_u64(&s) % 62);
        int64_t v = (int64_t)(test_rand_u64(&s) >> (2 + test_rand_u64(&s) % 62)); /* |v| < 2^62: no overflow */
        if (test_rand_u64(&s) % 2) v = -v;
        if (i < 64 && shift < 40) /* ties and their neighbours */
            v = (i % 2 ? -1 : 1) * (((int64_t)1 << (shift - 1)) * (i / 2 % 5) - i % 3);
        /* floor((v + 2^(shift-1)) / 2^shift) by the sign cases */
        const int64_t w = v + ((int64_t)1 << (shift - 1));
        const int64_t want = w >= 0 ? w / ((int64_t)1 << shift)
                                    : -((-w + ((int64_t)1 << shift) - 1) / ((int64_t)1 << shift));
        bad += nmf_fx_shift_round(v, shift) != want;
        const int64_t b = 1 + (int64_t)(test_rand_u64(&s) % 100000), a = v >> 20;
        const int64_t q = a >= 0 ? (a + b / 2) / b : -((-a + b / 2) / b);
        bad += nmf_fx_div_round(a, b) != q;
    }
    CHECK_MSG(bad == 0, "%d rounding shifts/divisions differ from their definitions", bad);
}

/* ---- models ----------------------------------------------------------------------------- */

typedef struct {
    const char *what;
    void (*set)(nmf_sta_config *c);
} design;

static void int8_acc32(nmf_sta_config *c) { (void)c; /* the default mid-size design */ }
static void int16_acc48(nmf_sta_config *c) {
    c->data_bits = 16;
    c->acc_bits = 48;
    c->weight_scale = NMF_STA_SCALE_CHANNEL;
}
static void int8_narrow(nmf_sta_config *c) {
    c->data_bits = 8;
    c->acc_bits = 23; /* narrow, yet wide enough for the quantiser's worst-case bound */
    c->weight_scale = NMF_STA_SCALE_TENSOR;
    c->dpus = 24;          /* tiles cut every layer unevenly */
    c->lanes_per_dpu = 8;
    c->softmax_lanes = 3;
    c->vector_lanes = 5;
    c->score_buf_kib = 1;  /* a few query rows per score-buffer tile */
}

static const char *const fixtures[] = {"vit_tiny", "vit_tiny_2-4", "vit_tiny_2-8", "vit_tiny_1-8"};
static const nmf_pattern patterns[] = {{0, 0}, {2, 4}, {2, 8}, {1, 8}};

#define NIMG 64
#define NCAL 8

static void test_model(const char *fixture, nmf_pattern p, const design *d, const float *calib,
                       const float *x) {
    char rel[128];
    snprintf(rel, sizeof rel, "tests/fixtures/%s.safetensors", fixture);
    nmf_model_config c;
    nmf_tensor_set set;
    CHECK_OK(nmf_load_model(test_source_path(rel), NULL, NULL, &c, &set));
    if (p.n) CHECK_OK(nmf_model_pack_nm(&c, &set, p)); /* the simulator's multiplexers see positions */
    nmf_sta_config hw;
    nmf_sta_config_default(&hw);
    d->set(&hw);
    CHECK_OK(nmf_sta_config_validate(&hw));
    nmf_fx_model q;
    CHECK_OK(nmf_fx_quantize_model(&q, &c, &set, &hw, calib, NCAL));
    const size_t img = (size_t)c.in_chans * c.img_size * c.img_size, K = (size_t)c.num_classes;
    int16_t *xq = malloc(NIMG * img * sizeof *xq);
    int64_t *sim = malloc(NIMG * K * sizeof *sim), *cpu = malloc(NIMG * K * sizeof *cpu);
    int saturated = 0;
    for (size_t b = 0; b < NIMG; b++) {
        nmf_fx_quantize_input(xq + b * img, x + b * img, img, &q);
        CHECK_OK(nmf_sta_functional_forward(sim + b * K, xq + b * img, &q, &hw));
        for (size_t i = 0; i < img; i++) saturated += xq[b * img + i] == -(1 << (hw.data_bits - 1));
    }
    CHECK_MSG(saturated > 0, "%s %s: no input saturates", fixture, d->what);
    static const nmf_isa isas[] = {NMF_ISA_SCALAR, NMF_ISA_AVX2};
    for (size_t ii = 0; ii < 2; ii++) {
        if (isas[ii] > nmf_cpu_best_isa()) continue;
        nmf_set_isa(isas[ii]);
        nmf_fx_cpu *m = NULL;
        CHECK_OK(nmf_fx_cpu_create_quantized(&m, &q, &hw));
        if (!m) break;
        memset(cpu, 0x5a, NIMG * K * sizeof *cpu);
        CHECK_OK(nmf_fx_cpu_forward_q(m, cpu, xq, NIMG));
        size_t bad = 0;
        for (size_t b = 0; b < NIMG; b++) bad += memcmp(cpu + b * K, sim + b * K, K * sizeof *cpu) != 0;
        CHECK_MSG(bad == 0, "%s %s %s: %zu of %d images differ from the simulator", fixture, d->what,
                  nmf_isa_name(isas[ii]), bad, NIMG);
        /* one image at a time, and from float images, give the same */
        CHECK_OK(nmf_fx_cpu_forward_q(m, cpu, xq + 5 * img, 1));
        CHECK(!memcmp(cpu, sim + 5 * K, K * sizeof *cpu));
        CHECK_OK(nmf_fx_cpu_forward(m, cpu, x, NIMG));
        CHECK(!memcmp(cpu, sim, NIMG * K * sizeof *cpu));
        float f[16], g[16];
        CHECK_OK(nmf_fx_cpu_forward_f32(m, f, x + 7 * img, 1));
        nmf_fx_logits_to_f32(g, sim + 7 * K, &q);
        CHECK(!memcmp(f, g, K * sizeof *f));
        printf("%-14s %-40s %-6s %d images bit-identical to the simulator (%s)\n", fixture, d->what,
               nmf_isa_name(isas[ii]), NIMG - (int)bad, nmf_fx_cpu_describe(m));
        nmf_fx_cpu_free(m);
    }
    nmf_set_isa(nmf_cpu_best_isa());
    free(xq), free(sim), free(cpu);
    nmf_fx_model_free(&q);
    nmf_tensors_free(&set);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void test_errors(const float *calib) {
    nmf_model_config c;
    nmf_tensor_set set;
    CHECK_OK(nmf_load_model(test_source_path("tests/fixtures/vit_tiny_2-8.safetensors"), NULL, NULL, &c, &set));
    CHECK_OK(nmf_model_pack_nm(&c, &set, (nmf_pattern){2, 8}));
    nmf_sta_config hw;
    nmf_fx_cpu *m = NULL;
    /* multiplexers that cannot serve 2:8 */
    nmf_sta_config_default(&hw);
    hw.max_m = 4;
    CHECK_STATUS(nmf_fx_cpu_create(&m, &c, &set, &hw, calib, NCAL), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "engine.max_m") != NULL && strstr(nmf_last_error(), "2:8") != NULL);
    CHECK(m == NULL);
    /* a design that is not valid at all */
    nmf_sta_config_default(&hw);
    hw.dpus = 0;
    CHECK_STATUS(nmf_fx_cpu_create(&m, &c, &set, &hw, calib, NCAL), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "engine.dpus") != NULL);
    /* accumulators that could overflow: the quantiser refuses, naming the key */
    nmf_sta_config_default(&hw);
    hw.acc_bits = 18;
    CHECK_STATUS(nmf_fx_cpu_create(&m, &c, &set, &hw, calib, NCAL), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "numeric.acc_bits") != NULL);
    /* a model quantised for another width */
    nmf_sta_config_default(&hw);
    nmf_fx_model q;
    CHECK_OK(nmf_fx_quantize_model(&q, &c, &set, &hw, calib, NCAL));
    hw.data_bits = 16;
    hw.acc_bits = 48;
    CHECK_STATUS(nmf_fx_cpu_create_quantized(&m, &q, &hw), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "numeric.data_bits") != NULL);
    /* a bad INI: one error naming the key */
    nmf_sta_config_default(&hw);
    CHECK_STATUS(nmf_sta_config_parse("[numeric]\ndata_bits = 12\n", "t.ini", &hw), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "data_bits") != NULL);
    /* NULLs */
    CHECK_STATUS(nmf_fx_cpu_create(&m, &c, &set, &hw, calib, 0), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_fx_cpu_forward(NULL, NULL, calib, 1), NMF_ERR_INVALID_ARG);
    nmf_fx_model_free(&q);
    nmf_tensors_free(&set);
}

int main(void) {
    test_arithmetic();
    test_kernels();
    /* Fashion-MNIST-shaped images (1x28x28, normalised): smooth blobs; the last half x4, beyond
     * the range the 8 calibration images set */
    const size_t img = 28 * 28;
    float *calib = malloc(NCAL * img * sizeof *calib), *x = malloc(NIMG * img * sizeof *x);
    unsigned long long s = 2024;
    for (size_t b = 0; b < NCAL + NIMG; b++) {
        float *o = b < NCAL ? calib + b * img : x + (b - NCAL) * img;
        const float cx = 14 + 8 * test_rand_float(&s), cy = 14 + 8 * test_rand_float(&s);
        const float gain = b >= NCAL + NIMG / 2 ? 4.0f : 1.0f;
        for (int i = 0; i < 28; i++)
            for (int j = 0; j < 28; j++) {
                float d = ((float)i - cy) * ((float)i - cy) + ((float)j - cx) * ((float)j - cx);
                o[i * 28 + j] = gain * ((d < 60 ? 2.0f : -0.8f) + 0.3f * test_rand_float(&s));
            }
    }
    const design designs[] = {
        {"int8, acc 32, channel scales", int8_acc32},
        {"int16, acc 48, channel scales", int16_acc48},
        {"int8, acc 23, tensor scales, odd lanes", int8_narrow},
    };
    for (size_t di = 0; di < sizeof designs / sizeof designs[0]; di++)
        for (size_t fi = 0; fi < sizeof fixtures / sizeof fixtures[0]; fi++)
            test_model(fixtures[fi], patterns[fi], &designs[di], calib, x);
    test_errors(calib);
    free(calib);
    free(x);
    return test_finish("sta_fx_cpu");
}
