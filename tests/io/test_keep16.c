/* Readers that keep 16-bit values (io_internal.h, keep16; nmf_load_model_keep16's readers):
 * - a BF16 and an F16 safetensors: every dense tensor holds exactly the stored bits in data16,
 *   data NULL, the stored dtype; nmf_tensor_dense widens them to the values an f32 read gives;
 * - an F32 file is read as without keep16 (data, no data16);
 * - a file whose payload is cut short fails with the tensor named, never a crash;
 * - nmf_tensors_add_dense16's and nmf_tensors_move_in's contracts. */
#include "io/io_internal.h"
#include "io_test_util.h"

static void make_set(nmf_tensor_set *s) {
    nmf_tensors_init(s);
    const int64_t shape_a[2] = {3, 5}, shape_b[1] = {7};
    float a[15], b[7];
    for (int i = 0; i < 15; i++) a[i] = (float)(i - 7) * 0.37f;
    for (int i = 0; i < 7; i++) b[i] = 1.0f / (float)(i + 1);
    CHECK_OK(nmf_tensors_add_dense(s, "a.weight", 2, shape_a, a, NULL));
    CHECK_OK(nmf_tensors_add_dense(s, "b.bias", 1, shape_b, b, NULL));
}

static void test_dtype(nmf_dtype dt) {
    nmf_tensor_set src, plain, kept;
    make_set(&src);
    const char *path = tmp_path("keep16.safetensors");
    CHECK_OK(nmf_safetensors_write(path, &src, dt));
    CHECK_OK(nmf_io_safetensors_read(path, &plain, NULL, 0));
    CHECK_OK(nmf_io_safetensors_read(path, &kept, NULL, 1));
    CHECK(kept.count == src.count && plain.count == src.count);
    for (size_t i = 0; i < src.count && i < kept.count && i < plain.count; i++) {
        const nmf_tensor *s = &src.items[i], *k = &kept.items[i], *p = &plain.items[i];
        CHECK(!strcmp(s->name, k->name) && k->numel == s->numel);
        if (dt == NMF_DTYPE_F32) {
            CHECK(k->data && !k->data16);
            CHECK(!memcmp(k->data, s->data, s->numel * sizeof(float)));
            continue;
        }
        CHECK(!k->data && k->data16 && k->stored_dtype == dt);
        for (size_t j = 0; k->data16 && j < s->numel; j++) /* the stored bits, as written */
            CHECK(k->data16[j] == (dt == NMF_DTYPE_BF16 ? nmf_f32_to_bf16(s->data[j])
                                                        : nmf_f32_to_f16(s->data[j])));
        float *w = malloc(s->numel * sizeof *w);
        CHECK_OK(nmf_tensor_dense(k, w));
        CHECK(!memcmp(w, p->data, s->numel * sizeof(float))); /* as an f32 read decodes them */
        free(w);
    }
    nmf_tensors_free(&plain);
    nmf_tensors_free(&kept);
    if (dt != NMF_DTYPE_F32) { /* the last payload cut short: named, not a crash */
        size_t size;
        uint8_t *raw = read_bytes(path, &size);
        write_bytes(tmp_path("cut.safetensors"), raw, size - 2);
        CHECK_FAILS(nmf_io_safetensors_read(tmp_path("cut.safetensors"), &kept, NULL, 1),
                    NMF_ERR_FORMAT, "b.bias");
        CHECK(kept.count == 0);
        free(raw);
    }
    nmf_tensors_free(&src);
}

static void test_set_api(void) {
    nmf_tensor_set a, b;
    nmf_tensors_init(&a);
    nmf_tensors_init(&b);
    const int64_t shape[2] = {2, 3};
    nmf_tensor *t = NULL;
    CHECK_STATUS(nmf_tensors_add_dense16(&a, "x", 2, shape, NMF_DTYPE_F32, &t), NMF_ERR_INVALID_ARG);
    const int64_t bad[2] = {-1, 3};
    CHECK_STATUS(nmf_tensors_add_dense16(&a, "x", 2, bad, NMF_DTYPE_BF16, &t), NMF_ERR_FORMAT);
    CHECK(a.count == 0);
    CHECK_OK(nmf_tensors_add_dense16(&a, "x", 2, shape, NMF_DTYPE_BF16, &t));
    CHECK(t && t->numel == 6 && t->data16 && !t->data && t->data16[5] == 0);
    CHECK_STATUS(nmf_tensors_add_dense16(&a, "x", 2, shape, NMF_DTYPE_F16, NULL), NMF_ERR_INVALID_ARG);
    t->data16[4] = nmf_f32_to_bf16(2.5f);
    uint16_t *held = t->data16;
    nmf_tensor *moved = NULL;
    CHECK_OK(nmf_tensors_move_in(&b, t, &moved));
    CHECK(moved && moved->data16 == held && moved->stored_dtype == NMF_DTYPE_BF16);
    CHECK(!strcmp(moved->name, "x") && moved->name != a.items[0].name);
    CHECK(a.items[0].data16 == NULL && !strcmp(a.items[0].name, "x"));
    float w[6];
    CHECK_OK(nmf_tensor_dense(moved, w));
    CHECK(w[4] == 2.5f && w[0] == 0.0f);
    CHECK_STATUS(nmf_tensors_move_in(&b, &a.items[0], NULL), NMF_ERR_INVALID_ARG); /* duplicate */
    nmf_tensors_free(&a); /* frees the name only: the values are b's */
    nmf_tensors_free(&b);
}

int main(void) {
    test_dtype(NMF_DTYPE_BF16);
    test_dtype(NMF_DTYPE_F16);
    test_dtype(NMF_DTYPE_F32);
    test_set_api();
    rm_tmp_dir();
    return test_finish("test_keep16");
}
