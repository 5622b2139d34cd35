/* Wanda and SparseGPT streamed block by block (nmf_family_prune_file_oneshot):
 * - on the ViT, GPT-2, BERT (post-norm: q/k/v read the previous block's output) and LLaMA (a
 *   sharded folder too) fixtures, for 3 patterns and batches of 2 samples (a ragged last one) and
 *   the automatic batch, the streamed family holds the same candidates, tensors and values, bit
 *   for bit, as the whole-model path (nmf_family_prune_oneshot + nmf_family_write), with the same
 *   calibration statistics;
 * - prune --add (a family extended) streamed equals the whole-family path;
 * - a calibration set that fails to load, one of the other model kind, a corrupt block tensor:
 *   one clear error, no output and no temporary file left;
 * - a ViT larger than a budget (half its f32 weights) is pruned within it in a child process: by
 *   Wanda under RLIMIT_AS (where loading it whole fails), by SparseGPT with its peak resident
 *   memory growing by less than the budget. */
#include <cblas.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_test_util.h"
#include "nmformer/io.h"
#include "nmformer/desc.h"
#include "nmformer/prune.h"
#include "random_model.h"
#include "tensor_compare.h"
#include "test.h"
#include "vm_budget.h"

static const nmf_pattern pats[3] = {{4, 8}, {2, 8}, {1, 8}};

/* test_source_path in a buffer of the caller's (it returns one static buffer). */
static const char *source(char buf[512], const char *rel) {
    snprintf(buf, 512, "%s", test_source_path(rel));
    return buf;
}

/* The loader: a copy of the set the test holds (the library frees what it is given). */
static nmf_status copy_calib(nmf_calib *cal, const nmf_model_config *c, void *user) {
    (void)c;
    const nmf_calib *from = user;
    *cal = *from;
    const size_t n = from->count * from->sample_len;
    cal->images = from->images ? nmf_alloc(n, sizeof(float)) : NULL;
    cal->ids = from->ids ? nmf_alloc(n, sizeof(int64_t)) : NULL;
    if ((from->images && !cal->images) || (from->ids && !cal->ids)) return nmf_error(NMF_ERR_NOMEM, "calib");
    if (cal->images) memcpy(cal->images, from->images, n * sizeof(float));
    if (cal->ids) memcpy(cal->ids, from->ids, n * sizeof(int64_t));
    return NMF_OK;
}

/* The streamed prune of src by method (batch samples per pass) against the whole-model path. */
static void streamed_equals_whole(const char *src, const nmf_calib *cal, nmf_prune_method method,
                                  size_t batch, const char *tag) {
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_status st = nmf_load_model(src, NULL, NULL, &c, &s);
    CHECK_MSG(st == NMF_OK, "%s: %s", tag, nmf_last_error());
    if (st) return;
    nmf_prune_options o;
    nmf_prune_options_default(&o);
    o.method = method;
    o.batch = batch;
    char what[128];
    snprintf(what, sizeof what, "%s %s batch %zu", tag, nmf_prune_method_name(method), batch);
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = c;
    nmf_prune_stats ws, ss;
    st = nmf_family_prune_oneshot(&fam, &c, &s, pats, 3, 1, &o, cal, NULL, &ws);
    CHECK_MSG(st == NMF_OK, "%s whole: %s", what, nmf_last_error());
    const char *whole = tmp_path("whole.nmf"), *out = tmp_path("streamed.nmf");
    nmf_write_options wo = {NMF_DTYPE_F32};
    if (!st) CHECK_OK(nmf_family_write(whole, &fam, &wo));
    nmf_family_free(&fam);
    nmf_tensors_free(&s);
    nmf_family written;
    nmf_dtype used = NMF_DTYPE_COUNT;
    st = nmf_family_prune_file_oneshot(src, NULL, NULL, out, pats, 3, 1, 0, &o, copy_calib, (void *)cal,
                                       NMF_DTYPE_F32, &written, &used, &ss);
    CHECK_MSG(st == NMF_OK, "%s streamed: %s", what, nmf_last_error());
    if (st) return;
    CHECK(used == NMF_DTYPE_F32 && written.count == 4 && !strcmp(written.models[3].name, "1:8"));
    nmf_family_free(&written);
    same_families(whole, out, what);
    CHECK_MSG(ss.samples == ws.samples && ss.tokens == ws.tokens && ss.tokens > 0, "%s: %zu/%zu samples, "
              "%zu/%zu tokens", what, ss.samples, ws.samples, ss.tokens, ws.tokens);
    CHECK(ss.forwards == (method == NMF_PRUNE_WANDA ? 1u : 6u));
    unlink(whole);
    unlink(out);
}

static void token_fixture(const char *dir, const char *tag) {
    char rel[256], ids[256], path[512], ids_path[512];
    snprintf(rel, sizeof rel, "tests/fixtures/hf/%s", dir);
    snprintf(ids, sizeof ids, "tests/fixtures/hf/%s/input_ids.npy", dir);
    const char *src = source(path, rel);
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(src, NULL, NULL, &c, &s));
    nmf_tensors_free(&s);
    nmf_calib cal;
    CHECK_OK(nmf_calib_load(&cal, &c, source(ids_path, ids), 0));
    CHECK_MSG(cal.count >= 2, "%s: %zu sequences", tag, cal.count);
    for (int m = NMF_PRUNE_WANDA; m <= NMF_PRUNE_SPARSEGPT; m++) {
        streamed_equals_whole(src, &cal, (nmf_prune_method)m, 0, tag);
        if (cal.count > 2) streamed_equals_whole(src, &cal, (nmf_prune_method)m, 2, tag);
    }
    nmf_calib_free(&cal);
}

/* ViT calibration images: count random ones of 1 x 28 x 28. */
static nmf_calib vit_images(size_t count) {
    nmf_calib cal = {0};
    cal.count = count;
    cal.sample_len = 28 * 28;
    cal.images = nmf_alloc(cal.count * cal.sample_len, sizeof(float));
    unsigned long long r = 3;
    for (size_t i = 0; i < cal.count * cal.sample_len; i++) cal.images[i] = 2.0f * test_rand_float(&r);
    return cal;
}

static void equals_whole(void) {
    char path[512];
    const char *vit = source(path, "tests/fixtures/model/vit_dense_fmnist.safetensors");
    nmf_calib cal = vit_images(5);
    for (int m = NMF_PRUNE_WANDA; m <= NMF_PRUNE_SPARSEGPT; m++) {
        streamed_equals_whole(vit, &cal, (nmf_prune_method)m, 2, "vit");
        streamed_equals_whole(vit, &cal, (nmf_prune_method)m, 0, "vit");
    }
    nmf_calib_free(&cal);
    token_fixture("gpt2_lm", "gpt2");
    token_fixture("bert_cls_pad", "bert");
    token_fixture("llama_gqa6x2", "llama");
    token_fixture("llama_gqa6x2_sharded", "llama sharded");
}

/* prune --add streamed with wanda: the family's candidates, then the new ones, as the
 * whole-family path (read, nmf_family_prune_oneshot, write) gives them. */
static void extend_equals_whole(void) {
    char path[512], ids[512];
    const char *src = source(path, "tests/fixtures/hf/llama_gqa6x2");
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(src, NULL, NULL, &c, &s));
    nmf_calib cal;
    CHECK_OK(nmf_calib_load(&cal, &c, source(ids, "tests/fixtures/hf/llama_gqa6x2/input_ids.npy"), 0));
    const char *fam_path = tmp_path("extend.nmf"), *whole = tmp_path("extend_whole.nmf");
    CHECK_OK(nmf_family_prune_file(src, NULL, NULL, fam_path, pats, 1, 1, NMF_DTYPE_F32, NULL, NULL));
    nmf_prune_options o;
    nmf_prune_options_default(&o);
    o.method = NMF_PRUNE_SPARSEGPT;
    nmf_family fam;
    CHECK_OK(nmf_family_read(fam_path, &fam));
    CHECK_OK(nmf_family_prune_oneshot(&fam, &c, &s, pats + 1, 2, 0, &o, &cal, NULL, NULL));
    CHECK_OK(nmf_family_write(whole, &fam, &(nmf_write_options){NMF_DTYPE_F32}));
    nmf_family_free(&fam);
    nmf_family written;
    CHECK_OK(nmf_family_prune_file_oneshot(src, NULL, NULL, fam_path, pats + 1, 2, 1, 1, &o, copy_calib,
                                           &cal, NMF_DTYPE_COUNT, &written, NULL, NULL));
    CHECK(written.count == 4 && !strcmp(written.models[0].name, "dense") &&
          !strcmp(written.models[1].name, "4:8") && !strcmp(written.models[3].name, "1:8"));
    nmf_family_free(&written);
    same_families(whole, fam_path, "extend");
    /* a name the family holds: refused before anything is read, the file untouched */
    struct stat before, after;
    CHECK(stat(fam_path, &before) == 0);
    CHECK_STATUS(nmf_family_prune_file_oneshot(src, NULL, NULL, fam_path, pats + 2, 1, 1, 1, &o, copy_calib,
                                               &cal, NMF_DTYPE_COUNT, NULL, NULL, NULL),
                 NMF_ERR_INVALID_ARG);
    CHECK(stat(fam_path, &after) == 0 && before.st_mtime == after.st_mtime && before.st_size == after.st_size);
    unlink(fam_path);
    unlink(whole);
    nmf_calib_free(&cal);
    nmf_tensors_free(&s);
}

/* ---- failures: one clear error, nothing left behind ---- */
static void nothing_left(int before, const char *out, const char *what) {
    CHECK_MSG(access(out, F_OK) != 0, "%s: output left behind", what);
    CHECK_MSG(count_dir_entries(tmp_dir()) == before, "%s: %d files, %d before", what,
              count_dir_entries(tmp_dir()), before);
}

static nmf_status load_file(nmf_calib *cal, const nmf_model_config *c, void *user) {
    return nmf_calib_load(cal, c, user, 0);
}

static void failures(void) {
    char p1[512], p2[512], p3[512];
    const char *llama = source(p1, "tests/fixtures/hf/llama_gqa6x2");
    const char *vit = source(p2, "tests/fixtures/model/vit_dense_fmnist.safetensors");
    const char *out = tmp_path("fail.nmf");
    const int before = count_dir_entries(tmp_dir());
    nmf_prune_options o;
    nmf_prune_options_default(&o);
    o.method = NMF_PRUNE_WANDA;
    /* no loader; a calibration file of the other kind (token ids for a ViT); a missing file */
    CHECK_STATUS(nmf_family_prune_file_oneshot(llama, NULL, NULL, out, pats, 2, 1, 0, &o, NULL, NULL,
                                               NMF_DTYPE_COUNT, NULL, NULL, NULL),
                 NMF_ERR_INVALID_ARG);
    nothing_left(before, out, "no loader");
    const char *ids = source(p3, "tests/fixtures/hf/llama_gqa6x2/input_ids.npy");
    CHECK_STATUS(nmf_family_prune_file_oneshot(vit, NULL, NULL, out, pats, 2, 1, 0, &o, load_file, (void *)ids,
                                               NMF_DTYPE_COUNT, NULL, NULL, NULL),
                 NMF_ERR_UNSUPPORTED);
    nothing_left(before, out, "ids for a ViT");
    CHECK_STATUS(nmf_family_prune_file_oneshot(llama, NULL, NULL, out, pats, 2, 1, 0, &o, load_file,
                                               (void *)tmp_path("absent.npy"), NMF_DTYPE_COUNT, NULL, NULL,
                                               NULL),
                 NMF_ERR_IO);
    nothing_left(before, out, "absent calibration file");
    /* an empty set handed over by the loader */
    nmf_calib empty = {0};
    CHECK_STATUS(nmf_family_prune_file_oneshot(llama, NULL, NULL, out, pats, 2, 1, 0, &o, copy_calib, &empty,
                                               NMF_DTYPE_COUNT, NULL, NULL, NULL),
                 NMF_ERR_INVALID_ARG);
    nothing_left(before, out, "empty calibration set");

    /* a corrupt weight of block 1, found when its block is read: the error names it */
    const char *bad = tmp_path("bad.safetensors");
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(llama, NULL, NULL, &c, &s));
    nmf_tensor *t = nmf_tensors_find(&s, "model.layers.1.mlp.up_proj.weight");
    CHECK(t != NULL);
    if (t) t->data[7] = NAN;
    char *json = nmf_model_config_to_json(&c);
    CHECK_OK(nmf_tensors_set_meta(&s, NMF_CONFIG_META_KEY, json));
    free(json);
    CHECK_OK(nmf_safetensors_write(bad, &s, NMF_DTYPE_F32));
    nmf_tensors_free(&s);
    const int with_bad = count_dir_entries(tmp_dir());
    for (int m = NMF_PRUNE_WANDA; m <= NMF_PRUNE_SPARSEGPT; m++) {
        o.method = (nmf_prune_method)m;
        nmf_status st = nmf_family_prune_file_oneshot(bad, NULL, NULL, out, pats, 2, 1, 0, &o, load_file,
                                                      (void *)ids, NMF_DTYPE_COUNT, NULL, NULL, NULL);
        CHECK_MSG(st != NMF_OK && strstr(nmf_last_error(), "layers.1.mlp.up_proj"), "%s: %s (%s)",
                  nmf_prune_method_name(o.method), nmf_strerror(st), nmf_last_error());
        nothing_left(with_bad, out, "corrupt block tensor");
    }
    unlink(bad);
}

/* ---- a model larger than the address-space budget, pruned within it ---- */

/* What a child prunes under the budget: src to out with method m and the calibration cal */
typedef struct {
    const char *src, *out;
    const nmf_calib *cal;
    nmf_prune_method m;
    size_t budget;
} budget_job;

/* Exit status: 0, or the step that failed. Wanda runs under RLIMIT_AS = what the process maps +
 * budget; SparseGPT's X^T X goes through OpenBLAS, which maps its work buffer (128 MB of address
 * space) at a first call of its own choosing and retries forever when that fails, so there the
 * budget bounds the peak resident memory instead (VmHWM reset, then measured). */
static int budget_child(void *ctx) {
    const budget_job *j = ctx;
    const nmf_prune_method m = j->m;
    nmf_set_threads(1);
    openblas_set_num_threads(1);
    alarm(600); /* a hang is a failure */
    size_t rss0 = 0;
    if (m == NMF_PRUNE_WANDA) {
        if (test_limit_address_space(j->budget) != 0) return 2;
    } else {
        FILE *f = fopen("/proc/self/clear_refs", "w"); /* "5": reset the peak RSS */
        if (!f || fputs("5", f) < 0 || fclose(f) != 0) return 2;
        rss0 = test_status_kb("VmRSS");
    }
    nmf_prune_options o;
    nmf_prune_options_default(&o);
    o.method = m;
    nmf_status st = nmf_family_prune_file_oneshot(j->src, NULL, NULL, j->out, pats, 3, 1, 0, &o,
                                                  copy_calib, (void *)j->cal, NMF_DTYPE_COUNT,
                                                  NULL, NULL, NULL);
    if (st) fprintf(stderr, "streamed %s under the budget: %s\n", nmf_prune_method_name(m), nmf_last_error());
    test_report_vm(nmf_prune_method_name(m));
    if (st) return 4;
    if (m != NMF_PRUNE_WANDA) {
        const size_t grown = (test_status_kb("VmHWM") - rss0) * 1024;
        if (grown > j->budget) {
            fprintf(stderr, "streamed %s: peak RSS grew by %zu bytes, budget %zu\n",
                    nmf_prune_method_name(m), grown, j->budget);
            return 5;
        }
        return 0;
    }
    return test_whole_model_refused(j->src) ? 0 : 3; /* after it: the model whole does not fit */
}

static void prunes_within_address_budget(void) {
    const nmf_model_config c = test_budget_vit(64, 2.0f); /* ~130 MB of f32 weights, random values */
    nmf_tensor_set s;
    size_t bytes = 0;
    test_random_model(&s, &c, 99, &bytes, NULL);
    test_budget_files f;
    test_budget_files_make(&f, "calib_budget", &s);
    char out[128], whole[128];
    test_budget_path(out, sizeof out, &f, "streamed.nmf");
    test_budget_path(whole, sizeof whole, &f, "whole.nmf");
    nmf_calib cal = vit_images(8);
    /* half the model: one block's weights (2 MB) with their forms and built layers, SparseGPT's
     * Hessians (512 columns: 2 MB each) and factors, the activations, the allocator's slack
     * (measured: Wanda ~21 MB of address space, SparseGPT ~42 MB of resident memory) */
    for (int m = NMF_PRUNE_WANDA; m <= NMF_PRUNE_SPARSEGPT; m++) { /* the children first: they
                                                                    * fork before any OpenMP */
        budget_job j = {f.src, m == NMF_PRUNE_WANDA ? out : whole, &cal, (nmf_prune_method)m,
                        bytes / 2};
        const int status = test_in_child(budget_child, &j);
        CHECK_MSG(status == 0, "%s: child status %d", nmf_prune_method_name((nmf_prune_method)m),
                  status);
    }
    unlink(whole);
    nmf_prune_options o; /* Wanda's family is the whole-model path's */
    nmf_prune_options_default(&o);
    o.method = NMF_PRUNE_WANDA;
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = c;
    CHECK_OK(nmf_family_prune_oneshot(&fam, &c, &s, pats, 3, 1, &o, &cal, NULL, NULL));
    CHECK_OK(nmf_family_write(whole, &fam, NULL));
    nmf_family_free(&fam);
    same_families(whole, out, "budget");
    unlink(out);
    nmf_calib_free(&cal);
    nmf_tensors_free(&s);
    unlink(whole);
    test_budget_files_remove(&f);
}

int main(void) {
    /* ASan reserves terabytes of address space: RLIMIT_AS cannot apply under the sanitizers */
    if (getenv("NMF_SANITIZED")) printf("address budget: skipped under the sanitizers\n");
    else prunes_within_address_budget(); /* first: it forks before any OpenMP region */
    equals_whole();
    extend_equals_whole();
    failures();
    rmdir(tmp_dir());
    return test_finish("test_stream_calib");
}
