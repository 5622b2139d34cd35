/* Token models holding BF16/F16 weights as stored (nmf_lm_load -> nmf_load_model_keep16 ->
 * nmf_lm_create_from), against the f32 path (nmf_load_model + nmf_lm_create, today's):
 * - the fixtures stored BF16 (GPT-2 with a tied head, LLaMA with a tied head) and F16 (LLaMA):
 *   the weights really stay 16-bit: nmf_lm_weight_bytes is exactly the 16-bit bytes of every
 *   2-D weight but the position/type embeddings plus the f32 bytes of the rest (norms, biases,
 *   position embeddings), less than the f32 model's; logits within 1e-5 (relative to
 *   the largest) of the f32 path's and within the fixtures' tolerance of PyTorch's, at every
 *   ISA; the same greedy tokens as the f32 path and as transformers' generate;
 * - a bf16 .nmf family (dense + 2:8 of the LLaMA fixture): each candidate the same against its
 *   f32 load, the dense one's weight bytes 16-bit;
 * - nmf_lm_create_from empties the set it is given. */
#include <stdlib.h>

#include "lm_test_util.h"
#include "nmformer/kernels.h"

/* 2-D weights but position / token-type embeddings: 16-bit when the file stores 16-bit */
static int held16(const nmf_tensor *t) {
    return t->ndim == 2 && !strstr(t->name, "wpe") && !strstr(t->name, "position") &&
           !strstr(t->name, "token_type");
}

static void greedy(nmf_lm *m, const nmf_id_array *ids, size_t G, int64_t *out) {
    const size_t B = (size_t)ids->shape[0], T = (size_t)ids->shape[1];
    CHECK_OK(nmf_lm_generate(m, out, ids->data, B, T, G, NULL, 0, NULL));
}

/* m16 (kept) against mf (f32) on the fixture's inputs; ref: PyTorch's logits or NULL */
static void compare(nmf_lm *m16, nmf_lm *mf, const char *label, const nmf_id_array *ids,
                    const nmf_array *ref, const nmf_id_array *gen) {
    const size_t B = (size_t)ids->shape[0], T = (size_t)ids->shape[1];
    const size_t n = nmf_lm_output_floats(mf, B, T);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    CHECK_OK(nmf_lm_forward(mf, b, ids->data, B, T, NULL));
    const nmf_isa best = nmf_cpu_best_isa();
    for (int isa = NMF_ISA_SCALAR; isa <= (int)best; isa++) {
        nmf_set_isa((nmf_isa)isa);
        CHECK_OK(nmf_lm_forward(m16, a, ids->data, B, T, NULL));
        const double e = rel_err(a, b, n);
        CHECK_MSG(e <= 1e-5, "%s (%s): kept vs f32 logits rel err %.3g", label,
                  nmf_isa_name((nmf_isa)isa), e);
        if (ref && ref->numel == n) {
            const double r = rel_err(a, ref->data, n);
            CHECK_MSG(r <= 1e-4, "%s (%s): vs PyTorch rel err %.3g", label,
                      nmf_isa_name((nmf_isa)isa), r);
        }
    }
    nmf_set_isa(best);
    const size_t total = gen && gen->numel ? (size_t)gen->shape[1] : T + 5;
    int64_t *g16 = calloc(B * total, sizeof *g16), *gf = calloc(B * total, sizeof *gf);
    greedy(m16, ids, total - T, g16);
    greedy(mf, ids, total - T, gf);
    CHECK_MSG(!memcmp(g16, gf, B * total * sizeof *g16), "%s: greedy tokens differ", label);
    if (gen && gen->numel)
        CHECK_MSG(!memcmp(g16, gen->data, B * total * sizeof *g16), "%s: not transformers' tokens",
                  label);
    free(a), free(b), free(g16), free(gf);
}

static nmf_lm *load_f32(const char *path, const char *name) {
    nmf_model_config c;
    nmf_tensor_set s;
    nmf_lm *m = NULL;
    CHECK_OK(nmf_load_model(path, name, NULL, &c, &s));
    if (!test_failures) CHECK_OK(nmf_lm_create(&m, &c, &s));
    nmf_tensors_free(&s);
    return m;
}

static void test_fixture(const char *name, nmf_dtype stored) {
    const char *path = fixture_path(name, NULL);
    /* the file's tensors, f32, for the expected bytes */
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(path, NULL, NULL, &c, &s));
    size_t want = 0;
    for (size_t i = 0; i < s.count; i++) {
        CHECK(s.items[i].stored_dtype == stored);
        want += s.items[i].numel * (held16(&s.items[i]) ? 2 : 4);
    }
    nmf_tensors_free(&s);
    /* the set kept 16-bit, and a model from it that empties it */
    CHECK_OK(nmf_load_model_keep16(path, NULL, NULL, NULL, &c, &s));
    size_t kept = 0;
    for (size_t i = 0; i < s.count; i++) {
        const nmf_tensor *t = &s.items[i];
        CHECK(t->data16 && !t->data && t->stored_dtype == stored);
        kept += t->numel;
    }
    CHECK(kept > 0);
    nmf_lm *m16 = NULL;
    CHECK_OK(nmf_lm_create_from(&m16, &c, &s));
    CHECK_MSG(s.count == 0, "%s: %zu tensors left in the set", name, s.count);
    nmf_tensors_free(&s);
    nmf_lm_free(m16);

    m16 = NULL;
    CHECK_OK(nmf_lm_load(&m16, path, NULL));
    nmf_lm *mf = load_f32(path, NULL);
    if (!m16 || !mf) goto done;
    const size_t b16 = nmf_lm_weight_bytes(m16), bf = nmf_lm_weight_bytes(mf);
    CHECK_MSG(b16 == want, "%s: %zu weight bytes held, %zu expected (f32 model: %zu)", name, b16,
              want, bf);
    CHECK_MSG(b16 < bf, "%s: %zu bytes kept vs %zu f32", name, b16, bf);
    nmf_id_array ids = fixture_ids(name, "input_ids.npy"), gen = fixture_ids(name, "generate.npy");
    nmf_array ref = fixture_floats(name, "logits.npy");
    compare(m16, mf, name, &ids, &ref, &gen);
    nmf_id_array_free(&ids);
    nmf_id_array_free(&gen);
    nmf_array_free(&ref);
done:
    nmf_lm_free(m16);
    nmf_lm_free(mf);
}

/* A bf16 family of the LLaMA fixture: dense + 2:8 (magnitude), each candidate against its f32 load. */
static void test_family(void) {
    const char *src = fixture_path("llama_gqa4x1_tied_bf16", NULL);
    char dir[] = "/tmp/nmf_keep16_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char fam_path[256];
    snprintf(fam_path, sizeof fam_path, "%s/fam.nmf", dir);
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(src, NULL, NULL, &c, &s));
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = c;
    const nmf_pattern p = {2, 8};
    nmf_dtype dt = NMF_DTYPE_F32;
    CHECK_OK(nmf_family_prune(&fam, &c, &s, &p, 1, 1, &dt));
    CHECK(dt == NMF_DTYPE_BF16);
    const nmf_write_options opt = {.value_dtype = NMF_DTYPE_BF16};
    CHECK_OK(nmf_family_write(fam_path, &fam, &opt));
    nmf_family_free(&fam);
    nmf_tensors_free(&s);
    nmf_id_array ids = fixture_ids("llama_gqa4x1_tied_bf16", "input_ids.npy");
    const char *names[] = {"dense", "2:8"};
    for (int i = 0; i < 2 && !test_failures; i++) {
        nmf_lm *m16 = NULL, *mf = load_f32(fam_path, names[i]);
        CHECK_OK(nmf_lm_load(&m16, fam_path, names[i]));
        if (m16 && mf) {
            char label[64];
            snprintf(label, sizeof label, "bf16 family %s", names[i]);
            compare(m16, mf, label, &ids, NULL, NULL);
            CHECK(nmf_lm_weight_bytes(m16) < nmf_lm_weight_bytes(mf) * (i ? 0.9 : 0.6));
        }
        nmf_lm_free(m16);
        nmf_lm_free(mf);
    }
    nmf_id_array_free(&ids);
    unlink(fam_path);
    rmdir(dir);
}

int main(void) {
    test_fixture("gpt2_long_bf16", NMF_DTYPE_BF16);
    test_fixture("llama_gqa4x1_tied_bf16", NMF_DTYPE_BF16);
    test_fixture("llama_mha5_t1_f16", NMF_DTYPE_F16);
    test_family();
    return test_finish("test_lm_keep16");
}
