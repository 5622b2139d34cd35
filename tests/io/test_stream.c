/* Streaming prune and convert (nmf_family_prune_file, nmf_family_convert_file) and the checks of
 * `info --verify` (nmf_file_verify):
 * - on every fixture (ViT safetensors, GPT-2 / BERT / LLaMA model folders, sharded, tied, bf16,
 *   and an .nmf family as source) the streamed family holds the same candidates, tensors, stored
 *   dtypes and values, bit for bit, as the whole-model path (load, nmf_family_prune or
 *   nmf_family_from_model / nmf_family_read, nmf_family_write);
 * - a corrupt or truncated source tensor is one error naming it and leaves no output and no
 *   temporary file;
 * - verify passes a good file and names the tensor of a flipped payload byte;
 * - prune --add streamed (nmf_family_extend_file) holds what the whole-family path writes; a
 *   clashing name or another model's config is refused, the file untouched;
 * - a source larger than an RLIMIT_AS budget is pruned, and the family extended, within that
 *   budget (a child process), where loading it whole fails. */
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_test_util.h"
#include "model/lm_test_util.h"
#include "nmformer/model.h"
#include "random_model.h"
#include "tensor_compare.h"
#include "vm_budget.h"

static const nmf_pattern pats[3] = {{4, 8}, {2, 8}, {1, 8}};

/* Nothing but the expected files in the scratch folder: no output, no temporary file left. */
static void nothing_left(int before, const char *out, const char *what) {
    CHECK_MSG(access(out, F_OK) != 0, "%s: output left behind", what);
    CHECK_MSG(count_dir_entries(tmp_dir()) == before, "%s: %d files, %d before", what,
              count_dir_entries(tmp_dir()), before);
}

/* The streamed prune and convert of src against the whole-model path. */
static void streamed_equals_whole(const char *src, const char *tag) {
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_status st = nmf_load_model(src, NULL, NULL, &c, &s);
    CHECK_MSG(st == NMF_OK, "%s: %s", tag, nmf_last_error());
    if (st) return;
    char whole[600], streamed[600];
    snprintf(whole, sizeof whole, "%s", tmp_path("whole.nmf"));
    snprintf(streamed, sizeof streamed, "%s", tmp_path("streamed.nmf"));

    /* prune: dense + 4:8, 2:8, 1:8 */
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = c;
    nmf_dtype dt, sdt = NMF_DTYPE_COUNT;
    CHECK_OK(nmf_family_prune(&fam, &c, &s, pats, 3, 1, &dt));
    nmf_write_options o = {dt};
    CHECK_OK(nmf_family_write(whole, &fam, &o));
    nmf_family_free(&fam);
    nmf_family plan;
    st = nmf_family_prune_file(src, NULL, NULL, streamed, pats, 3, 1, NMF_DTYPE_COUNT, &plan, &sdt);
    CHECK_MSG(st == NMF_OK, "%s: %s", tag, nmf_last_error());
    CHECK(sdt == dt);
    CHECK(!st && plan.count == 4 && !strcmp(plan.models[0].name, "dense") && !strcmp(plan.models[3].name, "1:8"));
    if (!st) nmf_family_free(&plan);
    same_families(whole, streamed, tag);

    /* the same from the .nmf family as source (its dense candidate), patterns only */
    char again[600];
    snprintf(again, sizeof again, "%s", tmp_path("again.nmf"));
    CHECK_OK(nmf_family_prune_file(whole, "dense", NULL, again, pats, 3, 1, NMF_DTYPE_COUNT, NULL, NULL));
    same_families(whole, again, tag);

    /* convert .nmf -> .nmf: every candidate, and one of them */
    CHECK_OK(nmf_family_convert_file(whole, NULL, NULL, again, NMF_DTYPE_COUNT, NULL, NULL));
    same_families(whole, again, tag);
    nmf_family one;
    CHECK_OK(nmf_family_read(whole, &one));
    CHECK_OK(nmf_family_select(&one, "2:8"));
    o.value_dtype = NMF_DTYPE_F16; /* and a dtype change on the way */
    CHECK_OK(nmf_family_write(streamed, &one, &o));
    nmf_family_free(&one);
    CHECK_OK(nmf_family_convert_file(whole, "2:8", NULL, again, NMF_DTYPE_F16, NULL, &sdt));
    CHECK(sdt == NMF_DTYPE_F16);
    same_families(streamed, again, tag);

    /* convert one model -> .nmf, as nmf_family_from_model */
    CHECK_OK(nmf_family_from_model(&one, &c, &s, NULL));
    o.value_dtype = nmf_family_stored_dtype(&one);
    CHECK_OK(nmf_family_write(whole, &one, &o));
    nmf_family_free(&one);
    CHECK_OK(nmf_family_convert_file(src, NULL, NULL, streamed, NMF_DTYPE_COUNT, NULL, NULL));
    same_families(whole, streamed, tag);
    nmf_tensors_free(&s);
    unlink(whole);
    unlink(streamed);
    unlink(again);
}

/* A pattern name packs weights that already are N:M (an N:M model written dense), as
 * nmf_family_from_model does; a dense model under a pattern name is refused, naming a tensor. */
/* prune --add streamed (nmf_family_extend_file) against the whole-family path (read, prune,
 * write): the same candidates, tensors and stored dtype; a name the family holds, or a source of
 * another config, is refused and leaves the file as it was. */
static void extend_equals_whole(const char *src, const char *other, const char *tag) {
    char base[600], whole[600], streamed[600];
    snprintf(base, sizeof base, "%s", tmp_path("base.nmf"));
    snprintf(whole, sizeof whole, "%s", tmp_path("whole_add.nmf"));
    snprintf(streamed, sizeof streamed, "%s", tmp_path("streamed_add.nmf"));
    const nmf_pattern first = {4, 8}, more[2] = {{2, 8}, {1, 8}};
    CHECK_OK(nmf_family_prune_file(src, NULL, NULL, base, &first, 1, 1, NMF_DTYPE_F16, NULL, NULL));
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_family fam;
    CHECK_OK(nmf_load_model(src, NULL, NULL, &c, &s));
    CHECK_OK(nmf_family_read(base, &fam));
    nmf_dtype dt = NMF_DTYPE_COUNT;
    CHECK_OK(nmf_family_prune(&fam, &c, &s, more, 2, 0, &dt));
    CHECK(dt == NMF_DTYPE_F16); /* the family's, not the source's */
    const nmf_write_options o = {dt};
    CHECK_OK(nmf_family_write(whole, &fam, &o));
    nmf_family_free(&fam);
    nmf_tensors_free(&s);
    size_t n;
    uint8_t *b = read_bytes(base, &n);
    write_bytes(streamed, b, n);
    nmf_family written;
    nmf_dtype used = NMF_DTYPE_COUNT;
    nmf_status st = nmf_family_extend_file(src, NULL, NULL, streamed, more, 2, NMF_DTYPE_COUNT, &written, &used);
    CHECK_MSG(st == NMF_OK, "%s: %s", tag, nmf_last_error());
    if (!st) {
        CHECK(used == NMF_DTYPE_F16 && written.count == 4 && !strcmp(written.models[3].name, "1:8"));
        nmf_family_free(&written);
    }
    same_families(whole, streamed, tag);
    /* refused: a candidate it holds; another model's config. The file is untouched. */
    uint8_t *before = read_bytes(streamed, &n), *after;
    size_t n2;
    CHECK_FAILS(nmf_family_extend_file(src, NULL, NULL, streamed, more, 1, NMF_DTYPE_COUNT, NULL, NULL),
                NMF_ERR_INVALID_ARG, "already holds a model named '2:8'");
    const nmf_pattern fresh = {1, 4};
    CHECK_FAILS(nmf_family_extend_file(other, NULL, NULL, streamed, &fresh, 1, NMF_DTYPE_COUNT, NULL, NULL),
                NMF_ERR_INVALID_ARG, "differs from the family's");
    after = read_bytes(streamed, &n2);
    CHECK(n == n2 && !memcmp(before, after, n));
    free(b), free(before), free(after);
    unlink(base), unlink(whole), unlink(streamed);
}

static void convert_packs(void) {
    const char *src = fixture_path("llama_gqa6x2_2to8", NULL);
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(src, NULL, NULL, &c, &s));
    nmf_family one;
    CHECK_OK(nmf_family_from_model(&one, &c, &s, "2:8"));
    nmf_write_options o = {nmf_family_stored_dtype(&one)};
    char whole[600];
    snprintf(whole, sizeof whole, "%s", tmp_path("packed_whole.nmf"));
    CHECK_OK(nmf_family_write(whole, &one, &o));
    nmf_family_free(&one);
    nmf_tensors_free(&s);
    const char *streamed = tmp_path("packed.nmf");
    CHECK_OK(nmf_family_convert_file(src, "2:8", NULL, streamed, NMF_DTYPE_COUNT, NULL, NULL));
    same_families(whole, streamed, "packed 2:8");
    int before = count_dir_entries(tmp_dir());
    const char *bad = tmp_path("not_sparse.nmf");
    CHECK(nmf_family_convert_file(fixture_path("llama_gqa6x2", NULL), "2:8", NULL, bad, NMF_DTYPE_COUNT,
                                  NULL, NULL) == NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "is not 2:8 sparse") != NULL);
    nothing_left(before, bad, "dense model as 2:8");
}

/* Offset in the file of the first entry of tensor `name` of model `model`; its layout item. */
static uint64_t payload_at(const char *p, const char *model, const char *name, uint64_t *size) {
    nmf_family f;
    nmf_family_layout lay;
    CHECK_OK(nmf_family_read_layout(p, &f, &lay));
    uint64_t at = 0;
    for (size_t i = 0; i < lay.count; i++) {
        const nmf_stored_tensor *e = &lay.items[i];
        if (!strcmp(f.models[e->model].name, model) && !strcmp(f.models[e->model].tensors.items[e->tensor].name, name)) {
            at = lay.data_offset + e->offset;
            *size = e->size;
            break;
        }
    }
    nmf_family_layout_free(&lay);
    nmf_family_free(&f);
    CHECK(at > 0);
    return at;
}

static void flip(const char *p, uint64_t at) {
    size_t n;
    uint8_t *b = read_bytes(p, &n);
    CHECK(at < n);
    if (at < n) b[at] ^= 0x10;
    write_bytes(p, b, n);
    free(b);
}

typedef struct {
    int calls;
    char model[32], tensor[128];
} problems;

static void note(const nmf_verify_problem *p, void *user) {
    problems *x = user;
    if (x->calls++ == 0) {
        snprintf(x->model, sizeof x->model, "%s", p->model ? p->model : "");
        snprintf(x->tensor, sizeof x->tensor, "%s", p->tensor ? p->tensor : "");
    }
}

/* verify: a good file passes; a flipped byte in one (unshared) payload is that tensor, named;
 * a corrupt .nmf source or a truncated safetensors source stops the streamed prune with one
 * error naming the tensor or the file, and nothing is left. */
static void corrupt_sources(void) {
    const char *src = fixture_path("llama_gqa6x2", NULL);
    char fam[600];
    snprintf(fam, sizeof fam, "%s", tmp_path("good.nmf"));
    CHECK_OK(nmf_family_prune_file(src, NULL, NULL, fam, pats, 2, 1, NMF_DTYPE_COUNT, NULL, NULL));
    size_t bad = 9;
    problems pr = {0, "", ""};
    CHECK_OK(nmf_file_verify(fam, note, &pr, &bad));
    CHECK(bad == 0 && pr.calls == 0);
    CHECK_OK(nmf_file_verify(src, note, &pr, &bad)); /* a model folder: every tensor read */
    CHECK(bad == 0 && pr.calls == 0);

    /* a flipped byte inside a pruned weight of the 2:8 candidate (no other entry shares it) */
    const char *victim = "model.layers.1.mlp.up_proj.weight";
    uint64_t size = 0, at = payload_at(fam, "2:8", victim, &size);
    flip(fam, at + size / 2);
    nmf_status st = nmf_file_verify(fam, note, &pr, &bad);
    CHECK(st == NMF_ERR_CHECKSUM && bad == 1 && pr.calls == 1);
    CHECK(!strcmp(pr.model, "2:8") && !strcmp(pr.tensor, victim));
    CHECK(strstr(nmf_last_error(), "1 bad tensor") != NULL);

    /* that family as a source: the 2:8 candidate fails where the bad tensor is read */
    int before = count_dir_entries(tmp_dir());
    const char *out = tmp_path("from_bad.nmf");
    st = nmf_family_prune_file(fam, "2:8", NULL, out, pats, 1, 1, NMF_DTYPE_COUNT, NULL, NULL);
    CHECK(st == NMF_ERR_CHECKSUM && strstr(nmf_last_error(), victim) != NULL);
    nothing_left(before, out, "corrupt .nmf source");
    st = nmf_family_convert_file(fam, NULL, NULL, out, NMF_DTYPE_COUNT, NULL, NULL);
    CHECK(st == NMF_ERR_CHECKSUM && strstr(nmf_last_error(), victim) != NULL);
    nothing_left(before, out, "corrupt .nmf source, convert");
    /* its dense candidate is intact: pruning it works */
    CHECK_OK(nmf_family_prune_file(fam, "dense", NULL, out, pats, 1, 1, NMF_DTYPE_COUNT, NULL, NULL));
    unlink(out);

    /* a safetensors source cut short: refused before anything is written */
    size_t n;
    uint8_t *b = read_bytes(test_source_path("tests/fixtures/vit_tiny.safetensors"), &n);
    const char *cut = tmp_path("cut.safetensors");
    write_bytes(cut, b, n - 100);
    free(b);
    before = count_dir_entries(tmp_dir());
    st = nmf_family_prune_file(cut, NULL, NULL, out, pats, 3, 1, NMF_DTYPE_COUNT, NULL, NULL);
    CHECK(st == NMF_ERR_FORMAT && strstr(nmf_last_error(), "cut.safetensors") != NULL);
    nothing_left(before, out, "truncated safetensors");
    pr.calls = 0;
    CHECK(nmf_file_verify(cut, note, &pr, &bad) == NMF_ERR_FORMAT && bad == 1 && pr.calls == 1 && !pr.tensor[0]);
    unlink(cut);
    unlink(fam);
}

/* ---- a source larger than the address-space budget, pruned within it ---- */

/* What the child prunes under the budget: src to the family out */
typedef struct {
    const char *src, *out;
    size_t budget;
} budget_job;

/* Exit status: 0, or the step that failed. */
static int budget_child(void *ctx) {
    const budget_job *j = ctx;
    nmf_set_threads(1);
    if (test_limit_address_space(j->budget) != 0) return 2;
    nmf_status st = nmf_family_prune_file(j->src, NULL, NULL, j->out, pats, 3, 1, NMF_DTYPE_COUNT,
                                          NULL, NULL);
    if (st) fprintf(stderr, "streamed prune under the budget: %s\n", nmf_last_error());
    test_report_vm("streamed prune");
    if (st) return 4;
    /* the family extended with one more pattern (prune --add): streamed as well */
    const nmf_pattern more = {1, 4};
    st = nmf_family_extend_file(j->src, NULL, NULL, j->out, &more, 1, NMF_DTYPE_COUNT, NULL, NULL);
    if (st) {
        fprintf(stderr, "streamed extend under the budget: %s\n", nmf_last_error());
        return 5;
    }
    /* after it (a failed load leaves the heap grown): the model whole does not fit */
    return test_whole_model_refused(j->src) ? 0 : 3;
}

static void prunes_within_address_budget(void) {
    const nmf_model_config c = test_budget_vit(16, 4.0f); /* ~50 MB of f32 weights, random values */
    nmf_tensor_set s;
    size_t bytes = 0, largest = 0;
    test_random_model(&s, &c, 99, &bytes, &largest);
    test_budget_files f;
    test_budget_files_make(&f, "stream_budget", &s);
    char out[128], whole[128];
    test_budget_path(out, sizeof out, &f, "streamed.nmf");
    test_budget_path(whole, sizeof whole, &f, "whole.nmf");
    /* a few tensors (f32, their N:M forms, a payload and its read-back, a 1 MB mapping) and
     * slack for the allocator; the source is ~50 MB */
    budget_job j = {f.src, out, 16 * largest + ((size_t)8 << 20)};
    CHECK_MSG(bytes > j.budget, "source %zu bytes, budget %zu", bytes, j.budget);
    const int status = test_in_child(budget_child, &j);
    CHECK_MSG(status == 0, "child status %d", status);
    /* the same family as the whole-model path (the extension's candidate last) */
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = c;
    const nmf_pattern all[4] = {pats[0], pats[1], pats[2], {1, 4}};
    CHECK_OK(nmf_family_prune(&fam, &c, &s, all, 4, 1, NULL));
    CHECK_OK(nmf_family_write(whole, &fam, NULL));
    nmf_family_free(&fam);
    same_families(whole, out, "budget");
    nmf_tensors_free(&s);
    unlink(out);
    unlink(whole);
    test_budget_files_remove(&f);
}

int main(void) {
    /* ASan reserves terabytes of address space: RLIMIT_AS cannot apply under the sanitizers */
    if (getenv("NMF_SANITIZED")) printf("address budget: skipped under the sanitizers\n");
    else prunes_within_address_budget(); /* first: it forks before any OpenMP region */
    streamed_equals_whole(test_source_path("tests/fixtures/vit_tiny.safetensors"), "vit");
    streamed_equals_whole(fixture_path("gpt2_lm", NULL), "gpt2");
    streamed_equals_whole(fixture_path("gpt2_long_bf16", NULL), "gpt2 bf16");
    streamed_equals_whole(fixture_path("bert_cls_pad", NULL), "bert");
    streamed_equals_whole(fixture_path("llama_gqa6x2_sharded", NULL), "llama sharded");
    streamed_equals_whole(fixture_path("llama_gqa4x1_tied_bf16", NULL), "llama tied bf16");
    char vit[4300]; /* test_source_path's buffer is reused by fixture_path */
    snprintf(vit, sizeof vit, "%s", test_source_path("tests/fixtures/vit_tiny.safetensors"));
    extend_equals_whole(vit, fixture_path("llama_gqa6x2", NULL), "extend vit");
    extend_equals_whole(fixture_path("llama_gqa4x1_tied_bf16", NULL), vit, "extend llama bf16");
    convert_packs();
    corrupt_sources();
    rm_tmp_dir();
    return test_finish("stream");
}
