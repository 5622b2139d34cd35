/* The mapped family reader (nmf_family_open / nmf_family_file_load; nmf_load_model loads an .nmf
 * candidate this way): every candidate of families pruned from the fixtures (ViT, LLaMA, GPT-2's
 * [in, out] weights; f32 and bf16 files) loads exactly as the whole-family reader decodes it and
 * gives the same logits; a corrupt payload is reported, naming the tensor, by the loads that touch
 * it and only by those; a file cut short after it was opened is an error, not a SIGBUS; and a
 * family larger than an RLIMIT_AS budget still runs one of its candidates within that budget. */
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_test_util.h"
#include "tensor_compare.h"
#include "vm_budget.h"
#include "model/lm_test_util.h"
#include "nmformer/model.h"

static const nmf_pattern pats[3] = {{4, 8}, {2, 8}, {1, 8}};

/* src pruned to a family dense + 4:8, 2:8, 1:8 stored as dtype, written to tmp/file; *fam (when
 * not NULL) keeps the family as it was in memory. */
static const char *write_family(const char *file, const nmf_model_config *c,
                                const nmf_tensor_set *src, nmf_dtype dtype, nmf_family *fam) {
    nmf_family own;
    if (!fam) fam = &own;
    nmf_family_init(fam);
    fam->config = *c;
    const nmf_write_options o = {dtype};
    const char *p = tmp_path(file);
    nmf_status st = nmf_family_prune(fam, c, src, pats, 3, 1, NULL);
    if (!st) st = nmf_family_write(p, fam, &o);
    CHECK_MSG(st == NMF_OK, "%s: %s", file, nmf_last_error());
    if (fam == &own || st) nmf_family_free(fam);
    return st ? NULL : p;
}

/* The model of (c, s) run on fixed inputs (ViT: 2 images; token model: 2 x 5 ids); *n outputs,
 * malloc'd (NULL when the model could not be built). */
static float *logits(const nmf_model_config *c, const nmf_tensor_set *s, size_t *n) {
    float *out = NULL;
    if (nmf_model_is_token(c)) {
        nmf_lm *m = NULL;
        CHECK_OK(nmf_lm_create(&m, c, s));
        if (!m) return NULL;
        int64_t ids[10];
        for (size_t i = 0; i < 10; i++) ids[i] = (int64_t)((i * 7 + 3) % (size_t)c->hf.vocab_size);
        *n = nmf_lm_output_floats(m, 2, 5);
        out = malloc(*n * sizeof *out);
        CHECK_OK(nmf_lm_forward(m, out, ids, 2, 5, NULL));
        nmf_lm_free(m);
        return out;
    }
    nmf_vit *m = NULL;
    CHECK_OK(nmf_vit_create(&m, c, s));
    if (!m) return NULL;
    size_t pixels = 2 * (size_t)c->in_chans * (size_t)c->img_size * (size_t)c->img_size;
    float *x = malloc(pixels * sizeof *x);
    unsigned long long r = 11;
    for (size_t i = 0; i < pixels; i++) x[i] = 0.5f + 0.5f * test_rand_float(&r);
    *n = 2 * (size_t)c->num_classes;
    out = malloc(*n * sizeof *out);
    CHECK_OK(nmf_vit_forward(m, out, x, 2));
    free(x);
    nmf_vit_free(m);
    return out;
}

/* Each candidate of the fixture's family, f32 and bf16: nmf_load_model gives the tensors and the
 * logits of the whole-family reader; from the f32 file, also those of the family as it was in
 * memory, and the dense candidate runs as the fixture itself (loaded by its own reader) does. */
static void mapped_equals_eager(const char *src_path) {
    nmf_model_config c;
    nmf_tensor_set src;
    nmf_status st = nmf_load_model(src_path, NULL, NULL, &c, &src);
    CHECK_MSG(st == NMF_OK, "%s", nmf_last_error());
    if (st) return;
    size_t n0 = 0;
    float *want_dense = logits(&c, &src, &n0);
    const nmf_dtype dtypes[2] = {NMF_DTYPE_F32, NMF_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        const char *dn = nmf_dtype_name(dtypes[d]);
        nmf_family mem;
        const char *p = write_family("fixture.nmf", &c, &src, dtypes[d], &mem);
        if (!p) continue;
        nmf_family eager;
        CHECK_OK(nmf_family_read(p, &eager));
        CHECK(eager.count == 4 && mem.count == 4);
        for (size_t i = 0; i < eager.count && i < mem.count; i++) {
            const char *name = eager.models[i].name;
            nmf_model_config c2;
            nmf_tensor_set lazy;
            CHECK_OK(nmf_load_model(p, name, NULL, &c2, &lazy));
            CHECK_MSG(nmf_test_same_tensors(&lazy, &eager.models[i].tensors, 1), "%s %s candidate %s",
                      src_path, dn, name);
            if (dtypes[d] == NMF_DTYPE_F32)
                CHECK_MSG(nmf_test_same_tensors(&lazy, &mem.models[i].tensors, 0), "%s candidate %s vs memory",
                          src_path, name);
            CHECK(!memcmp(&c2, &eager.config, sizeof c2));
            size_t n1 = 0, n2 = 0;
            float *a = logits(&c2, &lazy, &n1), *b = logits(&eager.config, &eager.models[i].tensors, &n2);
            CHECK_MSG(a && b && n1 == n2 && n1 > 0 && !memcmp(a, b, n1 * sizeof *a),
                      "%s %s candidate %s: logits differ", src_path, dn, name);
            if (dtypes[d] == NMF_DTYPE_F32 && !strcmp(name, "dense"))
                CHECK_MSG(a && want_dense && n1 == n0 && !memcmp(a, want_dense, n0 * sizeof *a),
                          "%s: the dense candidate's logits differ from the fixture's", src_path);
            free(a);
            free(b);
            nmf_tensors_free(&lazy);
        }
        nmf_family_free(&eager);
        nmf_family_free(&mem);
    }
    free(want_dense);
    nmf_tensors_free(&src);
}

/* A bit flipped in payload `own` (of candidate k, shared with no other): the other candidates
 * load, candidate k and the whole-family readers report the tensor. */
static void corrupt_payload(const char *p, const nmf_family *eager, const nmf_family_layout *lay,
                            const nmf_stored_tensor *own) {
    const size_t k = own->model;
    const char *tensor = eager->models[k].tensors.items[own->tensor].name, *kname = eager->models[k].name;
    size_t size;
    uint8_t *raw = read_bytes(p, &size);
    raw[lay->data_offset + own->offset + own->size / 2] ^= 0x40;
    const char *q = tmp_path("corrupt.nmf");
    write_bytes(q, raw, size);
    free(raw);
    nmf_model_config c2;
    nmf_tensor_set t;
    for (size_t m = 0; m < eager->count; m++) {
        if (m == k) continue;
        CHECK_OK(nmf_load_model(q, eager->models[m].name, NULL, &c2, &t));
        CHECK(nmf_test_same_tensors(&t, &eager->models[m].tensors, 1));
        nmf_tensors_free(&t);
    }
    CHECK_FAILS(nmf_load_model(q, kname, NULL, &c2, &t), NMF_ERR_CHECKSUM, tensor);
    CHECK(strstr(nmf_last_error(), kname) != NULL && t.count == 0);
    /* the model loaders, which read a candidate's N:M tensors as its layers are built: the same */
    nmf_vit *vm = NULL;
    CHECK_OK(nmf_vit_load(&vm, q, eager->models[k == 1 ? 3 : 1].name, NULL));
    nmf_vit_free(vm);
    CHECK_FAILS(nmf_vit_load(&vm, q, kname, NULL), NMF_ERR_CHECKSUM, tensor);
    CHECK(vm == NULL);
    nmf_family_file *ff = NULL;
    CHECK_OK(nmf_family_open(q, &ff));
    CHECK_FAILS(nmf_family_file_verify(ff), NMF_ERR_CHECKSUM, tensor);
    nmf_family_close(ff);
    nmf_family g;
    CHECK_FAILS(nmf_family_read(q, &g), NMF_ERR_CHECKSUM, tensor);
    CHECK(g.count == 0);
}

/* The file cut short after its table was checked (every payload gone): loading candidate k is an
 * error naming its first tensor, never a SIGBUS; opened after the cut, the header check refuses it. */
static void truncated_while_open(const char *p, const nmf_family *eager,
                                 const nmf_family_layout *lay, size_t k) {
    size_t size;
    uint8_t *raw = read_bytes(p, &size);
    const char *cut = tmp_path("cut.nmf");
    write_bytes(cut, raw, size);
    free(raw);
    nmf_family_file *ff = NULL;
    CHECK_OK(nmf_family_open(cut, &ff));
    if (!ff) return;
    CHECK(truncate(cut, (off_t)lay->data_offset) == 0);
    nmf_tensor_set t;
    CHECK_FAILS(nmf_family_file_load(ff, k, &t), NMF_ERR_IO, eager->models[k].tensors.items[0].name);
    CHECK(strstr(nmf_last_error(), "shrank") != NULL && t.count == 0);
    CHECK_FAILS(nmf_family_file_verify(ff), NMF_ERR_IO, "shrank");
    CHECK(nmf_family_file_count(ff) == eager->count && nmf_family_file_name(ff, eager->count) == NULL);
    nmf_family_close(ff);
    nmf_model_config c2;
    CHECK_FAILS(nmf_load_model(cut, "dense", NULL, &c2, &t), NMF_ERR_FORMAT, "truncated");
}

static void corrupt_and_truncated(void) {
    nmf_model_config c;
    nmf_tensor_set src;
    nmf_status st = nmf_load_model(test_source_path("tests/fixtures/vit_tiny.safetensors"), NULL, NULL, &c, &src);
    CHECK_MSG(st == NMF_OK, "%s", nmf_last_error());
    if (st) return;
    const char *p = write_family("vit.nmf", &c, &src, NMF_DTYPE_F32, NULL);
    nmf_tensors_free(&src);
    if (!p) return;
    nmf_family eager;
    nmf_family_layout lay;
    CHECK_OK(nmf_family_read_layout(p, &eager, &lay));
    const size_t k = 2;
    CHECK(eager.count == 4 && !strcmp(eager.models[k].name, "2:8"));
    const nmf_stored_tensor *own = NULL; /* a payload of "2:8" no other candidate shares */
    for (size_t i = 0; i < lay.count && !own; i++) {
        size_t users = 0;
        for (size_t j = 0; j < lay.count; j++) users += lay.items[j].payload == lay.items[i].payload;
        if (lay.items[i].model == k && users == 1) own = &lay.items[i];
    }
    CHECK(own != NULL);
    if (own) corrupt_payload(p, &eager, &lay, own);
    if (eager.count == 4) truncated_while_open(p, &eager, &lay, k);
    nmf_family_layout_free(&lay);
    nmf_family_free(&eager);
}

/* What the progress handler saw. */
typedef struct {
    int calls, ordered, named;
    uint64_t done, total;
    char step[16];
} seen;

static void record(const nmf_progress *p, void *user) {
    seen *s = user;
    if (s->calls++ == 0) snprintf(s->step, sizeof s->step, "%s", p->step);
    const int next_step = s->done == s->total; /* the last one ended: done starts again */
    s->ordered &= (next_step || p->done >= s->done) && p->done <= p->total && p->seconds >= 0 &&
                  !strcmp(p->step, s->step) && strstr(p->what, ".nmf") != NULL;
    s->named &= p->item && p->item[0];
    s->done = p->done;
    s->total = p->total;
}

/* Loading a candidate reports each tensor, bytes ascending to the candidate's payload bytes;
 * writing the family each tensor entry, up to the bytes the entries refer to; no handler, no calls. */
static void progress_reported(void) {
    nmf_model_config c;
    nmf_tensor_set src;
    nmf_status st = nmf_load_model(test_source_path("tests/fixtures/vit_tiny.safetensors"), NULL, NULL, &c, &src);
    CHECK_MSG(st == NMF_OK, "%s", nmf_last_error());
    if (st) return;
    seen w = {0, 1, 1, 0, 0, ""};
    nmf_set_progress(record, &w);
    const char *p = write_family("progress.nmf", &c, &src, NMF_DTYPE_F32, NULL);
    nmf_tensors_free(&src);
    if (!p) return;
    nmf_family_layout lay;
    nmf_family f;
    seen r = {0, 1, 1, 0, 0, ""};
    nmf_set_progress(record, &r);
    CHECK_OK(nmf_family_read_layout(p, &f, &lay)); /* decodes all 4: 4 load steps */
    nmf_set_progress(NULL, NULL);
    uint64_t entry_bytes = 0; /* writing reports each entry, shared payloads once per entry */
    for (size_t i = 0; i < lay.count; i++) entry_bytes += lay.items[i].size;
    CHECK(w.calls == (int)lay.count && w.ordered && w.named && !strcmp(w.step, "write"));
    CHECK(w.done == w.total && w.total == entry_bytes);
    CHECK(r.calls == (int)lay.count && r.ordered && r.named && !strcmp(r.step, "load"));
    nmf_family_free(&f);
    uint64_t bytes = 0; /* candidate 1's payload bytes */
    for (size_t i = 0; i < lay.count; i++)
        if (lay.items[i].model == 1) bytes += lay.items[i].size;
    nmf_family_layout_free(&lay);
    seen one = {0, 1, 1, 0, 0, ""};
    nmf_set_progress(record, &one);
    nmf_family_file *ff = NULL;
    nmf_tensor_set t;
    CHECK_OK(nmf_family_open(p, &ff));
    CHECK_OK(nmf_family_file_load(ff, 1, &t));
    nmf_set_progress(NULL, NULL);
    CHECK(one.calls == (int)t.count && one.ordered && one.named && one.done == bytes &&
          one.total == bytes);
    nmf_tensors_free(&t);
    seen none = {0, 1, 1, 0, 0, ""};
    CHECK_OK(nmf_family_file_load(ff, 1, &t));
    CHECK(none.calls == 0);
    nmf_tensors_free(&t);
    nmf_family_close(ff);
}

/* ---- a family larger than the address-space budget, one candidate run within it ---- */

#define BIG_CANDIDATES 8

/* A ViT of ~25 MB of f32 weights: random values, scaled per candidate so no payload is shared. */
static void random_candidate(const nmf_model_desc *d, int k, nmf_tensor_set *s) {
    nmf_tensors_init(s);
    unsigned long long r = 1234;
    for (size_t i = 0; i < d->count; i++) {
        const nmf_param *p = &d->params[i];
        nmf_tensor *t = NULL;
        CHECK_OK(nmf_tensors_add_dense(s, p->name, p->ndim, p->shape, NULL, &t));
        for (size_t j = 0; t && j < t->numel; j++)
            t->data[j] = 0.05f * test_rand_float(&r) * (1.0f + (float)k / 16);
    }
}

/* The child: the budget set, the whole family must not fit (nmf_family_read runs out of memory),
 * and candidate `name` must load and run; its logits go to fd. Exit status: 0 or the step that
 * failed. */
typedef struct {
    const char *p, *name;
    size_t budget;
    const float *image;
    int fd;
} budget_job;
static int budget_child(void *ctx) {
    const budget_job *j = ctx;
    const char *p = j->p, *name = j->name;
    const float *image = j->image;
    const int fd = j->fd;
    nmf_set_threads(1);
    if (test_limit_address_space(j->budget) != 0) return 2;
    nmf_family f;
    nmf_status st = nmf_family_read(p, &f);
    if (st == NMF_OK) nmf_family_free(&f);
    if (st != NMF_ERR_NOMEM) {
        fprintf(stderr, "whole family under the budget: %s (%s)\n", nmf_strerror(st), nmf_last_error());
        return 3;
    }
    nmf_vit *m = NULL;
    st = nmf_vit_load(&m, p, name, NULL);
    if (st) {
        fprintf(stderr, "candidate %s under the budget: %s\n", name, nmf_last_error());
        return 4;
    }
    float out[16];
    st = nmf_vit_forward(m, out, image, 1);
    nmf_vit_free(m);
    if (st) {
        fprintf(stderr, "forward under the budget: %s\n", nmf_last_error());
        return 5;
    }
    return write(fd, out, 10 * sizeof *out) == (ssize_t)(10 * sizeof *out) ? 0 : 6;
}

static void runs_within_address_budget(void) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.dim = 256;
    c.depth = 8;
    c.heads = 4;
    c.mlp_ratio = 4.0f;
    CHECK_OK(nmf_model_config_validate(&c));
    CHECK(c.num_classes == 10);
    nmf_model_desc d;
    CHECK_OK(nmf_model_describe(&d, &c));
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = c;
    size_t candidate_bytes = 0;
    for (int k = 0; k < BIG_CANDIDATES; k++) {
        nmf_tensor_set s;
        random_candidate(&d, k, &s);
        candidate_bytes = 0;
        for (size_t i = 0; i < s.count; i++) candidate_bytes += s.items[i].numel * sizeof(float);
        char name[8];
        snprintf(name, sizeof name, "c%d", k);
        CHECK_OK(nmf_family_add(&fam, name, &s));
    }
    /* not on tmpfs: the family must not sit in memory */
    char dir[] = "/tmp/nmf_budget_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[64];
    snprintf(p, sizeof p, "%s/big.nmf", dir);
    CHECK_OK(nmf_family_write(p, &fam, NULL));
    nmf_family_free(&fam);
    struct stat sb;
    CHECK(stat(p, &sb) == 0);
    /* one candidate's tensors, the model's copy of them, activations and slack; the file is
     * BIG_CANDIDATES candidates */
    const size_t budget = 3 * candidate_bytes + ((size_t)64 << 20);
    CHECK_MSG((size_t)sb.st_size > budget, "file %lld bytes, budget %zu", (long long)sb.st_size, budget);
    float image[28 * 28];
    unsigned long long r = 3;
    for (size_t i = 0; i < 28 * 28; i++) image[i] = 0.5f + 0.5f * test_rand_float(&r);
    CHECK(c.img_size == 28 && c.in_chans == 1);

    int fds[2];
    CHECK(pipe(fds) == 0);
    budget_job j = {p, "c5", budget, image, fds[1]}; /* (10 logits: within the pipe's buffer) */
    const int status = test_in_child(budget_child, &j);
    close(fds[1]);
    float got[10];
    ssize_t n = read(fds[0], got, sizeof got);
    close(fds[0]);
    CHECK_MSG(status == 0, "child status %d", status);
    CHECK(n == (ssize_t)sizeof got);
    /* the same candidate without a budget gives the same logits */
    const int threads = nmf_get_threads();
    nmf_set_threads(1);
    nmf_vit *m = NULL;
    CHECK_OK(nmf_vit_load(&m, p, "c5", NULL));
    float want[10];
    if (m) CHECK_OK(nmf_vit_forward(m, want, image, 1));
    nmf_vit_free(m);
    nmf_set_threads(threads);
    CHECK(n == (ssize_t)sizeof got && !memcmp(got, want, sizeof got));
    unlink(p);
    rmdir(dir);
    nmf_model_desc_free(&d);
}

int main(void) {
    /* ASan reserves terabytes of address space: RLIMIT_AS cannot apply under the sanitizers */
    if (getenv("NMF_SANITIZED")) printf("address budget: skipped under the sanitizers\n");
    else runs_within_address_budget(); /* first: it forks before any OpenMP region */
    mapped_equals_eager(test_source_path("tests/fixtures/vit_tiny.safetensors"));
    mapped_equals_eager(fixture_path("llama_gqa6x2", NULL));
    mapped_equals_eager(fixture_path("gpt2_lm", NULL)); /* [in, out] weights: a version-2 file */
    corrupt_and_truncated();
    progress_reported();
    rm_tmp_dir();
    return test_finish("nmf_mapped");
}
