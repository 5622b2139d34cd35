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
    const nmf_spmm_tuning *tune; /* set on every ISA's layer (NULL: the default plan) */
} test_case;

/* An ISA's token-vectorised kernel on layouts other than the plan's: every block height R
 * with token tiles below, at and above the tested token counts (TOK = 8 .. 128), input blocks
 * of one group and of the whole row, chunks of one panel and the largest; output panels in two
 * calls ([1, end) then [0, 1)), xT transposed in two calls (token vectors split in halves). */
static void check_tv_shapes(const nmf_spmm_tv_kernels *tv, const nmf_spmm_weights *pw,
                            const float *x, const float *b, size_t T, nmf_activation act,
                            const float *yref, const float *scale, const char *label) {
    static const size_t shapes_avx2[][2] = {{1, 8}, {1, 64}, {2, 16}, {2, 48}, {4, 24}, {4, 8}};
    static const size_t shapes_avx512[][2] = {{1, 16}, {1, 128}, {2, 64}, {2, 128},
                                              {4, 112}, {4, 32}};
    const int wide = tv->lanes == 16;
    const size_t(*shapes)[2] = wide ? shapes_avx512 : shapes_avx2;
    const size_t count = wide ? sizeof shapes_avx512 / sizeof shapes_avx512[0]
                              : sizeof shapes_avx2 / sizeof shapes_avx2[0];
    const size_t out = pw->out, in = pw->in;
    float *y = alloc_floats(T * out);
    for (size_t si = 0; si < count; si++) {
        const size_t R = shapes[si][0], tok = shapes[si][1];
        CHECK(tv->supports(R, tok));
        for (int kb = 0; kb < 2; kb++) {
            nmf_spmm_weights w = *pw;
            void *storage = NULL;
            CHECK_OK(nmf_spmm_tv_layout(&w, R, tok, kb ? (size_t)pw->n : 0, &storage));
            const size_t floats = nmf_spmm_tv_xt_floats(in, T, tok);
            float *xT = nmf_alloc(floats, sizeof(float));
            CHECK(floats > 0 && xT != NULL);
            if (storage && xT) {
                const size_t vecs = (T + tv->lanes - 1) / tv->lanes; /* two calls, later first */
                tv->transpose(xT, x, in, in, T, tok, vecs / 2, vecs);
                tv->transpose(xT, x, in, in, T, tok, 0, vecs / 2);
                const size_t chunk = kb ? NMF_SPMM_ROWS : 1024;
                float *yT = nmf_alloc(nmf_spmm_tv_yt_floats(chunk, tok), sizeof(float));
                for (size_t i = 0; i < T * out; i++) y[i] = NAN;
                if (w.panels > 1) tv->forward_xt(y, xT, &w, b, T, act, 1, w.panels, chunk, yT);
                tv->forward_xt(y, xT, &w, b, T, act, 0, 1, chunk, yT);
                nmf_free(yT);
                CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "tv shapes"),
                          "%s %s R=%zu TOK=%zu kblock=%s chunk=%zu", label, tv->name, R, tok,
                          kb ? "n" : "K", chunk);
            }
            nmf_free(xT);
            nmf_free(storage);
        }
    }
    nmf_free(y);
}

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
        const nmf_spmm_tuning tune = c->tune ? *c->tune : nmf_spmm_tuning_default();
        if (c->tune) CHECK_OK(nmf_linear_set_tuning(lin, c->tune));
        const char *isa_name = nmf_isa_name((nmf_isa)isa);
        CHECK(nmf_linear_out(lin) == out && nmf_linear_in(lin) == in);
        CHECK(nmf_linear_pattern(lin).n == c->n && nmf_linear_pattern(lin).m == c->m);
        CHECK(!strcmp(nmf_linear_kernel_name(lin, 1), isa_name)); /* 1 token: the GEMV */
        for (size_t i = 0; i < T * out; i++) y[i] = NAN;
        CHECK_OK(nmf_linear_forward(y, x, lin, b, T, act));
        CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "forward"), "%s isa=%s kernel=%s",
                  label, isa_name, nmf_linear_kernel_name(lin, T));
        const nmf_spmm_weights *pw = nmf_linear_spmm_weights(lin);
        CHECK(pw != NULL);
        if (!pw) { nmf_linear_free(lin); continue; }
        /* the AVX-512 panel kernel's u32 positions exist exactly when the plan may use them
         * (built with the plan), and equal the u8 ones */
        {
            const int want = isa == NMF_ISA_AVX512 && tune.wide != NMF_SPMM_OFF &&
                             tune.tv != NMF_SPMM_ON;
            CHECK_MSG((pw->idx32 != NULL) == want, "%s: idx32 %s", label,
                      want ? "missing" : "built without use");
            int same = 1;
            for (size_t s = 0; pw->idx32 && s < pw->panels * pw->groups * (size_t)c->n * NMF_SPMM_ROWS; s++)
                same &= pw->idx32[s] == pw->idx[s];
            CHECK_MSG(same, "%s: idx32 differs from idx", label);
        }
        /* the panel kernels' strided entry: x rows ldx = in + 40 apart, with 40 readable floats
         * of slack that hold garbage (NaN), which no kept position may ever select; u8 and
         * (where built) u32 positions */
        {
            const size_t ldx = in + 40;
            float *xs = alloc_floats(T * ldx);
            for (size_t t = 0; t < T; t++)
                for (size_t i = 0; i < ldx; i++) xs[t * ldx + i] = i < in ? x[t * in + i] : NAN;
            for (int wide = 0; wide <= (pw->idx32 != NULL); wide++) {
                /* 16-token blocks whatever the plan's rule (through the layer above it ran
                 * the rule's): n = 1 has no 16-token tile and runs them as 12 + 4 */
                const nmf_spmm_params prm = {.wide = wide, .panel_block = tune.panel_block,
                                             .token_block = 16};
                for (size_t i = 0; i < T * out; i++) y[i] = NAN;
                nmf_spmm_kernels_for((nmf_isa)isa)->forward(y, xs, ldx, 40, pw, b, T, act, 0,
                                                            pw->panels, &prm);
                CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "strided forward"),
                          "%s isa=%s wide=%d", label, isa_name, wide);
            }
            nmf_free(xs);
        }
        if (isa >= NMF_ISA_AVX2 && !c->tune) {
            /* the token-vectorised kernel, whatever the plan's rule would pick: through the
             * API (forced on the layer), one thread, two sharing one transposed x (split by
             * panels) and two with one each (split by tokens) */
            nmf_spmm_tuning on = nmf_spmm_tuning_default();
            on.tv = NMF_SPMM_ON;
            CHECK_OK(nmf_linear_set_tuning(lin, &on));
            char tv_name[32];
            snprintf(tv_name, sizeof tv_name, "%s-tv", isa_name);
            CHECK(!strcmp(nmf_linear_kernel_name(lin, 2), tv_name));
            CHECK(!strcmp(nmf_linear_kernel_name(lin, 1), isa_name)); /* 1 token: GEMV */
            const int threads = nmf_get_threads();
            for (int nt = 1; nt <= 3; nt++) {
                nmf_set_threads(nt < 2 ? 1 : 2);
                on.tv_split = nt == 2 ? NMF_SPMM_OFF : NMF_SPMM_ON;
                CHECK_OK(nmf_linear_set_tuning(lin, &on));
                for (size_t i = 0; i < T * out; i++) y[i] = NAN;
                CHECK_OK(nmf_linear_forward(y, x, lin, b, T, act));
                CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "tv forward"),
                          "%s isa=%s threads=%d split=%d", label, isa_name, nt < 2 ? 1 : 2,
                          (int)on.tv_split);
            }
            nmf_set_threads(threads);
            const nmf_spmm_weights *tw = nmf_linear_spmm_weights(lin);
            CHECK(tw != NULL && tw->tv_pairs != NULL);
            if (tw && tw->tv_pairs)
                check_tv_shapes(nmf_spmm_kernels_for((nmf_isa)isa)->tv, tw, x, b, T, act, yref,
                                scale, label);
        }
        {
            /* two threads on the panel kernels, splitting panels and (where there are enough
             * tokens) splitting tokens */
            const int threads = nmf_get_threads();
            nmf_spmm_tuning off = tune;
            off.tv = NMF_SPMM_OFF;
            nmf_set_threads(2);
            for (int split = 0; split < 2; split++) {
                off.token_split_bytes = split ? SIZE_MAX : 0;
                CHECK_OK(nmf_linear_set_tuning(lin, &off));
                CHECK(!strcmp(nmf_linear_kernel_name(lin, T), isa_name));
                for (size_t i = 0; i < T * out; i++) y[i] = NAN;
                CHECK_OK(nmf_linear_forward(y, x, lin, b, T, act));
                CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "2-thread forward"),
                          "%s isa=%s split_tokens=%d", label, isa_name, split);
            }
            nmf_set_threads(threads);
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

/* The tv kernel's shape forced through the layer's tuning (rows x tokens, input block, chunk:
 * each below, at and above the plan's own), the product against the reference (with a bias and
 * GELU, 50 tokens: a ragged tile of every TOK); an unsupported shape is refused and leaves the
 * plan as it was. */
static void check_tv_tuning(nmf_linear *lin, const nmf_nm_matrix *a, nmf_spmm_tuning tune,
                            nmf_isa isa) {
    static const size_t shapes_avx2[][4] = {{1, 64, 16, 16}, {4, 24, 0, 0}, {2, 48, 1024, 48},
                                            {1, 8, 8, 1000}, {2, 16, 200, 64}};
    static const size_t shapes_avx512[][4] = {{1, 128, 16, 16}, {4, 48, 0, 0},
                                              {2, 64, 1024, 48}, {1, 16, 8, 1000},
                                              {2, 32, 200, 64}};
    static const size_t bad_avx2[][2] = {{3, 48}, {2, 56}, {1, 12}, {4, 32}, {0, 48}, {2, 0}};
    static const size_t bad_avx512[][2] = {{3, 48}, {2, 56}, {1, 8}, {4, 128}, {0, 48}, {2, 0}};
    const int wide = isa == NMF_ISA_AVX512;
    const size_t(*shapes)[4] = wide ? shapes_avx512 : shapes_avx2;
    const size_t(*bad)[2] = wide ? bad_avx512 : bad_avx2;
    const size_t T = 50, out = a->rows, in = a->cols;
    float *x = alloc_floats(T * in), *y = alloc_floats(T * out), *yref = alloc_floats(T * out);
    float *b = alloc_floats(out), *scale = alloc_floats(T * out), *wu = alloc_floats(out * in);
    for (size_t i = 0; i < T * in; i++) x[i] = test_rand_float(&rng);
    for (size_t i = 0; i < out; i++) b[i] = test_rand_float(&rng);
    CHECK_OK(nmf_nm_unpack(wu, a));
    nmf_spmm_ref_forward(yref, x, a, b, T, NMF_ACT_GELU);
    for (size_t t = 0; t < T; t++)
        for (size_t o = 0; o < out; o++) {
            double s = fabs(b[o]);
            for (size_t i = 0; i < in; i++) s += fabs(x[t * in + i] * wu[o * in + i]);
            scale[t * out + o] = (float)s;
        }
    tune.tv = NMF_SPMM_ON;
    for (size_t si = 0; si < 5; si++) {
        tune.tv_rows = shapes[si][0];
        tune.tv_tokens = shapes[si][1];
        tune.tv_in_block = shapes[si][2];
        tune.tv_chunk = shapes[si][3];
        CHECK_OK(nmf_linear_set_tuning(lin, &tune));
        const nmf_spmm_weights *w = nmf_linear_spmm_weights(lin);
        CHECK(w->tv_rows == shapes[si][0] && w->tv_tokens == shapes[si][1]);
        for (size_t i = 0; i < T * out; i++) y[i] = NAN;
        CHECK_OK(nmf_linear_forward(y, x, lin, b, T, NMF_ACT_GELU));
        CHECK_MSG(close_all(y, yref, scale, T * out, 1e-5, "tv tuned shape"),
                  "%s R=%zu TOK=%zu in_block=%zu chunk=%zu", nmf_isa_name(isa), shapes[si][0],
                  shapes[si][1],
                  shapes[si][2], shapes[si][3]);
    }
    for (size_t i = 0; i < 6; i++) {
        nmf_spmm_tuning t = tune;
        t.tv_rows = bad[i][0];
        t.tv_tokens = bad[i][1];
        CHECK_STATUS(nmf_linear_set_tuning(lin, &t), NMF_ERR_INVALID_ARG);
        CHECK(nmf_linear_spmm_weights(lin)->tv_rows == 2); /* the last good plan */
    }
    nmf_free(x);
    nmf_free(y);
    nmf_free(yref);
    nmf_free(b);
    nmf_free(scale);
    nmf_free(wu);
}

/* The plan: what each token count runs (the names are what the layer runs, see the forward
 * checks in run_case), kernels forced through the layer, bad tuning rejected. */
static void test_plan(void) {
    nmf_nm_matrix a, small;
    static float w[128 * 128];
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) w[i] = test_rand_float(&rng);
    CHECK_OK(nmf_nm_pack(&a, w, 128, 128, (nmf_pattern){2, 8}, 0));
    CHECK_OK(nmf_nm_pack(&small, w, 48, 64, (nmf_pattern){2, 8}, 0)); /* < 128 x 128 weights */
    nmf_spmm_tuning tune = nmf_spmm_tuning_default();
    tune.tv = NMF_SPMM_AUTO; /* whatever NMF_SPMM says */
    for (int isa = 0; isa <= (int)nmf_cpu_best_isa(); isa++) {
        nmf_set_isa((nmf_isa)isa);
        nmf_linear *lin = NULL;
        CHECK_OK(nmf_linear_create_nm(&lin, &a));
        if (!lin) continue;
        CHECK_OK(nmf_linear_set_tuning(lin, &tune));
        const char *name = nmf_isa_name((nmf_isa)isa);
        CHECK(!strcmp(nmf_linear_kernel_name(lin, 1), name));
        if (isa == NMF_ISA_AVX2) { /* tv from 8 tokens at every pattern, layers of 128x128 up */
            CHECK(!strcmp(nmf_linear_kernel_name(lin, 7), "avx2"));
            CHECK(!strcmp(nmf_linear_kernel_name(lin, 8), "avx2-tv"));
            CHECK(!strcmp(nmf_linear_kernel_name(lin, 512), "avx2-tv"));
            nmf_linear *sl = NULL; /* a small layer keeps the panel kernel and builds no tv layout */
            CHECK_OK(nmf_linear_create_nm(&sl, &small));
            if (sl) {
                CHECK_OK(nmf_linear_set_tuning(sl, &tune));
                CHECK(!strcmp(nmf_linear_kernel_name(sl, 512), "avx2"));
                CHECK(nmf_linear_spmm_weights(sl)->tv_pairs == NULL);
            }
            nmf_linear_free(sl);
        }
        if (isa == NMF_ISA_AVX512) { /* 2:8 (density 1/4): tv from 48 tokens */
            CHECK(!strcmp(nmf_linear_kernel_name(lin, 47), "avx512"));
            CHECK(!strcmp(nmf_linear_kernel_name(lin, 48), "avx512-tv"));
            CHECK(!strcmp(nmf_linear_kernel_name(lin, 512), "avx512-tv"));
            nmf_nm_matrix sparse; /* 1:8 below 768 x 768: the panel kernel at every count */
            CHECK_OK(nmf_nm_pack(&sparse, w, 128, 128, (nmf_pattern){1, 8}, 0));
            nmf_linear *sl = NULL;
            CHECK_OK(nmf_linear_create_nm(&sl, &sparse));
            if (sl) {
                CHECK_OK(nmf_linear_set_tuning(sl, &tune));
                CHECK(!strcmp(nmf_linear_kernel_name(sl, 512), "avx512"));
                CHECK(nmf_linear_spmm_weights(sl)->tv_pairs == NULL);
            }
            nmf_linear_free(sl);
            nmf_nm_free(&sparse);
        }
        if (isa >= NMF_ISA_AVX2) check_tv_tuning(lin, &a, tune, (nmf_isa)isa);
        if (isa == NMF_ISA_SCALAR) CHECK(!strcmp(nmf_linear_kernel_name(lin, 128), "scalar"));
        nmf_spmm_tuning off = tune;
        off.tv = NMF_SPMM_OFF;
        CHECK_OK(nmf_linear_set_tuning(lin, &off));
        CHECK(!strcmp(nmf_linear_kernel_name(lin, 128), name));
        CHECK(nmf_linear_spmm_weights(lin)->tv_pairs == NULL); /* no layout it will not use */
        nmf_spmm_tuning bad = tune;
        bad.tv = (nmf_spmm_choice)7;
        CHECK_STATUS(nmf_linear_set_tuning(lin, &bad), NMF_ERR_INVALID_ARG);
        CHECK_STATUS(nmf_linear_set_tuning(lin, NULL), NMF_ERR_INVALID_ARG);
        nmf_linear_free(lin);
    }
    nmf_set_isa(nmf_cpu_best_isa());
    nmf_linear *dl = NULL;
    CHECK_OK(nmf_linear_create_dense(&dl, w, 48, 64));
    CHECK_STATUS(nmf_linear_set_tuning(dl, &tune), NMF_ERR_INVALID_ARG);
    nmf_linear_free(dl);
    nmf_nm_free(&small);
    nmf_nm_free(&a);
}

int main(void) {
    const int san = getenv("NMF_SANITIZED") != NULL;
    static const int pats[][2] = {{2, 4}, {1, 4}, {4, 8}, {2, 8}, {1, 8}, {2, 16}, {1, 16},
                                  {3, 7}, {9, 12}, {17, 32}, {1, 32}, {1, 2}, {31, 32}, {5, 24},
                                  {3, 4}, {5, 16}, {3, 32}};
    static const size_t tokens[] = {1, 3, 11, 12, 13, 17, 24, 25, 40, 63, 65, 129};
    int cnum = 0;
    for (int isa = (int)nmf_cpu_best_isa() + 1; isa < NMF_ISA_COUNT; isa++)
        printf("test_spmm: skipping %s kernels: this CPU lacks the ISA\n", nmf_isa_name((nmf_isa)isa));
    test_bad_input();
    test_plan();
    for (size_t pi = 0; pi < sizeof pats / sizeof pats[0]; pi++) {
        const int n = pats[pi][0], m = pats[pi][1];
        const size_t M = (size_t)m;
        /* shapes: (out, in, tokens, pad) around the panel (16), token (8/4) and chunk tiles */
        test_case cases[] = {
            {n, m, 1, M, 1, 0, 0, 0, NULL},
            {n, m, 16, 5 * M, 8, 0, 0, 0, NULL},
            {n, m, 17, 7 * M, 9, 0, 0, 0, NULL},
            {n, m, 33, (200 / M + 1) * M, 17, 0, 0, 0, NULL}, /* in not a multiple of 64 */
            {n, m, 20, 3 * M + 1, 5, 1, 0, 0, NULL},          /* padded last group */
            {n, m, 15, (1100 / M + 1) * M, san ? 3 : 12, 0, 0, 0, NULL}, /* several chunks */
            {n, m, 31, 2 * M + (M > 1 ? M - 1 : 0), 4, 1, 0, 0, NULL},
            /* token-vectorised kernel: row chunk of 64 (63/64/65/129 rows), token tile 64
             * (63/64/65), input block ~256 columns (crossed by 300) */
            {n, m, 65, (300 / M + 1) * M, san ? 17 : 65, 0, 0, 0, NULL},
            {n, m, 129, 4 * M + 1, 64, 1, 0, 0, NULL},
            {n, m, 63, 2 * M, san ? 17 : 63, 0, 0, 0, NULL},
            {n, m, 64, 3 * M, 16, 0, 0, 0, NULL},
            /* AVX2 token-vectorised plan: token tiles of 48 (47/48/49/97 tokens), row blocks
             * of 2, input blocks of 128 columns (crossed by 300) */
            {n, m, 3, (300 / M + 1) * M, san ? 17 : 47, 0, 0, 0, NULL},
            {n, m, 34, 2 * M + 1, 48, 1, 0, 0, NULL},
            {n, m, 18, 5 * M, san ? 25 : 49, 0, 0, 0, NULL},
            {n, m, 7, 3 * M, san ? 49 : 97, 0, 0, 0, NULL},
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
                           (int)(ti / 2) % 2, NULL};
            run_case(&c);
        }
    /* AVX-512 panel kernel with the layer's u32 positions forced on at any token count (the
     * default uses them from NMF_SPMM_WIDE_MIN_TOKENS, as in every case above), then off (as
     * when they cannot be allocated): blocks of one panel (the default is 2 MiB of weights,
     * more than any shape here) and the default, ragged token counts around the token blocks
     * (12 = 8 + 4, 2, 1), panels below/at/above 16 rows, padded last groups */
    static const size_t wide_tokens[] = {2, 3, 11, 13, 25, 50, 67};
    for (int mode = NMF_SPMM_ON; mode <= NMF_SPMM_OFF; mode++) {
        for (int blk = 0; blk < 2; blk++) {
            nmf_spmm_tuning tune = nmf_spmm_tuning_default();
            tune.wide = (nmf_spmm_choice)mode;
            tune.tv = NMF_SPMM_OFF; /* the panel kernel, also at 2:4 / 4:8 */
            tune.panel_block = blk ? 0 : 1;
            for (size_t pi = 0; pi < 7; pi++) {
                const size_t Tw = wide_tokens[(pi + (size_t)blk * 3) % 7];
                test_case c = {pats[pi][0], pats[pi][1], blk ? 16 : 50, 128, Tw, 0, 1, (int)pi % 2,
                               &tune};
                run_case(&c);
                test_case d = {pats[pi][0], pats[pi][1], blk ? 15 : 33, 100, san ? 25 : 67 - Tw % 5, 1,
                               (int)pi % 2, 1, &tune};
                run_case(&d);
            }
        }
    }
    /* random N:M, 1 <= N < M <= 32 */
    for (int r = 0; r < (san ? 4 : 12); r++) {
        int m = 2 + (int)(test_rand_u64(&rng) % 31), n = 1 + (int)(test_rand_u64(&rng) % (m - 1));
        size_t groups = 1 + test_rand_u64(&rng) % 9, out = 1 + test_rand_u64(&rng) % 40;
        size_t T = 1 + test_rand_u64(&rng) % 20;
        int pad = (int)(test_rand_u64(&rng) % 2);
        size_t in = groups * (size_t)m - (pad ? test_rand_u64(&rng) % (size_t)m : 0);
        if (in == groups * (size_t)m) pad = 0;
        test_case c = {n, m, out, in, T, pad, r % 2, (r / 2) % 2, NULL};
        run_case(&c);
    }
    return test_finish("test_spmm");
}
