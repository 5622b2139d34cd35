/* N:M engine: every ISA kernel against the scalar reference, the reference against a plain
 * dense product of the unpacked weight, the dense path (nmf_gemm), backward_input, bad input.
 * Sizes sweep below, at and above every tile: panels of 16 rows, token blocks of 8 (AVX-512)
 * and 4 (AVX2), chunks of groups (512 columns AVX-512, 1024 AVX2), ragged token counts; the
 * token-vectorised AVX-512 kernel (forced, whatever the dispatch rule) on blocks of 4 rows,
 * chunks of 64 rows, tiles of 16/64 tokens and input blocks (default, and one group); the
 * AVX-512 panel kernel with the layer's u32 positions forced on and off. */
#include <stdint.h>

#include "kernels/spmm.h"
#include "nmformer/kernels.h"
#include "test.h"

static unsigned long long rng = 0x9E3779B97F4A7C15ull;

static float *alloc_floats(size_t n) { return nmf_alloc(n + 16, sizeof(float)); }
/* Exactly n floats (plus the one the unaligned view skips), from malloc: under ASan any read
 * past the last element is caught (nmf_alloc rounds up to 64 bytes and would hide it). */
static float *alloc_exact(size_t n) { return calloc(n + 1, sizeof(float)); }

/* Plain dense y = act(x W^T + b) in double: the independent check of the reference. */
static void dense_forward(float *y, const float *x, const float *w, const float *bias, size_t T,
                          size_t out, size_t in, nmf_activation act) {
    for (size_t t = 0; t < T; t++)
        for (size_t o = 0; o < out; o++) {
            double s = bias ? bias[o] : 0.0;
            for (size_t i = 0; i < in; i++) s += (double)x[t * in + i] * (double)w[o * in + i];
            if (act == NMF_ACT_GELU) s = 0.5 * s * (1.0 + erf(s / sqrt(2.0)));
            y[t * out + o] = (float)s;
        }
}

/* |a - b| <= 1e-5 * scale, scale[t][o] = sum_i |x w| + |b| (the size of the terms summed): the
 * relative error of a dot product, which stays meaningful when the sum cancels. */
static int close_all(const float *a, const float *b, const float *scale, size_t n, double rel,
                     const char *what) {
    for (size_t i = 0; i < n; i++) {
        double tol = rel * (scale[i] + 1e-30);
        if (!(fabs((double)a[i] - (double)b[i]) <= tol)) {
            fprintf(stderr, "  %s: element %zu: %.9g vs %.9g (tol %.3g)\n", what, i, a[i], b[i],
                    tol);
            return 0;
        }
    }
    return 1;
}

typedef struct {
    int n, m;
    size_t out, in, tokens;
    int pad, bias, gelu;
} test_case;

static void run_case(const test_case *c) {
    const nmf_pattern p = {c->n, c->m};
    const size_t out = c->out, in = c->in, T = c->tokens;
    float *wd = alloc_floats(out * in), *wu = alloc_floats(out * in);
    float *xb = alloc_exact(T * in), *bias = alloc_exact(out);
    float *yref = alloc_floats(T * out), *ydense = alloc_floats(T * out), *yb = alloc_exact(T * out);
    float *scale = alloc_floats(T * out), *dyb = alloc_exact(T * out);
    float *dxref = alloc_floats(T * in), *dxb = alloc_exact(T * in), *dscale = alloc_floats(T * in);
    for (size_t i = 0; i < out * in; i++) wd[i] = test_rand_float(&rng);
    for (size_t i = 0; i < T * in; i++) xb[i + 1] = test_rand_float(&rng);
    for (size_t i = 0; i < out; i++) bias[i] = test_rand_float(&rng);
    for (size_t i = 0; i < T * out; i++) dyb[i + 1] = test_rand_float(&rng);
    const float *x = xb + 1, *dy = dyb + 1; /* unaligned on purpose */
    float *y = yb + 1, *dx = dxb + 1;
    const float *b = c->bias ? bias : NULL;
    const nmf_activation act = c->gelu ? NMF_ACT_GELU : NMF_ACT_NONE;
    char label[160];
    snprintf(label, sizeof label, "%d:%d out=%zu in=%zu T=%zu%s%s%s", c->n, c->m, out, in, T,
             c->pad ? " pad" : "", b ? " bias" : "", c->gelu ? " gelu" : "");

    nmf_nm_matrix a;
    nmf_status st = nmf_nm_pack(&a, wd, out, in, p, c->pad);
    CHECK_MSG(st == NMF_OK, "%s: pack: %s", label, nmf_last_error());
    if (st != NMF_OK) goto done;
    CHECK_OK(nmf_nm_unpack(wu, &a));

    /* error scales: forward sum |x||w| + |b|; backward sum |dy||w| */
    for (size_t t = 0; t < T; t++) {
        for (size_t o = 0; o < out; o++) {
            double s = b ? fabs(b[o]) : 0.0;
            for (size_t i = 0; i < in; i++) s += fabs(x[t * in + i] * wu[o * in + i]);
            scale[t * out + o] = (float)s;
        }
        for (size_t i = 0; i < in; i++) {
            double s = 0.0;
            for (size_t o = 0; o < out; o++) s += fabs(dy[t * out + o] * wu[o * in + i]);
            dscale[t * in + i] = (float)s;
        }
    }

    /* the reference against a plain dense product of the unpacked weight */
    nmf_spmm_ref_forward(yref, x, &a, b, T, act);
    dense_forward(ydense, x, wu, b, T, out, in, act);
    CHECK_MSG(close_all(yref, ydense, scale, T * out, 1e-6, "ref vs dense"), "%s", label);
    nmf_spmm_ref_backward_input(dxref, dy, &a, T);
    {
        int ok = 1;
        for (size_t t = 0; t < T && ok; t++)
            for (size_t i = 0; i < in && ok; i++) {
                double s = 0.0;
                for (size_t o = 0; o < out; o++) s += (double)dy[t * out + o] * wu[o * in + i];
                ok = fabs(s - dxref[t * in + i]) <= 1e-6 * (dscale[t * in + i] + 1e-30);
            }
        CHECK_MSG(ok, "%s: ref backward vs dense", label);
    }

    /* every ISA this CPU has against the reference */
    for (int isa = 0; isa <= (int)nmf_cpu_best_isa(); isa++) {
        nmf_set_isa((nmf_isa)isa);
        nmf_linear *lin = NULL;
        CHECK_OK(nmf_linear_create_nm(&lin, &a));
        if (!lin) continue;
        CHECK(nmf_linear_out(lin) == out && nmf_linear_in(lin) == in);
        CHECK(nmf_linear_pattern(lin).n == c->n && nmf_linear_pattern(lin).m == c->m);
        CHECK(!strcmp(nmf_linear_kernel_name(lin, 1), nmf_isa_name((nmf_isa)isa)));
        for (size_t i = 0; i < T * out; i++) y[i] = NAN;
        CHECK_OK(nmf_linear_forward(y, x, lin, b, T, act));
        CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "forward"), "%s isa=%s", label,
                  nmf_isa_name((nmf_isa)isa));
        if (isa == NMF_ISA_AVX512) {
            /* the panel kernel's u32 positions exist exactly when that product used them, and
             * equal the u8 ones (then the strided call below runs on them too) */
            const nmf_spmm_weights *pw = nmf_linear_spmm_weights(lin);
            const int want = nmf_spmm_use_wide(T) && !nmf_spmm_use_tv(pw, T);
            CHECK_MSG((pw->idx32 != NULL) == want, "%s: idx32 %s", label,
                      want ? "missing" : "built without use");
            int same = 1;
            for (size_t s = 0; pw->idx32 && s < pw->panels * pw->groups * (size_t)c->n * NMF_SPMM_ROWS; s++)
                same &= pw->idx32[s] == pw->idx[s];
            CHECK_MSG(same, "%s: idx32 differs from idx", label);
        }
        /* the kernels' strided entry: x rows ldx = in + 40 apart, with 40 readable floats of
         * slack that hold garbage (NaN), which no kept position may ever select */
        {
            const size_t ldx = in + 40;
            float *xs = alloc_floats(T * ldx);
            for (size_t t = 0; t < T; t++)
                for (size_t i = 0; i < ldx; i++) xs[t * ldx + i] = i < in ? x[t * in + i] : NAN;
            const nmf_spmm_weights *sw = nmf_linear_spmm_weights(lin);
            CHECK(sw != NULL);
            for (size_t i = 0; i < T * out; i++) y[i] = NAN;
            if (sw) nmf_spmm_kernels_for((nmf_isa)isa)->forward(y, xs, ldx, 40, sw, b, T, act, 0, sw->panels);
            CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "strided forward"), "%s isa=%s",
                      label, nmf_isa_name((nmf_isa)isa));
            nmf_free(xs);
        }
        if (isa == NMF_ISA_AVX512) {
            /* the token-vectorised kernel, whatever the dispatch rule would pick: through the
             * API (forced), and directly with the default and a one-group input block */
            const nmf_spmm_tv_mode tv_mode = nmf_spmm_tv;
            nmf_spmm_tv = NMF_SPMM_TV_ON;
            CHECK(!strcmp(nmf_linear_kernel_name(lin, 2), "avx512-tv"));
            CHECK(!strcmp(nmf_linear_kernel_name(lin, 1), "avx512")); /* 1 token: GEMV */
            const int threads = nmf_get_threads();
            for (int nt = 1; nt <= 2; nt++) { /* one thread, and two sharing one transposed x */
                nmf_set_threads(nt);
                for (size_t i = 0; i < T * out; i++) y[i] = NAN;
                CHECK_OK(nmf_linear_forward(y, x, lin, b, T, act));
                CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "tv forward"), "%s threads=%d",
                          label, nt);
            }
            nmf_set_threads(threads);
            nmf_spmm_tv = tv_mode;
            const nmf_spmm_weights *tw = nmf_linear_spmm_weights_tv(lin);
            CHECK(tw != NULL && tw->tv_val != NULL && tw->tv_off != NULL);
            for (int blk = 0; blk < 2 && tw; blk++) {
                nmf_spmm_tv_in_block = blk ? (size_t)c->m : 0;
                for (size_t i = 0; i < T * out; i++) y[i] = NAN;
                /* panels [1, end) then [0, 1): the kernel honours a panel range */
                if (tw->panels > 1)
                    nmf_spmm_forward_tv_avx512(y, x, in, 0, tw, b, T, act, 1, tw->panels);
                nmf_spmm_forward_tv_avx512(y, x, in, 0, tw, b, T, act, 0, 1);
                CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "tv direct"),
                          "%s in_block=%zu", label, nmf_spmm_tv_in_block);
            }
            nmf_spmm_tv_in_block = 0;
        }
        {
            /* (after the idx32 checks, which this may build) two threads on the panel kernels, splitting panels and (where there are enough
             * tokens) splitting tokens */
            const nmf_spmm_tv_mode tv_mode = nmf_spmm_tv;
            const int threads = nmf_get_threads();
            nmf_spmm_tv = NMF_SPMM_TV_OFF;
            nmf_set_threads(2);
            for (int split = 0; split < 2; split++) {
                nmf_spmm_token_split_bytes = split ? SIZE_MAX : 0;
                for (size_t i = 0; i < T * out; i++) y[i] = NAN;
                CHECK_OK(nmf_linear_forward(y, x, lin, b, T, act));
                CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "2-thread forward"),
                          "%s isa=%s split_tokens=%d", label, nmf_isa_name((nmf_isa)isa), split);
            }
            nmf_spmm_token_split_bytes = NMF_SPMM_TOKEN_SPLIT_BYTES_DEFAULT;
            nmf_set_threads(threads);
            nmf_spmm_tv = tv_mode;
        }
        for (size_t i = 0; i < T * in; i++) dx[i] = NAN;
        CHECK_OK(nmf_linear_backward_input(dx, dy, lin, T));
        CHECK_MSG(close_all(dx, dxref, dscale, T * in, 1e-5, "backward"), "%s isa=%s", label,
                  nmf_isa_name((nmf_isa)isa));
        nmf_linear_free(lin);
    }
    nmf_set_isa(nmf_cpu_best_isa());

    /* the OpenBLAS path on the unpacked weight computes the same product */
    nmf_linear *dl = NULL;
    CHECK_OK(nmf_linear_create_dense(&dl, wu, out, in));
    if (dl) {
        CHECK(nmf_linear_pattern(dl).n == 0 && !strcmp(nmf_linear_kernel_name(dl, 1), nmf_gemm_backend_name(nmf_gemm_backend_active())));
        CHECK(nmf_linear_weight_bytes(dl) == out * in * sizeof(float));
        CHECK_OK(nmf_linear_forward(y, x, dl, b, T, act));
        CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "dense forward"), "%s", label);
        CHECK_OK(nmf_linear_backward_input(dx, dy, dl, T));
        CHECK_MSG(close_all(dx, dxref, dscale, T * in, 1e-5, "dense backward"), "%s", label);
        nmf_linear_free(dl);
    }
    nmf_nm_free(&a);
done:
    nmf_free(wd); nmf_free(wu); free(xb); free(bias); nmf_free(yref); nmf_free(ydense);
    free(yb); nmf_free(scale); free(dyb); nmf_free(dxref); free(dxb); nmf_free(dscale);
}

static void test_bad_input(void) {
    nmf_linear *lin = (nmf_linear *)&rng;
    CHECK_STATUS(nmf_linear_create_nm(&lin, NULL), NMF_ERR_INVALID_ARG);
    CHECK(lin == NULL);
    CHECK_STATUS(nmf_linear_create_dense(&lin, NULL, 4, 4), NMF_ERR_INVALID_ARG);
    float w[16] = {0};
    CHECK_STATUS(nmf_linear_create_dense(&lin, w, 0, 4), NMF_ERR_INVALID_ARG);
    /* a corrupted position is rejected, never read */
    nmf_nm_matrix a;
    CHECK_OK(nmf_nm_alloc(&a, 4, 8, (nmf_pattern){2, 4}, 0));
    a.pos[3] = 7;
    CHECK(nmf_linear_create_nm(&lin, &a) != NMF_OK);
    CHECK(lin == NULL);
    a.pos[3] = 1;
    CHECK_OK(nmf_linear_create_nm(&lin, &a));
    float x[8] = {0}, y[4];
    CHECK_STATUS(nmf_linear_forward(NULL, x, lin, NULL, 1, NMF_ACT_NONE), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_linear_forward(y, x, lin, NULL, 1, (nmf_activation)7), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_linear_backward_input(NULL, y, lin, 1), NMF_ERR_INVALID_ARG);
    CHECK_OK(nmf_linear_forward(y, x, lin, NULL, 0, NMF_ACT_NONE)); /* no tokens: nothing */
    CHECK(nmf_linear_weight_bytes(lin) == 16 * 2 * 2 * 5); /* one 16-row panel, 2 groups x 2 */
    nmf_linear_free(lin);
    nmf_nm_free(&a);
    nmf_linear_free(NULL);
}

int main(void) {
    const int san = getenv("NMF_SANITIZED") != NULL;
    static const int pats[][2] = {{2, 4}, {1, 4}, {4, 8}, {2, 8}, {1, 8}, {2, 16}, {1, 16},
                                  {3, 7}, {9, 12}, {17, 32}, {1, 32}, {1, 2}, {31, 32}, {5, 24}};
    static const size_t tokens[] = {1, 3, 11, 12, 13, 17, 24, 25, 40, 63, 65, 129};
    int cnum = 0;
    for (int isa = (int)nmf_cpu_best_isa() + 1; isa < NMF_ISA_COUNT; isa++)
        printf("test_spmm: skipping %s kernels: this CPU lacks the ISA\n", nmf_isa_name((nmf_isa)isa));
    test_bad_input();
    for (size_t pi = 0; pi < sizeof pats / sizeof pats[0]; pi++) {
        const int n = pats[pi][0], m = pats[pi][1];
        const size_t M = (size_t)m;
        /* shapes: (out, in, tokens, pad) around the panel (16), token (8/4) and chunk tiles */
        test_case cases[] = {
            {n, m, 1, M, 1, 0, 0, 0},
            {n, m, 16, 5 * M, 8, 0, 0, 0},
            {n, m, 17, 7 * M, 9, 0, 0, 0},
            {n, m, 33, (200 / M + 1) * M, 17, 0, 0, 0}, /* in not a multiple of 64 */
            {n, m, 20, 3 * M + 1, 5, 1, 0, 0},          /* padded last group */
            {n, m, 15, (1100 / M + 1) * M, san ? 3 : 12, 0, 0, 0}, /* several chunks */
            {n, m, 31, 2 * M + (M > 1 ? M - 1 : 0), 4, 1, 0, 0},
            /* token-vectorised kernel: row chunk of 64 (63/64/65/129 rows), token tile 64
             * (63/64/65), input block ~256 columns (crossed by 300) */
            {n, m, 65, (300 / M + 1) * M, san ? 17 : 65, 0, 0, 0},
            {n, m, 129, 4 * M + 1, 64, 1, 0, 0},
            {n, m, 63, 2 * M, san ? 17 : 63, 0, 0, 0},
            {n, m, 64, 3 * M, 16, 0, 0, 0},
        };
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            cases[ci].bias = cnum % 2;
            cases[ci].gelu = (cnum / 2) % 2;
            cnum++;
            run_case(&cases[ci]);
        }
    }
    /* ragged token counts on the common patterns */
    for (size_t pi = 0; pi < 7; pi++)
        for (size_t ti = 0; ti < sizeof tokens / sizeof tokens[0]; ti++) {
            if (san && tokens[ti] > 65) continue;
            test_case c = {pats[pi][0], pats[pi][1], 40, 96, tokens[ti], 0, (int)ti % 2,
                           (int)(ti / 2) % 2};
            run_case(&c);
        }
    /* AVX-512 panel kernel with the layer's u32 positions forced on at any token count (the
     * default uses them from NMF_SPMM_WIDE_MIN_TOKENS, as in every case above), then off (as
     * when they cannot be allocated): blocks of one panel (the default is 2 MiB of weights,
     * more than any shape here) and the default, ragged token counts around the token blocks
     * (12 = 8 + 4, 2, 1), panels below/at/above 16 rows, padded last groups */
    static const size_t wide_tokens[] = {2, 3, 11, 13, 25, 50, 67};
    for (int mode = NMF_SPMM_WIDE_ON; mode <= NMF_SPMM_WIDE_OFF; mode++) {
        nmf_spmm_wide_positions = (nmf_spmm_wide_mode)mode;
        nmf_spmm_tv = NMF_SPMM_TV_OFF; /* the panel kernel, also at 2:4 / 4:8 */
        for (int blk = 0; blk < 2; blk++) {
            nmf_spmm_avx512_set_panel_block(blk ? 0 : 1);
            for (size_t pi = 0; pi < 7; pi++) {
                const size_t Tw = wide_tokens[(pi + (size_t)blk * 3) % 7];
                test_case c = {pats[pi][0], pats[pi][1], blk ? 16 : 50, 128, Tw, 0, 1, (int)pi % 2};
                run_case(&c);
                test_case d = {pats[pi][0], pats[pi][1], blk ? 15 : 33, 100, san ? 25 : 67 - Tw % 5, 1,
                               (int)pi % 2, 1};
                run_case(&d);
            }
        }
        nmf_spmm_avx512_set_panel_block(0);
        nmf_spmm_tv = NMF_SPMM_TV_AUTO;
    }
    nmf_spmm_wide_positions = NMF_SPMM_WIDE_AUTO;
    /* random N:M, 1 <= N < M <= 32 */
    for (int r = 0; r < (san ? 4 : 12); r++) {
        int m = 2 + (int)(test_rand_u64(&rng) % 31), n = 1 + (int)(test_rand_u64(&rng) % (m - 1));
        size_t groups = 1 + test_rand_u64(&rng) % 9, out = 1 + test_rand_u64(&rng) % 40;
        size_t T = 1 + test_rand_u64(&rng) % 20;
        int pad = (int)(test_rand_u64(&rng) % 2);
        size_t in = groups * (size_t)m - (pad ? test_rand_u64(&rng) % (size_t)m : 0);
        if (in == groups * (size_t)m) pad = 0;
        test_case c = {n, m, out, in, T, pad, r % 2, (r / 2) % 2};
        run_case(&c);
    }
    return test_finish("test_spmm");
}
