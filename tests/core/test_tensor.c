/* Tensor sets, metadata, and the f16/bf16 conversions. */
#include "nmformer/tensor.h"
#include "test.h"

static void test_half_conversions(void) {
    CHECK(nmf_f32_to_f16(1.0f) == 0x3c00);
    CHECK(nmf_f32_to_f16(-2.0f) == 0xc000);
    CHECK(nmf_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(nmf_f32_to_f16(65520.0f) == 0x7c00);       /* rounds up to inf */
    CHECK(nmf_f32_to_f16(ldexpf(1, -24)) == 0x0001);  /* smallest subnormal */
    CHECK(nmf_f32_to_f16(ldexpf(1, -26)) == 0x0000);  /* below half of it -> 0 */
    CHECK(nmf_f32_to_f16(0.1f) == 0x2e66);
    CHECK(nmf_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00); /* tie -> even */
    CHECK(nmf_f32_to_f16(1.0f + 3 * ldexpf(1, -11)) == 0x3c02);
    CHECK(isnan(nmf_f16_to_f32(nmf_f32_to_f16(NAN))));
    int bad16 = 0, bad_bf = 0;
    for (uint32_t h = 0; h < 65536; h++) { /* every non-NaN half round-trips exactly */
        float f = nmf_f16_to_f32((uint16_t)h);
        if (!isnan(f)) bad16 += nmf_f32_to_f16(f) != h;
        float b = nmf_bf16_to_f32((uint16_t)h);
        if (!isnan(b)) bad_bf += nmf_f32_to_bf16(b) != h;
    }
    CHECK(bad16 == 0);
    CHECK(bad_bf == 0);
    CHECK(nmf_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(nmf_f32_to_bf16(1.0f + ldexpf(1, -8)) == 0x3f80); /* tie -> even */
    CHECK(nmf_f32_to_bf16(1.0f + 3 * ldexpf(1, -8)) == 0x3f82);
    CHECK(isnan(nmf_bf16_to_f32(nmf_f32_to_bf16(NAN))));
    nmf_dtype t;
    CHECK_OK(nmf_dtype_parse("bf16", &t));
    CHECK(t == NMF_DTYPE_BF16 && nmf_dtype_size(t) == 2);
    CHECK_STATUS(nmf_dtype_parse("F64", &t), NMF_ERR_UNSUPPORTED);
}

static void test_sets(void) {
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    int64_t shape[2] = {2, 8};
    float w[16];
    for (int i = 0; i < 16; i++) w[i] = (float)(i % 5) - 2.0f;
    nmf_tensor *t = NULL;
    CHECK_OK(nmf_tensors_add_dense(&s, "a", 2, shape, w, &t));
    CHECK(t && t->numel == 16 && t->data[3] == w[3]);
    CHECK_STATUS(nmf_tensors_add_dense(&s, "a", 2, shape, w, NULL), NMF_ERR_INVALID_ARG);
    int64_t huge[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30};
    CHECK_STATUS(nmf_tensors_add_dense(&s, "huge", 4, huge, NULL, NULL), NMF_ERR_FORMAT);
    nmf_nm_matrix a;
    CHECK_OK(nmf_nm_pack(&a, w, 2, 8, (nmf_pattern){2, 8}, 0));
    CHECK_OK(nmf_tensors_add_nm(&s, "b", &a, &t));
    CHECK(a.storage_ == NULL); /* ownership moved */
    CHECK(nmf_tensors_find(&s, "b") && nmf_tensors_find(&s, "b")->nm);
    CHECK(nmf_tensors_find(&s, "missing") == NULL);
    float dense[16];
    CHECK_OK(nmf_tensor_dense(nmf_tensors_find(&s, "b"), dense));
    int nonzero = 0;
    for (int i = 0; i < 16; i++) nonzero += dense[i] != 0.0f;
    CHECK(nonzero <= 4);
    CHECK_OK(nmf_tensors_set_meta(&s, "k", "v1"));
    CHECK_OK(nmf_tensors_set_meta(&s, "k", "v2"));
    CHECK(s.meta_count == 1 && !strcmp(nmf_tensors_get_meta(&s, "k"), "v2"));
    CHECK(nmf_tensors_get_meta(&s, "nope") == NULL);
    for (int i = 0; i < 40; i++) { /* growth */
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        CHECK_OK(nmf_tensors_add_dense(&s, name, 1, shape, NULL, NULL));
    }
    CHECK(s.count == 42);
    nmf_tensors_free(&s);
}

/* The name index (readers call add/find once per tensor of a possibly huge file): every name is
 * found at its own item through many regrowths, duplicates are refused, absent names are not. */
static void test_many_names(void) {
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    CHECK(nmf_tensors_find(&s, "x") == NULL);
    const int n = getenv("NMF_SANITIZED") ? 5000 : 50000;
    int64_t shape[1] = {0};
    int ok = 1;
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "blocks.%d.w", i);
        ok &= nmf_tensors_add_dense(&s, name, 1, shape, NULL, NULL) == NMF_OK;
    }
    CHECK(ok && s.count == (size_t)n);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "blocks.%d.w", i);
        const nmf_tensor *t = nmf_tensors_find(&s, name);
        ok &= t == &s.items[i] && !strcmp(t->name, name);
        ok &= nmf_tensors_add_dense(&s, name, 1, shape, NULL, NULL) == NMF_ERR_INVALID_ARG;
    }
    CHECK(ok && s.count == (size_t)n);
    CHECK(nmf_tensors_find(&s, "blocks.-1.w") == NULL && nmf_tensors_find(&s, "") == NULL);
    nmf_tensors_free(&s);
    CHECK(s.count == 0 && nmf_tensors_find(&s, "blocks.0.w") == NULL);
}

int main(void) {
    test_half_conversions();
    test_sets();
    test_many_names();
    return test_finish("core_tensor");
}
