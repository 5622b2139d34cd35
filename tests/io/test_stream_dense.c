/* One model streamed to a dense output (nmf_dense_convert_file: `convert` to .safetensors or a
 * model folder, `prune` by magnitude to them) against the whole-model path:
 * - the bytes of the safetensors file, and of config.json + model.safetensors of a folder, are
 *   those of loading the model whole (nmf_load_model) and writing it (nmf_safetensors_write,
 *   nmf_hf_folder_write; pruned first with nmf_model_prune), for safetensors, folder (sharded,
 *   tied, bf16) and .nmf sources, at the source's dtype, f32 and bf16;
 * - the header is the one the format (and the writer before streaming) makes, byte for byte, on
 *   a set written out by hand here; a tensor larger than the encode chunk reads back as written;
 * - a sharded folder (max_shard_bytes) has save_pretrained's names and index, and reads back as
 *   the unsharded one; each shard holds what the plan says;
 * - progress is reported once per tensor, ending at the source's bytes;
 * - a corrupt tensor in the middle of the source, or a truncated source, is one error naming it,
 *   and leaves no output and no temporary file or folder (an existing OUT untouched);
 * - a source larger than an RLIMIT_AS budget is converted and pruned to safetensors within it
 *   (a child process), where loading it whole fails. */
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_test_util.h"
#include "model/lm_test_util.h"
#include "nmformer/model.h"
#include "random_model.h"
#include "tensor_compare.h"
#include "vm_budget.h"

/* 1 when the files a and b hold the same bytes. */
static int same_bytes(const char *a, const char *b) {
    size_t na, nb;
    uint8_t *x = read_bytes(a, &na), *y = read_bytes(b, &nb);
    int same = na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

/* Every file of folder a is in b with the same bytes, and b has no other. */
static int same_folders(const char *a, const char *b) {
    if (count_dir_entries(a) != count_dir_entries(b) || count_dir_entries(a) < 0) return 0;
    DIR *d = opendir(a);
    int same = d != NULL;
    for (struct dirent *e; same && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char x[1024], y[1024];
        snprintf(x, sizeof x, "%s/%s", a, e->d_name);
        snprintf(y, sizeof y, "%s/%s", b, e->d_name);
        same = access(y, R_OK) == 0 && same_bytes(x, y);
    }
    if (d) closedir(d);
    return same;
}

static void remove_folder(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Nothing but the expected files in the scratch folder: no output, no temporary file left. */
static void nothing_left(int before, const char *out, const char *what) {
    CHECK_MSG(access(out, F_OK) != 0, "%s: output left behind", what);
    CHECK_MSG(count_dir_entries(tmp_dir()) == before, "%s: %d files, %d before", what,
              count_dir_entries(tmp_dir()), before);
}

static const nmf_dtype dtypes[3] = {NMF_DTYPE_COUNT, NMF_DTYPE_F32, NMF_DTYPE_BF16};

/* src (candidate `model` of an .nmf, else NULL) streamed to .safetensors and, for a token model,
 * to a folder, plain and pruned to 2:8, at each dtype: the bytes of the whole-model path. */
static void streamed_equals_whole(const char *src, const char *model, const char *tag) {
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_status st = nmf_load_model(src, model, NULL, &c, &s);
    CHECK_MSG(st == NMF_OK, "%s: %s", tag, nmf_last_error());
    if (st) return;
    const nmf_pattern p28 = {2, 8};
    nmf_tensor_set pruned;
    CHECK_OK(nmf_model_prune(&c, &s, p28, &pruned));
    const nmf_dtype stored = nmf_tensors_stored_dtype(&s);
    const int folder = nmf_model_is_token(&c);
    char whole[600], streamed[600];
    snprintf(whole, sizeof whole, "%s", tmp_path("whole_out"));
    snprintf(streamed, sizeof streamed, "%s", tmp_path("streamed_out"));
    for (int k = 0; k < 3; k++)
        for (int prune = 0; prune < 2; prune++)
            for (int as_folder = 0; as_folder <= folder; as_folder++) {
                const nmf_tensor_set *set = prune ? &pruned : &s;
                const nmf_dtype want = dtypes[k] == NMF_DTYPE_COUNT ? stored : dtypes[k];
                if (as_folder) {
                    const nmf_hf_write_options h = {want, 0, 0};
                    CHECK_OK(nmf_hf_folder_write(whole, &c, set, &h));
                } else {
                    CHECK_OK(nmf_safetensors_write(whole, set, want));
                }
                const nmf_dense_write_options o = {dtypes[k], prune ? p28 : (nmf_pattern){0, 0}, as_folder, 0, 0};
                nmf_dtype used = NMF_DTYPE_COUNT;
                st = nmf_dense_convert_file(src, model, NULL, streamed, &o, &used);
                CHECK_MSG(st == NMF_OK, "%s: %s", tag, nmf_last_error());
                CHECK(used == want);
                CHECK_MSG(as_folder ? same_folders(whole, streamed) : same_bytes(whole, streamed),
                          "%s: dtype %d, prune %d, folder %d: bytes differ", tag, k, prune, as_folder);
                if (as_folder) {
                    remove_folder(whole);
                    remove_folder(streamed);
                } else {
                    unlink(whole);
                    unlink(streamed);
                }
            }
    if (!folder) { /* a ViT has no folder form: refused before anything is written */
        int before = count_dir_entries(tmp_dir());
        const nmf_dense_write_options o = {NMF_DTYPE_COUNT, {0, 0}, 1, 0, 0};
        CHECK_FAILS(nmf_dense_convert_file(src, model, NULL, streamed, &o, NULL), NMF_ERR_UNSUPPORTED,
                    "no Hugging Face folder form");
        nothing_left(before, streamed, "vit as folder");
    }
    nmf_tensors_free(&pruned);
    nmf_tensors_free(&s);
}

/* The header of a set made here, against the bytes the format says (and the writer made before
 * it streamed): metadata first, tensors in order with their offsets, padded with spaces to 8. */
static void header_bytes(void) {
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    const int64_t a[2] = {2, 3}, b[1] = {1};
    nmf_tensor *t;
    CHECK_OK(nmf_tensors_add_dense(&s, "a.weight", 2, a, NULL, &t));
    for (int i = 0; i < 6; i++) t->data[i] = (float)i - 2.5f;
    CHECK_OK(nmf_tensors_add_dense(&s, "b", 1, b, NULL, &t));
    t->data[0] = 1.0f;
    CHECK_OK(nmf_tensors_set_meta(&s, "k", "v\"q"));
    const char *p = tmp_path("hand.safetensors");
    CHECK_OK(nmf_safetensors_write(p, &s, NMF_DTYPE_BF16));
    const char json[] = "{\"__metadata__\":{\"k\":\"v\\\"q\"},\"a.weight\":{\"dtype\":\"BF16\",\"shape\":[2,3],"
                        "\"data_offsets\":[0,12]},\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[12,14]}}";
    const size_t hlen = sizeof json - 1, padded = (hlen + 7) / 8 * 8;
    uint8_t want[512] = {0};
    for (int i = 0; i < 8; i++) want[i] = (uint8_t)(padded >> (8 * i));
    memcpy(want + 8, json, hlen);
    memset(want + 8 + hlen, ' ', padded - hlen);
    const uint16_t vals[7] = {0xc020, 0xbfc0, 0xbf00, 0x3f00, 0x3fc0, 0x4020, 0x3f80}; /* bf16 of the values */
    for (int i = 0; i < 7; i++) {
        want[8 + padded + 2 * i] = (uint8_t)(vals[i] & 0xff);
        want[8 + padded + 2 * i + 1] = (uint8_t)(vals[i] >> 8);
    }
    size_t n;
    uint8_t *got = read_bytes(p, &n);
    CHECK_MSG(n == 8 + padded + 14 && !memcmp(got, want, n), "hand-made header: %zu bytes", n);
    free(got);
    unlink(p);
    nmf_tensors_free(&s);
}

/* A tensor over the writer's encode chunk (1 Mi values) and ragged against it, read back by the
 * reader: every value where it belongs, in f32 and in bf16 (values bf16 holds exactly). */
static void chunked_values(void) {
    nmf_tensor_set s, back;
    nmf_tensors_init(&s);
    const int64_t shape[2] = {3, ((int64_t)1 << 19) + 5}; /* 1.5 Mi + 15 values */
    nmf_tensor *t;
    CHECK_OK(nmf_tensors_add_dense(&s, "big", 2, shape, NULL, &t));
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (float)((int)(i * 7919 % 255) - 127) / 8.0f;
    const char *p = tmp_path("chunked.safetensors");
    const nmf_dtype dt[2] = {NMF_DTYPE_F32, NMF_DTYPE_BF16};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(nmf_safetensors_write(p, &s, dt[k]));
        CHECK_OK(nmf_safetensors_read(p, &back));
        CHECK(back.count == 1 && nmf_test_same_tensors(&s, &back, 0));
        nmf_tensors_free(&back);
    }
    unlink(p);
    nmf_tensors_free(&s);
}

/* A folder in shards: save_pretrained's names, an index that lists every tensor once, sorted,
 * with the total; read back, the model is the unsharded one; the whole-set writer gives the
 * same files. max 1 byte: every tensor alone. */
static void sharded(const char *src, const char *tag) {
    char one[600], many[600], whole[600];
    snprintf(one, sizeof one, "%s", tmp_path("one_dir"));
    snprintf(many, sizeof many, "%s", tmp_path("many_dir"));
    snprintf(whole, sizeof whole, "%s", tmp_path("whole_dir"));
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_status st = nmf_load_model(src, NULL, NULL, &c, &s);
    CHECK_MSG(st == NMF_OK && s.count >= 2, "%s: %s", tag, nmf_last_error());
    if (st) return;
    size_t bytes = 0;
    for (size_t i = 0; i < s.count; i++) bytes += s.items[i].numel * 4;
    const nmf_dense_write_options flat = {NMF_DTYPE_F32, {0, 0}, 1, 0, 0};
    CHECK_OK(nmf_dense_convert_file(src, NULL, NULL, one, &flat, NULL));
    /* a third of the model; exactly the first two tensors (a shard filled to the byte); 1 byte */
    const uint64_t maxes[3] = {bytes / 3 + 1, (s.items[0].numel + s.items[1].numel) * 4, 1};
    for (int k = 0; k < 3; k++) {
        const nmf_dense_write_options o = {NMF_DTYPE_F32, {0, 0}, 1, 0, maxes[k]};
        CHECK_OK(nmf_dense_convert_file(src, NULL, NULL, many, &o, NULL));
        /* the plan: a new shard when the next tensor would pass the max */
        size_t shards = 1, size = 0;
        for (size_t i = 0; i < s.count; i++) {
            const size_t b = s.items[i].numel * 4;
            if (i && size + b > maxes[k]) shards++, size = 0;
            size += b;
        }
        CHECK_MSG(k < 2 ? shards >= 3 : shards == s.count, "%s: %zu shards", tag, shards);
        CHECK(count_dir_entries(many) == (int)shards + 2); /* config.json, the index */
        char name[700];
        snprintf(name, sizeof name, "%s/model-%05zu-of-%05zu.safetensors", many, shards, shards);
        CHECK_MSG(access(name, R_OK) == 0, "%s: no %s", tag, name);
        snprintf(name, sizeof name, "%s/model.safetensors", many);
        CHECK(access(name, F_OK) != 0);
        /* the index: save_pretrained's layout, every tensor once, sorted by name */
        snprintf(name, sizeof name, "%s/model.safetensors.index.json", many);
        size_t n;
        char *text = (char *)read_bytes(name, &n);
        char head[96];
        snprintf(head, sizeof head, "{\n  \"metadata\": {\n    \"total_size\": %zu\n  },\n  \"weight_map\": {\n", bytes);
        CHECK_MSG(n > strlen(head) && !strncmp(text, head, strlen(head)), "%s: index head", tag);
        CHECK(n > 6 && !memcmp(text + n - 6, "  }\n}\n", 6));
        const char *prev = NULL;
        size_t listed = 0;
        for (char *q = text + strlen(head) - 1; (q = strstr(q, "\n    \"")); q++, listed++) {
            CHECK(!prev || strcmp(prev, q + 6) < 0);
            prev = q + 6;
        }
        CHECK_MSG(listed == s.count, "%s: index lists %zu of %zu", tag, listed, s.count);
        free(text);
        /* read back: the unsharded model, tensor for tensor, in the same order */
        nmf_model_config c2;
        nmf_tensor_set a, b;
        CHECK_OK(nmf_load_model(one, NULL, NULL, &c2, &a));
        CHECK_OK(nmf_load_model(many, NULL, NULL, &c2, &b));
        CHECK_MSG(nmf_test_same_tensors(&a, &b, 1) && nmf_test_same_tensors(&a, &s, 0), "%s: sharded read back differs", tag);
        nmf_tensors_free(&a);
        nmf_tensors_free(&b);
        /* the whole-set writer: the same files */
        const nmf_hf_write_options h = {NMF_DTYPE_F32, 0, maxes[k]};
        CHECK_OK(nmf_hf_folder_write(whole, &c, &s, &h));
        CHECK_MSG(same_folders(whole, many), "%s: whole and streamed shards differ", tag);
        /* and the sharded folder as a source: streamed to one file, the same bytes again */
        const nmf_dense_write_options back = {NMF_DTYPE_F32, {0, 0}, 1, 1, 0};
        CHECK_OK(nmf_dense_convert_file(many, NULL, NULL, whole, &back, NULL)); /* force: replaces it */
        CHECK(same_folders(whole, one));
        remove_folder(whole);
        remove_folder(many);
    }
    remove_folder(one);
    nmf_tensors_free(&s);
}

typedef struct {
    size_t calls;
    uint64_t done, total;
    int ordered;
} progress_seen;

static void on_progress(const nmf_progress *p, void *user) {
    progress_seen *x = user;
    if (strcmp(p->step, "convert") || p->done < x->done || !p->item) x->ordered = 0;
    x->calls++;
    x->done = p->done;
    x->total = p->total;
}

static void progress_per_tensor(void) {
    const char *src = fixture_path("llama_gqa6x2_sharded", NULL);
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(src, NULL, NULL, &c, &s));
    progress_seen seen = {0, 0, 0, 1};
    nmf_set_progress(on_progress, &seen);
    const nmf_dense_write_options o = {NMF_DTYPE_BF16, {0, 0}, 0, 0, 0};
    const char *out = tmp_path("progress.safetensors");
    CHECK_OK(nmf_dense_convert_file(src, NULL, NULL, out, &o, NULL));
    nmf_set_progress(NULL, NULL);
    CHECK_MSG(seen.calls == s.count && seen.ordered && seen.done == seen.total && seen.total > 0,
              "progress: %zu calls for %zu tensors, %llu of %llu", seen.calls, s.count,
              (unsigned long long)seen.done, (unsigned long long)seen.total);
    unlink(out);
    nmf_tensors_free(&s);
}

/* A corrupt tensor in the middle of an .nmf source (a flipped payload byte of the 2:8
 * candidate) stops the stream there with one error naming it; a truncated safetensors source is
 * refused; neither leaves an output or a temporary file or folder, and an existing OUT keeps
 * its bytes. */
static void corrupt_sources(void) {
    const nmf_pattern pats[2] = {{4, 8}, {2, 8}};
    char fam[600];
    snprintf(fam, sizeof fam, "%s", family_write_pruned("good.nmf", fixture_path("llama_gqa6x2", NULL), pats, 2,
                                                        NMF_DTYPE_F32));
    const char *victim = "model.layers.1.mlp.up_proj.weight";
    unsigned users;
    char bad[600];
    snprintf(bad, sizeof bad, "%s", family_corrupt_copy(fam, "2:8", victim, "bad.nmf", &users));
    const nmf_dense_write_options file = {NMF_DTYPE_COUNT, {0, 0}, 0, 0, 0};
    const nmf_dense_write_options dir = {NMF_DTYPE_COUNT, {0, 0}, 1, 0, 0};
    const nmf_dense_write_options pruned = {NMF_DTYPE_COUNT, {1, 8}, 0, 0, 0};
    int before = count_dir_entries(tmp_dir());
    const char *out = tmp_path("from_bad.safetensors");
    CHECK_FAILS(nmf_dense_convert_file(bad, "2:8", NULL, out, &file, NULL), NMF_ERR_CHECKSUM, victim);
    nothing_left(before, out, "corrupt .nmf to safetensors");
    CHECK_FAILS(nmf_dense_convert_file(bad, "2:8", NULL, out, &pruned, NULL), NMF_ERR_CHECKSUM, victim);
    nothing_left(before, out, "corrupt .nmf pruned to safetensors");
    const char *out_dir = tmp_path("from_bad_dir");
    CHECK_FAILS(nmf_dense_convert_file(bad, "2:8", NULL, out_dir, &dir, NULL), NMF_ERR_CHECKSUM, victim);
    nothing_left(before, out_dir, "corrupt .nmf to a folder");
    /* an existing OUT stays as it was */
    write_bytes(out, "keep me", 7);
    CHECK_FAILS(nmf_dense_convert_file(bad, "2:8", NULL, out, &file, NULL), NMF_ERR_CHECKSUM, victim);
    size_t n;
    uint8_t *b = read_bytes(out, &n);
    CHECK(n == 7 && !memcmp(b, "keep me", 7));
    free(b);
    CHECK(count_dir_entries(tmp_dir()) == before + 1);
    unlink(out);
    /* the intact candidates of the same file convert */
    CHECK_OK(nmf_dense_convert_file(bad, "4:8", NULL, out, &file, NULL));
    unlink(out);

    /* a safetensors source cut short */
    b = read_bytes(test_source_path("tests/fixtures/vit_tiny.safetensors"), &n);
    const char *cut = tmp_path("cut.safetensors");
    write_bytes(cut, b, n - 100);
    free(b);
    before = count_dir_entries(tmp_dir());
    CHECK_FAILS(nmf_dense_convert_file(cut, NULL, NULL, out, &file, NULL), NMF_ERR_FORMAT, "cut.safetensors");
    nothing_left(before, out, "truncated safetensors");
    unlink(cut);
    unlink(bad);
    unlink(fam);
}

/* ---- a source larger than the address-space budget, converted within it ---- */

/* What the child converts under the budget: src to bf16, and pruned (2:8) */
typedef struct {
    const char *src, *bf16, *pruned;
    size_t budget;
} budget_job;

/* Exit status: 0, or the step that failed. */
static int budget_child(void *ctx) {
    const budget_job *j = ctx;
    nmf_set_threads(1);
    if (test_limit_address_space(j->budget) != 0) return 2;
    const nmf_dense_write_options to16 = {NMF_DTYPE_BF16, {0, 0}, 0, 0, 0};
    nmf_status st = nmf_dense_convert_file(j->src, NULL, NULL, j->bf16, &to16, NULL);
    if (st) {
        fprintf(stderr, "streamed convert under the budget: %s\n", nmf_last_error());
        return 4;
    }
    const nmf_dense_write_options prune = {NMF_DTYPE_COUNT, {2, 8}, 0, 0, 0};
    st = nmf_dense_convert_file(j->src, NULL, NULL, j->pruned, &prune, NULL);
    if (st) {
        fprintf(stderr, "streamed prune under the budget: %s\n", nmf_last_error());
        return 5;
    }
    test_report_vm("streamed convert and prune");
    return test_whole_model_refused(j->src) ? 0 : 3; /* the model whole does not fit */
}

static void converts_within_address_budget(void) {
    const nmf_model_config c = test_budget_vit(16, 4.0f); /* ~50 MB of f32 weights, random values */
    nmf_tensor_set s;
    size_t bytes = 0, largest = 0;
    test_random_model(&s, &c, 7, &bytes, &largest);
    test_budget_files f;
    test_budget_files_make(&f, "dense_budget", &s);
    char bf16[128], pruned[128], whole[128];
    test_budget_path(bf16, sizeof bf16, &f, "bf16.safetensors");
    test_budget_path(pruned, sizeof pruned, &f, "pruned.safetensors");
    test_budget_path(whole, sizeof whole, &f, "whole.safetensors");
    /* a few tensors (f32, the N:M form, its unpacked copy), the encode buffer, a 1 MB mapping
     * and slack for the allocator; the source is ~50 MB */
    budget_job j = {f.src, bf16, pruned, 16 * largest + ((size_t)8 << 20)};
    CHECK_MSG(bytes > j.budget, "source %zu bytes, budget %zu", bytes, j.budget);
    const int status = test_in_child(budget_child, &j);
    CHECK_MSG(status == 0, "child status %d", status);
    /* the bytes of the whole-model path */
    CHECK_OK(nmf_safetensors_write(whole, &s, NMF_DTYPE_BF16));
    CHECK_MSG(same_bytes(whole, bf16), "budget: bf16 differs");
    nmf_tensor_set p;
    CHECK_OK(nmf_model_prune(&c, &s, (nmf_pattern){2, 8}, &p));
    CHECK_OK(nmf_safetensors_write(whole, &p, NMF_DTYPE_F32));
    CHECK_MSG(same_bytes(whole, pruned), "budget: pruned differs");
    nmf_tensors_free(&p);
    nmf_tensors_free(&s);
    unlink(bf16), unlink(pruned), unlink(whole);
    test_budget_files_remove(&f);
}

int main(void) {
    /* ASan reserves terabytes of address space: RLIMIT_AS cannot apply under the sanitizers */
    if (getenv("NMF_SANITIZED")) printf("address budget: skipped under the sanitizers\n");
    else converts_within_address_budget(); /* first: it forks before any OpenMP region */
    header_bytes();
    chunked_values();
    char vit[4300]; /* test_source_path's buffer is reused by fixture_path */
    snprintf(vit, sizeof vit, "%s", test_source_path("tests/fixtures/vit_tiny.safetensors"));
    streamed_equals_whole(vit, NULL, "vit");
    streamed_equals_whole(fixture_path("gpt2_lm", NULL), NULL, "gpt2");
    streamed_equals_whole(fixture_path("gpt2_long_bf16", NULL), NULL, "gpt2 bf16");
    streamed_equals_whole(fixture_path("bert_cls_pad", NULL), NULL, "bert");
    streamed_equals_whole(fixture_path("llama_gqa6x2_sharded", NULL), NULL, "llama sharded");
    streamed_equals_whole(fixture_path("llama_gqa4x1_tied_bf16", NULL), NULL, "llama tied bf16");
    /* .nmf sources: each candidate of a pruned family (N:M tensors unpacked, zeros) */
    const nmf_pattern pats[2] = {{4, 8}, {1, 8}};
    char fam[600];
    snprintf(fam, sizeof fam, "%s", family_write_pruned("fam_llama.nmf", fixture_path("llama_gqa4x1_tied_bf16", NULL),
                                                        pats, 2, NMF_DTYPE_BF16));
    streamed_equals_whole(fam, "dense", "nmf llama dense");
    streamed_equals_whole(fam, "1:8", "nmf llama 1:8");
    snprintf(fam, sizeof fam, "%s", family_write_pruned("fam_vit.nmf", vit, pats, 2, NMF_DTYPE_F32));
    streamed_equals_whole(fam, "4:8", "nmf vit 4:8");
    sharded(fixture_path("llama_gqa6x2", NULL), "llama");
    sharded(fixture_path("gpt2_lm", NULL), "gpt2");
    progress_per_tensor();
    corrupt_sources();
    rm_tmp_dir();
    return test_finish("stream_dense");
}
