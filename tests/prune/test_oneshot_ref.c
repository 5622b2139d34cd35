/* One linear pruned by Wanda and SparseGPT against the PyTorch reference
 * (tests/ref/make_oneshot_fixtures.py -> tests/fixtures/oneshot/): Wanda's scores and masks bit
 * for bit, SparseGPT's masks exactly and its compensated weights within float tolerance; and the
 * inverse-Hessian factor against its definition. */
#include "nmformer/io.h"
#include "nmformer/prune.h"
#include "prune/prune_internal.h"
#include "test.h"

static const nmf_pattern patterns[] = {{2, 4}, {1, 4}, {4, 8}, {1, 8}, {3, 16}};
#define NPAT (sizeof patterns / sizeof patterns[0])
enum { BLOCK = 16 }; /* as the generator */
static const double DAMP = 0.01;

static int load(nmf_array *a, const char *name, size_t rows, size_t cols) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/oneshot/%s", name);
    nmf_status st = nmf_npy_read(test_source_path(rel), a);
    CHECK_MSG(st == NMF_OK, "%s: %s", name, nmf_last_error());
    if (st) return 0;
    CHECK_MSG(a->ndim == 2 && (size_t)a->shape[0] == rows && (size_t)a->shape[1] == cols, "%s shape", name);
    return a->ndim == 2 && (size_t)a->shape[0] == rows && (size_t)a->shape[1] == cols;
}

static void test_wanda(void) {
    const size_t T = 40, R = 12, C = 48;
    nmf_array x, w, ref;
    if (!load(&x, "wanda_x.npy", T, C) || !load(&w, "wanda_w.npy", R, C)) return;
    double *sumsq = calloc(C, sizeof(double));
    float *scores = malloc(R * C * sizeof(float)), *wc = malloc(R * C * sizeof(float));
    uint8_t *mask = malloc(R * C);
    /* the observer sees a pass in pieces: two calls must add up as one */
    nmf_acc_sumsq(sumsq, x.data, 15, C);
    nmf_acc_sumsq(sumsq, x.data + 15 * C, T - 15, C);
    nmf_wanda_scores(scores, w.data, sumsq, R, C);
    if (load(&ref, "wanda_scores.npy", R, C)) {
        CHECK_MSG(!memcmp(scores, ref.data, R * C * sizeof(float)), "Wanda scores differ from PyTorch's");
        nmf_array_free(&ref);
    }
    for (size_t k = 0; k < NPAT; k++) {
        char name[64];
        snprintf(name, sizeof name, "wanda_mask_%d-%d.npy", patterns[k].n, patterns[k].m);
        if (!load(&ref, name, R, C)) continue;
        memcpy(wc, w.data, R * C * sizeof(float));
        CHECK_OK(nmf_wanda_prune(wc, mask, sumsq, R, C, patterns[k]));
        size_t differ = 0, wrong = 0;
        for (size_t i = 0; i < R * C; i++) {
            differ += mask[i] != (ref.data[i] != 0.0f);
            wrong += mask[i] ? wc[i] != w.data[i] : wc[i] != 0.0f;
        }
        CHECK_MSG(differ == 0, "%s: %zu mask entries differ", name, differ);
        CHECK_MSG(wrong == 0, "%s: %zu weights not kept / zeroed as the mask says", name, wrong);
        nmf_array_free(&ref);
    }
    free(sumsq);
    free(scores);
    free(wc);
    free(mask);
    nmf_array_free(&x);
    nmf_array_free(&w);
}

static void test_sparsegpt(void) {
    const size_t T = 96, R = 16, C = 64;
    nmf_array x, w, ref, refm;
    if (!load(&x, "sgpt_x.npy", T, C) || !load(&w, "sgpt_w.npy", R, C)) return;
    double *xtx = calloc(C * C, sizeof(double));
    float *wc = malloc(R * C * sizeof(float));
    uint8_t *mask = malloc(R * C);
    CHECK_OK(nmf_acc_xtx(xtx, x.data, 50, C));
    CHECK_OK(nmf_acc_xtx(xtx, x.data + 50 * C, T - 50, C));
    for (size_t k = 0; k < NPAT; k++) {
        char name[64], mname[64];
        snprintf(name, sizeof name, "sgpt_w_%d-%d.npy", patterns[k].n, patterns[k].m);
        snprintf(mname, sizeof mname, "sgpt_mask_%d-%d.npy", patterns[k].n, patterns[k].m);
        if (!load(&ref, name, R, C)) continue;
        if (!load(&refm, mname, R, C)) {
            nmf_array_free(&ref);
            continue;
        }
        memcpy(wc, w.data, R * C * sizeof(float));
        CHECK_OK(nmf_sparsegpt_prune(wc, mask, xtx, R, C, patterns[k], DAMP, BLOCK));
        size_t differ = 0;
        double err = 0, scale = 0;
        for (size_t i = 0; i < R * C; i++) {
            differ += mask[i] != (refm.data[i] != 0.0f);
            err = fmax(err, fabs((double)wc[i] - ref.data[i]));
            scale = fmax(scale, fabs(ref.data[i]));
            if (!mask[i]) CHECK(wc[i] == 0.0f);
        }
        CHECK_MSG(differ == 0, "%s: %zu mask entries differ", mname, differ);
        CHECK_MSG(err <= 2e-5 * scale, "%s: max |C - PyTorch| = %g (scale %g)", name, err, scale);
        CHECK(wc[0 * C + 40] == 0.0f && wc[5 * C + 40] == 0.0f); /* the dead channel */
        nmf_array_free(&ref);
        nmf_array_free(&refm);
    }
    /* the block width only changes when updates are applied, not the result */
    float *wb = malloc(R * C * sizeof(float));
    memcpy(wc, w.data, R * C * sizeof(float));
    memcpy(wb, w.data, R * C * sizeof(float));
    CHECK_OK(nmf_sparsegpt_prune(wc, NULL, xtx, R, C, patterns[0], DAMP, 16));
    CHECK_OK(nmf_sparsegpt_prune(wb, NULL, xtx, R, C, patterns[0], DAMP, 64));
    double diff = 0;
    for (size_t i = 0; i < R * C; i++) diff = fmax(diff, fabs((double)wc[i] - wb[i]));
    CHECK_MSG(diff < 1e-4, "block 16 vs 64: %g", diff);
    /* the factor made in place in a copy of X^T X (as a tap's: nmf_sparsegpt_factor) serves
     * several linears, each bit for bit what nmf_sparsegpt_prune gives on its own; and
     * nmf_sparsegpt_prune leaves the caller's X^T X as it was */
    double *h = malloc(C * C * sizeof(double)), *before = malloc(C * C * sizeof(double));
    uint8_t *dead = malloc(C);
    memcpy(h, xtx, C * C * sizeof(double));
    memcpy(before, xtx, C * C * sizeof(double));
    CHECK_OK(nmf_sparsegpt_factor(h, dead, C, DAMP));
    CHECK(dead[40] && !dead[0]);
    for (size_t k = 0; k < NPAT; k++) {
        uint8_t *mb = malloc(R * C);
        memcpy(wc, w.data, R * C * sizeof(float));
        memcpy(wb, w.data, R * C * sizeof(float));
        CHECK_OK(nmf_sparsegpt_prune(wc, mask, xtx, R, C, patterns[k], DAMP, BLOCK));
        CHECK_OK(nmf_sparsegpt_prune_factored(wb, mb, h, dead, R, C, patterns[k], BLOCK));
        CHECK_MSG(!memcmp(wc, wb, R * C * sizeof(float)) && !memcmp(mask, mb, R * C),
                  "%d:%d: the shared factor differs from a fresh one", patterns[k].n, patterns[k].m);
        free(mb);
    }
    CHECK(!memcmp(before, xtx, C * C * sizeof(double)));
    free(h);
    free(before);
    free(dead);
    /* bad arguments */
    CHECK_STATUS(nmf_sparsegpt_prune(wc, NULL, xtx, R, 60, (nmf_pattern){2, 8}, DAMP, 16), NMF_ERR_SHAPE);
    CHECK_STATUS(nmf_sparsegpt_prune(wc, NULL, xtx, R, C, patterns[0], -1.0, 16), NMF_ERR_INVALID_ARG);
    double *zero = calloc(C * C, sizeof(double)); /* no input seen at all: every column dead */
    memcpy(wc, w.data, R * C * sizeof(float));
    CHECK_OK(nmf_sparsegpt_prune(wc, NULL, zero, R, C, patterns[0], 0.0, 16));
    int all_zero = 1;
    for (size_t i = 0; i < R * C; i++) all_zero &= wc[i] == 0.0f;
    CHECK(all_zero);
    free(zero);
    free(wb);
    free(xtx);
    free(wc);
    free(mask);
    nmf_array_free(&x);
    nmf_array_free(&w);
}

/* U^T U = H^-1, i.e. H U^T U = I, U upper with a positive diagonal; a singular H is refused. */
static void test_hinv(void) {
    enum { N = 7 };
    double h[N * N], a[N * N], u[N * N], sing[4] = {1, 1, 1, 1};
    unsigned long long s = 99;
    for (int i = 0; i < N * N; i++) a[i] = test_rand_float(&s);
    for (int i = 0; i < N; i++) /* H = A A^T + I */
        for (int j = 0; j < N; j++) {
            double v = i == j;
            for (int k = 0; k < N; k++) v += a[i * N + k] * a[j * N + k];
            h[i * N + j] = v;
        }
    /* in place: U over the upper triangle, the strict lower one left as it was (here: -7) */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) u[i * N + j] = j >= i ? h[i * N + j] : -7.0;
    CHECK_OK(nmf_hinv_chol_upper(u, N));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++) {
            CHECK(u[i * N + j] == -7.0);
            u[i * N + j] = 0.0; /* U is upper */
        }
    double worst = 0;
    for (int i = 0; i < N; i++) {
        CHECK(u[i * N + i] > 0);
        for (int j = 0; j < N; j++) {
            double v = 0; /* (H U^T U)_ij */
            for (int k = 0; k < N; k++) {
                double utu = 0;
                for (int l = 0; l < N; l++) utu += u[l * N + k] * u[l * N + j];
                v += h[i * N + k] * utu;
            }
            worst = fmax(worst, fabs(v - (i == j)));
        }
    }
    CHECK_MSG(worst < 1e-10, "H U^T U - I: %g", worst);
    CHECK_STATUS(nmf_hinv_chol_upper(sing, 2), NMF_ERR_NUMERIC);
}

int main(void) {
    test_hinv();
    test_wanda();
    test_sparsegpt();
    return test_finish("test_oneshot_ref");
}
