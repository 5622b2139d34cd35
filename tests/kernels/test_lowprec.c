/* Low-precision N:M layers (nmf_linear_set_precision):
 * - int8: every ISA's kernel (through the layer, and on the window layout directly with split
 *   row ranges; the AVX-512 VNNI one where the CPU has VNNI + VBMI) bit-exact against the
 *   reference on the canonical matrix (spmm_ref.c: the same integer arithmetic, written
 *   independently of the layout) and against the scalar kernel on the same layout without
 *   activation; with GELU (gelu_q8.h, test_gelu_q8: within 2.5e-5 max(1, |x|) of erf's) within
 *   that bound of the reference's erf GELU, and every ISA (the same GELU operations) bit for
 *   bit the scalar kernel; every SIMD quantiser the
 *   bytes of the portable one; the reference within its quantisation error bound of the f32
 *   product; sizes below/at/above the row blocks (8, 16), the token blocks (6, 8) and the
 *   windows (16, 64 columns), ragged tokens, padded last groups, every pattern of test_spmm;
 * - dense int8 (every ISA, the AVX-512 VNNI dense kernel where present) bit-exact against a
 *   plain dense reference of the same arithmetic; rows around 16 and 32, columns around 4 and
 *   64, tokens around 12 and 16; the int32 limit for a dense row; the AVX2 dense kernel (int16
 *   activations) bit for bit the AVX2 shuffle kernel on the same layout, GELU included, around
 *   its row pairs, token blocks and chunks (test_dense_avx2);
 *   the largest sums that fit int32 (a row of NMF_Q8_MAX_KEPT kept weights at +-127 x 127) and
 *   the first row that does not; zero and non-finite inputs; the scalar dispatch (NMF_ISA).
 * - bf16: every ISA's layer at 1 token (the bf16 panel kernel) and at many (the f32 kernels on
 *   the rounded values) within 1e-5 of the f32 reference on bf16-rounded weights, and within
 *   2^-8 of the summed magnitudes of the f32 product on the original weights.
 * - the precision API's errors. */
#include <stdint.h>

#include "kernels/gelu_q8.h"
#include "kernels/ops_internal.h"
#include "kernels/spmm_q8.h"
#include "nmformer/kernels.h"
#include "nmformer/ops.h"
#include "nmformer/tensor.h"
#include "test.h"

static unsigned long long rng = 0x2545F4914F6CDD1Dull;

/* How far the int8 layers' GELU (gelu_q8.h) may be from erf's at x: 2.5e-5 max(1, |x|), and
 * the float rounding of libm's erf GELU it is compared with. */
static float gelu_q8_bound(float x) {
    const float a = fabsf(x);
    return 2.5e-5f * (a > 1.0f ? a : 1.0f) + 2e-7f * a;
}

/* |a - b| <= rel * scale[i] for all i */
static int close_all(const float *a, const float *b, const float *scale, size_t n, double rel,
                     const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - (double)b[i]) <= rel * (scale[i] + 1e-30))) {
            fprintf(stderr, "  %s: element %zu: %.9g vs %.9g (tol %.3g)\n", what, i, a[i], b[i],
                    rel * scale[i]);
            return 0;
        }
    return 1;
}
/* The quantisation error bound of one output: sum_j |x_j w_j - (sx qx_j)(sw qw_j)| <=
 * sum_j (|x_j| sw / 2 + |w_j| sx / 2 + sx sw / 4), plus float rounding. */
static void q8_bound(float *bound, const float *x, const float *wu, size_t T, size_t out,
                     size_t in) {
    for (size_t t = 0; t < T; t++) {
        float ax = 0.0f;
        for (size_t i = 0; i < in; i++) ax = fmaxf(ax, fabsf(x[t * in + i]));
        const double sx = ax / 127.0;
        for (size_t o = 0; o < out; o++) {
            float aw = 0.0f;
            for (size_t i = 0; i < in; i++) aw = fmaxf(aw, fabsf(wu[o * in + i]));
            const double sw = aw / 127.0;
            double b = 1e-6;
            for (size_t i = 0; i < in; i++)
                if (wu[o * in + i] != 0.0f)
                    b += fabs(x[t * in + i]) * sw / 2 + fabs(wu[o * in + i]) * sx / 2 + sx * sw / 4;
            bound[t * out + o] = (float)(b * 1.0001);
        }
    }
}

static void dense_ref(float *y, const float *x, const float *w, const float *bias, size_t T,
                      size_t out, size_t in, float *scale) {
    for (size_t t = 0; t < T; t++)
        for (size_t o = 0; o < out; o++) {
            double s = bias ? bias[o] : 0.0, a = bias ? fabs(bias[o]) : 0.0;
            for (size_t i = 0; i < in; i++) {
                s += (double)x[t * in + i] * w[o * in + i];
                a += fabs((double)x[t * in + i] * w[o * in + i]);
            }
            y[t * out + o] = (float)s;
            if (scale) scale[t * out + o] = (float)a;
        }
}

/* Kernel k on layout q (built for it) from x (T tokens): its quantiser gives the portable
 * quantiser's values and scales (tokens in two calls; u8 q + 128 byte for byte, or int16 q
 * with padding 0); the kernel on them (row blocks in two calls) and the scalar kernel on the
 * portable bytes give yref's bits (y2: scratch of T * out floats). */
static void check_kernel(const nmf_q8_kernel *k, const nmf_q8_weights *q, const float *x, size_t T,
                         const float *b, const float *yref, float *y2, const char *label) {
    const size_t in = q->in, out = q->out, ldq = q->windows * q->g.win, ldq2 = ldq * k->xbytes;
    uint8_t *xq = malloc(T * ldq), *xq2 = malloc(T * ldq2);
    float *sx = malloc(T * sizeof(float)), *sx2 = malloc(T * sizeof(float));
    CHECK(nmf_q8_quantize_tokens(xq, ldq, sx, x, in, in, 0, T) == 0);
    memset(xq2, 0xAB, T * ldq2);
    CHECK(k->quantize(xq2, ldq2, sx2, x, in, in, T / 2, T) == 0);
    CHECK(k->quantize(xq2, ldq2, sx2, x, in, in, 0, T / 2) == 0);
    int same = !memcmp(sx, sx2, T * sizeof(float));
    for (size_t i = 0; i < T * ldq; i++) {
        int16_t v = (int16_t)xq2[i];
        if (k->xbytes == 2) memcpy(&v, xq2 + 2 * i, 2);
        same &= v == (k->xbytes == 2 ? (int16_t)(xq[i] - 128) : (int16_t)xq[i]);
    }
    CHECK_MSG(same, "%s: %s quantiser", label, k->name);
    const size_t half = q->rowblocks / 2;
    memset(y2, 0xFF, T * out * sizeof(float));
    k->forward(y2, xq2, ldq2, sx2, T, q, b, NMF_ACT_NONE, half, q->rowblocks);
    k->forward(y2, xq2, ldq2, sx2, T, q, b, NMF_ACT_NONE, 0, half);
    CHECK_MSG(test_same_bits(y2, yref, T * out, label), "%s: int8 kernel %s", label, k->name);
    memset(y2, 0xFF, T * out * sizeof(float));
    nmf_q8_forward_scalar(y2, xq, ldq, sx, T, q, b, NMF_ACT_NONE, 0, q->rowblocks);
    CHECK_MSG(test_same_bits(y2, yref, T * out, label), "%s: scalar kernel on the %s layout", label,
              k->name);
    free(xq), free(xq2), free(sx), free(sx2);
}

typedef struct {
    int n, m;
    size_t out, in, tokens;
    int pad, bias, gelu;
} lp_case;

static void run_case(const lp_case *c) {
    const nmf_pattern p = {c->n, c->m};
    const size_t out = c->out, in = c->in, T = c->tokens;
    char label[160];
    snprintf(label, sizeof label, "%d:%d out=%zu in=%zu T=%zu%s%s%s", c->n, c->m, out, in, T,
             c->pad ? " pad" : "", c->bias ? " bias" : "", c->gelu ? " gelu" : "");
    float *wd = calloc(out * in, sizeof(float)), *wu = calloc(out * in, sizeof(float));
    float *wb = calloc(out * in, sizeof(float)), *x = calloc(T * in, sizeof(float));
    float *bias = calloc(out, sizeof(float)), *yref = calloc(T * out, sizeof(float));
    float *y = calloc(T * out, sizeof(float)), *y2 = calloc(T * out, sizeof(float));
    float *yf = calloc(T * out, sizeof(float)), *scale = calloc(T * out, sizeof(float));
    float *bound = calloc(T * out, sizeof(float)), *ysimd = calloc(T * out, sizeof(float));
    for (size_t i = 0; i < out * in; i++) wd[i] = test_rand_float(&rng);
    for (size_t i = 0; i < T * in; i++) x[i] = 3.0f * test_rand_float(&rng);
    for (size_t i = 0; i < out; i++) bias[i] = test_rand_float(&rng);
    if (T > 2) memset(x + in, 0, in * sizeof(float)); /* a zero token: y = bias exactly */
    const float *b = c->bias ? bias : NULL;
    const nmf_activation act = c->gelu ? NMF_ACT_GELU : NMF_ACT_NONE;
    nmf_nm_matrix a;
    nmf_status st = nmf_nm_pack(&a, wd, out, in, p, c->pad);
    CHECK_MSG(st == NMF_OK, "%s: pack: %s", label, nmf_last_error());
    if (st != NMF_OK) goto done;
    CHECK_OK(nmf_nm_unpack(wu, &a));

    /* int8: the reference against the f32 product (its error bound), then every ISA */
    nmf_q8_ref_forward(yref, x, &a, b, T, NMF_ACT_NONE);
    dense_ref(yf, x, wu, b, T, out, in, scale);
    q8_bound(bound, x, wu, T, out, in);
    for (size_t i = 0; i < T * out; i++) scale[i] = bound[i] / 1e-2f; /* rel 1e-2 = bound */
    CHECK_MSG(close_all(yref, yf, scale, T * out, 1e-2, label), "%s: int8 ref vs f32", label);
    if (T > 2)
        for (size_t o = 0; o < out; o++) CHECK(yref[out + o] == (b ? b[o] : 0.0f));
    if (act == NMF_ACT_GELU) { /* the layers' GELU (gelu_q8.h) against erf on the same input */
        for (size_t i = 0; i < T * out; i++) bound[i] = gelu_q8_bound(yref[i]);
        nmf_q8_ref_forward(yref, x, &a, b, T, act);
    }
    dense_ref(yf, x, wu, b, T, out, in, scale); /* scale: sum |x w| + |b| again */
    for (int isa = 0; isa <= (int)nmf_cpu_best_isa(); isa++) {
        nmf_set_isa((nmf_isa)isa);
        nmf_linear *lin = NULL;
        CHECK_OK(nmf_linear_create_nm(&lin, &a));
        if (!lin) continue;
        CHECK_OK(nmf_linear_set_precision(lin, NMF_PREC_INT8));
        CHECK(nmf_linear_precision(lin) == NMF_PREC_INT8);
        const nmf_q8_kernel *k = nmf_q8_kernel_for((nmf_isa)isa, 0);
        CHECK(!strcmp(nmf_linear_kernel_name(lin, T), k->name));
        CHECK_OK(nmf_linear_forward(y, x, lin, b, T, act));
        if (act == NMF_ACT_NONE)
            CHECK_MSG(test_same_bits(y, yref, T * out, label), "%s: int8 %s", label, k->name);
        else
            CHECK_MSG(close_all(y, yref, bound, T * out, 1.0, label), "%s: int8 gelu %s", label,
                      k->name);
        if (act == NMF_ACT_GELU && isa == NMF_ISA_SCALAR) memcpy(ysimd, y, T * out * sizeof(float));
        if (act == NMF_ACT_GELU && isa > NMF_ISA_SCALAR) /* the same GELU operations: same bits */
            CHECK_MSG(test_same_bits(y, ysimd, T * out, label), "%s: int8 gelu %s vs scalar",
                      label, k->name);
        /* the kernels directly on the layer's window layout: row blocks in two calls */
        if (act == NMF_ACT_NONE) {
            nmf_q8_weights q;
            void *storage = NULL;
            CHECK_OK(nmf_q8_build_nm(&q, &storage, nmf_linear_spmm_weights(lin), k->g));
            check_kernel(k, &q, x, T, b, yref, y2, label);
            nmf_free(storage);
        }
        nmf_linear_free(lin);
    }

    /* bf16: against the f32 reference on the rounded weights and on the original ones */
    for (size_t i = 0; i < out * in; i++) wb[i] = nmf_bf16_to_f32(nmf_f32_to_bf16(wu[i]));
    dense_ref(yref, x, wb, b, T, out, in, NULL);
    if (act == NMF_ACT_GELU) {
        nmf_gelu_forward_ref(yref, yref, T * out);
        nmf_gelu_forward_ref(yf, yf, T * out);
    }
    /* each ISA's panel kernel reads the bf16 values itself */
    static const char *const bf16_kernel[NMF_ISA_COUNT] = {"scalar-bf16", "avx2-bf16", "avx512-bf16"};
    for (int isa = 0; isa <= (int)nmf_cpu_best_isa(); isa++) {
        nmf_set_isa((nmf_isa)isa);
        nmf_linear *lin = NULL;
        CHECK_OK(nmf_linear_create_nm(&lin, &a));
        if (!lin) continue;
        const size_t f32_bytes = nmf_linear_weight_bytes(lin);
        CHECK_OK(nmf_linear_set_precision(lin, NMF_PREC_BF16));
        /* 2 bytes of value and 1 of position per kept weight, or half a byte for M <= 16 (the
         * nibbles a 1-token product reads) */
        CHECK(nmf_linear_weight_bytes(lin) * 10 == f32_bytes * (c->m <= 16 ? 5 : 6));
        CHECK((nmf_linear_spmm_weights(lin)->idx4 != NULL) == (c->m <= 16));
        CHECK(strcmp(nmf_linear_kernel_name(lin, 1), bf16_kernel[isa]) == 0);
        for (size_t t0 = 0; t0 < T; t0 = t0 ? T : 1) { /* token 0 alone (bf16 panel), the rest */
            const size_t tt = t0 ? T - t0 : 1;
            CHECK_OK(nmf_linear_forward(y + t0 * out, x + t0 * in, lin, b, tt, act));
        }
        CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, label), "%s: bf16 %s", label,
                  nmf_isa_name((nmf_isa)isa));
        CHECK_MSG(close_all(y, yf, scale, T * out, 1.0 / 256, label), "%s: bf16 vs f32 %s",
                  label, nmf_isa_name((nmf_isa)isa));
        /* compact: the f32 copy gone, every token count on the bf16 panel kernel, whose
         * 1-token product above it repeats bit for bit where the kernel computes one token as
         * it does a block (scalar, AVX2); the rest as close as before */
        CHECK_OK(nmf_linear_compact(lin));
        CHECK_OK(nmf_linear_compact(lin)); /* idempotent */
        CHECK(nmf_linear_spmm_weights(lin)->val == NULL);
        /* 2 bytes of value and 1 of position per kept weight, or half a byte for M <= 16 */
        CHECK(nmf_linear_weight_bytes(lin) * 10 == f32_bytes * (c->m <= 16 ? 5 : 6));
        CHECK((nmf_linear_spmm_weights(lin)->idx4 != NULL) == (c->m <= 16));
        CHECK(strcmp(nmf_linear_kernel_name(lin, T), bf16_kernel[isa]) == 0);
        CHECK_OK(nmf_linear_forward(y2, x, lin, b, T, act));
        if (isa < NMF_ISA_AVX512) /* (the AVX-512 GEMV sums 4 chains, its tiles one) */
            CHECK_MSG(test_same_bits(y2, y, out, label), "%s: compact bf16 token 0 %s", label,
                      nmf_isa_name((nmf_isa)isa));
        CHECK_MSG(close_all(y2, yref, scale, T * out, 1e-5, label), "%s: compact bf16 %s", label,
                  nmf_isa_name((nmf_isa)isa));
        nmf_linear_free(lin);
        /* the same layer in one step: the same bits */
        CHECK_OK(nmf_linear_create_nm_bf16(&lin, &a));
        if (!lin) continue;
        CHECK(nmf_linear_spmm_weights(lin)->val == NULL);
        CHECK(nmf_linear_weight_bytes(lin) * 10 == f32_bytes * (c->m <= 16 ? 5 : 6));
        CHECK_OK(nmf_linear_forward(y, x, lin, b, T, act));
        CHECK_MSG(test_same_bits(y, y2, T * out, label), "%s: create_nm_bf16 %s", label,
                  nmf_isa_name((nmf_isa)isa));
        nmf_linear_free(lin);
    }
    nmf_set_isa(nmf_cpu_best_isa());
    nmf_nm_free(&a);
done:
    free(wd), free(wu), free(wb), free(x), free(bias), free(yref), free(y), free(y2), free(yf);
    free(scale), free(bound), free(ysimd);
}

/* Sums at the int32 limit: one row of NMF_Q8_MAX_KEPT kept weights (1:4), all at +amax (q_w =
 * 127), inputs at +amax (q_x = 127, stored 255): the biased int32 sum reaches 255 * 127 * K,
 * the largest the layer allows; then mixed signs. One more kept weight is refused. */
static void test_saturation(void) {
    for (int isa = 0; isa <= (int)nmf_cpu_best_isa(); isa++)
    for (size_t extra = 0; extra < 2; extra++) {
        nmf_set_isa((nmf_isa)isa);
        const size_t K = NMF_Q8_MAX_KEPT + extra, cols = 4 * K;
        float *w = calloc(cols, sizeof(float)), *x = calloc(cols, sizeof(float));
        for (size_t i = 0; i < cols; i += 4) w[i] = 0.5f;
        for (size_t i = 0; i < cols; i++) x[i] = 2.0f;
        nmf_nm_matrix a;
        CHECK_OK(nmf_nm_pack(&a, w, 1, cols, (nmf_pattern){1, 4}, 0));
        nmf_linear *lin = NULL;
        CHECK_OK(nmf_linear_create_nm(&lin, &a));
        const float sx = 2.0f / 127.0f, sw = 0.5f / 127.0f;
        float y = 0.0f, yr = 1.0f;
        if (extra) {
            CHECK_STATUS(nmf_linear_set_precision(lin, NMF_PREC_INT8), NMF_ERR_UNSUPPORTED);
        } else if (lin) {
            CHECK_OK(nmf_linear_set_precision(lin, NMF_PREC_INT8));
            CHECK_OK(nmf_linear_forward(&y, x, lin, NULL, 1, NMF_ACT_NONE));
            CHECK(y == nmf_q8_out(127 * 127 * (int32_t)K, sx, sw, 0.0f));
            /* mixed signs: q_x = +-127 (stored 1 or 255) against q_w = +-127 */
            int64_t want = 0;
            for (size_t i = 0; i < cols; i++) {
                x[i] = (i / 4) % 3 ? 2.0f : -2.0f;
                const int32_t qw = (i / 8) % 5 ? 127 : -127;
                if (i % 4 == 0) a.values[i / 4] = qw > 0 ? 0.5f : -0.5f, want += (x[i] > 0 ? 127 : -127) * qw;
            }
            nmf_linear_free(lin);
            lin = NULL;
            CHECK_OK(nmf_linear_create_nm(&lin, &a));
            CHECK_OK(nmf_linear_set_precision(lin, NMF_PREC_INT8));
            CHECK_OK(nmf_linear_forward(&y, x, lin, NULL, 1, NMF_ACT_NONE));
            nmf_q8_ref_forward(&yr, x, &a, NULL, 1, NMF_ACT_NONE);
            CHECK(y == yr);
            CHECK(y == nmf_q8_out((int32_t)want, sx, sw, 0.0f));
        }
        nmf_set_isa(nmf_cpu_best_isa());
        nmf_linear_free(lin);
        nmf_nm_free(&a);
        free(w);
        free(x);
    }
}

/* Dense int8: the numerics of spmm_q8.h on every column, written plainly (int64 sums). */
static void dense_q8_ref(float *y, const float *x, const float *w, const float *bias, size_t T,
                         size_t out, size_t in, nmf_activation act) {
    for (size_t t = 0; t < T; t++) {
        float amax = 0.0f, inv;
        for (size_t i = 0; i < in; i++) amax = fmaxf(amax, fabsf(x[t * in + i]));
        const float sx = nmf_q8_scale(amax, &inv);
        for (size_t o = 0; o < out; o++) {
            float wmax = 0.0f, winv;
            for (size_t i = 0; i < in; i++) wmax = fmaxf(wmax, fabsf(w[o * in + i]));
            const float sw = nmf_q8_scale(wmax, &winv);
            int64_t acc = 0;
            for (size_t i = 0; i < in; i++)
                acc += (int64_t)nmf_q8_round(x[t * in + i] * inv) * nmf_q8_round(w[o * in + i] * winv);
            float r = nmf_q8_out((int32_t)acc, sx, sw, bias ? bias[o] : 0.0f);
            if (act == NMF_ACT_GELU) r = nmf_gelu_q8(r); /* test_gelu_q8: its distance to erf's */
            y[t * out + o] = r;
        }
    }
}

/* Dense layers at int8, every ISA: bit-exact against dense_q8_ref (without activation also
 * the kernel directly, on the layout), GELU included; rows 1..33 around the block of 16,
 * columns around 4 (the dense AVX-512 window) and 64, tokens around 12 and 16 (the AVX-512
 * token block, whole blocks running two row blocks at a time: 32 rows, ragged or whole). */
static void test_dense(void) {
    const int san = getenv("NMF_SANITIZED") != NULL;
    static const size_t shapes[][3] = {{1, 1, 1},    {15, 3, 2},   {16, 4, 16},  {17, 5, 17},
                                       {16, 63, 7},  {33, 64, 15}, {31, 65, 33}, {48, 130, 9},
                                       {7, 768, 3},  {32, 8, 12},  {64, 20, 25}, {47, 9, 11}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int variant = 0; variant < 2; variant++) { /* 0: no bias, none; 1: bias, GELU */
            const size_t out = shapes[si][0], in = shapes[si][1];
            const size_t T = san && shapes[si][2] > 9 ? 9 : shapes[si][2];
            const nmf_activation act = variant ? NMF_ACT_GELU : NMF_ACT_NONE;
            char label[96];
            snprintf(label, sizeof label, "dense out=%zu in=%zu T=%zu%s", out, in, T,
                     variant ? " bias gelu" : "");
            float *w = calloc(out * in, sizeof(float)), *x = calloc(T * in, sizeof(float));
            float *bias = calloc(out, sizeof(float)), *yref = calloc(T * out, sizeof(float));
            float *y = calloc(T * out, sizeof(float)), *y2 = calloc(T * out, sizeof(float));
            for (size_t i = 0; i < out * in; i++) w[i] = test_rand_float(&rng);
            for (size_t i = 0; i < T * in; i++) x[i] = 3.0f * test_rand_float(&rng);
            for (size_t i = 0; i < out; i++) bias[i] = test_rand_float(&rng);
            if (out > 2) memset(w + in, 0, in * sizeof(float)); /* a zero row: y = bias */
            const float *b = variant ? bias : NULL;
            dense_q8_ref(yref, x, w, b, T, out, in, act);
            for (int isa = 0; isa <= (int)nmf_cpu_best_isa(); isa++) {
                nmf_set_isa((nmf_isa)isa);
                const nmf_q8_kernel *k = nmf_q8_kernel_for((nmf_isa)isa, 1);
                nmf_linear *lin = NULL;
                CHECK_OK(nmf_linear_create_dense(&lin, w, out, in));
                if (!lin) continue;
                CHECK_OK(nmf_linear_set_precision(lin, NMF_PREC_INT8));
                CHECK(nmf_linear_precision(lin) == NMF_PREC_INT8);
                CHECK(!strcmp(nmf_linear_kernel_name(lin, T), k->name));
                CHECK_STATUS(nmf_linear_backward_input(y2, y, lin, 1), NMF_ERR_UNSUPPORTED);
                CHECK_OK(nmf_linear_forward(y, x, lin, b, T, act));
                CHECK_MSG(test_same_bits(y, yref, T * out, label), "%s: %s", label, k->name);
                /* made straight from W (no f32 copy kept or made): the same layer */
                nmf_linear *direct = NULL;
                CHECK_OK(nmf_linear_create_dense_int8(&direct, w, out, in));
                if (direct) {
                    CHECK(nmf_linear_precision(direct) == NMF_PREC_INT8);
                    CHECK(nmf_linear_weight_bytes(direct) == nmf_linear_weight_bytes(lin));
                    CHECK(!strcmp(nmf_linear_kernel_name(direct, T), k->name));
                    CHECK_OK(nmf_linear_forward(y2, x, direct, b, T, act));
                    CHECK_MSG(test_same_bits(y2, yref, T * out, label), "%s: %s made from W", label, k->name);
                    CHECK_STATUS(nmf_linear_set_precision(direct, NMF_PREC_BF16), NMF_ERR_INVALID_ARG);
                    nmf_linear_free(direct);
                }
                if (act == NMF_ACT_NONE) {
                    nmf_q8_weights q;
                    void *storage = NULL;
                    CHECK_OK(nmf_q8_build_dense(&q, &storage, w, 0, out, in, k->g));
                    CHECK(nmf_linear_weight_bytes(lin) == nmf_q8_layout_bytes(&q));
                    if (storage) check_kernel(k, &q, x, T, b, yref, y2, label);
                    /* from W^T [in][out]: the same layout, byte for byte */
                    float *wt = malloc(out * in * sizeof(float));
                    for (size_t o = 0; o < out; o++)
                        for (size_t i = 0; i < in; i++) wt[i * out + o] = w[o * in + i];
                    nmf_q8_weights qt;
                    void *storage_t = NULL;
                    CHECK_OK(nmf_q8_build_dense(&qt, &storage_t, wt, 1, out, in, k->g));
                    if (storage && storage_t)
                        CHECK_MSG(nmf_q8_layout_bytes(&qt) == nmf_q8_layout_bytes(&q) &&
                                      !memcmp(storage_t, storage, nmf_q8_layout_bytes(&q)),
                                  "%s: %s layout from W^T", label, k->name);
                    nmf_free(storage_t);
                    free(wt);
                    nmf_free(storage);
                }
                nmf_linear_free(lin);
            }
            nmf_set_isa(nmf_cpu_best_isa());
            free(w), free(x), free(bias), free(yref), free(y), free(y2);
        }
}

/* The AVX2 dense kernel (avx2-dense-int8: int16 activations, row blocks of 8 in pairs, token
 * blocks, row blocks in chunks of 256 KB of weights) on the layout it shares with the AVX2
 * shuffle kernel: bit for bit the shuffle kernel's output (the same integer sums and epilogue,
 * bias and GELU included), and without activation the scalar kernel's and dense_q8_ref's; its
 * quantiser the portable one's values. Through the layer (NMF_ISA=avx2) and directly on row
 * ranges that split the pairs (an odd first block) and the chunks. Rows around 8 and 16, in
 * ragged (not a multiple of 2 or 16), tokens 1, 3-6, 8-9 around the block of 6 and 131; two
 * shapes of several chunks (odd block counts: a single block at a chunk's end). */
static void test_dense_avx2(void) {
    if (nmf_cpu_best_isa() < NMF_ISA_AVX2) {
        printf("test_lowprec: no AVX2 here: the AVX2 dense int8 kernel is not run\n");
        return;
    }
    const int san = getenv("NMF_SANITIZED") != NULL;
    const nmf_q8_kernel *k = nmf_q8_kernel_for(NMF_ISA_AVX2, 1);
    CHECK(!strcmp(k->name, "avx2-dense-int8") && k->xbytes == 2);
    static const size_t shapes[][3] = {
        {1, 1, 1},     {7, 2, 5},     {8, 16, 4},     {9, 17, 5},    {15, 31, 3},
        {16, 32, 8},   {17, 33, 9},   {24, 15, 131},  {25, 100, 131}, {40, 768, 6},
        {139, 2048, 5}, {173, 3000, 131}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int variant = 0; variant < 2; variant++) { /* 0: no bias, none; 1: bias, GELU */
            const size_t out = shapes[si][0], in = shapes[si][1];
            const size_t T = san && out * in > 10000 && shapes[si][2] > 9 ? 9 : shapes[si][2];
            const nmf_activation act = variant ? NMF_ACT_GELU : NMF_ACT_NONE;
            char label[96];
            snprintf(label, sizeof label, "avx2 dense out=%zu in=%zu T=%zu%s", out, in, T,
                     variant ? " bias gelu" : "");
            float *w = malloc(out * in * sizeof(float)), *x = malloc(T * in * sizeof(float));
            float *bias = malloc(out * sizeof(float)), *yref = malloc(T * out * sizeof(float));
            float *y = malloc(T * out * sizeof(float)), *y2 = malloc(T * out * sizeof(float));
            for (size_t i = 0; i < out * in; i++) w[i] = test_rand_float(&rng);
            for (size_t i = 0; i < T * in; i++) x[i] = 3.0f * test_rand_float(&rng);
            for (size_t i = 0; i < out; i++) bias[i] = test_rand_float(&rng);
            if (T > 2) memset(x + in, 0, in * sizeof(float)); /* a zero token: y = act(bias) */
            const float *b = variant ? bias : NULL;
            nmf_q8_weights q;
            void *storage = NULL;
            CHECK_OK(nmf_q8_build_dense(&q, &storage, w, 0, out, in, k->g));
            const size_t ldq = q.windows * q.g.win, ldq2 = ldq * k->xbytes, RB = q.rowblocks;
            uint8_t *xq = malloc(T * ldq), *xq2 = malloc(T * ldq2);
            float *sx = malloc(T * sizeof(float)), *sx2 = malloc(T * sizeof(float));
            CHECK(nmf_q8_quantize_tokens(xq, ldq, sx, x, in, in, 0, T) == 0);
            CHECK(k->quantize(xq2, ldq2, sx2, x, in, in, 0, T) == 0);
            int same = !memcmp(sx, sx2, T * sizeof(float));
            for (size_t i = 0; i < T * ldq; i++) {
                int16_t v;
                memcpy(&v, xq2 + 2 * i, 2);
                same &= v == xq[i] - 128;
            }
            CHECK_MSG(same, "%s: quantiser", label);
            /* the reference: the shuffle kernel on the same layout and bytes */
            nmf_q8_forward_avx2(yref, xq, ldq, sx, T, &q, b, act, 0, RB);
            if (act == NMF_ACT_NONE) {
                dense_q8_ref(y, x, w, b, T, out, in, act);
                CHECK_MSG(test_same_bits(yref, y, T * out, label), "%s: shuffle kernel", label);
                nmf_q8_forward_scalar(y, xq, ldq, sx, T, &q, b, act, 0, RB);
                CHECK_MSG(test_same_bits(yref, y, T * out, label), "%s: scalar kernel", label);
            }
            /* directly: row ranges [0, 1), [1, RB / 2), [RB / 2, RB) */
            const size_t cut[4] = {0, RB > 1 ? 1 : RB, RB / 2 > 1 ? RB / 2 : RB > 1 ? 1 : RB, RB};
            for (size_t i = 0; i < T * out; i++) y[i] = NAN;
            for (int part = 2; part >= 0; part--)
                k->forward(y, xq2, ldq2, sx2, T, &q, b, act, cut[part], cut[part + 1]);
            CHECK_MSG(test_same_bits(y, yref, T * out, label), "%s: kernel", label);
            /* through the layer */
            nmf_set_isa(NMF_ISA_AVX2);
            nmf_linear *lin = NULL;
            CHECK_OK(nmf_linear_create_dense(&lin, w, out, in));
            if (lin) {
                CHECK_OK(nmf_linear_set_precision(lin, NMF_PREC_INT8));
                CHECK(!strcmp(nmf_linear_kernel_name(lin, T), k->name));
                CHECK(nmf_linear_weight_bytes(lin) == nmf_q8_layout_bytes(&q));
                for (size_t i = 0; i < T * out; i++) y2[i] = NAN;
                CHECK_OK(nmf_linear_forward(y2, x, lin, b, T, act));
                CHECK_MSG(test_same_bits(y2, yref, T * out, label), "%s: layer", label);
                nmf_linear_free(lin);
            }
            nmf_set_isa(nmf_cpu_best_isa());
            nmf_free(storage);
            free(w), free(x), free(bias), free(yref), free(y), free(y2);
            free(xq), free(xq2), free(sx), free(sx2);
        }
}

/* A dense row at the int32 limit (NMF_Q8_MAX_KEPT columns, q_w = +-127 against stored 255 / 1),
 * every ISA; one more column is refused. */
static void test_dense_saturation(void) {
    for (size_t extra = 0; extra < 2; extra++) {
        const size_t in = NMF_Q8_MAX_KEPT + extra;
        float *w = malloc(in * sizeof(float)), *x = malloc(in * sizeof(float));
        int64_t want = 0;
        for (size_t i = 0; i < in; i++) {
            w[i] = (i / 8) % 5 ? 0.5f : -0.5f;
            x[i] = (i / 3) % 7 ? 2.0f : -2.0f;
            want += (x[i] > 0 ? 127 : -127) * (w[i] > 0 ? 127 : -127);
        }
        for (int isa = 0; isa <= (int)nmf_cpu_best_isa(); isa++) {
            nmf_set_isa((nmf_isa)isa);
            nmf_linear *lin = NULL;
            CHECK_OK(nmf_linear_create_dense(&lin, w, 1, in));
            if (!lin) continue;
            nmf_linear *direct = NULL; /* made straight from W: refused alike */
            if (extra) {
                CHECK_STATUS(nmf_linear_set_precision(lin, NMF_PREC_INT8), NMF_ERR_UNSUPPORTED);
                CHECK_STATUS(nmf_linear_create_dense_int8(&direct, w, 1, in), NMF_ERR_UNSUPPORTED);
                CHECK(direct == NULL);
            } else {
                float y = 0.0f;
                CHECK_OK(nmf_linear_set_precision(lin, NMF_PREC_INT8));
                CHECK_OK(nmf_linear_forward(&y, x, lin, NULL, 1, NMF_ACT_NONE));
                CHECK_MSG(y == nmf_q8_out((int32_t)want, 2.0f / 127.0f, 0.5f / 127.0f, 0.0f),
                          "dense saturation %s", nmf_isa_name((nmf_isa)isa));
            }
            nmf_linear_free(lin);
        }
        nmf_set_isa(nmf_cpu_best_isa());
        free(w);
        free(x);
    }
}

/* Every SIMD quantiser against the portable one on rows that stress the scale: denormals only,
 * magnitudes near FLT_MAX, -0.0 and an exact -amax, an infinity, a NaN (as the first, a body and
 * a tail element), all zeros; lengths around 16 and 64 (bytes, scales and the count of bad
 * tokens the same; padding columns 128). */
static void test_quantisers(void) {
    nmf_q8_quantize_fn simd[2] = {NULL, NULL};
    if (nmf_cpu_best_isa() >= NMF_ISA_AVX2) simd[0] = nmf_q8_quantize_tokens_avx2;
    if (nmf_cpu_best_isa() >= NMF_ISA_AVX512 && nmf_cpu_has_vnni512())
        simd[1] = nmf_q8_quantize_tokens_avx512;
    static const size_t lens[] = {1, 15, 16, 17, 63, 64, 65, 200};
    enum { ROWS = 9 };
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const size_t in = lens[li], ldq = (in + 63) / 64 * 64;
        float *x = calloc(ROWS * in, sizeof(float)), sx[ROWS], sx2[ROWS];
        uint8_t *xq = malloc(ROWS * ldq), *xq2 = malloc(ROWS * ldq);
        for (size_t i = 0; i < in; i++) {
            const float r = test_rand_float(&rng);
            x[0 * in + i] = r * 1e-39f;                   /* denormals */
            x[1 * in + i] = r * 3.4e38f;                  /* near FLT_MAX */
            x[2 * in + i] = i % 3 ? r : -0.0f;            /* -0.0 among values */
            x[3 * in + i] = r;                            /* + an infinity */
            x[4 * in + i] = r;                            /* + a NaN in the body */
            x[5 * in + i] = 0.0f;                         /* all zeros */
            x[6 * in + i] = r;                            /* + a NaN first */
            x[7 * in + i] = r;                            /* + a NaN last (the tail) */
            x[8 * in + i] = 2.0f * r;                     /* an exact -amax */
        }
        x[2 * in + in / 2] = -1.5f;
        x[3 * in + in / 2] = -INFINITY;
        x[4 * in + in / 2] = NAN;
        x[6 * in] = -NAN;
        x[7 * in + in - 1] = NAN;
        x[8 * in + in - 1] = -2.0f;
        const size_t bad = nmf_q8_quantize_tokens(xq, ldq, sx, x, in, in, 0, ROWS);
        CHECK(bad == 4);
        for (int k = 0; k < 2; k++) {
            if (!simd[k]) continue;
            memset(xq2, 0xAB, ROWS * ldq);
            CHECK(simd[k](xq2, ldq, sx2, x, in, in, 0, ROWS) == bad);
            CHECK_MSG(!memcmp(xq, xq2, ROWS * ldq) && !memcmp(sx, sx2, sizeof sx),
                      "quantiser %s, in = %zu", k ? "avx512" : "avx2", in);
        }
        free(x), free(xq), free(xq2);
    }
}

/* The int8 layers' GELU (gelu_q8.h, the same bits in every kernel) against erf in double on a
 * fine grid over [-12, 12], at its clamp, on huge and special values; its SIMD forms run through
 * the kernels (run_case: every ISA bit for bit the scalar kernel). */
static void test_gelu_q8(void) {
    double worst = 0.0;
    for (int i = -1200000; i <= 1200000; i++) {
        const float x = (float)i * 1e-5f;
        const double g = 0.5 * (double)x * (1.0 + erf((double)x / sqrt(2.0)));
        const double e = fabs((double)nmf_gelu_q8(x) - g) / (fabs(x) > 1.0f ? fabs(x) : 1.0);
        worst = e > worst ? e : worst;
    }
    CHECK_MSG(worst <= 2.5e-5, "gelu_q8: worst error %.3g max(1, |x|)", worst);
    CHECK(worst > 1e-6); /* a polynomial, not erf: the bound is the one documented */
    CHECK(nmf_gelu_q8(0.0f) == 0.0f);
    const float big[] = {NMF_GELU_Q8_CLAMP, 5.0f, 100.0f, 1e30f};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        const float x = big[i];
        CHECK_MSG(fabsf(nmf_gelu_q8(x) - x) <= 2.5e-5f * x, "gelu_q8(%g) = %g", x, nmf_gelu_q8(x));
        const float n = nmf_gelu_q8(-x); /* true value in (-1e-4, 0]: never a large one */
        CHECK_MSG(n <= 0.0f && n > -2.5e-5f * x, "gelu_q8(%g) = %g", -x, n);
    }
    CHECK(nmf_gelu_q8(INFINITY) == INFINITY);
    CHECK(isnan(nmf_gelu_q8(NAN)));
    CHECK(isnan(nmf_gelu_q8(-INFINITY))); /* -inf * 0, as the erf GELU */
}

/* nmf_linear_create_dense_int8's errors: no output, no or empty weight, a non-finite weight
 * (nothing made, *lin NULL); the row limit is test_dense_saturation's. */
static void test_dense_int8_errors(void) {
    float w[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    nmf_linear *lin = (nmf_linear *)w; /* garbage in: NULL out on failure */
    CHECK_STATUS(nmf_linear_create_dense_int8(NULL, w, 3, 4), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_linear_create_dense_int8(&lin, NULL, 3, 4), NMF_ERR_INVALID_ARG);
    CHECK(lin == NULL);
    CHECK_STATUS(nmf_linear_create_dense_int8(&lin, w, 0, 4), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_linear_create_dense_int8(&lin, w, 3, 0), NMF_ERR_INVALID_ARG);
    w[5] = NAN;
    CHECK_STATUS(nmf_linear_create_dense_int8(&lin, w, 3, 4), NMF_ERR_NUMERIC);
    CHECK(lin == NULL);
    w[5] = 6;
    CHECK_OK(nmf_linear_create_dense_int8(&lin, w, 3, 4));
    CHECK(lin && nmf_linear_out(lin) == 3 && nmf_linear_in(lin) == 4);
    nmf_linear_free(lin);
}

static void test_api(void) {
    nmf_precision p;
    for (int i = 0; i < NMF_PREC_COUNT; i++) {
        CHECK_OK(nmf_precision_parse(nmf_precision_name((nmf_precision)i), &p));
        CHECK(p == (nmf_precision)i);
    }
    CHECK_STATUS(nmf_precision_parse("fp8", &p), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_precision_parse(NULL, &p), NMF_ERR_INVALID_ARG);
    float w[64], x[32], y[8] = {0}, dx[32] = {0};
    for (int i = 0; i < 64; i++) w[i] = test_rand_float(&rng);
    for (int i = 0; i < 32; i++) x[i] = test_rand_float(&rng);
    nmf_linear *dense = NULL;
    CHECK_OK(nmf_linear_create_dense(&dense, w, 4, 16));
    CHECK_OK(nmf_linear_set_precision(dense, NMF_PREC_F32));
    CHECK_OK(nmf_linear_set_precision(dense, NMF_PREC_INT8));
    CHECK_STATUS(nmf_linear_set_precision(dense, NMF_PREC_BF16), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_linear_set_precision(NULL, NMF_PREC_INT8), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_linear_set_precision(dense, NMF_PREC_COUNT), NMF_ERR_INVALID_ARG);
    nmf_linear_free(dense);
    nmf_nm_matrix a;
    CHECK_OK(nmf_nm_pack(&a, w, 4, 16, (nmf_pattern){2, 8}, 0));
    nmf_linear *lin = NULL;
    CHECK_OK(nmf_linear_create_nm(&lin, &a));
    CHECK_OK(nmf_linear_set_precision(lin, NMF_PREC_INT8));
    CHECK_OK(nmf_linear_set_precision(lin, NMF_PREC_INT8)); /* unchanged */
    CHECK_STATUS(nmf_linear_set_precision(lin, NMF_PREC_BF16), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_linear_backward_input(dx, y, lin, 2), NMF_ERR_UNSUPPORTED);
    CHECK_STATUS(nmf_linear_compact(lin), NMF_ERR_INVALID_ARG); /* int8, not bf16 */
    x[17] = NAN; /* token 1 */
    CHECK_STATUS(nmf_linear_forward(y, x, lin, NULL, 2, NMF_ACT_NONE), NMF_ERR_NUMERIC);
    x[17] = INFINITY;
    CHECK_STATUS(nmf_linear_forward(y, x, lin, NULL, 2, NMF_ACT_NONE), NMF_ERR_NUMERIC);
    x[17] = 0.0f;
    CHECK_OK(nmf_linear_forward(y, x, lin, NULL, 2, NMF_ACT_NONE));
    nmf_linear_free(lin);
    /* compact: bf16 N:M only; afterwards inference only */
    CHECK_OK(nmf_linear_create_nm(&lin, &a));
    CHECK_STATUS(nmf_linear_compact(lin), NMF_ERR_INVALID_ARG); /* still f32 */
    CHECK_OK(nmf_linear_set_precision(lin, NMF_PREC_BF16));
    CHECK_OK(nmf_linear_backward_input(dx, y, lin, 2)); /* builds the transpose cache */
    CHECK_OK(nmf_linear_compact(lin));
    CHECK_STATUS(nmf_linear_backward_input(dx, y, lin, 2), NMF_ERR_UNSUPPORTED);
    nmf_spmm_tuning tv = nmf_spmm_tuning_default();
    tv.tv = NMF_SPMM_ON; /* would build the tv layout from the f32 values it no longer has */
    CHECK_STATUS(nmf_linear_set_tuning(lin, &tv), NMF_ERR_UNSUPPORTED);
    CHECK_OK(nmf_linear_forward(y, x, lin, NULL, 2, NMF_ACT_NONE));
    nmf_linear_free(lin);
    CHECK_STATUS(nmf_linear_compact(NULL), NMF_ERR_INVALID_ARG);
    a.values[3] = INFINITY; /* a non-finite weight */
    CHECK_OK(nmf_linear_create_nm(&lin, &a));
    CHECK_STATUS(nmf_linear_set_precision(lin, NMF_PREC_INT8), NMF_ERR_NUMERIC);
    nmf_linear_free(lin);
    nmf_nm_free(&a);
}

/* Two threads give the bits of one: layers whose threads split the tokens (each quantises its
 * own: few rows, small weights) and layers that split the row blocks of one shared quantised x
 * (more than 1536 rows), N:M and dense, token counts below, at and around the ranges of 16. */
static void test_threads(void) {
    static const size_t shapes[][2] = {{100, 64}, {40, 200}, {1600, 32}};
    static const size_t toks[] = {1, 5, 16, 31, 33, 64, 197};
    const int threads = nmf_get_threads();
    for (int isa = 0; isa <= (int)nmf_cpu_best_isa(); isa++) {
        nmf_set_isa((nmf_isa)isa);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int dense = 0; dense <= 1; dense++) {
                const size_t out = shapes[si][0], in = shapes[si][1], T = 197;
                float *w = malloc(out * in * sizeof *w), *x = malloc(T * in * sizeof *x);
                float *b = malloc(out * sizeof *b), *y1 = malloc(T * out * sizeof *y1);
                float *y2 = malloc(T * out * sizeof *y2);
                for (size_t i = 0; i < out * in; i++) w[i] = test_rand_float(&rng);
                for (size_t i = 0; i < T * in; i++) x[i] = 2.0f * test_rand_float(&rng);
                for (size_t i = 0; i < out; i++) b[i] = test_rand_float(&rng);
                nmf_linear *lin = NULL;
                nmf_nm_matrix a;
                if (dense) {
                    CHECK_OK(nmf_linear_create_dense(&lin, w, out, in));
                } else if (nmf_nm_pack(&a, w, out, in, (nmf_pattern){2, 8}, 1) == NMF_OK) {
                    CHECK_OK(nmf_linear_create_nm(&lin, &a));
                    nmf_nm_free(&a);
                }
                if (lin) CHECK_OK(nmf_linear_set_precision(lin, NMF_PREC_INT8));
                for (size_t ti = 0; lin && ti < sizeof toks / sizeof toks[0]; ti++) {
                    const size_t n = toks[ti];
                    char label[96];
                    snprintf(label, sizeof label, "%s int8 %s out=%zu in=%zu T=%zu 2 threads",
                             nmf_isa_name((nmf_isa)isa), dense ? "dense" : "2:8", out, in, n);
                    nmf_set_threads(1);
                    CHECK_OK(nmf_linear_forward(y1, x, lin, b, n, NMF_ACT_GELU));
                    for (size_t i = 0; i < n * out; i++) y2[i] = NAN;
                    nmf_set_threads(2);
                    CHECK_OK(nmf_linear_forward(y2, x, lin, b, n, NMF_ACT_GELU));
                    CHECK_MSG(test_same_bits(y2, y1, n * out, label), "%s", label);
                }
                nmf_linear_free(lin);
                free(w), free(x), free(b), free(y1), free(y2);
            }
    }
    nmf_set_threads(threads);
    nmf_set_isa(nmf_cpu_best_isa());
}

int main(void) {
    const int san = getenv("NMF_SANITIZED") != NULL;
    static const int pats[][2] = {{2, 4}, {1, 4}, {4, 8}, {2, 8}, {1, 8}, {1, 16}, {3, 32},
                                  {2, 16}, {3, 7}, {9, 12}, {17, 32}, {31, 32}, {5, 24}};
    if (nmf_cpu_best_isa() == NMF_ISA_AVX512 && !nmf_cpu_has_vnni512())
        printf("test_lowprec: this CPU has AVX-512 without VNNI + VBMI: the AVX-512 int8 kernels "
               "are not run (their ISA runs the AVX2 ones)\n");
    else if (nmf_cpu_best_isa() < NMF_ISA_AVX512)
        printf("test_lowprec: no AVX-512 here: the AVX-512 VNNI int8 kernels are not run\n");
    test_api();
    test_dense_int8_errors();
    test_gelu_q8();
    test_quantisers();
    test_saturation();
    test_dense();
    test_dense_avx2();
    test_dense_saturation();
    test_threads();
    int cnum = 0;
    for (size_t pi = 0; pi < sizeof pats / sizeof pats[0]; pi++) {
        const int n = pats[pi][0], m = pats[pi][1];
        const size_t M = (size_t)m;
        /* (out, in, tokens, pad): rows 1/3/7/8/9/16/17/33 around the blocks of 8 and 16,
         * windows of 16 and 64 columns (in 16, 48, 64, ragged, > 16 windows of 64), tokens
         * 1..17 around the blocks of 6 and 8 (ragged blocks of 1, 2, 3, 5 tokens), and 49 */
        const size_t in64 = (64 / M ? 64 / M : 1) * M; /* 64 where M divides it */
        lp_case cases[] = {
            {n, m, 1, M, 1, 0, 0, 0},
            {n, m, 7, (16 / M + 1) * M, 5, 0, 0, 0},
            {n, m, 8, 3 * M + 1, 6, 1, 0, 0},
            {n, m, 9, (48 / M + 1) * M, 10, 0, 0, 0},
            {n, m, 16, in64, 8, 0, 0, 0},
            {n, m, 16, in64 + M, 11, 0, 0, 0},
            {n, m, 3, (1100 / M + 1) * M + 3, 3, 1, 0, 0}, /* 18 windows of 64: two runs */
            {n, m, 17, 5 * M, san ? 7 : 13, 0, 0, 0},
            {n, m, 15, (64 / M + 2) * M + 1, san ? 7 : 17, 1, 0, 0},
            {n, m, 33, (200 / M + 1) * M - 1, san ? 12 : 49, 1, 0, 0},
        };
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            cases[ci].bias = cnum % 2;
            cases[ci].gelu = (cnum / 2) % 2;
            cnum++;
            run_case(&cases[ci]);
        }
    }
    return test_finish("test_lowprec");
}
