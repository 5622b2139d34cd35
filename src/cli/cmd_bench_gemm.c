/* nmformer bench gemm: N:M and dense linear products against every dense backend built in
 * (oneDNN, OpenBLAS) on the same shape, measured in the same run. Each cell is timed for about --time seconds (at least 3 reps, or
 * exactly --reps); the median is reported. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "nmformer/kernels.h"

#define MAX_LIST 32
#define MAX_REPS 10000

typedef struct {
    size_t out[MAX_LIST], in[MAX_LIST];
    int nshapes;
    size_t tokens[MAX_LIST];
    int ntokens;
    nmf_pattern pats[MAX_LIST]; /* {0,0} = dense */
    int npats;
    nmf_precision precs[NMF_PREC_COUNT]; /* of the N:M layers (dense: f32 only) */
    int nprecs;
    int threads, reps, json;
    double target_s;
} options;

static const char about[] =
    "Times y = x W^T for W dense (our dense path) and N:M (our kernels) against every\n"
    "dense backend built in (oneDNN, OpenBLAS), each on the same shape and threads, in\n"
    "the same run; 'vs best' is the speed-up over the fastest of them (named in 'best').\n";

static const char epilog[] =
    "  % peak      useful GFLOP/s / (measured single-core FMA peak x threads); int8\n"
    "              products: useful GOP/s / the measured int8 multiply-add peak (the\n"
    "              instruction the int8 kernels run: vpdpbusd, vpmaddwd) x threads\n"
    "  bytes ratio = dense f32 weight bytes / bytes our kernel reads (values + positions)\n"
    "Kernels follow NMF_ISA=scalar|avx2|avx512 (default: the best this CPU has); our dense\n"
    "path follows NMF_GEMM=onednn|openblas (default: oneDNN when built in).\n";

static int parse_size(const char *s, size_t *v) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || x == 0 || x > (1ull << 20) || s[0] == '-') return 0;
    *v = (size_t)x;
    return 1;
}

/* Splits a comma list in place, calling item() on each part; 0 on the first failure. */
static int parse_list(char *text, int (*item)(const char *, options *), options *o) {
    for (char *save = NULL, *p = strtok_r(text, ",", &save); p; p = strtok_r(NULL, ",", &save))
        if (!item(p, o)) return 0;
    return 1;
}

static int add_shape(const char *s, options *o) {
    char buf[64];
    if (o->nshapes >= MAX_LIST || strlen(s) >= sizeof buf) return 0;
    strcpy(buf, s);
    char *x = strchr(buf, 'x');
    if (!x) return 0;
    *x = 0;
    if (!parse_size(buf, &o->out[o->nshapes]) || !parse_size(x + 1, &o->in[o->nshapes])) return 0;
    o->nshapes++;
    return 1;
}

static int add_tokens(const char *s, options *o) {
    return o->ntokens < MAX_LIST && parse_size(s, &o->tokens[o->ntokens++]);
}

static int add_pattern(const char *s, options *o) {
    if (o->npats >= MAX_LIST) return 0;
    if (!strcmp(s, "dense")) {
        o->pats[o->npats++] = (nmf_pattern){0, 0};
        return 1;
    }
    return nmf_pattern_parse(s, &o->pats[o->npats++]) == NMF_OK;
}

static int add_precision(const char *s, options *o) {
    return o->nprecs < NMF_PREC_COUNT && nmf_precision_parse(s, &o->precs[o->nprecs++]) == NMF_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of one call of fn(ctx); the fastest in *fastest (on a shared machine the
 * minimum is the steadier figure for A/B comparisons; the tables report the median). */
typedef void (*bench_fn)(void *ctx);
static double time_median(bench_fn fn, void *ctx, const options *o, double *samples,
                          double *fastest) {
    fn(ctx); /* warm up: caches, page faults, thread team */
    double t0 = nmf_now();
    fn(ctx);
    double one = nmf_now() - t0;
    int reps = o->reps;
    if (reps <= 0) {
        reps = one > 0 ? (int)(o->target_s / one) : MAX_REPS;
        if (reps < 3) reps = 3;
        if (reps > MAX_REPS) reps = MAX_REPS;
    }
    for (int r = 0; r < reps; r++) {
        double s = nmf_now();
        fn(ctx);
        samples[r] = nmf_now() - s;
    }
    qsort(samples, (size_t)reps, sizeof *samples, cmp_double);
    *fastest = samples[0];
    return reps % 2 ? samples[reps / 2] : 0.5 * (samples[reps / 2 - 1] + samples[reps / 2]);
}

typedef struct {
    const float *x, *w, *wt; /* W [out][in] and W^T [in][out] */
    float *y;
    size_t out, in, tokens;
    const nmf_linear *lin;
} cell;

/* The baseline: every dense backend built in (gemm.c: oneDNN, OpenBLAS), each timed on
 * y = x W^T through nmf_gemm_with on the same threads as ours, with W stored as W [out][in]
 * (a transposed operand) and as W^T [in][out], the faster of the two counting; the fastest
 * backend in the same run is "best dense". (Our dense row is the backend the process chose, in
 * the layout its layers store: usually that one.) */
typedef struct {
    cell *c;
    nmf_gemm_backend backend;
    int stored_t; /* multiply W^T as stored, not W transposed */
} dense_run;

static void run_dense_backend(void *p) {
    dense_run *r = p;
    const cell *c = r->c;
    if (r->stored_t)
        nmf_gemm_with(r->backend, 0, 0, c->tokens, c->out, c->in, 1.0f, c->x, c->in, c->wt,
                      c->out, 0.0f, c->y, c->out);
    else
        nmf_gemm_with(r->backend, 0, 1, c->tokens, c->out, c->in, 1.0f, c->x, c->in, c->w, c->in,
                      0.0f, c->y, c->out);
}

static void run_linear(void *p) {
    cell *c = p;
    (void)nmf_linear_forward(c->y, c->x, c->lin, NULL, c->tokens, NMF_ACT_NONE);
}

/* A comma list option: parsed into o by item(); a usage error names the option and an example. */
static int take_list(const char *opt, const char *text, int (*item)(const char *, options *),
                     options *o, const char *example) {
    char tmp[1024];
    if (!text) return 0;
    if (strlen(text) >= sizeof tmp) return cli_usage_error("bench gemm", "--%s: list too long", opt);
    strcpy(tmp, text);
    if (!parse_list(tmp, item, o))
        return cli_usage_error("bench gemm", "--%s %s: bad list (e.g. %s)", opt, text, example);
    return 0;
}

int bench_gemm(int argc, char **argv) {
    static options o; /* large arrays: not on the stack */
    memset(&o, 0, sizeof o);
    o.target_s = 0.2;
    int quick = 0;
    const char *shapes = NULL, *tokens = NULL, *patterns = NULL, *precisions = NULL;
    const cli_opt opts[] = {
        CLI_STR("shapes", 0, &shapes, "LIST", "out x in of W (default 768x768,3072x768,\n768x3072,"
                "384x384,1536x384,384x1536,4096x4096)"),
        CLI_STR("tokens", 0, &tokens, "LIST", "rows of x (default 1,16,128,512)"),
        CLI_STR("pattern", 'p', &patterns, "LIST", "dense and/or N:M (default dense,2:4,1:4,4:8,\n2:8,1:8,1:16)"),
        CLI_ALIAS("patterns", "pattern"),
        CLI_STR("precision", 0, &precisions, "LIST", "every layer in each of f32, bf16, int8\n"
                "(default f32): nmf_linear_set_precision;\nJSON key precision"),
        CLI_INT("threads", 'j', &o.threads, 1, 1024, "T", "threads for ours and for the baselines\n"
                "(default: NMF_THREADS or all cores); each\nbaseline runs single-threaded slabs on "
                "them"),
        CLI_INT("reps", 0, &o.reps, 1, MAX_REPS, "R", "fixed repetitions per cell (default: adaptive,\n"
                "~--time s, >= 3)"),
        CLI_DOUBLE("time", 0, &o.target_s, 1e-6, 60, "S", "seconds per cell when adaptive (default 0.2)"),
        CLI_FLAG("quick", 0, &quick, "a small sweep for smoke tests (384x384,768x768;\n1,16; dense,2:4,1:8)"),
        CLI_FLAG("json", 0, &o.json, "print a JSON array (keys out, in, tokens,\npattern, threads, "
                 "kernel, ms (median), ms_min\n(fastest rep: steadier on a busy machine),\n"
                 "gflops_dense_equiv, gflops_useful,\nbest_dense_ms, best_dense_backend,\n"
                 "speedup_vs_best_dense, <backend>_ms for each\nbackend, weight_bytes, bytes_ratio,\n"
                 "peak_gflops (int8 rows: the int8 peak, GOP/s),\nfrac_peak; speedup_vs_dense when\n"
                 "dense is listed first)"),
        CLI_END,
    };
    const cli_command cmd = {"bench gemm", "[options]", about, opts, {NULL}, epilog};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_GO_ON) return rc;
    if (take_list("shapes", shapes, add_shape, &o, "768x768,3072x768") ||
        take_list("tokens", tokens, add_tokens, &o, "1,16,128") ||
        take_list("pattern", patterns, add_pattern, &o, "dense,2:4,1:8") ||
        take_list("precision", precisions, add_precision, &o, "f32,int8"))
        return CLI_EXIT_USAGE;
    char defaults[3][128];
    strcpy(defaults[0], quick ? "384x384,768x768"
                              : "768x768,3072x768,768x3072,384x384,1536x384,384x1536,4096x4096");
    strcpy(defaults[1], quick ? "1,16" : "1,16,128,512");
    strcpy(defaults[2], quick ? "dense,2:4,1:8" : "dense,2:4,1:4,4:8,2:8,1:8,1:16");
    if (!o.nshapes) parse_list(defaults[0], add_shape, &o);
    if (!o.ntokens) parse_list(defaults[1], add_tokens, &o);
    if (!o.npats) parse_list(defaults[2], add_pattern, &o);
    if (!o.nprecs) o.precs[o.nprecs++] = NMF_PREC_F32;
    if (quick && o.reps == 0 && o.target_s == 0.2) o.target_s = 0.02;
    if (o.threads) nmf_set_threads(o.threads);
    const int threads = nmf_get_threads();
    nmf_blas_init();
    const double peak = nmf_cpu_fma_peak_gflops() * threads; /* of the threads used */
    int has_int8 = 0;
    for (int i = 0; i < o.nprecs; i++) has_int8 |= o.precs[i] == NMF_PREC_INT8;
    /* int8 products against their own instruction's peak (4x the FMA's on VNNI), measured only
     * when asked for */
    const double peak8 = has_int8 ? nmf_cpu_int8_peak_gops() * threads : 0.0;

    double *samples = malloc(MAX_REPS * sizeof *samples);
    cJSON *arr = o.json ? cJSON_CreateArray() : NULL;
    if (!samples || (o.json && !arr)) {
        free(samples);
        fprintf(stderr, "nmformer bench gemm: out of memory\n");
        return 1;
    }
    if (!o.json) {
        char desc[128];
        printf("kernels: %s, threads: %d, measured FMA peak %.1f GFLOP/s (%.1f per core)\n",
               nmf_isa_name(nmf_active_isa()), threads, peak, peak / threads);
        if (has_int8)
            printf("measured int8 multiply-add peak %.1f GOP/s (%.1f per core): %% peak of the "
                   "int8 rows\n", peak8, peak8 / threads);
        for (int be = 0; be < NMF_GEMM_BACKEND_COUNT; be++) {
            if (!nmf_gemm_backend_available((nmf_gemm_backend)be)) continue;
            nmf_gemm_backend_describe((nmf_gemm_backend)be, desc, sizeof desc);
            printf("dense backend %-8s %s%s%s\n", nmf_gemm_backend_name((nmf_gemm_backend)be), desc,
                   be == (int)nmf_gemm_backend_active() ? " (ours)" : "",
                   nmf_gemm_backend_generic((nmf_gemm_backend)be) ? " WARNING: generic kernel" : "");
        }
        printf("%6s %6s %6s %-7s %-11s %10s %10s %10s %6s %9s %-8s %9s %8s\n", "out", "in",
               "tokens", "pattern", "kernel", "ms", "GFLOP/s", "useful", "% peak", "vs best", "best",
               "vs dense", "bytes x");
    }
    rc = 0;
    double f32_frac_max = 0; /* the largest f32 fraction of the probe's peak (a sanity check) */
    unsigned long long seed = 0x2545F4914F6CDD1Dull;
    for (int si = 0; si < o.nshapes && !rc; si++) {
        const size_t out = o.out[si], in = o.in[si];
        size_t maxT = 0;
        for (int ti = 0; ti < o.ntokens; ti++) maxT = o.tokens[ti] > maxT ? o.tokens[ti] : maxT;
        float *w = nmf_alloc(out * in, sizeof(float)), *x = nmf_alloc(maxT * in, sizeof(float));
        float *y = nmf_alloc(maxT * out, sizeof(float)), *wt = nmf_alloc(out * in, sizeof(float));
        if (!w || !x || !y || !wt) {
            rc = cli_fail("bench gemm", "allocating the operands", NMF_ERR_NOMEM);
        } else {
            for (size_t i = 0; i < out * in; i++) { /* uniform [-1, 1): xorshift */
                seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
                w[i] = (float)((seed >> 40) * (1.0 / 8388608.0)) - 1.0f;
            }
            for (size_t i = 0; i < maxT * in; i++) x[i] = w[(i * 7919) % (out * in)];
            for (size_t r = 0; r < out; r++)
                for (size_t i = 0; i < in; i++) wt[i * out + r] = w[r * in + i];
        }
        /* one linear per pattern and precision (dense: f32 and bf16), built once per shape */
        nmf_linear *lins[MAX_LIST * NMF_PREC_COUNT] = {0};
        for (int li = 0; li < o.npats * o.nprecs && !rc; li++) {
            const nmf_pattern p = o.pats[li / o.nprecs];
            const nmf_precision prec = o.precs[li % o.nprecs];
            nmf_status st;
            if (p.n == 0) {
                st = nmf_linear_create_dense(&lins[li], w, out, in);
                if (st == NMF_OK) st = nmf_linear_set_precision(lins[li], prec);
            } else {
                nmf_nm_matrix a;
                st = nmf_nm_pack(&a, w, out, in, p, 1);
                if (st == NMF_OK) {
                    st = nmf_linear_create_nm(&lins[li], &a);
                    nmf_nm_free(&a);
                }
                if (st == NMF_OK) st = nmf_linear_set_precision(lins[li], prec);
            }
            if (st != NMF_OK) rc = cli_fail("bench gemm", "building the weight", st);
        }
        for (int ti = 0; ti < o.ntokens && !rc; ti++) {
            cell c = {.x = x, .w = w, .wt = wt, .y = y, .out = out, .in = in, .tokens = o.tokens[ti]};
            double best_s = 0, backend_s[NMF_GEMM_BACKEND_COUNT] = {0};
            nmf_gemm_backend best_be = nmf_gemm_backend_active();
            for (int be = 0; be < NMF_GEMM_BACKEND_COUNT; be++) {
                if (!nmf_gemm_backend_available((nmf_gemm_backend)be)) continue;
                for (int t = 0; t < 2; t++) { /* W, then W^T as stored: the faster counts */
                    dense_run r = {&c, (nmf_gemm_backend)be, t};
                    double fastest;
                    const double s = time_median(run_dense_backend, &r, &o, samples, &fastest);
                    if (backend_s[be] == 0 || s < backend_s[be]) backend_s[be] = s;
                }
                if (best_s == 0 || backend_s[be] < best_s) {
                    best_s = backend_s[be];
                    best_be = (nmf_gemm_backend)be;
                }
            }
            double dense_s = 0; /* our dense row (sgemv at 1 token), when it is in the list */
            const double dense_flop = 2.0 * (double)out * (double)in * (double)c.tokens;
            for (int li = 0; li < o.npats * o.nprecs; li++) {
                if (!lins[li]) continue;
                c.lin = lins[li];
                double s_min;
                const double s = time_median(run_linear, &c, &o, samples, &s_min);
                const nmf_pattern p = o.pats[li / o.nprecs];
                const char *prec = nmf_precision_name(nmf_linear_precision(c.lin));
                if (p.n == 0 && nmf_linear_precision(c.lin) == NMF_PREC_F32) dense_s = s;
                const double density = p.n ? (double)p.n / p.m : 1.0;
                const int int8 = nmf_linear_precision(c.lin) == NMF_PREC_INT8;
                const double cell_peak = int8 ? peak8 : peak; /* this row's instruction's */
                char name[16];
                if (p.n) nmf_pattern_format(p, name, sizeof name); else strcpy(name, "dense");
                const size_t wb = nmf_linear_weight_bytes(c.lin);
                const double ratio = (double)(out * in * sizeof(float)) / (double)wb;
                if (o.json) {
                    cJSON *e = cJSON_CreateObject();
                    cJSON_AddNumberToObject(e, "out", (double)out);
                    cJSON_AddNumberToObject(e, "in", (double)in);
                    cJSON_AddNumberToObject(e, "tokens", (double)c.tokens);
                    cJSON_AddStringToObject(e, "pattern", name);
                    cJSON_AddStringToObject(e, "precision", prec);
                    cJSON_AddNumberToObject(e, "threads", threads);
                    cJSON_AddStringToObject(e, "kernel", nmf_linear_kernel_name(c.lin, c.tokens));
                    cJSON_AddNumberToObject(e, "ms", s * 1e3);
                    cJSON_AddNumberToObject(e, "ms_min", s_min * 1e3);
                    cJSON_AddNumberToObject(e, "gflops_dense_equiv", dense_flop / s * 1e-9);
                    cJSON_AddNumberToObject(e, "gflops_useful", density * dense_flop / s * 1e-9);
                    cJSON_AddNumberToObject(e, "best_dense_ms", best_s * 1e3);
                    cJSON_AddStringToObject(e, "best_dense_backend", nmf_gemm_backend_name(best_be));
                    for (int be = 0; be < NMF_GEMM_BACKEND_COUNT; be++)
                        if (backend_s[be] > 0) {
                            char key[48];
                            snprintf(key, sizeof key, "%s_ms", nmf_gemm_backend_name((nmf_gemm_backend)be));
                            cJSON_AddNumberToObject(e, key, backend_s[be] * 1e3);
                        }
                    cJSON_AddNumberToObject(e, "speedup_vs_best_dense", best_s / s);
                    if (dense_s > 0) cJSON_AddNumberToObject(e, "speedup_vs_dense", dense_s / s);
                    cJSON_AddNumberToObject(e, "weight_bytes", (double)wb);
                    cJSON_AddNumberToObject(e, "bytes_ratio", ratio);
                    cJSON_AddNumberToObject(e, "peak_gflops", cell_peak); /* int8: GOP/s */
                    cJSON_AddNumberToObject(e, "frac_peak",
                                            density * dense_flop / s * 1e-9 / cell_peak);
                    cJSON_AddItemToArray(arr, e);
                } else {
                    char vs_dense[16] = "-";
                    if (dense_s > 0) snprintf(vs_dense, sizeof vs_dense, "%.2fx", dense_s / s);
                    const double useful = density * dense_flop / s * 1e-9;
                    if (nmf_linear_precision(c.lin) == NMF_PREC_F32 && useful / peak > f32_frac_max)
                        f32_frac_max = useful / peak;
                    printf("%6zu %6zu %6zu %-7s %-11s %10.4f %10.1f %10.1f %5.0f%% %8.2fx %-8s %9s %7.2fx\n",
                           out, in, c.tokens, name, nmf_linear_kernel_name(c.lin, c.tokens), s * 1e3,
                           dense_flop / s * 1e-9, useful, 100.0 * useful / cell_peak, best_s / s,
                           nmf_gemm_backend_name(best_be), vs_dense, ratio);
                    fflush(stdout);
                }
            }
        }
        for (int li = 0; li < o.npats * o.nprecs; li++) nmf_linear_free(lins[li]);
        nmf_free(w);
        nmf_free(wt);
        nmf_free(x);
        nmf_free(y);
    }
    if (o.json && !rc) {
        char *text = cJSON_Print(arr);
        if (!text) {
            rc = 1;
            fprintf(stderr, "nmformer bench gemm: out of memory\n");
        } else {
            printf("%s\n", text);
            cJSON_free(text);
        }
    }
    /* The probe runs once, first: on a shared host it can land in a slow moment, and then every
     * "% peak" reads high. An f32 product cannot beat the FMA loop; if one did, say so. */
    if (!o.json && !rc && f32_frac_max > 1.0)
        printf("note: an f32 product ran at %.0f%% of the measured FMA peak: the probe (%.1f "
               "GFLOP/s) ran slow (a busy host?), so the %% peak column reads high; rerun\n",
               100.0 * f32_frac_max, peak);
    cJSON_Delete(arr);
    free(samples);
    return rc;
}
