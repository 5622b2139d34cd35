/* A ViT holding BF16/F16 weights as stored, through the block linears every model builds
 * (src/model/block_linear.c): families of the tiny ViT fixture (dense, 4:8, 2:8, 1:8) written
 * BF16 and F16, each candidate loaded as stored (nmf_vit_load) against its f32 load (nmf_load_model
 * + nmf_vit_create, weights widened):
 * - the block linears really stay 16-bit: weight bytes = the f32 model's less 2 bytes per dense
 *   block weight (dense 16-bit layers), and for bf16 N:M candidates the compact layout's;
 * - logits within 1e-5 of the f32 load's (relative to the largest; the kernels widen exactly and
 *   differ only in summation order), at every ISA, on batches of 1, 2 and 5 images;
 * - a corrupt block weight the dense candidate uses in place from the file is NMF_ERR_CHECKSUM
 *   naming it, for that candidate only;
 * - such a model is bf16 already: nmf_vit_set_precision(bf16) is a no-op, int8 is refused;
 * - `run` without --precision computes those logits bit for bit (one thread), and
 *   `run --precision f32` the f32 load's. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/io_test_util.h"
#include "model/lm_test_util.h"
#include "nmformer/kernels.h"
#include "nmformer/model.h"

static const nmf_pattern pats[3] = {{4, 8}, {2, 8}, {1, 8}};
static const char *const names[4] = {"dense", "4:8", "2:8", "1:8"};

static const char *write_family(const char *file, nmf_dtype dtype) {
    return family_write_pruned(file, test_source_path("tests/fixtures/vit_tiny.safetensors"), pats, 3,
                               dtype);
}

static nmf_vit *load_f32(const char *path, const char *name) {
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_vit *m = NULL;
    CHECK_OK(nmf_load_model(path, name, NULL, &c, &s));
    if (!test_failures) CHECK_OK(nmf_vit_create(&m, &c, &s));
    nmf_tensors_free(&s);
    return m;
}

/* n images of c's shape, values in [0, 1) */
static float *images(const nmf_model_config *c, size_t n) {
    const size_t pixels = n * (size_t)c->in_chans * (size_t)c->img_size * (size_t)c->img_size;
    float *x = malloc(pixels * sizeof *x);
    unsigned long long r = 5;
    for (size_t i = 0; i < pixels; i++) x[i] = 0.5f + 0.5f * test_rand_float(&r);
    return x;
}

/* Block weights of the model: dense ones and N:M kept ones. */
static void block_weights(const char *path, const char *name, size_t *dense, size_t *kept) {
    nmf_model_config c;
    nmf_tensor_set s;
    *dense = *kept = 0;
    CHECK_OK(nmf_load_model(path, name, NULL, &c, &s));
    for (size_t i = 0; i < s.count; i++) {
        const nmf_tensor *t = &s.items[i];
        if (t->nm) *kept += t->nm->rows * t->nm->groups * (size_t)t->nm->pattern.n;
        else if (strstr(t->name, "attn.qkv.weight") || strstr(t->name, "attn.proj.weight") ||
                 strstr(t->name, "mlp.fc1.weight") || strstr(t->name, "mlp.fc2.weight"))
            *dense += t->numel;
    }
    nmf_tensors_free(&s);
}

static void against_f32(const char *fam, nmf_dtype dtype, const char *label) {
    for (int k = 0; k < 4; k++) {
        nmf_vit *m16 = NULL, *mf = load_f32(fam, names[k]);
        CHECK_OK(nmf_vit_load(&m16, fam, names[k], NULL));
        if (!m16 || !mf) goto next;
        /* what the model holds */
        size_t dense = 0, kept = 0;
        block_weights(fam, names[k], &dense, &kept);
        const size_t b16 = nmf_vit_weight_bytes(m16), bf = nmf_vit_weight_bytes(mf);
        if (k == 0) {
            CHECK_MSG(dense > 0 && b16 == bf - 2 * dense, "%s %s: %zu bytes, f32 %zu, %zu dense weights",
                      label, names[k], b16, bf, dense);
        } else if (dtype == NMF_DTYPE_BF16) { /* compact: < 3 bytes per kept weight, f32 >= 5 */
            CHECK_MSG(kept > 0 && b16 < bf && bf - b16 >= 2 * kept, "%s %s: %zu bytes vs f32 %zu (%zu kept)",
                      label, names[k], b16, bf, kept);
        } else { /* F16 N:M weights: the f32 N:M layer (no f16 N:M kernels) */
            CHECK(b16 == bf);
        }
        /* the same logits as the f32 load's, every ISA, ragged batches */
        const nmf_model_config *c = nmf_vit_get_config(mf);
        const size_t classes = (size_t)c->num_classes;
        float *x = images(c, 5), *a = malloc(5 * classes * sizeof *a), *b = malloc(5 * classes * sizeof *b);
        const size_t batches[3] = {1, 2, 5};
        const nmf_isa best = nmf_cpu_best_isa();
        for (int isa = NMF_ISA_SCALAR; isa <= (int)best; isa++) {
            nmf_set_isa((nmf_isa)isa);
            for (int j = 0; j < 3; j++) {
                CHECK_OK(nmf_vit_forward(m16, a, x, batches[j]));
                CHECK_OK(nmf_vit_forward(mf, b, x, batches[j]));
                const double e = rel_err(a, b, batches[j] * classes);
                CHECK_MSG(e <= 1e-5, "%s %s (%s, %zu images): rel err %.3g", label, names[k],
                          nmf_isa_name((nmf_isa)isa), batches[j], e);
            }
        }
        nmf_set_isa(best);
        /* bf16 already: the same precision again is a no-op, another one refused */
        if (dtype == NMF_DTYPE_BF16) {
            CHECK_OK(nmf_vit_set_precision(m16, NMF_PREC_BF16));
            CHECK(nmf_vit_set_precision(m16, NMF_PREC_INT8) != NMF_OK);
            nmf_clear_error();
        }
        free(x), free(a), free(b);
    next:
        nmf_vit_free(m16);
        nmf_vit_free(mf);
    }
}

/* `run FAM --model NAME [--precision f32]` against the library's logits, bit for bit (one thread). */
static void run_cli(const char *fam, const char *name) {
    const char *cli = getenv("NMF_CLI");
    if (!cli) return;
    nmf_vit *m16 = NULL, *mf = load_f32(fam, name);
    CHECK_OK(nmf_vit_load(&m16, fam, name, NULL));
    if (!m16 || !mf) goto done;
    const nmf_model_config *c = nmf_vit_get_config(mf);
    const size_t classes = (size_t)c->num_classes;
    float *x = images(c, 3), want16[3 * 64], wantf[3 * 64];
    CHECK(classes <= 64);
    nmf_set_threads(1);
    CHECK_OK(nmf_vit_forward(m16, want16, x, 3));
    CHECK_OK(nmf_vit_forward(mf, wantf, x, 3));
    const int64_t shape[4] = {3, c->in_chans, c->img_size, c->img_size};
    char in[512], out[512];
    snprintf(in, sizeof in, "%s", tmp_path("x.npy"));
    snprintf(out, sizeof out, "%s", tmp_path("y.npy"));
    CHECK_OK(nmf_npy_write(in, x, 4, shape));
    for (int f32 = 0; f32 < 2; f32++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s' run '%s' --model %s --input '%s' --output '%s' -j 1%s", cli, fam, name,
                 in, out, f32 ? " --precision f32" : "");
        CHECK_MSG(system(cmd) == 0, "%s", cmd);
        nmf_array y;
        memset(&y, 0, sizeof y);
        CHECK_OK(nmf_npy_read(out, &y));
        CHECK_MSG(y.numel == 3 * classes && !memcmp(y.data, f32 ? wantf : want16, y.numel * sizeof(float)),
                  "run %s%s: not the library's logits", name, f32 ? " --precision f32" : "");
        nmf_array_free(&y);
    }
    free(x);
done:
    nmf_vit_free(m16);
    nmf_vit_free(mf);
}

/* A flipped byte in a block weight the dense bf16 candidate uses in place from the mapped file:
 * NMF_ERR_CHECKSUM naming it when that candidate loads; the others load. */
static void corrupt_in_place(const char *fam) {
    unsigned users = 0;
    const char *victim = "blocks.1.mlp.fc1.weight";
    const char *q = family_corrupt_copy(fam, "dense", victim, "corrupt.nmf", &users);
    CHECK(users == 1u);
    for (int k = 0; k < 4; k++) {
        nmf_vit *m = NULL;
        if (k == 0) CHECK_FAILS(nmf_vit_load(&m, q, names[k], NULL), NMF_ERR_CHECKSUM, victim);
        else CHECK_OK(nmf_vit_load(&m, q, names[k], NULL));
        CHECK(!m == !k);
        nmf_vit_free(m);
    }
    unlink(q);
}

int main(void) {
    const char *b16 = write_family("vit_bf16.nmf", NMF_DTYPE_BF16);
    const char *f16 = write_family("vit_f16.nmf", NMF_DTYPE_F16);
    against_f32(b16, NMF_DTYPE_BF16, "bf16");
    against_f32(f16, NMF_DTYPE_F16, "f16");
    corrupt_in_place(b16);
    run_cli(b16, "2:8");
    run_cli(b16, "dense");
    rm_tmp_dir();
    return test_finish("test_vit_keep16");
}
