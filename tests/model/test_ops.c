/* LayerNorm, GELU (exact and tanh) and SiLU, every ISA this CPU has, against double-precision
 * references:
 * widths below, at and above the SIMD widths, in place and out of place, large means. */
#include "nmformer/ops.h"
#include "test.h"

static unsigned long long seed = 42;

static void layernorm_case(size_t T, size_t C, float offset) {
    float *x = malloc(T * C * sizeof(float)), *y = malloc(T * C * sizeof(float));
    float *w = malloc(C * sizeof(float)), *b = malloc(C * sizeof(float));
    for (size_t i = 0; i < T * C; i++) x[i] = offset + 3.0f * test_rand_float(&seed);
    for (size_t c = 0; c < C; c++) {
        w[c] = 1.0f + 0.5f * test_rand_float(&seed);
        b[c] = 0.5f * test_rand_float(&seed);
    }
    nmf_layernorm_forward(y, x, w, b, T, C, NMF_LAYERNORM_EPS);
    double maxerr = 0;
    for (size_t t = 0; t < T; t++) {
        const float *xt = x + t * C;
        double mean = 0, var = 0;
        for (size_t c = 0; c < C; c++) mean += xt[c];
        mean /= (double)C;
        for (size_t c = 0; c < C; c++) var += (xt[c] - mean) * (xt[c] - mean);
        double rstd = 1.0 / sqrt(var / (double)C + 1e-6);
        for (size_t c = 0; c < C; c++) {
            double want = (xt[c] - mean) * rstd * w[c] + b[c];
            double e = fabs(y[t * C + c] - want);
            if (!(e <= maxerr)) maxerr = isnan(e) ? INFINITY : e;
        }
    }
    /* relative to the O(1) normalised values; the offset costs float precision in x itself */
    double tol = 2e-6 * (1.0 + fabs(offset) / 3.0);
    CHECK_MSG(maxerr <= tol, "layernorm %s T=%zu C=%zu offset=%g: max err %.3g",
              nmf_isa_name(nmf_active_isa()), T, C, offset, maxerr);
    /* each row alone gives the bits it got among the others (the AVX-512 kernel runs 4 rows
     * together, the rest one at a time) */
    float *one = malloc(C * sizeof(float));
    for (size_t t = 0; t < T; t++) {
        nmf_layernorm_forward(one, x + t * C, w, b, 1, C, NMF_LAYERNORM_EPS);
        CHECK_MSG(memcmp(one, y + t * C, C * sizeof(float)) == 0, "layernorm %s T=%zu C=%zu: row %zu alone",
                  nmf_isa_name(nmf_active_isa()), T, C, t);
    }
    free(one);
    /* in place gives the same bits */
    nmf_layernorm_forward(x, x, w, b, T, C, NMF_LAYERNORM_EPS);
    CHECK(memcmp(x, y, T * C * sizeof(float)) == 0);
    free(x);
    free(y);
    free(w);
    free(b);
}

/* The residual add fused into the norm: sum = x + r exactly, y the bits of the plain LayerNorm
 * of sum (the same row code after the add), in place as the models call it (sum == x, y == r). */
static void add_layernorm_case(size_t T, size_t C) {
    const size_t n = T * C;
    float *x = malloc(n * sizeof(float)), *r = malloc(n * sizeof(float));
    float *sum = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    float *want = malloc(n * sizeof(float)), *w = malloc(C * sizeof(float));
    float *b = malloc(C * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        x[i] = 2.0f + 3.0f * test_rand_float(&seed);
        r[i] = test_rand_float(&seed);
    }
    for (size_t c = 0; c < C; c++) {
        w[c] = 1.0f + 0.5f * test_rand_float(&seed);
        b[c] = 0.5f * test_rand_float(&seed);
    }
    nmf_add_layernorm_forward(y, sum, x, r, w, b, T, C, NMF_LAYERNORM_EPS);
    int sum_ok = 1;
    for (size_t i = 0; i < n; i++) sum_ok &= sum[i] == x[i] + r[i];
    CHECK_MSG(sum_ok, "add+layernorm %s T=%zu C=%zu: sum", nmf_isa_name(nmf_active_isa()), T, C);
    nmf_layernorm_forward(want, sum, w, b, T, C, NMF_LAYERNORM_EPS);
    CHECK_MSG(memcmp(y, want, n * sizeof(float)) == 0, "add+layernorm %s T=%zu C=%zu: norm",
              nmf_isa_name(nmf_active_isa()), T, C);
    nmf_add_layernorm_forward(r, x, x, r, w, b, T, C, NMF_LAYERNORM_EPS); /* in place */
    CHECK(memcmp(x, sum, n * sizeof(float)) == 0 && memcmp(r, want, n * sizeof(float)) == 0);
    nmf_add_forward(want, sum, sum, n);
    int add_ok = 1;
    for (size_t i = 0; i < n; i++) add_ok &= want[i] == 2.0f * sum[i];
    CHECK_MSG(add_ok, "add %s n=%zu", nmf_isa_name(nmf_active_isa()), n);
    free(x), free(r), free(sum), free(y), free(want), free(w), free(b);
}

static void gelu_case(size_t n) {
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = 8.0f * test_rand_float(&seed);
    if (n > 4) {
        x[0] = 0.0f;
        x[1] = -30.0f;
        x[2] = 30.0f;
        x[3] = 1e-20f;
    }
    nmf_gelu_forward(y, x, n);
    double maxerr = 0;
    for (size_t i = 0; i < n; i++) {
        double want = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
        /* the SIMD erf has |error| <= 1.5e-7 (A&S 7.1.26), scaled by |x|/2 in GELU */
        double e = fabs(y[i] - want) / (1.0 + fabs(x[i]));
        if (!(e <= maxerr)) maxerr = isnan(e) ? INFINITY : e;
    }
    CHECK_MSG(maxerr <= 4e-7, "gelu %s n=%zu: max err %.3g", nmf_isa_name(nmf_active_isa()), n, maxerr);
    nmf_gelu_forward(x, x, n); /* in place */
    CHECK(memcmp(x, y, n * sizeof(float)) == 0);
    free(x);
    free(y);
}

/* tanh GELU (gelu_new) and SiLU against double references, in place and out of place, with
 * the extremes (+-30, +-1e4, tiny) where the sigmoid form must saturate cleanly */
static double gelu_tanh_exact(double x) {
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double silu_exact(double x) { return x / (1.0 + exp(-x)); }

static void act_case(size_t n, int silu) {
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    float *r = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = 8.0f * test_rand_float(&seed);
    const float special[] = {0.0f, -30.0f, 30.0f, 1e-20f, -1e4f, 1e4f, -5.0f, 3.3f};
    for (size_t i = 0; i < n && i < sizeof special / sizeof special[0]; i++) x[i] = special[i];
    (silu ? nmf_silu_forward : nmf_gelu_tanh_forward)(y, x, n);
    (silu ? nmf_silu_forward_ref : nmf_gelu_tanh_forward_ref)(r, x, n);
    double maxerr = 0, referr = 0;
    for (size_t i = 0; i < n; i++) {
        double want = silu ? silu_exact(x[i]) : gelu_tanh_exact(x[i]);
        double e = fabs(y[i] - want) / (1.0 + fabs(x[i])), er = fabs(r[i] - want) / (1.0 + fabs(x[i]));
        if (!(e <= maxerr)) maxerr = isnan(e) ? INFINITY : e;
        if (!(er <= referr)) referr = isnan(er) ? INFINITY : er;
    }
    CHECK_MSG(maxerr <= 5e-7 && referr <= 5e-7, "%s %s n=%zu: max err %.3g (reference %.3g)",
              silu ? "silu" : "gelu_tanh", nmf_isa_name(nmf_active_isa()), n, maxerr, referr);
    (silu ? nmf_silu_forward : nmf_gelu_tanh_forward)(x, x, n); /* in place */
    CHECK(memcmp(x, y, n * sizeof(float)) == 0);
    free(x);
    free(y);
    free(r);
}

int main(void) {
    nmf_isa best = nmf_cpu_best_isa();
    for (int isa = NMF_ISA_SCALAR; isa <= (int)best; isa++) {
        nmf_set_isa((nmf_isa)isa);
        /* around the AVX2 (8) and AVX-512 (16, and 64 per 4-chain step) widths */
        const size_t Cs[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 127, 128, 129,
                             200, 384, 768};
        for (size_t i = 0; i < sizeof Cs / sizeof Cs[0]; i++) {
            layernorm_case(5, Cs[i], 0.0f);
            layernorm_case(3, Cs[i], 100.0f);
            add_layernorm_case(6, Cs[i]); /* 4 rows together and 2 alone (AVX-512) */
        }
        layernorm_case(400, 384, 1.0f); /* the threaded path (>= 2^14 elements; the cases above are below) */
        add_layernorm_case(400, 384);
        const size_t ns[] = {1, 7, 8, 9, 16, 17, 100, 40000};
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) gelu_case(ns[i]);
        const size_t as[] = {1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 40000};
        for (size_t i = 0; i < sizeof as / sizeof as[0]; i++) {
            act_case(as[i], 0);
            act_case(as[i], 1);
        }
    }
    nmf_set_isa(best);
    return test_finish("test_ops");
}
