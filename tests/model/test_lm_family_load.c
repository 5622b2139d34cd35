/* A token model's family candidate built layer by layer for every command that runs one
 * (nmf_lm_load_with, which `run`, `generate` and `bench model` load with):
 * - every candidate of families pruned from the fixtures (GPT-2's [in, out] weights in f32, LLaMA
 *   in f32, a tied LLaMA stored bf16), at every precision (as stored, f32, bf16, int8), gives bit
 *   for bit the outputs of the whole-candidate path it replaced (nmf_load_model[_keep16] +
 *   nmf_lm_create_from + nmf_lm_set_precision), at every ISA, or fails with the same status;
 * - `run` prints those outputs, bit for bit (the CLI, one thread);
 * - 16-bit weights are used in place from the mapped file: loading a bf16 dense candidate adds
 *   its bytes to file-backed memory and next to none to anonymous memory (the copying path: the
 *   reverse); a corrupt payload of a tensor used in place (a dense block linear, the embedding
 *   every candidate shares) is NMF_ERR_CHECKSUM naming it, from exactly the loads that use it;
 * - `run` on the 4:8 candidate of a random bf16 LLaMA (23 M parameters) peaks (the child's
 *   ru_maxrss) under the CLI's own footprint + 1.5 x the candidate's stored bytes, which the
 *   replaced path (the candidate read whole, N:M values decoded to f32, then built and run)
 *   exceeds. */
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/io_internal.h"
#include "io/io_test_util.h"
#include "model/lm_test_util.h"
#include "nmformer/kernels.h"
#include "vm_budget.h"

static const nmf_pattern pats[3] = {{4, 8}, {2, 8}, {1, 8}};
static const char *const cand_names[4] = {"dense", "4:8", "2:8", "1:8"};

/* src pruned to dense + 4:8, 2:8, 1:8, written to tmp/file as dtype. */
static const char *write_family(const char *file, const char *src, nmf_dtype dtype) {
    return family_write_pruned(file, src, pats, 3, dtype);
}

/* The path nmf_lm_load_with replaced: the candidate read whole, then built, then converted. */
static nmf_status load_whole(nmf_lm **m, const char *path, const char *name, nmf_precision prec) {
    nmf_model_config c;
    nmf_tensor_set s;
    *m = NULL;
    nmf_status st = prec == NMF_PREC_COUNT ? nmf_load_model_keep16(path, name, NULL, NULL, &c, &s)
                                           : nmf_load_model(path, name, NULL, &c, &s);
    if (st == NMF_OK) st = nmf_lm_create_from(m, &c, &s);
    nmf_tensors_free(&s);
    if (st == NMF_OK && (prec == NMF_PREC_BF16 || prec == NMF_PREC_INT8)) st = nmf_lm_set_precision(*m, prec);
    if (st) {
        nmf_lm_free(*m);
        *m = NULL;
    }
    return st;
}

static void fixed_ids(int64_t *ids, size_t n, const nmf_lm *m) {
    const size_t V = (size_t)nmf_lm_get_config(m)->hf.vocab_size;
    for (size_t i = 0; i < n; i++) ids[i] = (int64_t)((i * 7 + 3) % V);
}

static void same_as_whole(const char *fam, const char *label) {
    int64_t ids[10];
    for (int k = 0; k < 4; k++)
        for (int p = 0; p <= NMF_PREC_COUNT; p++) {
            const nmf_precision prec = (nmf_precision)p;
            nmf_lm *a = NULL, *b = NULL;
            const nmf_status sa = nmf_lm_load_with(&a, fam, cand_names[k], NULL, prec);
            const nmf_status sb = load_whole(&b, fam, cand_names[k], prec);
            CHECK_MSG(sa == sb, "%s %s prec %d: layer by layer %s, whole %s (%s)", label, cand_names[k], p,
                      nmf_strerror(sa), nmf_strerror(sb), nmf_last_error());
            if (!sa && !sb) {
                CHECK(nmf_lm_weight_bytes(a) == nmf_lm_weight_bytes(b));
                const size_t n = nmf_lm_output_floats(a, 2, 5);
                float *ya = malloc(n * sizeof *ya), *yb = malloc(n * sizeof *yb);
                fixed_ids(ids, 10, a);
                const nmf_isa best = nmf_cpu_best_isa();
                for (int isa = NMF_ISA_SCALAR; isa <= (int)best; isa++) {
                    nmf_set_isa((nmf_isa)isa);
                    CHECK_OK(nmf_lm_forward(a, ya, ids, 2, 5, NULL));
                    CHECK_OK(nmf_lm_forward(b, yb, ids, 2, 5, NULL));
                    CHECK_MSG(!memcmp(ya, yb, n * sizeof *ya), "%s %s prec %d (%s): outputs differ", label,
                              cand_names[k], p, nmf_isa_name((nmf_isa)isa));
                }
                nmf_set_isa(best);
                free(ya), free(yb);
            }
            nmf_lm_free(a);
            nmf_lm_free(b);
        }
}

/* ---- a corrupt payload of a tensor used in place ---- */

/* Tensors a bf16 family's candidates use in place (the dense candidate's block linears, the
 * embedding every candidate shares): a flipped byte is NMF_ERR_CHECKSUM naming the tensor, from
 * every load that uses it and only those; never a crash. */
static void corrupt_in_place(const char *fam) {
    const char *victims[2][2] = {{"dense", "model.layers.1.mlp.up_proj.weight"},
                                 {"2:8", "model.embed_tokens.weight"}};
    for (int v = 0; v < 2; v++) {
        unsigned users = 0;
        const char *q = family_corrupt_copy(fam, victims[v][0], victims[v][1], "corrupt.nmf", &users);
        CHECK(users != 0 && (v == 0 ? users == 1u : users == 15u)); /* the embedding: all four */
        for (int k = 0; k < 4; k++) {
            nmf_lm *m = NULL;
            if (users & (1u << k)) {
                CHECK_FAILS(nmf_lm_load(&m, q, cand_names[k]), NMF_ERR_CHECKSUM, victims[v][1]);
                CHECK(m == NULL);
            } else {
                CHECK_OK(nmf_lm_load(&m, q, cand_names[k]));
            }
            nmf_lm_free(m);
        }
        unlink(q);
    }
}

/* ---- the CLI ---- */

/* Runs the CLI with argv (NULL-terminated) in a child; its exit status, and its peak RSS in bytes
 * when maxrss is not NULL. This process's own RSS at the fork counts in the child's peak (exec
 * keeps the larger): callers fork with only small allocations live. */
static int cli(char *const argv[], size_t *maxrss) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("NMF_THREADS", "1", 1);
        setenv("OMP_NUM_THREADS", "1", 1);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    CHECK(wait4(pid, &status, 0, &ru) == pid);
    if (maxrss) *maxrss = (size_t)ru.ru_maxrss * 1024;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static const char *cli_path(void) {
    const char *p = getenv("NMF_CLI");
    return p && *p ? p : NULL;
}

/* `run FAM --model NAME` (one thread) against the whole-candidate path, bit for bit. */
static void run_equals_whole(const char *fam, const char *name, const char *label) {
    nmf_lm *b = NULL;
    CHECK_OK(load_whole(&b, fam, name, NMF_PREC_COUNT));
    if (!b) return;
    int64_t ids[10];
    fixed_ids(ids, 10, b);
    const int64_t shape[2] = {2, 5};
    char in[512], out[512];
    snprintf(in, sizeof in, "%s", tmp_path("ids.npy"));
    snprintf(out, sizeof out, "%s", tmp_path("out.npy"));
    CHECK_OK(nmf_npy_write_ids(in, ids, 2, shape));
    char *argv[] = {(char *)cli_path(), "run", (char *)fam, "--model", (char *)name, "--input", in,
                    "--output", out, "-j", "1", NULL};
    CHECK_MSG(cli(argv, NULL) == 0, "%s: run %s failed", label, name);
    const int threads = nmf_get_threads();
    nmf_set_threads(1);
    const size_t n = nmf_lm_output_floats(b, 2, 5);
    float *want = malloc(n * sizeof *want);
    CHECK_OK(nmf_lm_forward(b, want, ids, 2, 5, NULL));
    nmf_set_threads(threads);
    nmf_array got;
    memset(&got, 0, sizeof got);
    CHECK_OK(nmf_npy_read(out, &got));
    CHECK_MSG(got.numel == n && !memcmp(got.data, want, n * sizeof *want), "%s %s: run's outputs differ",
              label, name);
    nmf_array_free(&got);
    free(want);
    nmf_lm_free(b);
}

/* ---- peak memory of `run` on a candidate of a random bf16 LLaMA ---- */

static const char big_config[] =
    "{\"model_type\":\"llama\",\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":512,"
    "\"num_hidden_layers\":6,\"num_attention_heads\":8,\"num_key_value_heads\":2,"
    "\"intermediate_size\":1536,\"vocab_size\":4096,\"max_position_embeddings\":64,"
    "\"rms_norm_eps\":1e-05,\"rope_theta\":10000.0,\"tie_word_embeddings\":false}";

/* A family dense + 4:8 (random weights by role, stored bf16) at path. */
static void write_big(const char *path) {
    nmf_hf_config hf;
    CHECK_OK(nmf_hf_config_parse(big_config, strlen(big_config), "big config", &hf));
    nmf_model_config c;
    CHECK_OK(nmf_model_config_from_hf(&c, &hf, NULL));
    nmf_model_desc d;
    CHECK_OK(nmf_model_describe(&d, &c));
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    uint64_t rng = 17;
    for (size_t i = 0; i < d.count; i++) {
        nmf_tensor *t = NULL;
        CHECK_OK(nmf_tensors_add_dense(&s, d.params[i].name, d.params[i].ndim, d.params[i].shape, NULL, &t));
        if (t) nmf_param_role_init(nmf_param_kind_of(&d, &d.params[i])->role, t->data, t->numel, &rng);
    }
    nmf_model_desc_free(&d);
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = c;
    const nmf_write_options o = {NMF_DTYPE_BF16};
    CHECK_OK(nmf_family_prune(&fam, &c, &s, pats, 1, 1, NULL));
    nmf_tensors_free(&s);
    CHECK_OK(nmf_family_write(path, &fam, &o));
    nmf_family_free(&fam);
}

/* Bytes of candidate k's payloads (what `info` calls its bytes). */
static size_t candidate_bytes(const char *path, size_t k) {
    nmf_family_file *f = NULL;
    CHECK_OK(nmf_family_open(path, &f));
    if (!f) return 0;
    nmf_tensor_set h;
    nmf_tensors_init(&h);
    CHECK_OK(nmf_io_family_file_headers(f, k, &h));
    size_t bytes = 0;
    for (size_t j = 0; j < h.count; j++) bytes += (size_t)nmf_io_family_file_bytes(f, k, j);
    nmf_tensors_free(&h);
    nmf_family_close(f);
    return bytes;
}

/* Peak RSS of a child that runs the 4:8 candidate on ids (1, 8) as `run` did before: read whole
 * (N:M values decoded to f32), then built. */
static size_t whole_run_peak(const char *path, const int64_t *ids) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        nmf_set_threads(1);
        nmf_lm *m = NULL;
        float *y = NULL;
        nmf_status st = load_whole(&m, path, "4:8", NMF_PREC_COUNT);
        if (st == NMF_OK) y = malloc(nmf_lm_output_floats(m, 1, 8) * sizeof *y);
        if (st == NMF_OK) st = y ? nmf_lm_forward(m, y, ids, 1, 8, NULL) : NMF_ERR_NOMEM;
        _exit(st == NMF_OK ? 0 : 1);
    }
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    CHECK(wait4(pid, &status, 0, &ru) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return (size_t)ru.ru_maxrss * 1024;
}

/* In a child: how much anonymous and file-backed resident memory loading candidate `name` adds,
 * in place (nmf_lm_load) or copied (whole: the set read keeping 16-bit values, then built).
 * got[0] anon, got[1] file; 0 when the child failed. */
static int load_rss(const char *path, const char *name, int whole, size_t got[2]) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        size_t d[2] = {test_status_kb("RssAnon") * 1024, test_status_kb("RssFile") * 1024};
        nmf_lm *m = NULL;
        nmf_status st = whole ? load_whole(&m, path, name, NMF_PREC_COUNT) : nmf_lm_load(&m, path, name);
        d[0] = test_status_kb("RssAnon") * 1024 - d[0];
        d[1] = test_status_kb("RssFile") * 1024 - d[1];
        _exit(st == NMF_OK && write(fds[1], d, sizeof d) == (ssize_t)sizeof d ? 0 : 1);
    }
    close(fds[1]);
    const ssize_t n = read(fds[0], got, 2 * sizeof *got);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return n == (ssize_t)(2 * sizeof *got) && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The dense bf16 candidate: every weight is a dense 16-bit layer read in place from the mapped file
 * (file-backed pages, shared with the page cache), so loading it adds almost no anonymous memory;
 * the copying path adds the weights' bytes of it. */
static void in_place_memory(const char *fam, size_t stored) {
    size_t in[2] = {0, 0}, copy[2] = {0, 0};
    CHECK(load_rss(fam, "dense", 0, in));
    CHECK(load_rss(fam, "dense", 1, copy));
    printf("dense candidate, %.1f MB stored: in place +%.1f MB anonymous, +%.1f MB file-backed; copied "
           "+%.1f MB anonymous, +%.1f MB file-backed\n", stored / 1e6, in[0] / 1e6, in[1] / 1e6,
           copy[0] / 1e6, copy[1] / 1e6);
    CHECK_MSG(in[0] < stored / 10, "in place: %zu anonymous bytes for %zu stored", in[0], stored);
    CHECK_MSG(in[1] > stored * 9 / 10, "in place: %zu file-backed bytes for %zu stored", in[1], stored);
    CHECK_MSG(copy[0] > stored * 9 / 10, "copied: %zu anonymous bytes for %zu stored", copy[0], stored);
}

static int write_big_child(void *path) {
    write_big(path);
    return test_failures ? 1 : 0;
}

static void run_peak_memory(void) {
    char dir[] = "/tmp/nmf_lm_peak_XXXXXX"; /* not tmpfs: the file must not sit in memory */
    CHECK(mkdtemp(dir) != NULL);
    char fam[64], ids_path[64], out[64];
    snprintf(fam, sizeof fam, "%s/big.nmf", dir);
    snprintf(ids_path, sizeof ids_path, "%s/ids.npy", dir);
    snprintf(out, sizeof out, "%s/out.npy", dir);
    /* the model is built in a child, so that this process stays small */
    CHECK(test_in_child(write_big_child, fam) == 0);
    const size_t stored = candidate_bytes(fam, 1);
    int64_t ids[8];
    for (size_t i = 0; i < 8; i++) ids[i] = (int64_t)(i * 331 % 4096);
    const int64_t shape[2] = {1, 8};
    CHECK_OK(nmf_npy_write_ids(ids_path, ids, 2, shape));
    /* the CLI's own footprint: the same command on a tiny model (vocab 75) */
    char tiny_ids[64];
    snprintf(tiny_ids, sizeof tiny_ids, "%s/tiny.npy", dir);
    for (size_t i = 0; i < 8; i++) ids[i] = (int64_t)(i * 9 % 75);
    CHECK_OK(nmf_npy_write_ids(tiny_ids, ids, 2, shape));
    size_t base = 0, peak = 0;
    char *tiny[] = {(char *)cli_path(), "run", (char *)fixture_path("llama_gqa4x1_tied_bf16", NULL),
                    "--input", tiny_ids, "--output", out, "-j", "1", NULL};
    CHECK(cli(tiny, &base) == 0);
    char *argv[] = {(char *)cli_path(), "run", fam, "--model", "4:8", "--input", ids_path, "--output", out,
                    "-j", "1", NULL};
    CHECK(cli(argv, &peak) == 0);
    const size_t bound = base + (size_t)(1.5 * (double)stored);
    for (size_t i = 0; i < 8; i++) ids[i] = (int64_t)(i * 331 % 4096);
    const size_t whole = whole_run_peak(fam, ids);
    printf("run 4:8: stored %.1f MB, CLI footprint %.1f MB, peak %.1f MB (bound %.1f MB; read whole, "
           "then built: %.1f MB)\n", stored / 1e6, base / 1e6, peak / 1e6, bound / 1e6, whole / 1e6);
    CHECK_MSG(peak <= bound, "run peaked at %zu bytes, bound %zu", peak, bound);
    CHECK_MSG(whole > bound, "the whole read (%zu bytes) fits the bound %zu: the bound proves nothing",
              whole, bound);
    in_place_memory(fam, candidate_bytes(fam, 0));
    unlink(fam);
    unlink(ids_path);
    unlink(tiny_ids);
    unlink(out);
    rmdir(dir);
}

int main(void) {
    /* first, while this process is small: its RSS at a fork counts in the child's peak */
    const int measure = cli_path() && !getenv("NMF_SANITIZED");
    if (measure) run_peak_memory();
    else printf("run's peak memory: skipped (%s)\n", cli_path() ? "sanitizers" : "NMF_CLI not set");
    const char *f32 = write_family("llama.nmf", fixture_path("llama_gqa6x2", NULL), NMF_DTYPE_F32);
    const char *gpt = write_family("gpt2.nmf", fixture_path("gpt2_lm", NULL), NMF_DTYPE_F32);
    const char *b16 = write_family("llama16.nmf", fixture_path("llama_gqa4x1_tied_bf16", NULL), NMF_DTYPE_BF16);
    same_as_whole(f32, "llama f32");
    same_as_whole(gpt, "gpt2 f32");
    same_as_whole(b16, "llama bf16");
    corrupt_in_place(b16);
    if (cli_path()) {
        run_equals_whole(b16, "2:8", "llama bf16");
        run_equals_whole(b16, "dense", "llama bf16");
        run_equals_whole(gpt, "4:8", "gpt2 f32");
    }
    rm_tmp_dir();
    return test_finish("test_lm_family_load");
}
