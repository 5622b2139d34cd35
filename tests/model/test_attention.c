/* Fused online-softmax attention (scalar reference and the active SIMD kernel) against the naive
 * version that materialises the scores: relative error <= 1e-5 of the output's largest magnitude,
 * T from 1 to 600 (below, at and above the 6-query block and 64-key tile), head dims 16..128,
 * causal on/off, cross-attention shapes (Tq < Tk), strided rows, and scores near +-1e4. */
#include "nmformer/ops.h"
#include "test.h"

static unsigned long long seed = 0x9e3779b97f4a7c15ull;

static void fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * 0.5f * (test_rand_float(&seed) + 1.0f);
}

/* Integers in [lo, hi] with a random sign per row when mixed: dots are exact in float. */
static void fill_int(float *x, size_t rows, size_t d, size_t ld, int lo, int hi, int mixed) {
    for (size_t r = 0; r < rows; r++) {
        float sign = mixed && (test_rand_u64(&seed) & 1) ? -1.0f : 1.0f;
        for (size_t c = 0; c < d; c++)
            x[r * ld + c] = sign * (float)(lo + (int)(test_rand_u64(&seed) % (unsigned)(hi - lo + 1)));
    }
}

typedef nmf_status (*att_fn)(float *, const float *, const float *, const float *,
                             const nmf_attention_shape *, float *);

/* Runs fn against the naive result; returns max |diff| / max |ref|. */
static double compare(att_fn fn, const float *q, const float *k, const float *v,
                      const nmf_attention_shape *s, const float *ref, int pass_work) {
    size_t n = s->Tq * s->ldo;
    float *out = calloc(n, sizeof(float));
    float *work = pass_work ? nmf_alloc(nmf_attention_work_floats(s->Tk, s->d), sizeof(float)) : NULL;
    CHECK_OK(fn(out, q, k, v, s, work));
    double maxdiff = 0, maxref = 1e-30;
    for (size_t i = 0; i < s->Tq; i++)
        for (size_t c = 0; c < s->d; c++) {
            double r = ref[i * s->ldo + c], o = out[i * s->ldo + c];
            if (!(fabs(o - r) <= maxdiff)) maxdiff = isnan(o) ? INFINITY : fabs(o - r);
            if (fabs(r) > maxref) maxref = fabs(r);
        }
    nmf_free(work);
    free(out);
    return maxdiff / maxref;
}

/* One case; big != 0 uses integer q/k giving scores near +-1e4 (sign mixed when big == 2). */
static void run_case(size_t Tq, size_t Tk, size_t d, size_t pad, int causal, int big) {
    size_t ld = d + pad;
    float *q = calloc(Tq * ld, sizeof(float)), *k = calloc(Tk * ld, sizeof(float));
    float *v = calloc(Tk * ld, sizeof(float)), *ref = calloc(Tq * ld, sizeof(float));
    nmf_attention_shape s = {.Tq = Tq, .Tk = Tk, .d = d, .ldq = ld, .ldk = ld, .ldv = ld,
                             .ldo = ld, .scale = 1.0f / sqrtf((float)d), .causal = causal};
    if (big) {
        /* dot ~ d * 35^2, scaled by 1/sqrt(d): about 1225 sqrt(d) ~ 1e4 for d = 64 */
        fill_int(q, Tq, d, ld, 30, 40, 0);
        fill_int(k, Tk, d, ld, 30, 40, big == 2);
    } else {
        fill(q, Tq * ld, -2.0f, 2.0f);
        fill(k, Tk * ld, -2.0f, 2.0f);
    }
    fill(v, Tk * ld, -1.0f, 1.0f);
    CHECK_OK(nmf_attention_naive(ref, q, k, v, &s));
    double e1 = compare(nmf_attention_forward_ref, q, k, v, &s, ref, 1);
    double e2 = compare(nmf_attention_forward, q, k, v, &s, ref, (Tq + d) % 2);
    CHECK_MSG(e1 <= 1e-5, "ref: Tq=%zu Tk=%zu d=%zu causal=%d big=%d rel err %.3g", Tq, Tk, d,
              causal, big, e1);
    CHECK_MSG(e2 <= 1e-5, "%s: Tq=%zu Tk=%zu d=%zu causal=%d big=%d rel err %.3g",
              nmf_isa_name(nmf_active_isa()), Tq, Tk, d, causal, big, e2);
    free(q);
    free(k);
    free(v);
    free(ref);
}

/* nmf_mhsa_forward over a batch in the timm qkv layout, against per-head naive attention. */
static void run_mhsa(size_t B, size_t T, size_t heads, size_t hd, int causal) {
    size_t C = heads * hd;
    float *qkv = malloc(B * T * 3 * C * sizeof(float));
    float *out = calloc(B * T * C, sizeof(float)), *ref = calloc(B * T * C, sizeof(float));
    fill(qkv, B * T * 3 * C, -2.0f, 2.0f);
    nmf_attention_shape s = {.Tq = T, .Tk = T, .d = hd, .ldq = 3 * C, .ldk = 3 * C, .ldv = 3 * C,
                             .ldo = C, .scale = 1.0f / sqrtf((float)hd), .causal = causal};
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < heads; h++) {
            const float *base = qkv + b * T * 3 * C + h * hd;
            CHECK_OK(nmf_attention_naive(ref + b * T * C + h * hd, base, base + C, base + 2 * C, &s));
        }
    CHECK_OK(nmf_mhsa_forward(out, qkv, B, T, heads, hd, causal, NULL, 0));
    double maxdiff = 0, maxref = 1e-30;
    for (size_t i = 0; i < B * T * C; i++) {
        if (!(fabs(out[i] - ref[i]) <= maxdiff)) maxdiff = fabs(out[i] - ref[i]);
        if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
    }
    CHECK_MSG(maxdiff / maxref <= 1e-5, "mhsa B=%zu T=%zu heads=%zu hd=%zu: rel err %.3g", B, T,
              heads, hd, maxdiff / maxref);
    /* scratch given but too small for even one thread is an error, not an overrun */
    float tiny[4];
    CHECK_STATUS(nmf_mhsa_forward(out, qkv, B, T, heads, hd, causal, tiny, 4), NMF_ERR_INVALID_ARG);
    free(qkv);
    free(out);
    free(ref);
}

/* The sweep, run once per SIMD ISA the CPU has (the best one in full). */
static void sweep(int full, int san) {
    const size_t Ts[] = {1, 2, 5, 6, 7, 13, 16, 63, 64, 65, 130, 197, 600};
    const size_t ds[] = {16, 20, 24, 32, 48, 56, 64, 80, 128}; /* (20: columns past the 8-wide steps) */
    const size_t nT = sizeof Ts / sizeof Ts[0], nd = sizeof ds / sizeof ds[0];
    for (size_t ti = 0; ti < nT; ti++)
        for (size_t di = 0; di < nd; di++) {
            size_t T = Ts[ti], d = ds[di];
            if (T >= 130 && di % 2 != ti % 2) continue;          /* keep big T cheap */
            if ((san || !full) && T >= 130 && d != 64) continue; /* then d = 64 only */
            if (san && T >= 600) continue; /* sanitizer: T = 600 only in the cases below */
            for (int causal = 0; causal <= 1; causal++) run_case(T, T, d, (T + d) % 3, causal, 0);
        }
    /* Tq < Tk: a decoder's new queries against a longer key cache */
    run_case(5, 70, 32, 0, 1, 0);
    run_case(1, 600, 64, 3, 1, 0);
    run_case(7, 129, 16, 1, 0, 0);
    if (san) run_case(600, 600, 64, 0, 1, 2); /* the one T = 600 large-score case kept */
    /* scores near +1e4 and mixed +-1e4 */
    const size_t bigT[] = {1, 7, 64, 197, 600};
    for (size_t i = 0; i < sizeof bigT / sizeof bigT[0] - (size_t)san; i++)
        for (int causal = 0; causal <= 1; causal++) {
            run_case(bigT[i], bigT[i], 64, 0, causal, 1);
            run_case(bigT[i], bigT[i], 64, 1, causal, 2);
            run_case(bigT[i], bigT[i], 16, 0, causal, 2);
        }
    run_case(33, 33, 128, 0, 0, 2);
}

int main(void) {
    int san = getenv("NMF_SANITIZED") != NULL;
    nmf_isa best = nmf_active_isa();
    for (int isa = (int)best; isa >= NMF_ISA_AVX2; isa--) {
        nmf_set_isa((nmf_isa)isa);
        sweep(isa == (int)best, san);
    }
    nmf_set_isa(best);
    /* the scalar path through the dispatcher too */
    nmf_set_isa(NMF_ISA_SCALAR);
    run_case(65, 65, 48, 2, 1, 0);
    nmf_set_isa(best);
    run_mhsa(2, 17, 3, 16, 0);
    run_mhsa(1, 50, 6, 64, 1);
    /* bad shapes */
    float x[64] = {0};
    nmf_attention_shape bad = {.Tq = 4, .Tk = 2, .d = 4, .ldq = 4, .ldk = 4, .ldv = 4, .ldo = 4,
                               .scale = 0.5f, .causal = 1};
    CHECK_STATUS(nmf_attention_forward(x, x, x, x, &bad, NULL), NMF_ERR_INVALID_ARG);
    bad.causal = 0;
    bad.ldq = 3;
    CHECK_STATUS(nmf_attention_forward(x, x, x, x, &bad, NULL), NMF_ERR_INVALID_ARG);
    bad.ldq = 4;
    bad.Tk = 0;
    CHECK_STATUS(nmf_attention_forward_ref(x, x, x, x, &bad, NULL), NMF_ERR_INVALID_ARG);
    return test_finish("test_attention");
}
