/* Dense 16-bit layers (nmf_linear_create_dense16, dense16.h):
 * - the AVX2 rows kernel and widening against the scalar reference, and both against a double
 *   reference on the widened weights, within 4 * in * 2^-24 of the summed magnitudes (f32
 *   accumulation in another order); widening bit-exact (it is exact); bf16 and f16;
 * - through the layer, at every ISA, with 1, 2, 3 tokens (the rows kernel: pairs and a ragged
 *   one) and 31, 32, 33 tokens (from 32: blocks widened for the dense backend), rows
 *   below/at/above the 4-row block and the widened block (at least 8 rows), ragged columns (in % 8), one and
 *   two threads, bias and GELU;
 * - a dense f32 layer set to bf16 computes what a 16-bit layer of its rounded weights does (bit
 *   for bit) and reports half the bytes;
 * - the API's errors. */
#include <stdint.h>

#include "kernels/dense16.h"
#include "kernels/spmm.h"
#include "nmformer/kernels.h"
#include "nmformer/ops.h"
#include "nmformer/tensor.h"
#include "test.h"

static unsigned long long rng = 0x9E3779B97F4A7C15ull;

static float widen(uint16_t h, nmf_dtype dt) {
    return dt == NMF_DTYPE_F16 ? nmf_f16_to_f32(h) : nmf_bf16_to_f32(h);
}

/* y = x W^T (+ bias, then GELU) in double on the widened weights; mag = sum |x w| + |b| */
static void ref(float *y, float *mag, const float *x, const uint16_t *w, nmf_dtype dt,
                const float *bias, size_t T, size_t out, size_t in) {
    for (size_t t = 0; t < T; t++)
        for (size_t o = 0; o < out; o++) {
            double s = bias ? bias[o] : 0.0, a = bias ? fabs(bias[o]) : 0.0;
            for (size_t i = 0; i < in; i++) {
                const double p = (double)x[t * in + i] * widen(w[o * in + i], dt);
                s += p;
                a += fabs(p);
            }
            y[t * out + o] = (float)s;
            mag[t * out + o] = (float)a;
        }
}

static int close_to(const float *a, const float *b, const float *mag, size_t n, double rel,
                    const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - (double)b[i]) <= rel * mag[i] + 1e-6)) {
            fprintf(stderr, "  %s: element %zu: %.9g vs %.9g (tol %.3g)\n", what, i, a[i], b[i],
                    rel * mag[i] + 1e-6);
            return 0;
        }
    return 1;
}

static void run_case(size_t out, size_t in, size_t T, nmf_dtype dt, int use_bias, int gelu,
                     int threads) {
    char label[128];
    snprintf(label, sizeof label, "%s out=%zu in=%zu T=%zu threads=%d%s%s", nmf_dtype_name(dt),
             out, in, T, threads, use_bias ? " bias" : "", gelu ? " gelu" : "");
    uint16_t *w = malloc(out * in * sizeof *w);
    float *x = malloc(T * in * sizeof *x), *bias = malloc(out * sizeof *bias);
    float *yr = malloc(T * out * sizeof *yr), *mag = malloc(T * out * sizeof *mag);
    float *y = malloc(T * out * sizeof *y), *y2 = malloc(T * out * sizeof *y2);
    float *wf = malloc(out * in * sizeof *wf), *wf2 = malloc(out * in * sizeof *wf2);
    for (size_t i = 0; i < out * in; i++) {
        const float v = 2.0f * test_rand_float(&rng);
        w[i] = dt == NMF_DTYPE_F16 ? nmf_f32_to_f16(v) : nmf_f32_to_bf16(v);
    }
    for (size_t i = 0; i < T * in; i++) x[i] = 3.0f * test_rand_float(&rng);
    for (size_t o = 0; o < out; o++) bias[o] = test_rand_float(&rng);
    const float *b = use_bias ? bias : NULL;
    const double rel = 4.0 * (double)in / 16777216.0;
    const nmf_dense16 d = {w, out, in, dt};

    /* the kernels directly: scalar and AVX2 rows, over two row ranges split at a ragged row */
    ref(yr, mag, x, w, dt, NULL, T, out, in);
    const size_t split = out / 2 + (out > 2);
    nmf_dense16_rows_scalar(y, out, x, in, &d, T, 0, split);
    nmf_dense16_rows_scalar(y, out, x, in, &d, T, split, out);
    CHECK_MSG(close_to(y, yr, mag, T * out, rel, label), "%s: scalar rows", label);
    nmf_dense16_widen_scalar(wf, &d, 0, out, 0, in);
    for (size_t i = 0; i < out * in; i++) CHECK(wf[i] == widen(w[i], dt));
    /* a block of rows by a ragged block of columns, as the column-blocked product widens */
    const size_t c0 = in / 3, c1 = in - in / 5;
    nmf_dense16_widen_scalar(wf2, &d, split, out, c0, c1);
    for (size_t o = split, k = 0; o < out; o++)
        for (size_t i = c0; i < c1; i++, k++) CHECK(wf2[k] == widen(w[o * in + i], dt));
    if (nmf_cpu_best_isa() >= NMF_ISA_AVX2) {
        float *wf3 = malloc(((out - split) * (c1 - c0) + 1) * sizeof *wf3);
        nmf_dense16_widen_avx2(wf3, &d, split, out, c0, c1);
        CHECK_MSG(!memcmp(wf3, wf2, (out - split) * (c1 - c0) * sizeof(float)),
                  "%s: avx2 widening of a column block", label);
        free(wf3);
    }
    if (nmf_cpu_best_isa() >= NMF_ISA_AVX2) {
        nmf_dense16_rows_avx2(y2, out, x, in, &d, T, 0, split);
        nmf_dense16_rows_avx2(y2, out, x, in, &d, T, split, out);
        CHECK_MSG(close_to(y2, yr, mag, T * out, rel, label), "%s: avx2 rows", label);
        CHECK_MSG(close_to(y2, y, mag, T * out, rel, label), "%s: avx2 vs scalar", label);
        nmf_dense16_widen_avx2(wf2, &d, split, out, 0, in);
        CHECK_MSG(!memcmp(wf2, wf + split * in, (out - split) * in * sizeof(float)),
                  "%s: avx2 widening", label);
    }

    /* through the layer, at every ISA */
    ref(yr, mag, x, w, dt, b, T, out, in);
    if (gelu)
        for (size_t i = 0; i < T * out; i++) { /* GELU's slope is below 1.13: scale the bound */
            float g;
            nmf_gelu_forward(&g, &yr[i], 1);
            yr[i] = g;
            mag[i] *= 1.13f;
        }
    nmf_set_threads(threads);
    for (int isa = 0; isa <= (int)nmf_cpu_best_isa() && isa <= NMF_ISA_AVX2; isa++) {
        nmf_set_isa((nmf_isa)isa);
        nmf_linear *lin = NULL;
        CHECK_OK(nmf_linear_create_dense16(&lin, w, dt, out, in));
        if (!lin) continue;
        CHECK(nmf_linear_weight_bytes(lin) == out * in * 2);
        CHECK(nmf_linear_precision(lin) == NMF_PREC_BF16);
        const char *k = nmf_linear_kernel_name(lin, T);
        CHECK_MSG(T >= 32 ? !strncmp(k, "widen-", 6) : !strncmp(k, isa ? "avx2-" : "scalar-", isa ? 5 : 7),
                  "%s: kernel %s", label, k);
        CHECK_OK(nmf_linear_forward(y, x, lin, b, T, gelu ? NMF_ACT_GELU : NMF_ACT_NONE));
        CHECK_MSG(close_to(y, yr, mag, T * out, rel + 1e-6, label), "%s: layer %s (%s)", label,
                  nmf_isa_name((nmf_isa)isa), k);
        nmf_linear_free(lin);
    }
    nmf_set_isa(nmf_cpu_best_isa());
    nmf_set_threads(1);
    free(w), free(x), free(bias), free(yr), free(mag), free(y), free(y2), free(wf), free(wf2);
}

/* An f32 layer set to bf16 = a 16-bit layer of the rounded weights. */
static void test_from_f32(void) {
    const size_t out = 13, in = 37;
    float *w = malloc(out * in * sizeof *w), x[3 * 37], y1[3 * 13], y2[3 * 13];
    uint16_t *w16 = malloc(out * in * sizeof *w16);
    for (size_t i = 0; i < out * in; i++) {
        w[i] = test_rand_float(&rng);
        w16[i] = nmf_f32_to_bf16(w[i]);
    }
    for (size_t i = 0; i < 3 * in; i++) x[i] = test_rand_float(&rng);
    nmf_linear *a = NULL, *b = NULL;
    CHECK_OK(nmf_linear_create_dense(&a, w, out, in));
    CHECK_OK(nmf_linear_create_dense16(&b, w16, NMF_DTYPE_BF16, out, in));
    if (a && b) {
        CHECK(nmf_linear_weight_bytes(a) == out * in * 4);
        CHECK_OK(nmf_linear_set_precision(a, NMF_PREC_BF16));
        CHECK(nmf_linear_weight_bytes(a) == out * in * 2);
        nmf_dtype dt = NMF_DTYPE_F32;
        const uint16_t *held = nmf_linear_weights16(a, &dt);
        CHECK(held && dt == NMF_DTYPE_BF16 && !memcmp(held, w16, out * in * 2));
        for (size_t t = 1; t <= 3; t++) {
            CHECK_OK(nmf_linear_forward(y1, x, a, NULL, t, NMF_ACT_NONE));
            CHECK_OK(nmf_linear_forward(y2, x, b, NULL, t, NMF_ACT_NONE));
            CHECK(!memcmp(y1, y2, t * out * sizeof(float)));
        }
        CHECK_STATUS(nmf_linear_set_precision(a, NMF_PREC_INT8), NMF_ERR_INVALID_ARG);
        CHECK_STATUS(nmf_linear_backward_input(x, y1, a, 1), NMF_ERR_UNSUPPORTED);
        CHECK(nmf_linear_spmm_weights(a) == NULL);
    }
    nmf_linear_free(a);
    nmf_linear_free(b);
    free(w);
    free(w16);
}

static void test_api(void) {
    uint16_t w[4] = {0};
    nmf_linear *l = (nmf_linear *)&rng;
    CHECK_STATUS(nmf_linear_create_dense16(&l, w, NMF_DTYPE_F32, 2, 2), NMF_ERR_INVALID_ARG);
    CHECK(l == NULL);
    CHECK_STATUS(nmf_linear_create_dense16(&l, NULL, NMF_DTYPE_BF16, 2, 2), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_linear_create_dense16(&l, w, NMF_DTYPE_BF16, 0, 2), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_linear_create_dense16(NULL, w, NMF_DTYPE_BF16, 2, 2), NMF_ERR_INVALID_ARG);
    CHECK(nmf_linear_weights16(NULL, NULL) == NULL);
    nmf_linear *f = NULL;
    const float wf[4] = {1, 2, 3, 4};
    CHECK_OK(nmf_linear_create_dense(&f, wf, 2, 2));
    CHECK(nmf_linear_weights16(f, NULL) == NULL);
    nmf_linear_free(f);
}

int main(void) {
    const int san = getenv("NMF_SANITIZED") != NULL;
    test_api();
    test_from_f32();
    static const size_t outs[] = {1, 3, 4, 5, 8, 9, 17};
    static const size_t ins[] = {1, 7, 8, 9, 33, 100};
    static const size_t toks[] = {1, 2, 3, 31, 32, 33};
    int c = 0;
    for (size_t oi = 0; oi < sizeof outs / sizeof *outs; oi++)
        for (size_t ii = 0; ii < sizeof ins / sizeof *ins; ii++)
            for (size_t ti = 0; ti < sizeof toks / sizeof *toks; ti++, c++) {
                if (san && c % 3) continue; /* a third of the grid under the sanitizers */
                run_case(outs[oi], ins[ii], toks[ti], c % 2 ? NMF_DTYPE_F16 : NMF_DTYPE_BF16,
                         (c / 2) % 2, (c / 4) % 3 == 0, 1 + (c / 3) % 2);
            }
    /* a wide layer: several widened blocks per thread, two threads */
    run_case(70, 1030, 40, NMF_DTYPE_BF16, 1, 0, 2);
    /* fewer than D16_MIN_ROWS rows of 2100 columns fit a block of any L2 (at most 256 K floats):
     * each thread widens its rows by ragged blocks of columns, summed into y */
    run_case(600, 2100, 40, NMF_DTYPE_BF16, 1, 1, 2);
    run_case(600, 2100, 33, NMF_DTYPE_F16, 0, 0, 1);
    /* more rows than block / 128 (a LLaMA head's shape, scaled down): groups of rows, each by
     * column blocks within the scratch (ASan checks the bound) */
    run_case(3000, 2100, 33, NMF_DTYPE_BF16, 1, 0, 1);
    run_case(70, 1030, 1, NMF_DTYPE_F16, 0, 0, 2);
    return test_finish("test_dense16");
}
