/* Developer benchmark: multi-head attention in f32 (nmf_mhsa_forward) against int8
 * (nmf_mhsa_forward_q8) at one shape, on the active ISA (NMF_ISA) and NMF_THREADS threads:
 * how the int8 attention's figures were measured (docs/PERFORMANCE.md). Not a test; built as
 * build/mhsa_q8.
 *
 *   mhsa_q8 [B T HEADS HEAD_DIM [RUNS [ROUNDS]]]     default: DeiT-small, 1 197 6 64 200 3
 *
 * Per round, f32 then int8, each the fastest of RUNS calls (one warm-up call first; the
 * fastest is steadier on a shared machine), in ms, and their ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nmformer/core.h"
#include "nmformer/ops.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef nmf_status (*mhsa_fn)(float *, const float *, size_t, size_t, size_t, size_t, int,
                              float *, size_t);

/* the fastest of runs calls, in ms */
static double fastest(mhsa_fn f, float *out, const float *qkv, size_t B, size_t T, size_t H,
                      size_t hd, float *work, size_t wf, int runs) {
    double best = 1e30;
    for (int i = 0; i <= runs; i++) {
        const double t0 = now();
        if (f(out, qkv, B, T, H, hd, 0, work, wf) != NMF_OK) {
            fprintf(stderr, "mhsa_q8: %s\n", nmf_last_error());
            exit(1);
        }
        const double t = now() - t0;
        if (i > 0 && t < best) best = t; /* call 0 warms up */
    }
    return best * 1e3;
}

int main(int argc, char **argv) {
    size_t B = 1, T = 197, H = 6, hd = 64;
    int runs = 200, rounds = 3;
    if (argc >= 5) {
        B = strtoul(argv[1], NULL, 10);
        T = strtoul(argv[2], NULL, 10);
        H = strtoul(argv[3], NULL, 10);
        hd = strtoul(argv[4], NULL, 10);
    }
    if (argc >= 6) runs = atoi(argv[5]);
    if (argc >= 7) rounds = atoi(argv[6]);
    if (!B || !T || !H || !hd || runs < 1 || rounds < 1) {
        fprintf(stderr, "usage: mhsa_q8 [B T HEADS HEAD_DIM [RUNS [ROUNDS]]]\n");
        return 2;
    }
    const size_t C = H * hd, wf = nmf_mhsa_work_floats(T, hd);
    float *qkv = malloc(B * T * 3 * C * sizeof(float)), *out = malloc(B * T * C * sizeof(float));
    float *work = nmf_alloc(wf, sizeof(float));
    if (!qkv || !out || !work) return 1;
    unsigned long long s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < B * T * 3 * C; i++) { /* uniform in [-1.5, 1.5) */
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        qkv[i] = 3.0f * (float)(s >> 40) / 16777216.0f - 1.5f;
    }
    printf("B=%zu T=%zu heads=%zu hd=%zu isa=%s threads=%d, fastest of %d calls\n", B, T, H, hd,
           nmf_isa_name(nmf_active_isa()), nmf_get_threads(), runs);
    for (int r = 0; r < rounds; r++) {
        const double f32 = fastest(nmf_mhsa_forward, out, qkv, B, T, H, hd, work, wf, runs);
        const double q8 = fastest(nmf_mhsa_forward_q8, out, qkv, B, T, H, hd, work, wf, runs);
        printf("round %d: f32 %.3f ms  int8 %.3f ms  f32/int8 %.2fx\n", r + 1, f32, q8, f32 / q8);
    }
    nmf_free(work);
    free(qkv);
    free(out);
    return 0;
}
