/* Developer benchmark: the AVX-512 N:M and int8 kernels of this tree against those of an earlier
 * revision, in one process, on the same layer, inputs and scratch, alternating call by call,
 * best of many (on a shared host the same binary varies by 30 % from minute to minute;
 * alternating calls see the same noise). Built by bench/ab_spmm.sh, which compiles the
 * revision's kernel files with their entry points renamed to old_* (nothing here is part of the
 * library).
 *
 *   ab_spmm tv|panel|q8 OUTxIN N:M|dense TOKENS [R TOK INBLOCK]
 *
 * tv: nmf_spmm_forward_tv_xt_avx512 on a transposed x (the product without the x transpose),
 * the layer's plan shape or R x TOK / INBLOCK. panel: nmf_spmm_forward_avx512 with the layer's
 * u32 positions. q8: the int8 kernel (nmf_q8_forward_avx512 on the N:M layout, or with "dense"
 * nmf_q8_forward_dense_avx512 on the dense one) on x quantised once (the product without the
 * quantiser). Prints both times, their ratio (old / new: > 1 is faster now) and whether the
 * outputs have the same bits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops_internal.h" /* nmf_cpu_has_vnni512 */
#include "kernels/spmm.h"
#include "kernels/spmm_q8.h"
#include "nmformer/core.h"
#include "nmformer/kernels.h"
#include "sweep_runs.h" /* sweep_operands */

void old_tv_forward(float *y, const float *xT, const nmf_spmm_weights *w, const float *bias,
                    size_t tokens, nmf_activation act, size_t p0, size_t p1, size_t chunk,
                    float *yT);
void old_panel_forward(float *y, const float *x, size_t ldx, size_t x_slack,
                       const nmf_spmm_weights *w, const float *bias, size_t tokens,
                       nmf_activation act, size_t p0, size_t p1, const nmf_spmm_params *prm);

void old_q8_forward(float *y, const uint8_t *xq, size_t ldq, const float *sx, size_t tokens,
                    const nmf_q8_weights *w, const float *bias, nmf_activation act, size_t rb0,
                    size_t rb1);
void old_q8_forward_dense(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                          size_t tokens, const nmf_q8_weights *w, const float *bias,
                          nmf_activation act, size_t rb0, size_t rb1);

#define CHUNK 512 /* rows per tv chunk (the plan's) */

static int usage(void) {
    fprintf(stderr, "usage: ab_spmm tv|panel|q8 OUTxIN N:M|dense TOKENS [R TOK INBLOCK]\n");
    return 2;
}

/* Times CALL with k = 0 (the revision's kernel) and k = 1 (this tree's), alternating call by
 * call; the fastest of reps each into best[k]. */
#define AB(best, reps, CALL)                                                                    \
    for (int r = 0; r < (reps); r++)                                                            \
        for (int k = 0; k < 2; k++) {                                                           \
            const double t0 = nmf_now();                                                        \
            CALL;                                                                               \
            const double dt = nmf_now() - t0;                                                   \
            if (dt < best[k]) best[k] = dt;                                                     \
        }

static void report(const char *kind, size_t out, size_t in, const char *pattern, size_t T,
                   const char *shape, double useful, const double best[2], const float *y0,
                   const float *y1) {
    printf("%-6s %5zux%-5zu %5s %4zu tokens%s: old %.4f ms (%.1f GF/s), new %.4f ms (%.1f GF/s): "
           "%.3fx, %s\n",
           kind, out, in, pattern, T, shape, best[0] * 1e3, useful / best[0] * 1e-9,
           best[1] * 1e3, useful / best[1] * 1e-9, best[0] / best[1],
           memcmp(y0, y1, T * out * sizeof(float)) ? "OUTPUTS DIFFER" : "same bits");
}

int main(int argc, char **argv) {
    size_t out, in, T;
    int n = 0, m = 0;
    const int dense = argc > 3 && !strcmp(argv[3], "dense");
    if (argc < 5 || (strcmp(argv[1], "tv") && strcmp(argv[1], "panel") && strcmp(argv[1], "q8")) ||
        sscanf(argv[2], "%zux%zu", &out, &in) != 2 ||
        (!dense && (sscanf(argv[3], "%d:%d", &n, &m) != 2 || n < 1 || m <= n)) ||
        (dense && strcmp(argv[1], "q8")) || sscanf(argv[4], "%zu", &T) != 1 || !out || !in || !T)
        return usage();
    const int tv = !strcmp(argv[1], "tv"), q8 = !strcmp(argv[1], "q8");
    if (nmf_active_isa() != NMF_ISA_AVX512) {
        fprintf(stderr, "ab_spmm: needs AVX-512\n");
        return 1;
    }
    nmf_set_threads(1);
    float *w = nmf_alloc(out * in, sizeof(float)), *x = nmf_alloc(T * in + 64, sizeof(float));
    float *y0 = nmf_alloc(T * out, sizeof(float)), *y1 = nmf_alloc(T * out, sizeof(float));
    if (!w || !x || !y0 || !y1) return 1;
    sweep_operands(w, x, out, in, T);
    if (q8) {
        if (!nmf_cpu_has_vnni512()) {
            fprintf(stderr, "ab_spmm: q8 needs AVX-512 VNNI and VBMI\n");
            return 1;
        }
        nmf_q8_weights q;
        void *storage = NULL;
        nmf_nm_matrix a;
        nmf_linear *lin = NULL;
        if (dense ? nmf_q8_build_dense(&q, &storage, w, 0, out, in, NMF_Q8_GEOM_DENSE512) != NMF_OK
                  : nmf_nm_pack(&a, w, out, in, (nmf_pattern){n, m}, 1) != NMF_OK ||
                        nmf_linear_create_nm(&lin, &a) != NMF_OK ||
                        nmf_q8_build_nm(&q, &storage, nmf_linear_spmm_weights(lin),
                                        NMF_Q8_GEOM_AVX512) != NMF_OK) {
            fprintf(stderr, "ab_spmm: %s\n", nmf_last_error());
            return 1;
        }
        const size_t ldq = q.windows * q.g.win;
        uint8_t *xq = nmf_alloc(T * ldq + 64, 1);
        float *sx = nmf_alloc(T, sizeof(float));
        if (!xq || !sx || nmf_q8_quantize_tokens_avx512(xq, ldq, sx, x, in, in, 0, T)) return 1;
        double best[2] = {1e30, 1e30};
        AB(best, T * out * in < ((size_t)1 << 24) ? 3000 : 400,
           (dense ? (k ? nmf_q8_forward_dense_avx512 : old_q8_forward_dense)
                  : (k ? nmf_q8_forward_avx512 : old_q8_forward))(
               k ? y1 : y0, xq, ldq, sx, T, &q, NULL, NMF_ACT_NONE, 0, q.rowblocks));
        const double kept = dense ? (double)in : (double)((in + m - 1) / m) * n;
        report("q8", out, in, argv[3], T, "", 2.0 * (double)T * (double)out * kept, best, y0, y1);
        return 0;
    }
    nmf_nm_matrix a;
    nmf_linear *lin = NULL;
    nmf_spmm_tuning t = nmf_spmm_tuning_default();
    t.tv = tv ? NMF_SPMM_ON : NMF_SPMM_OFF;
    t.wide = NMF_SPMM_ON;
    if (tv && argc > 7) {
        t.tv_rows = (size_t)atoi(argv[5]);
        t.tv_tokens = (size_t)atoi(argv[6]);
        t.tv_in_block = (size_t)atoi(argv[7]);
    }
    if (nmf_nm_pack(&a, w, out, in, (nmf_pattern){n, m}, 1) != NMF_OK ||
        nmf_linear_create_nm(&lin, &a) != NMF_OK || nmf_linear_set_tuning(lin, &t) != NMF_OK) {
        fprintf(stderr, "ab_spmm: %s\n", nmf_last_error());
        return 1;
    }
    const nmf_spmm_weights *pw = nmf_linear_spmm_weights(lin);
    const size_t tok = pw->tv_tokens;
    float *xT = tv ? nmf_alloc(nmf_spmm_tv_xt_floats(in, T, tok), sizeof(float)) : NULL;
    float *yT = tv ? nmf_alloc(nmf_spmm_tv_yt_floats(CHUNK, tok), sizeof(float)) : NULL;
    if (tv && (!xT || !yT || !pw->tv_pairs)) return 1;
    if (tv) nmf_spmm_tv_transpose_avx512(xT, x, in, in, T, tok, 0, (T + 15) / 16);
    const nmf_spmm_params prm = nmf_linear_spmm_step(lin, T).prm; /* the plan's (wide: tuned on) */
    double best[2] = {1e30, 1e30};
    AB(best, T * out * in < ((size_t)1 << 24) ? 3000 : 400,
       if (tv) (k ? nmf_spmm_forward_tv_xt_avx512 : old_tv_forward)(
           k ? y1 : y0, xT, pw, NULL, T, NMF_ACT_NONE, 0, pw->panels, CHUNK, yT);
       else (k ? nmf_spmm_forward_avx512 : old_panel_forward)(
           k ? y1 : y0, x, in, 0, pw, NULL, T, NMF_ACT_NONE, 0, pw->panels, &prm));
    const double useful = 2.0 * (double)T * (double)out * (double)((in + m - 1) / m) * n;
    char shape[32] = "";
    if (tv) snprintf(shape, sizeof shape, " %zux%zu/%zu", pw->tv_rows, tok, pw->tv_kblock * m / n);
    report(argv[1], out, in, argv[3], T, shape, useful, best, y0, y1);
    return 0;
}
