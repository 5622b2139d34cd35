/* nmformer bench model MODEL | --shape NAME --pattern LIST   [--json] [options]
 *
 * For every candidate: median wall time of one forward pass for each (threads, batch), hence
 * latency per image and images/s, plus the peak resident memory and the file size. Token models
 * (BERT, GPT-2, LLaMA): the prefill of T tokens per sequence and, for decoders, G decode steps of
 * one token each against the key/value cache (median over --reps of each). Each candidate
 * runs in its own forked child so that its peak RSS (getrusage) is its own and not the maximum
 * over everything measured before it; the parent does no OpenMP work before forking. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/model_cli.h"
#include "nmformer/io.h"
#include "nmformer/kernels.h"
#include "nmformer/lm.h"
#include "nmformer/model.h"

static const char about_format[] =
    "Latency and throughput of every candidate of a model file (or of the listed candidates),\n"
    "or of a named shape with random weights at its real size: %s.\n"
    "ViT: one forward pass of a batch of images. Token models: the prefill of --tokens T per\n"
    "sequence (BERT: the forward; GPT-2 / LLaMA: the prompt into the key/value cache, logits of\n"
    "the last position), then for decoders --new-tokens G cached steps of one token each.\n";

#define MAX_LIST 16
#define MAX_CANDIDATES 64

typedef struct {
    char candidate[32];
    int threads, batch;
    double latency_ms, ms_per_image, images_per_s, peak_rss_mb, weight_mb;
    /* token models */
    int token, decoder, tokens, new_tokens;
    double prefill_ms, decode_ms; /* decode_ms: one step of the batch (median over reps) */
} bench_row;

typedef struct {
    const char *model_path, *shape;
    int threads[MAX_LIST], nthreads;
    int batch[MAX_LIST], nbatch;
    int reps, tokens, new_tokens;
    nmf_precision prec;
    cli_config_flags flags; /* config for safetensors files without one */
} bench_opts;

static int parse_int_list(const char *text, int *out, int *count, long hi) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    *count = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (*count >= MAX_LIST || model_cli_int(tok, 1, hi, &v)) return 1;
        out[(*count)++] = (int)v;
    }
    return *count == 0;
}

static int split_names(const char *text, char names[][32], int *count) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", text);
    *count = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*count >= MAX_CANDIDATES || strlen(tok) >= 32) return 1;
        snprintf(names[(*count)++], 32, "%s", tok);
    }
    return *count == 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int full_write(int fd, const void *data, size_t size) {
    const char *p = data;
    while (size) {
        ssize_t w = write(fd, p, size);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 1;
        p += w;
        size -= (size_t)w;
    }
    return 0;
}

static size_t full_read(int fd, void *data, size_t size) {
    char *p = data;
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, p + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    return got;
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Deterministic token ids in [0, vocab). */
static void random_ids(int64_t *ids, size_t n, int vocab, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int64_t)((seed >> 33) % (uint64_t)vocab);
    }
}

/* One (threads, batch) of a token model: prefill (BERT: the forward) and the decode steps, each a
 * median over o->reps after one untimed run (arena, caches, thread pool). */
static nmf_status measure_token(nmf_lm *m, const bench_opts *o, size_t B, bench_row *row) {
    const nmf_model_config *c = nmf_lm_get_config(m);
    const int decoder = c->hf.model_type != NMF_HF_BERT;
    const size_t T = (size_t)o->tokens, G = decoder ? (size_t)o->new_tokens : 0;
    if (T + G > (size_t)c->hf.max_position_embeddings)
        return nmf_error(NMF_ERR_INVALID_ARG, "--tokens %zu + --new-tokens %zu exceed the model's %d "
                         "positions", T, G, c->hf.max_position_embeddings);
    const size_t out_floats = decoder ? B * (size_t)c->hf.vocab_size : nmf_lm_output_floats(m, B, T);
    int64_t *ids = malloc(B * (T + G + 1) * sizeof *ids);
    float *out = nmf_alloc(out_floats, sizeof(float));
    double *pre = malloc((size_t)o->reps * sizeof(double)), *dec = malloc((size_t)o->reps * sizeof(double));
    nmf_kv_cache *cache = NULL;
    nmf_status st = ids && out && pre && dec ? NMF_OK : nmf_error(NMF_ERR_NOMEM, "benchmark buffers");
    if (!st) random_ids(ids, B * (T + G + 1), c->hf.vocab_size, 12345);
    if (!st && decoder) st = nmf_kv_cache_create(&cache, m, B, T + G);
    int64_t *step = ids + B * T; /* the decode steps' tokens: (G, B), fixed so runs compare */
    for (int r = -1; st == NMF_OK && r < o->reps; r++) {
        double t0 = nmf_now();
        if (decoder) {
            nmf_kv_cache_reset(cache);
            st = nmf_lm_forward_cached(m, cache, out, ids, T, 1);
        } else {
            st = nmf_lm_forward(m, out, ids, B, T, NULL);
        }
        double t1 = nmf_now();
        for (size_t g = 0; st == NMF_OK && g < G; g++) /* B sequences of one token each */
            st = nmf_lm_forward_cached(m, cache, out, step + g * B, 1, 1);
        if (r >= 0) pre[r] = t1 - t0, dec[r] = G ? (nmf_now() - t1) / (double)G : 0.0;
    }
    if (st == NMF_OK) {
        row->token = 1;
        row->decoder = decoder;
        row->tokens = (int)T;
        row->new_tokens = (int)G;
        row->prefill_ms = 1e3 * median(pre, o->reps);
        row->decode_ms = G ? 1e3 * median(dec, o->reps) : 0.0;
        row->latency_ms = row->prefill_ms;
        row->ms_per_image = row->prefill_ms / (double)B;
        row->images_per_s = 1e3 * (double)B / row->prefill_ms;
        row->weight_mb = (double)nmf_lm_weight_bytes(m) / (1024.0 * 1024.0);
    }
    nmf_kv_cache_free(cache);
    free(ids);
    nmf_free(out);
    free(pre);
    free(dec);
    return st;
}

/* The candidate as a token model (*lm) or a ViT (*vit). */
static nmf_status build_candidate(const bench_opts *o, const char *candidate, nmf_vit **vit, nmf_lm **lm) {
    nmf_model_config c;
    nmf_status st;
    if (o->shape) {
        nmf_pattern p = {0, 0};
        st = nmf_model_shape_config(o->shape, &c);
        if (st == NMF_OK && strcmp(candidate, "dense")) st = nmf_pattern_parse(candidate, &p);
        if (st) return st;
        return nmf_model_is_token(&c) ? nmf_lm_create_random(lm, &c, p, 42)
                                      : nmf_vit_create_random(vit, &c, p, 42);
    }
    const char *name = strcmp(candidate, "-") ? candidate : NULL;
    if (model_cli_is_token(o->model_path)) /* in f32, a family candidate built layer by layer */
        return model_cli_lm_load(lm, o->model_path, name, &o->flags, NMF_PREC_F32);
    nmf_config_overrides ov; /* a ViT in f32 (--precision is set on it), read layer by layer too */
    st = cli_config_overrides(&o->flags, &ov);
    return st ? st : nmf_vit_load_with(vit, o->model_path, name, NULL, &ov, NMF_PREC_F32);
}

/* Child: build one candidate, measure every (threads, batch), send rows, exit. */
static int child_measure(const bench_opts *o, const char *candidate, int fd) {
    nmf_vit *m = NULL;
    nmf_lm *lm = NULL;
    nmf_status st = build_candidate(o, candidate, &m, &lm);
    if (st) return cli_fail("bench model", o->shape ? o->shape : o->model_path, st);
    char label[32]; /* the candidate, with its precision unless f32 */
    snprintf(label, sizeof label, "%.31s", candidate);
    nmf_precision prec = o->prec; /* not given: the candidate's default, else f32 */
    if (!o->shape) st = model_cli_precision(o->model_path, strcmp(candidate, "-") ? candidate : NULL, &prec);
    if (prec == NMF_PREC_COUNT) prec = NMF_PREC_F32;
    if (st == NMF_OK && prec != NMF_PREC_F32) {
        st = m ? nmf_vit_set_precision(m, prec) : nmf_lm_set_precision(lm, prec);
        if (st == NMF_OK)
            snprintf(label, sizeof label, "%.20s@%s", candidate, nmf_precision_name(prec));
        else if (st == NMF_ERR_UNSUPPORTED) /* a layer the precision cannot hold: f32 */
            st = NMF_OK;
    }
    if (st) {
        nmf_vit_free(m);
        nmf_lm_free(lm);
        return cli_fail("bench model", candidate, st);
    }
    bench_row rows[MAX_LIST * MAX_LIST];
    int nrows = 0;
    if (lm) {
        for (int ti = 0; st == NMF_OK && ti < o->nthreads; ti++) {
            nmf_set_threads(o->threads[ti]);
            for (int bi = 0; st == NMF_OK && bi < o->nbatch; bi++) {
                bench_row *row = &rows[nrows];
                memset(row, 0, sizeof *row);
                snprintf(row->candidate, sizeof row->candidate, "%.31s", label);
                row->threads = o->threads[ti];
                row->batch = o->batch[bi];
                if ((st = measure_token(lm, o, (size_t)o->batch[bi], row)) == NMF_OK) nrows++;
            }
        }
        nmf_lm_free(lm);
        goto send;
    }
    const nmf_model_config *c = nmf_vit_get_config(m);
    size_t per_image = (size_t)c->in_chans * (size_t)c->img_size * (size_t)c->img_size;
    int max_batch = 1;
    for (int i = 0; i < o->nbatch; i++) max_batch = o->batch[i] > max_batch ? o->batch[i] : max_batch;
    float *x = malloc((size_t)max_batch * per_image * sizeof(float));
    float *logits = malloc((size_t)max_batch * (size_t)c->num_classes * sizeof(float));
    double *times = malloc((size_t)o->reps * sizeof(double));
    if (!x || !logits || !times) st = nmf_error(NMF_ERR_NOMEM, "benchmark buffers");
    uint64_t s = 12345;
    for (size_t i = 0; x && i < (size_t)max_batch * per_image; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 4.0 - 2.0);
    }
    for (int ti = 0; st == NMF_OK && ti < o->nthreads; ti++) {
        nmf_set_threads(o->threads[ti]);
        for (int bi = 0; st == NMF_OK && bi < o->nbatch; bi++) {
            size_t B = (size_t)o->batch[bi];
            st = nmf_vit_forward(m, logits, x, B); /* warm-up: arena, caches, thread pool */
            for (int r = 0; st == NMF_OK && r < o->reps; r++) {
                double t0 = nmf_now();
                st = nmf_vit_forward(m, logits, x, B);
                times[r] = nmf_now() - t0;
            }
            if (st) break;
            double med = median(times, o->reps);
            bench_row *row = &rows[nrows++];
            memset(row, 0, sizeof *row);
            snprintf(row->candidate, sizeof row->candidate, "%.31s", label);
            row->threads = o->threads[ti];
            row->batch = (int)B;
            row->latency_ms = 1e3 * med;
            row->ms_per_image = 1e3 * med / (double)B;
            row->images_per_s = (double)B / med;
            row->weight_mb = (double)nmf_vit_weight_bytes(m) / (1024.0 * 1024.0);
        }
    }
    free(x);
    free(logits);
    free(times);
    nmf_vit_free(m);
send:;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    for (int i = 0; i < nrows; i++) rows[i].peak_rss_mb = (double)ru.ru_maxrss / 1024.0;
    if (st) return cli_fail("bench model", candidate, st);
    if (full_write(fd, &nrows, sizeof nrows) || full_write(fd, rows, (size_t)nrows * sizeof rows[0])) {
        fprintf(stderr, "nmformer bench model: cannot send results to the parent process\n");
        return 1;
    }
    return 0;
}

/* Runs fn(o, candidate, fd) in a child; appends what it sends to rows. */
static int run_child(const bench_opts *o, const char *candidate, bench_row *rows, int *nrows,
                     int cap) {
    int fds[2];
    if (pipe(fds)) {
        fprintf(stderr, "nmformer bench model: pipe: %s\n", strerror(errno));
        return 1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "nmformer bench model: fork: %s\n", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return 1;
    }
    if (pid == 0) {
        close(fds[0]);
        int rc = child_measure(o, candidate, fds[1]);
        close(fds[1]);
        fflush(NULL);
        _exit(rc);
    }
    close(fds[1]);
    int n = 0, failed = 0;
    if (full_read(fds[0], &n, sizeof n) != sizeof n || n < 0 || *nrows + n > cap) failed = 1;
    if (!failed && full_read(fds[0], rows + *nrows, (size_t)n * sizeof rows[0]) !=
                       (size_t)n * sizeof rows[0])
        failed = 1;
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status))
            fprintf(stderr, "nmformer bench model: %s: killed by signal %d\n", candidate,
                    WTERMSIG(status));
        return 1;
    }
    if (failed) {
        fprintf(stderr, "nmformer bench model: %s: no results from the measuring process\n", candidate);
        return 1;
    }
    *nrows += n;
    return 0;
}

/* Candidate names of a family file, read in a child (the parent stays small and OpenMP-free). */
static int list_candidates(const char *path, char names[][32], int *count) {
    int fds[2];
    if (pipe(fds)) return 1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return 1;
    }
    if (pid == 0) {
        close(fds[0]);
        nmf_family_file *f = NULL; /* the table only: no payload is read */
        nmf_status st = nmf_family_open(path, &f);
        int rc = 0;
        if (st) rc = cli_fail("bench model", path, st);
        else {
            size_t count = nmf_family_file_count(f);
            int n = (int)(count < MAX_CANDIDATES ? count : MAX_CANDIDATES);
            rc = full_write(fds[1], &n, sizeof n);
            for (int i = 0; !rc && i < n; i++) {
                char name[32] = {0};
                snprintf(name, sizeof name, "%s", nmf_family_file_name(f, (size_t)i));
                rc = full_write(fds[1], name, 32);
            }
        }
        nmf_family_close(f);
        close(fds[1]);
        _exit(rc);
    }
    close(fds[1]);
    int n = 0, bad = full_read(fds[0], &n, sizeof n) != sizeof n || n < 0 || n > MAX_CANDIDATES;
    for (int i = 0; !bad && i < n; i++) {
        bad = full_read(fds[0], names[i], 32) != 32;
        names[i][31] = '\0';
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (bad || !WIFEXITED(status) || WEXITSTATUS(status)) return 1;
    *count = n;
    return 0;
}

static void print_rows(const bench_opts *o, const bench_row *rows, int n, int json, double file_mb) {
    const char *label = o->shape ? o->shape : o->model_path;
    if (!o->shape && strrchr(label, '/')) label = strrchr(label, '/') + 1;
    char dense[128]; /* what runs our dense products: library, version, kernel */
    nmf_gemm_backend_describe(nmf_gemm_backend_active(), dense, sizeof dense);
    if (json) {
        printf("[\n");
        for (int i = 0; i < n; i++) {
            const bench_row *r = &rows[i];
            char model[512];
            snprintf(model, sizeof model, "%s/%s", label, r->candidate);
            printf("  {\"framework\": \"nmformer\", \"model\": ");
            model_cli_json_string(stdout, model);
            printf(", \"candidate\": ");
            model_cli_json_string(stdout, r->candidate);
            printf(", \"threads\": %d, \"batch\": %d, \"latency_ms\": %.4f, \"ms_per_image\": %.4f, "
                   "\"images_per_s\": %.3f, \"peak_rss_mb\": %.1f, ",
                   r->threads, r->batch, r->latency_ms, r->ms_per_image, r->images_per_s,
                   r->peak_rss_mb);
            if (file_mb >= 0) printf("\"file_mb\": %.3f, ", file_mb);
            else printf("\"file_mb\": null, ");
            if (r->token) {
                printf("\"tokens\": %d, \"prefill_ms\": %.4f, \"prefill_tokens_per_s\": %.3f, ",
                       r->tokens, r->prefill_ms, 1e3 * (double)(r->batch * r->tokens) / r->prefill_ms);
                if (r->decoder && r->new_tokens)
                    printf("\"new_tokens\": %d, \"decode_ms_per_token\": %.4f, "
                           "\"decode_tokens_per_s\": %.3f, ",
                           r->new_tokens, r->decode_ms, 1e3 * (double)r->batch / r->decode_ms);
            }
            printf("\"weight_mb\": %.3f, \"isa\": \"%s\", \"dense_backend\": ", r->weight_mb,
                   nmf_isa_name(nmf_active_isa()));
            model_cli_json_string(stdout, dense);
            printf("}%s\n", i + 1 < n ? "," : "");
        }
        printf("]\n");
        return;
    }
    printf("N:M kernels: %s; dense products: %s%s\n", nmf_isa_name(nmf_active_isa()), dense,
           nmf_gemm_backend_generic(nmf_gemm_backend_active()) ? " (WARNING: generic kernel)" : "");
    if (n > 0 && rows[0].token) { /* prefill and decode, per token */
        printf("%-24s %7s %5s %6s %11s %10s %6s %11s %10s %11s %9s %9s\n", "model", "threads", "batch",
               "tokens", "prefill_ms", "prefill/s", "new", "decode_ms", "decode/s", "peak_rss_mb",
               "file_mb", "weight_mb");
        for (int i = 0; i < n; i++) {
            const bench_row *r = &rows[i];
            char model[512], file[32], dms[32] = "-", dps[32] = "-";
            snprintf(model, sizeof model, "%s/%s", label, r->candidate);
            if (file_mb >= 0) snprintf(file, sizeof file, "%.2f", file_mb);
            else snprintf(file, sizeof file, "-");
            if (r->decoder && r->new_tokens) {
                snprintf(dms, sizeof dms, "%.3f", r->decode_ms);
                snprintf(dps, sizeof dps, "%.2f", 1e3 * (double)r->batch / r->decode_ms);
            }
            printf("%-24s %7d %5d %6d %11.3f %10.1f %6d %11s %10s %11.1f %9s %9.2f\n", model, r->threads,
                   r->batch, r->tokens, r->prefill_ms,
                   1e3 * (double)(r->batch * r->tokens) / r->prefill_ms, r->new_tokens, dms, dps,
                   r->peak_rss_mb, file, r->weight_mb);
        }
        printf("(prefill/s: prompt tokens per second; decode_ms: one cached step of the batch, "
               "averaged over the new tokens; both medians over --reps; decode/s: new tokens per "
               "second)\n");
        return;
    }
    printf("%-28s %7s %5s %12s %12s %10s %11s %9s %9s\n", "model", "threads", "batch",
           "latency_ms", "ms/image", "images/s", "peak_rss_mb", "file_mb", "weight_mb");
    for (int i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        char model[512], file[32];
        snprintf(model, sizeof model, "%s/%s", label, r->candidate);
        if (file_mb >= 0) snprintf(file, sizeof file, "%.2f", file_mb);
        else snprintf(file, sizeof file, "-");
        printf("%-28s %7d %5d %12.3f %12.3f %10.2f %11.1f %9s %9.2f\n", model, r->threads, r->batch,
               r->latency_ms, r->ms_per_image, r->images_per_s, r->peak_rss_mb, file, r->weight_mb);
    }
}

int bench_model(int argc, char **argv) {
    bench_opts o;
    memset(&o, 0, sizeof o);
    o.prec = NMF_PREC_COUNT; /* not given: each candidate's default precision, else f32 */
    const char *patterns = NULL, *models = NULL, *threads = NULL, *batches = NULL;
    int json = 0, quick = 0, reps = 0, tokens = -1, new_tokens = -1;
    const cli_opt opts[] = {
        CLI_STR("shape", 0, &o.shape, "NAME", "a named shape (see above) instead of MODEL"),
        CLI_STR("model", 'm', &models, "LIST", "candidates of a family file to run (default: all)"),
        CLI_STR("pattern", 'p', &patterns, "LIST", "with --shape: dense and/or N:M patterns\n(default dense,2:8,1:8)"),
        CLI_ALIAS("patterns", "pattern"),
        CLI_STR("threads", 'j', &threads, "LIST", "thread counts (default 1,2)"),
        CLI_STR("batch", 'b', &batches, "LIST", "batch sizes (default 1,32; token models: 1)"),
        CLI_INT("tokens", 0, &tokens, 1, 1 << 20, "T", "token models: prompt tokens per sequence\n(default 128)"),
        CLI_INT("new-tokens", 0, &new_tokens, 0, 1 << 20, "G", "decoders: decode steps after the prompt\n"
                "(default 128; 0: prefill only)"),
        CLI_INT("reps", 0, &reps, 1, 100000, "N", "timed runs per setting, median reported\n(default 5)"),
        CLI_FN("precision", 0, cli_parse_precision, &o.prec, "P", "f32, bf16 or int8 for the block linears, dense\n"
               "or N:M (int8: a ViT's attention and patch\nembedding too; named CANDIDATE@P; default: the\ncandidate's default precision, else f32)"),
        CLI_FLAG("quick", 0, &quick, "smoke test: --reps 1 --batch 1,2 --threads 1\n(token models: "
                 "--batch 1 --tokens 16\n--new-tokens 4) unless given"),
        CLI_FLAG("json", 0, &json, "JSON array, one object per (candidate, threads,\nbatch) with model, "
                 "candidate, threads, batch,\nlatency_ms (one forward pass), ms_per_image,\n"
                 "images_per_s, peak_rss_mb, file_mb, weight_mb;\ntoken models: tokens, prefill_ms,\n"
                 "prefill_tokens_per_s, and for decoders\nnew_tokens, decode_ms_per_token (one step "
                 "of\nthe batch), decode_tokens_per_s"),
        CLI_CONFIG_OPTS(&o.flags),
        CLI_END,
    };
    char shapes[512], about[2048];
    snprintf(about, sizeof about, about_format, cli_shape_names(shapes, sizeof shapes));
    const cli_command cmd = {"bench model", "MODEL [options]\nnmformer bench model --shape NAME "
                             "[--pattern LIST] [options]", about, opts, {&o.model_path}, NULL};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_GO_ON) return rc;
    if (!!o.model_path == !!o.shape)
        return cli_usage_error("bench model", "give either MODEL or --shape NAME (see --help)");
    int token = 0; /* a token model: batch 1 by default */
    if (o.shape) {
        nmf_model_config c;
        nmf_status st = nmf_model_shape_config(o.shape, &c);
        if (st) return cli_usage_error("bench model", "--shape: %s", nmf_last_error()); /* a bad value */
        token = nmf_model_is_token(&c);
        if (models)
            return cli_usage_error("bench model", "--model is for files; use --pattern with --shape");
    } else if (patterns) {
        return cli_usage_error("bench model", "--pattern is for --shape; use --model with a file");
    }
    if (parse_int_list(threads ? threads : quick ? "1" : "1,2", o.threads, &o.nthreads, 4096))
        return cli_usage_error("bench model", "--threads wants a list like 1,2 (at most %d)", MAX_LIST);
    nmf_file_kind kind = NMF_FILE_UNKNOWN;
    if (!o.shape && cli_file_kind("bench model", o.model_path, &kind)) return CLI_EXIT_FAILURE;
    if (!o.shape) token = kind == NMF_FILE_HF_FOLDER; /* a Hugging Face folder holds a token model */
    o.tokens = tokens >= 0 ? (int)tokens : quick ? 16 : 128;
    o.new_tokens = new_tokens >= 0 ? (int)new_tokens : quick ? 4 : 128;
    if (parse_int_list(batches ? batches : token ? "1" : quick ? "1,2" : "1,32", o.batch, &o.nbatch, 4096))
        return cli_usage_error("bench model", "--batch wants a list like 1,32 (at most %d)", MAX_LIST);
    o.reps = reps ? (int)reps : quick ? 1 : 5;

    static char names[MAX_CANDIDATES][32];
    int count = 0;
    double file_mb = -1.0;
    if (o.shape) {
        if (split_names(patterns ? patterns : "dense,2:8,1:8", names, &count))
            return cli_usage_error("bench model", "--pattern wants a list like dense,2:8,1:8");
        for (int i = 0; i < count; i++) {
            nmf_pattern p;
            if (strcmp(names[i], "dense") && nmf_pattern_parse(names[i], &p))
                return cli_usage_error("bench model", "--pattern: %s", nmf_last_error());
        }
    } else {
        struct stat sb;
        if (stat(o.model_path, &sb)) {
            fprintf(stderr, "nmformer bench model: %s: %s\n", o.model_path, strerror(errno));
            return 1;
        }
        file_mb = S_ISDIR(sb.st_mode) ? -1.0 : (double)sb.st_size / (1024.0 * 1024.0); /* a folder: - */
        if (models) {
            if (split_names(models, names, &count))
                return cli_usage_error("bench model", "--model wants a list like dense,2:8");
        } else if (kind == NMF_FILE_NMF) {
            if (list_candidates(o.model_path, names, &count)) return 1;
        } else {
            snprintf(names[0], 32, "-"); /* the file's only model */
            count = 1;
        }
    }
    bench_row *rows = calloc((size_t)MAX_CANDIDATES * MAX_LIST * MAX_LIST, sizeof *rows);
    if (!rows) return cli_fail("bench model", "results", nmf_error(NMF_ERR_NOMEM, "rows"));
    int nrows = 0;
    rc = 0;
    for (int i = 0; i < count && rc == 0; i++)
        rc = run_child(&o, names[i], rows, &nrows, MAX_CANDIDATES * MAX_LIST * MAX_LIST);
    if (rc == 0) {
        for (int i = 0; i < nrows; i++)
            if (!strcmp(rows[i].candidate, "-")) snprintf(rows[i].candidate, 32, "dense");
        print_rows(&o, rows, nrows, json, file_mb);
    }
    free(rows);
    return rc;
}
