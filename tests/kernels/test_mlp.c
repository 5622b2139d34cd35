/* nmf_linear_forward_mlp: y = down(act(up(x) + b1)) + b2 equals, bit for bit, the two products
 * through nmf_linear_forward, at every ISA, 1 and 2 threads, token counts below, at and above
 * the tv kernel's token tiles (ragged), hidden widths off the 16-row alignment (the padding rows
 * of the chained xT), GELU and none, with and without biases; the hidden activations stay in the
 * tv layout (hidden untouched) exactly where both layers run the tv kernel on the same tiles,
 * and are written otherwise (tv tiles that differ, the panel kernel, one token); DeiT's MLP at
 * 197 tokens chains under the default plans of a SIMD ISA; int8 layers give the two products'
 * bits too, also over so many tokens that they pass through hidden in tiles (hidden is then
 * scratch); bad arguments are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/spmm.h"
#include "nmformer/kernels.h"
#include "nmformer/tensor.h"
#include "test.h"

static unsigned long long rng = 0x9E3779B97F4A7C15ull;

static int all_nan(const float *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isnan(a[i])) return 0;
    return 1;
}

static nmf_linear *make_layer(size_t out, size_t in, nmf_pattern p) {
    float *w = malloc(out * in * sizeof *w);
    for (size_t i = 0; i < out * in; i++) w[i] = test_rand_float(&rng);
    nmf_nm_matrix a;
    nmf_linear *lin = NULL;
    CHECK_OK(nmf_nm_pack(&a, w, out, in, p, 1));
    CHECK_OK(nmf_linear_create_nm(&lin, &a));
    nmf_nm_free(&a);
    free(w);
    return lin;
}

/* tv: the tuning of both layers (NMF_SPMM_ON / OFF / AUTO); tok_down: a tv tile width forced
 * on down alone (0: its plan's), to make the tiles differ; split: both layers' tv_split (how
 * two threads share the work: tokens ON, panels OFF, AUTO the rule). */
typedef struct {
    size_t D, H, T;
    nmf_pattern p;
    int gelu, bias, threads;
    nmf_spmm_choice tv;
    size_t tok_down;
    nmf_spmm_choice split;
    int int8; /* both layers in int8 (their own kernels: never chained) */
} mlp_case;

static void run_case(const mlp_case *c, nmf_isa isa) {
    char label[160];
    snprintf(label, sizeof label,
             "%s D=%zu H=%zu T=%zu %d:%d%s%s threads=%d tv=%d tok_down=%zu split=%d%s",
             nmf_isa_name(isa), c->D, c->H, c->T, c->p.n, c->p.m, c->gelu ? " gelu" : "",
             c->bias ? " bias" : "", c->threads, (int)c->tv, c->tok_down, (int)c->split,
             c->int8 ? " int8" : "");
    nmf_set_isa(isa);
    nmf_set_threads(c->threads);
    nmf_linear *up = make_layer(c->H, c->D, c->p), *down = make_layer(c->D, c->H, c->p);
    if (!up || !down) goto done;
    nmf_spmm_tuning tu = nmf_spmm_tuning_default(), td;
    tu.tv = c->tv;
    tu.tv_split = c->split;
    td = tu;
    td.tv_tokens = c->tok_down;
    if (c->tok_down) td.tv_rows = 2; /* 2 x 16 (AVX2), 2 x 32 (AVX-512): supported shapes */
    CHECK_OK(nmf_linear_set_tuning(up, &tu));
    CHECK_OK(nmf_linear_set_tuning(down, &td));
    if (c->int8) {
        CHECK_OK(nmf_linear_set_precision(up, NMF_PREC_INT8));
        CHECK_OK(nmf_linear_set_precision(down, NMF_PREC_INT8));
    }
    const size_t T = c->T, D = c->D, H = c->H;
    float *x = malloc(T * D * sizeof *x), *b1 = malloc(H * sizeof *b1), *b2 = malloc(D * sizeof *b2);
    float *href = malloc(T * H * sizeof *href), *yref = malloc(T * D * sizeof *yref);
    float *hid = malloc(T * H * sizeof *hid), *y = malloc(T * D * sizeof *y);
    for (size_t i = 0; i < T * D; i++) x[i] = 2.0f * test_rand_float(&rng);
    for (size_t i = 0; i < H; i++) b1[i] = test_rand_float(&rng);
    for (size_t i = 0; i < D; i++) b2[i] = test_rand_float(&rng);
    const nmf_activation act = c->gelu ? NMF_ACT_GELU : NMF_ACT_NONE;
    const float *bu = c->bias ? b1 : NULL, *bd = c->bias ? b2 : NULL;
    CHECK_OK(nmf_linear_forward(href, x, up, bu, T, act));
    CHECK_OK(nmf_linear_forward(yref, href, down, bd, T, NMF_ACT_NONE));
    for (size_t i = 0; i < T * H; i++) hid[i] = NAN;
    for (size_t i = 0; i < T * D; i++) y[i] = NAN;
    CHECK_OK(nmf_linear_forward_mlp(y, hid, x, up, bu, act, down, bd, T));
    CHECK_MSG(test_same_bits(y, yref, T * D, label), "%s: mlp vs two products", label);
    /* chained exactly where both run the tv kernel on the same tiles; else hidden holds the
     * activations. Forced on, the tv kernel runs from 2 tokens on a SIMD ISA. */
    const char *ku = nmf_linear_kernel_name(up, T), *kd = nmf_linear_kernel_name(down, T);
    const int tv_both = strstr(ku, "-tv") && strstr(kd, "-tv");
    const int chained = tv_both && nmf_linear_spmm_weights(down)->tv_tokens ==
                                       nmf_linear_spmm_weights(up)->tv_tokens;
    if (c->tv == NMF_SPMM_ON)
        CHECK_MSG(tv_both == (T >= 2 && isa != NMF_ISA_SCALAR), "%s: kernels %s / %s", label, ku, kd);
    if (c->tv == NMF_SPMM_OFF) CHECK_MSG(!tv_both, "%s: kernels %s / %s", label, ku, kd);
    if (c->tok_down) CHECK_MSG(!chained, "%s: tiles %zu / %zu", label,
                               nmf_linear_spmm_weights(up)->tv_tokens, c->tok_down);
    if (chained)
        CHECK_MSG(all_nan(hid, T * H), "%s: chained, yet hidden was written", label);
    else if (!c->int8 || T * H * sizeof(float) <= ((size_t)2 << 20)) /* int8 beyond: tiles */
        CHECK_MSG(test_same_bits(hid, href, T * H, label), "%s: hidden", label);
    free(x), free(b1), free(b2), free(href), free(yref), free(hid), free(y);
done:
    nmf_linear_free(up);
    nmf_linear_free(down);
}

/* DeiT-small's MLP (384 -> 1536 -> 384) at 197 tokens, 2:8, default plans: both layers on the
 * tv kernel of a SIMD ISA, so chained (run_case), and equal to the two products. */
static void check_deit(nmf_isa isa) {
    const mlp_case c = {384, 1536, 197, {2, 8}, 1, 1, 2, NMF_SPMM_AUTO, 0, NMF_SPMM_AUTO, 0};
    nmf_set_isa(isa);
    nmf_linear *up = make_layer(c.H, c.D, c.p), *down = make_layer(c.D, c.H, c.p);
    if (up && down)
        CHECK_MSG((strstr(nmf_linear_kernel_name(up, c.T), "-tv") &&
                   strstr(nmf_linear_kernel_name(down, c.T), "-tv")) == (isa != NMF_ISA_SCALAR),
                  "%s: DeiT's MLP on %s / %s", nmf_isa_name(isa), nmf_linear_kernel_name(up, c.T),
                  nmf_linear_kernel_name(down, c.T));
    nmf_linear_free(up);
    nmf_linear_free(down);
    run_case(&c, isa);
}

int main(void) {
    const nmf_pattern pats[] = {{2, 4}, {1, 8}, {2, 8}};
    const size_t toks[] = {1, 2, 15, 16, 17, 47, 50, 130};
    const size_t hs[] = {100, 64, 200};
    int k = 0;
    for (int isa = 0; isa <= (int)nmf_cpu_best_isa(); isa++)
        for (size_t ti = 0; ti < sizeof toks / sizeof *toks; ti++)
            for (size_t hi = 0; hi < sizeof hs / sizeof *hs; hi++, k++) {
                mlp_case c = {40 + 24 * (k % 2), hs[hi], toks[ti], pats[k % 3], k % 2,
                              (k / 2) % 2, 1 + (k / 3) % 2, NMF_SPMM_ON, 0, NMF_SPMM_AUTO, 0};
                run_case(&c, (nmf_isa)isa);
                if (c.threads == 2) { /* two threads on tokens, then on panels */
                    c.split = NMF_SPMM_ON;
                    run_case(&c, (nmf_isa)isa);
                    c.split = NMF_SPMM_OFF;
                    run_case(&c, (nmf_isa)isa);
                }
            }
    for (int isa = 1; isa <= (int)nmf_cpu_best_isa(); isa++) {
        /* the panel kernel (tv off), and tv tiles that differ: apart, through hidden */
        const mlp_case off = {64, 100, 50, {2, 8}, 1, 1, 2, NMF_SPMM_OFF, 0, NMF_SPMM_AUTO, 0};
        run_case(&off, (nmf_isa)isa);
        const mlp_case mismatch = {64, 100, 50, {2, 8}, 1, 1, 2, NMF_SPMM_ON,
                                   isa == NMF_ISA_AVX512 ? 32 : 16, NMF_SPMM_ON, 0};
        run_case(&mismatch, (nmf_isa)isa);
    }
    for (int isa = 1; isa <= (int)nmf_cpu_best_isa(); isa++) {
        /* three threads with their own transposed x each (test_team_limit.sh runs this under
         * a team limit of two: the shares planned for three must not be used then) */
        const mlp_case three = {64, 100, 130, {2, 8}, 1, 1, 3, NMF_SPMM_ON, 0, NMF_SPMM_ON, 0};
        run_case(&three, (nmf_isa)isa);
    }
    for (int isa = 0; isa <= (int)nmf_cpu_best_isa(); isa++)
        for (int threads = 1; threads <= 2; threads++) {
            /* int8: apart, through hidden; 600 x 1024 hidden floats (2.4 MB) in tiles of 256
             * tokens (1 MiB), the last one ragged */
            const mlp_case small = {64, 100, 50, {1, 8}, 1, 1, threads, NMF_SPMM_AUTO, 0, NMF_SPMM_AUTO, 1};
            run_case(&small, (nmf_isa)isa);
            const mlp_case tiled = {64, 1024, 600, {2, 8}, 1, 1, threads, NMF_SPMM_AUTO, 0, NMF_SPMM_AUTO, 1};
            run_case(&tiled, (nmf_isa)isa);
        }
    for (int isa = 0; isa <= (int)nmf_cpu_best_isa(); isa++) check_deit((nmf_isa)isa);

    /* refusals */
    nmf_set_isa(nmf_cpu_best_isa());
    nmf_linear *up = make_layer(32, 16, (nmf_pattern){2, 4});
    nmf_linear *down = make_layer(16, 32, (nmf_pattern){2, 4}), *wrong = make_layer(16, 24, (nmf_pattern){2, 4});
    float x[4 * 16] = {0}, h[4 * 32], y[4 * 16];
    CHECK_OK(nmf_linear_forward_mlp(y, h, x, up, NULL, NMF_ACT_GELU, down, NULL, 4));
    CHECK_STATUS(nmf_linear_forward_mlp(y, h, x, up, NULL, NMF_ACT_GELU, wrong, NULL, 4), NMF_ERR_SHAPE);
    CHECK_STATUS(nmf_linear_forward_mlp(y, NULL, x, up, NULL, NMF_ACT_GELU, down, NULL, 4),
                 NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_linear_forward_mlp(y, h, x, NULL, NULL, NMF_ACT_GELU, down, NULL, 4),
                 NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_linear_forward_mlp(y, h, x, up, NULL, (nmf_activation)99, down, NULL, 4),
                 NMF_ERR_INVALID_ARG);
    nmf_linear_free(up);
    nmf_linear_free(down);
    nmf_linear_free(wrong);
    return test_finish("test_mlp");
}
