/* safetensors: the PyTorch-written fixture, write/read round trips in F32/F16/BF16 with metadata,
 * and hostile headers: every one refused with a status and a message naming the problem. */
#include "io_test_util.h"

static void fixture(void) {
    nmf_tensor_set s;
    CHECK_OK(nmf_safetensors_read(test_source_path("tests/fixtures/vit_tiny.safetensors"), &s));
    CHECK(s.count == 4 + 12 * 2 + 4);
    const char *cfg = nmf_tensors_get_meta(&s, NMF_CONFIG_META_KEY);
    CHECK(cfg != NULL);
    nmf_model_config c;
    nmf_model_config_default(&c);
    CHECK_OK(nmf_model_config_from_json(cfg ? cfg : "", &c));
    CHECK(c.dim == 32 && c.depth == 2 && c.heads == 2 && c.img_size == 28 && c.patch == 7);
    CHECK_OK(nmf_model_check_tensors(&c, &s));
    nmf_tensor *t = nmf_tensors_find(&s, "blocks.1.attn.qkv.weight");
    CHECK(t && t->ndim == 2 && t->shape[0] == 96 && t->shape[1] == 32);
    /* block 1's linears were quantised to k/16 by the generator */
    int quantised = 1;
    for (size_t i = 0; t && i < t->numel; i++) quantised &= t->data[i] * 16 == (float)(int)(t->data[i] * 16);
    CHECK(quantised);
    CHECK(nmf_tensors_get_meta(&s, "source") != NULL);
    nmf_tensors_free(&s);
}

static void round_trip(void) {
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    int64_t sh_a[2] = {3, 5}, sh_b[1] = {7}, sh_c[4] = {2, 1, 2, 3}, sh_d[1] = {0};
    nmf_tensor *a, *b, *c, *d;
    CHECK_OK(nmf_tensors_add_dense(&s, "a", 2, sh_a, NULL, &a));
    CHECK_OK(nmf_tensors_add_dense(&s, "b.weight", 1, sh_b, NULL, &b));
    CHECK_OK(nmf_tensors_add_dense(&s, "c", 4, sh_c, NULL, &c));
    CHECK_OK(nmf_tensors_add_dense(&s, "scalar", 0, sh_d, NULL, &d));
    unsigned long long r = 7;
    for (size_t i = 0; i < a->numel; i++) a->data[i] = test_rand_float(&r) * 100;
    for (size_t i = 0; i < b->numel; i++) b->data[i] = test_rand_float(&r) * 1e-6f;
    for (size_t i = 0; i < c->numel; i++) c->data[i] = test_rand_float(&r);
    d->data[0] = 3.25f;
    a->data[0] = -0.0f;
    a->data[1] = 70000.0f; /* f16 overflows to inf */
    /* an N:M tensor is written dense, zeros where pruned */
    float w[4 * 8];
    for (int i = 0; i < 32; i++) w[i] = test_rand_float(&r);
    nmf_nm_matrix m;
    CHECK_OK(nmf_nm_pack(&m, w, 4, 8, (nmf_pattern){2, 8}, 0));
    CHECK_OK(nmf_tensors_add_nm(&s, "nm", &m, NULL));
    float pruned[32];
    memcpy(pruned, w, sizeof w);
    CHECK_OK(nmf_nm_prune(pruned, 4, 8, (nmf_pattern){2, 8}, 0));
    CHECK_OK(nmf_tensors_set_meta(&s, "k1", "v1"));
    CHECK_OK(nmf_tensors_set_meta(&s, "quote\"key", "line\nbreak \xc3\xa9"));

    for (int dt = 0; dt < NMF_DTYPE_COUNT; dt++) {
        const char *p = tmp_path("rt.safetensors");
        CHECK_OK(nmf_safetensors_write(p, &s, (nmf_dtype)dt));
        size_t size;
        uint8_t *raw = read_bytes(p, &size);
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--) hlen = hlen << 8 | raw[i];
        CHECK(hlen % 8 == 0 && raw[8] == '{');
        size_t numel = 15 + 7 + 12 + 1 + 32;
        CHECK(size == 8 + hlen + numel * nmf_dtype_size((nmf_dtype)dt));
        free(raw);
        nmf_tensor_set q;
        nmf_dtype *dtypes = NULL;
        CHECK_OK(nmf_safetensors_read_ex(p, &q, &dtypes));
        CHECK(q.count == 5);
        for (size_t i = 0; i < q.count && dtypes; i++) CHECK(dtypes[i] == (nmf_dtype)dt);
        free(dtypes);
        CHECK(q.meta_count == 2);
        CHECK(nmf_tensors_get_meta(&q, "k1") && !strcmp(nmf_tensors_get_meta(&q, "k1"), "v1"));
        const char *v = nmf_tensors_get_meta(&q, "quote\"key");
        CHECK(v && !strcmp(v, "line\nbreak \xc3\xa9"));
        int exact = 1;
        for (size_t i = 0; i < s.count; i++) {
            const nmf_tensor *x = &s.items[i];
            const nmf_tensor *y = nmf_tensors_find(&q, x->name);
            CHECK(y && y->ndim == x->ndim && y->numel == x->numel && !y->nm);
            if (!y) continue;
            for (int k = 0; k < x->ndim; k++) CHECK(y->shape[k] == x->shape[k]);
            const float *src = x->nm ? pruned : x->data;
            for (size_t k = 0; k < x->numel; k++) {
                float want = src[k];
                if (dt == NMF_DTYPE_F16) want = nmf_f16_to_f32(nmf_f32_to_f16(want));
                if (dt == NMF_DTYPE_BF16) want = nmf_bf16_to_f32(nmf_f32_to_bf16(want));
                exact &= memcmp(&want, &y->data[k], 4) == 0;
            }
        }
        CHECK_MSG(exact, "dtype %s", nmf_dtype_name((nmf_dtype)dt));
        nmf_tensors_free(&q);
    }
    nmf_tensors_free(&s);
}

/* Writes an 8-byte length, the header text and `data` bytes (filled with 0x3f). */
static const char *craft_len(const char *header, uint64_t declared, size_t data) {
    static uint8_t buf[8192];
    size_t hl = strlen(header);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(declared >> (8 * i));
    memcpy(buf + 8, header, hl);
    memset(buf + 8 + hl, 0x3f, data);
    const char *p = tmp_path("crafted.safetensors");
    write_bytes(p, buf, 8 + hl + data);
    return p;
}
static const char *craft(const char *header, size_t data) {
    return craft_len(header, strlen(header), data);
}

static void hostile(void) {
    nmf_tensor_set s;
    const char *good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}";
    CHECK_OK(nmf_safetensors_read(craft(good, 16), &s));
    CHECK(s.count == 2);
    nmf_tensors_free(&s);

    CHECK_FAILS(nmf_safetensors_read(craft(good, 12), &s), NMF_ERR_FORMAT, "outside the data");
    CHECK_FAILS(nmf_safetensors_read(craft(good, 20), &s), NMF_ERR_FORMAT, "trailing");
    CHECK_FAILS(nmf_safetensors_read(craft_len(good, 1ull << 62, 16), &s), NMF_ERR_FORMAT,
                "header length");
    CHECK_FAILS(nmf_safetensors_read(craft_len(good, 5000, 16), &s), NMF_ERR_FORMAT,
                "header length");
    CHECK_FAILS(nmf_safetensors_read(craft_len(good, 10, 16), &s), NMF_ERR_FORMAT, "JSON");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",", 16), &s), NMF_ERR_FORMAT,
                "JSON");
    CHECK_FAILS(nmf_safetensors_read(craft("[1,2,3]", 0), &s), NMF_ERR_FORMAT, "JSON object");
    CHECK_FAILS(nmf_safetensors_read(craft("{}{\"a\":1}", 0), &s), NMF_ERR_FORMAT, "JSON");
    CHECK_OK(nmf_safetensors_read(craft("{}     ", 0), &s)); /* padding spaces are allowed */
    nmf_tensors_free(&s);
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"I64\",\"shape\":[2],"
                                           "\"data_offsets\":[0,16]}}",
                                           16),
                                     &s),
                NMF_ERR_UNSUPPORTED, "dtype I64");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F64\",\"shape\":[2],"
                                           "\"data_offsets\":[0,16]}}",
                                           16),
                                     &s),
                NMF_ERR_UNSUPPORTED, "dtype F64");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],"
                                           "\"data_offsets\":[0,16]}}",
                                           16),
                                     &s),
                NMF_ERR_FORMAT, "unknown dtype 'Q4'");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],"
                                           "\"data_offsets\":[0,8]}}",
                                           8),
                                     &s),
                NMF_ERR_FORMAT, "need 12");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                                           "\"data_offsets\":[8,0]}}",
                                           8),
                                     &s),
                NMF_ERR_FORMAT, "data_offsets");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                                           "\"data_offsets\":[0,8]},"
                                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
                                           "\"data_offsets\":[4,12]}}",
                                           12),
                                     &s),
                NMF_ERR_FORMAT, "overlaps");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                                           "\"data_offsets\":[0,8]},"
                                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
                                           "\"data_offsets\":[0,8]}}",
                                           8),
                                     &s),
                NMF_ERR_FORMAT, "overlaps");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                                           "\"data_offsets\":[4,12]}}",
                                           12),
                                     &s),
                NMF_ERR_FORMAT, "belong to no tensor");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                                           "\"data_offsets\":[0,8]},"
                                           "\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                                           "\"data_offsets\":[8,16]}}",
                                           16),
                                     &s),
                NMF_ERR_FORMAT, "'a' appears twice");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,"
                                           "4294967296,4294967296],\"data_offsets\":[0,8]}}",
                                           8),
                                     &s),
                NMF_ERR_FORMAT, "shape too large");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],"
                                           "\"data_offsets\":[0,8]}}",
                                           8),
                                     &s),
                NMF_ERR_UNSUPPORTED, "5 dimensions");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],"
                                           "\"data_offsets\":[0,8]}}",
                                           8),
                                     &s),
                NMF_ERR_FORMAT, "natural number");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],"
                                           "\"data_offsets\":[0,8]}}",
                                           8),
                                     &s),
                NMF_ERR_FORMAT, "natural number");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                                           "\"data_offsets\":[0,1e300]}}",
                                           8),
                                     &s),
                NMF_ERR_FORMAT, "data_offsets");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), &s),
                NMF_ERR_FORMAT, "data_offsets");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8), &s),
                NMF_ERR_FORMAT, "dtype");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"a\":7}", 0), &s), NMF_ERR_FORMAT, "not an object");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"__metadata__\":{\"k\":1}}", 0), &s), NMF_ERR_FORMAT,
                "not a string");
    CHECK_FAILS(nmf_safetensors_read(craft("{\"__metadata__\":[1]}", 0), &s), NMF_ERR_FORMAT,
                "__metadata__");
    /* metadata with more keys than any real file (the key list is searched linearly) */
    {
        char *h = malloc(4200 * 16 + 64);
        size_t at = (size_t)sprintf(h, "{\"__metadata__\":{");
        for (int i = 0; i < 4097; i++) at += (size_t)sprintf(h + at, "%s\"k%d\":\"v\"", i ? "," : "", i);
        sprintf(h + at, "}}");
        const char *p = tmp_path("meta.safetensors");
        size_t hl = strlen(h);
        uint8_t *buf = malloc(8 + hl);
        for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
        memcpy(buf + 8, h, hl);
        write_bytes(p, buf, 8 + hl);
        CHECK_FAILS(nmf_safetensors_read(p, &s), NMF_ERR_UNSUPPORTED, "more than 4096 keys");
        strcpy(strstr(h, ",\"k4096\""), "}}"); /* 4096 keys: fine */
        hl = strlen(h);
        for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
        memcpy(buf + 8, h, hl);
        write_bytes(p, buf, 8 + hl);
        CHECK_OK(nmf_safetensors_read(p, &s));
        CHECK(s.meta_count == 4096);
        nmf_tensors_free(&s);
        free(buf);
        free(h);
    }
    write_bytes(tmp_path("short.safetensors"), "\x02\0\0", 3);
    CHECK_FAILS(nmf_safetensors_read(tmp_path("short.safetensors"), &s), NMF_ERR_FORMAT,
                "truncated");

    /* Every truncation point and bit flips in the header of the real fixture. */
    size_t size;
    uint8_t *raw = read_bytes(test_source_path("tests/fixtures/vit_tiny.safetensors"), &size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | raw[i];
    int sanitized = getenv("NMF_SANITIZED") != NULL;
    size_t step = sanitized ? 97 : 13, hstep = sanitized ? 3 : 1, accepted = 0, tried = 0;
    for (size_t cut = 0; cut < size; cut += (cut < 8 + hlen + 16 ? hstep : step)) {
        write_bytes(tmp_path("t.safetensors"), raw, cut);
        nmf_clear_error();
        tried++;
        if (nmf_safetensors_read(tmp_path("t.safetensors"), &s) == NMF_OK) {
            accepted++;
            nmf_tensors_free(&s);
        } else if (!nmf_last_error()[0]) {
            accepted++;
        }
    }
    CHECK_MSG(accepted == 0, "%zu of %zu truncations accepted", accepted, tried);
    /* Flipping a bit in the length or the structure of the header must never crash; most flips
     * are refused (a flip inside a float value or a name can still be a valid file). */
    size_t refused = 0, flips = 0;
    for (size_t byte = 0; byte < 8 + hlen; byte += sanitized ? 7 : 3) {
        uint8_t save = raw[byte];
        raw[byte] ^= (uint8_t)(1u << (byte % 8));
        write_bytes(tmp_path("f.safetensors"), raw, size);
        raw[byte] = save;
        flips++;
        if (nmf_safetensors_read(tmp_path("f.safetensors"), &s) == NMF_OK)
            nmf_tensors_free(&s);
        else
            refused++;
    }
    CHECK_MSG(refused > flips / 2, "only %zu of %zu header flips refused", refused, flips);
    free(raw);
}

static void write_errors(void) {
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    int64_t sh[1] = {2};
    CHECK_OK(nmf_tensors_add_dense(&s, "a", 1, sh, NULL, NULL));
    CHECK_FAILS(nmf_safetensors_write("/nonexistent-dir/x.safetensors", &s, NMF_DTYPE_F32),
                NMF_ERR_IO, "/nonexistent-dir/x.safetensors");
    /* "__metadata__" is the header's reserved key: such a tensor (an .nmf may hold one) would
     * make an unreadable file, so the writer refuses it and writes nothing */
    CHECK_OK(nmf_tensors_add_dense(&s, "__metadata__", 1, sh, NULL, NULL));
    const char *p = tmp_path("reserved.safetensors");
    CHECK_FAILS(nmf_safetensors_write(p, &s, NMF_DTYPE_F32), NMF_ERR_INVALID_ARG, "__metadata__");
    CHECK(access(p, F_OK) != 0);
    nmf_tensors_free(&s);
}

int main(void) {
    fixture();
    round_trip();
    hostile();
    write_errors();
    rm_tmp_dir();
    return test_finish("io_safetensors");
}
