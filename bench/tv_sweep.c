/* Developer benchmark: the token-vectorised N:M kernel's block shapes against the panel kernel,
 * one layer, one pattern, one token count: how the plan's rules in src/kernels/spmm_plan.c were
 * measured (docs/PERFORMANCE.md). Not a test; built as build/tv_sweep.
 *
 *   tv_sweep OUTxIN TOKENS N:M [RxTOK/INBLOCK[/CHUNK] ...]
 *
 * Without shapes, a default list for the active ISA. Prints, per kernel and shape, the fastest
 * and the median of 21 timed runs of 5 products each (the fastest is steadier on a shared
 * machine), and the useful GFLOP/s of the fastest as a fraction of the measured FMA peak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/spmm.h"
#include "nmformer/core.h"
#include "nmformer/kernels.h"
#include "sweep_runs.h" /* RUNS, sweep_sort, sweep_operands */

/* Times the layer as tuned; prints one row. */
static void row(nmf_linear *lin, const float *x, float *y, size_t T, double useful_flop,
                double peak, const char *label) {
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        const double t0 = nmf_now();
        for (int k = 0; k < 5; k++) (void)nmf_linear_forward(y, x, lin, NULL, T, NMF_ACT_NONE);
        t[r] = (nmf_now() - t0) / 5;
    }
    sweep_sort(t);
    const double gf = useful_flop / t[0] / 1e9;
    printf("%-12s %-20s %10.4f %10.4f %10.1f %7.0f%%\n", nmf_linear_kernel_name(lin, T), label,
           t[0] * 1e3, t[RUNS / 2] * 1e3, gf, 100 * gf / peak);
}

int main(int argc, char **argv) {
    size_t out, in, T;
    int n, m;
    if (argc < 4 || sscanf(argv[1], "%zux%zu", &out, &in) != 2 || sscanf(argv[2], "%zu", &T) != 1 ||
        sscanf(argv[3], "%d:%d", &n, &m) != 2 || !out || !in || !T || n < 1 || m <= n) {
        fprintf(stderr, "usage: tv_sweep OUTxIN TOKENS N:M [RxTOK/INBLOCK[/CHUNK] ...]\n");
        return 2;
    }
    nmf_set_threads(1);
    float *w = nmf_alloc(out * in, sizeof(float)), *x = nmf_alloc(T * in, sizeof(float));
    float *y = nmf_alloc(T * out, sizeof(float));
    if (!w || !x || !y) return 1;
    sweep_operands(w, x, out, in, T);
    nmf_nm_matrix a;
    nmf_linear *lin = NULL;
    if (nmf_nm_pack(&a, w, out, in, (nmf_pattern){n, m}, 1) != NMF_OK ||
        nmf_linear_create_nm(&lin, &a) != NMF_OK) {
        fprintf(stderr, "tv_sweep: %s\n", nmf_last_error());
        return 1;
    }
    const double useful = 2.0 * (double)T * (double)out * (double)((in + m - 1) / m) * n;
    const double peak = nmf_cpu_fma_peak_gflops();
    const int wide = nmf_active_isa() == NMF_ISA_AVX512;
    static const char *avx512_shapes[] = {"1x128/64", "2x64/128", "4x64/128", "2x96/96",
                                          "4x48/192", "4x32/256", "2x128/64", "1x128/128"};
    static const char *avx2_shapes[] = {"2x48/128", "1x64/128", "2x32/128", "4x24/128",
                                        "1x48/128", "2x16/256"};
    const char *const *shapes = wide ? avx512_shapes : avx2_shapes;
    if (argc > 4) shapes = (const char *const *)(argv + 4);
    const int count = argc > 4 ? argc - 4 : wide ? 8 : 6;
    printf("# %zux%zu, %zu tokens, %d:%d, one thread, FMA peak %.1f GFLOP/s; best and median of "
           "%d runs\n", out, in, T, n, m, peak, RUNS);
    printf("%-12s %-20s %10s %10s %10s %8s\n", "kernel", "shape", "best ms", "median ms",
           "GFLOP/s", "% peak");
    nmf_spmm_tuning t = nmf_spmm_tuning_default();
    t.tv = NMF_SPMM_OFF;
    if (nmf_linear_set_tuning(lin, &t) == NMF_OK) row(lin, x, y, T, useful, peak, "panel");
    t.tv = NMF_SPMM_AUTO;
    if (nmf_linear_set_tuning(lin, &t) == NMF_OK) row(lin, x, y, T, useful, peak, "plan");
    for (int i = 0; i < count; i++) {
        size_t R = 0, tok = 0, ib = 0, chunk = 0;
        if (sscanf(shapes[i], "%zux%zu/%zu/%zu", &R, &tok, &ib, &chunk) < 3) {
            fprintf(stderr, "tv_sweep: shape '%s': expected RxTOK/INBLOCK[/CHUNK]\n", shapes[i]);
            return 2;
        }
        t = nmf_spmm_tuning_default();
        t.tv = NMF_SPMM_ON;
        t.tv_rows = R, t.tv_tokens = tok, t.tv_in_block = ib, t.tv_chunk = chunk;
        if (nmf_linear_set_tuning(lin, &t) != NMF_OK) {
            printf("%-12s %-20s (not supported)\n", "-", shapes[i]);
            continue;
        }
        row(lin, x, y, T, useful, peak, shapes[i]);
    }
    nmf_linear_free(lin);
    nmf_nm_free(&a);
    nmf_free(w), nmf_free(x), nmf_free(y);
    return 0;
}
