/* Developer benchmark: the f32 and int8 attention kernels (nmf_attention_forward,
 * nmf_attention_forward_q8) on one head, and multi-head self-attention over a ViT's tokens
 * (nmf_mhsa_forward, nmf_mhsa_forward_q8): how the int8 attention's figures and the language
 * models' 16-query threshold (src/model/lm_block.c) were measured (docs/PERFORMANCE.md). Not a
 * test; built as build/attention_sweep.
 *
 *   attention_sweep [TQxTKxD ...]              one head, causal (the queries are the last keys)
 *   attention_sweep --mhsa T HEADS D           one image: heads x (T x T x D)
 *
 * Without shapes, one head of 64 over 256 and 1024 keys with 1 to 64 queries. Threads: the
 * library's (NMF_THREADS). Prints, per shape, the fastest and the median of 21 timed runs of
 * REPS calls each (the fastest is steadier on a shared machine) and int8's time over f32's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/core.h"
#include "nmformer/ops.h"
#include "sweep_runs.h" /* RUNS, sweep_sort */

typedef struct {
    size_t Tq, Tk, d, heads; /* heads > 0: multi-head over T = Tq = Tk */
} shape;

/* one call of the int8 (q8) or f32 kernel on the shape */
static nmf_status call(int q8, const shape *s, float *out, const float *x, float *work, size_t wf) {
    if (s->heads)
        return (q8 ? nmf_mhsa_forward_q8 : nmf_mhsa_forward)(out, x, 1, s->Tq, s->heads, s->d, 0,
                                                             work, wf);
    const nmf_attention_shape a = {.Tq = s->Tq, .Tk = s->Tk, .d = s->d, .ldq = s->d, .ldk = s->d,
                                   .ldv = s->d, .ldo = s->d, .scale = 0.125f, .causal = 1};
    const float *q = x, *k = x + s->Tk * s->d, *v = k + s->Tk * s->d;
    return (q8 ? nmf_attention_forward_q8 : nmf_attention_forward)(out, q, k, v, &a, work);
}

/* fastest and median seconds per call of the kernel */
static int time_kernel(int q8, const shape *s, float *out, const float *x, float *work, size_t wf,
                       double *best, double *median) {
    const size_t flops = 4 * s->Tq * s->Tk * s->d * (s->heads ? s->heads : 1);
    const int reps = flops > 50000000 ? 1 : (int)(50000000 / flops) + 1;
    double t[RUNS];
    if (call(q8, s, out, x, work, wf)) return 1; /* warm-up */
    for (int r = 0; r < RUNS; r++) {
        const double t0 = nmf_now();
        for (int i = 0; i < reps; i++)
            if (call(q8, s, out, x, work, wf)) return 1;
        t[r] = (nmf_now() - t0) / reps;
    }
    sweep_sort(t);
    *best = t[0];
    *median = t[RUNS / 2];
    return 0;
}

static int run(const shape *s) {
    const size_t n = (s->heads ? 3 * s->heads : 3) * s->Tk * s->d;
    const size_t wf = s->heads ? nmf_mhsa_work_floats(s->Tq, s->d)
                               : nmf_attention_q8_work_floats(s->Tq, s->Tk, s->d) +
                                     nmf_attention_work_floats(s->Tk, s->d);
    float *x = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
    float *work = nmf_alloc(wf, sizeof(float));
    if (!x || !out || !work) {
        fprintf(stderr, "attention_sweep: out of memory\n");
        return 1;
    }
    unsigned long long r = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        x[i] = (float)((double)(r >> 40) / (double)(1ull << 23) - 1.0);
    }
    double b32, m32, b8, m8;
    int bad = time_kernel(0, s, out, x, work, wf, &b32, &m32) || time_kernel(1, s, out, x, work, wf, &b8, &m8);
    if (bad) fprintf(stderr, "attention_sweep: %s\n", nmf_last_error());
    else if (s->heads)
        printf("mhsa T=%zu heads=%zu d=%zu   f32 %9.2f us (median %9.2f)   int8 %9.2f us (median %9.2f)   int8/f32 %.2f\n",
               s->Tq, s->heads, s->d, 1e6 * b32, 1e6 * m32, 1e6 * b8, 1e6 * m8, b8 / b32);
    else
        printf("head Tq=%4zu Tk=%5zu d=%4zu   f32 %9.2f us (median %9.2f)   int8 %9.2f us (median %9.2f)   int8/f32 %.2f\n",
               s->Tq, s->Tk, s->d, 1e6 * b32, 1e6 * m32, 1e6 * b8, 1e6 * m8, b8 / b32);
    nmf_free(work);
    free(x);
    free(out);
    return bad;
}

int main(int argc, char **argv) {
    printf("# kernels: %s, threads: %d\n", nmf_isa_name(nmf_active_isa()), nmf_get_threads());
    if (argc == 5 && !strcmp(argv[1], "--mhsa")) {
        const shape s = {(size_t)atol(argv[2]), (size_t)atol(argv[2]), (size_t)atol(argv[4]),
                         (size_t)atol(argv[3])};
        if (!s.Tq || !s.d || !s.heads) {
            fprintf(stderr, "usage: attention_sweep --mhsa T HEADS D\n");
            return 2;
        }
        return run(&s);
    }
    int bad = 0;
    if (argc == 1) {
        static const size_t tq[] = {1, 4, 8, 16, 32, 64}, tk[] = {256, 1024};
        for (size_t b = 0; b < 2; b++)
            for (size_t a = 0; a < sizeof tq / sizeof tq[0]; a++) bad |= run(&(shape){tq[a], tk[b], 64, 0});
        return bad;
    }
    for (int i = 1; i < argc; i++) {
        shape s = {0};
        if (sscanf(argv[i], "%zux%zux%zu", &s.Tq, &s.Tk, &s.d) != 3 || !s.Tq || s.Tq > s.Tk || !s.d) {
            fprintf(stderr, "attention_sweep: '%s': expected TQxTKxD with 1 <= TQ <= TK, D >= 1\n", argv[i]);
            return 2;
        }
        bad |= run(&s);
    }
    return bad;
}
