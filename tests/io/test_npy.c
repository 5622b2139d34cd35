/* .npy: files written by NumPy itself (tests/ref/make_vit_safetensors.py), our writer, and hostile
 * inputs: each refused with a status and a message naming the problem. Token ids (int64/int32)
 * through their own reader and writer. */
#include "io_test_util.h"

static void check_fixture_array(const nmf_array *a) {
    CHECK(a->ndim == 3 && a->shape[0] == 2 && a->shape[1] == 3 && a->shape[2] == 4);
    CHECK(a->numel == 24);
    int exact = 1;
    for (int i = 0; i < 24; i++) exact &= a->data[i] == (float)i / 7 - 1; /* as NumPy computes */
    CHECK(exact);
}

static void numpy_written(void) {
    nmf_array a;
    CHECK_OK(nmf_npy_read(test_source_path("tests/fixtures/npy/f4_v1.npy"), &a));
    check_fixture_array(&a);
    nmf_array_free(&a);
    CHECK_OK(nmf_npy_read(test_source_path("tests/fixtures/npy/f4_v2.npy"), &a));
    check_fixture_array(&a);
    nmf_array_free(&a);
    CHECK_OK(nmf_npy_read(test_source_path("tests/fixtures/npy/f4_scalar.npy"), &a));
    CHECK(a.ndim == 0 && a.numel == 1 && a.data[0] == 2.5f);
    nmf_array_free(&a);
    CHECK_OK(nmf_npy_read(test_source_path("tests/fixtures/npy/f4_empty.npy"), &a));
    CHECK(a.ndim == 2 && a.shape[0] == 0 && a.shape[1] == 3 && a.numel == 0);
    nmf_array_free(&a);
    CHECK_FAILS(nmf_npy_read(test_source_path("tests/fixtures/npy/f8.npy"), &a),
                NMF_ERR_UNSUPPORTED, "'<f8'");
    CHECK_FAILS(nmf_npy_read(test_source_path("tests/fixtures/npy/i4.npy"), &a),
                NMF_ERR_UNSUPPORTED, "'<i4'");
    CHECK_FAILS(nmf_npy_read(test_source_path("tests/fixtures/npy/f4_big_endian.npy"), &a),
                NMF_ERR_UNSUPPORTED, "'>f4'");
    CHECK_FAILS(nmf_npy_read(test_source_path("tests/fixtures/npy/f4_fortran.npy"), &a),
                NMF_ERR_UNSUPPORTED, "Fortran");
    CHECK(a.data == NULL); /* failures leave nothing to free */
}

static void write_read(void) {
    float x[2 * 5 * 3];
    unsigned long long s = 42;
    for (int i = 0; i < 30; i++) x[i] = test_rand_float(&s);
    x[3] = -0.0f;
    x[4] = 1e-42f; /* subnormal survives bit for bit */
    int64_t shapes[4][4] = {{30}, {2, 15}, {2, 5, 3}, {1, 2, 5, 3}};
    for (int nd = 1; nd <= 4; nd++) {
        const char *p = tmp_path("rt.npy");
        CHECK_OK(nmf_npy_write(p, x, nd, shapes[nd - 1]));
        size_t size;
        uint8_t *raw = read_bytes(p, &size);
        CHECK(size == 128 + 30 * 4); /* header padded to 64 bytes */
        CHECK(raw[6] == 1 && raw[7] == 0 && raw[127] == '\n');
        free(raw);
        nmf_array a;
        CHECK_OK(nmf_npy_read(p, &a));
        CHECK(a.ndim == nd && a.numel == 30);
        for (int d = 0; d < nd; d++) CHECK(a.shape[d] == shapes[nd - 1][d]);
        CHECK(a.data && memcmp(a.data, x, sizeof x) == 0);
        nmf_array_free(&a);
    }
    /* 0-d */
    const char *p = tmp_path("scalar.npy");
    CHECK_OK(nmf_npy_write(p, x, 0, NULL));
    nmf_array a;
    CHECK_OK(nmf_npy_read(p, &a));
    CHECK(a.ndim == 0 && a.numel == 1 && a.data[0] == x[0]);
    nmf_array_free(&a);
}

/* Builds a v1.0 file from a header dict and n data bytes. */
static const char *craft(const char *dict, size_t data_bytes, int major) {
    static uint8_t buf[4096];
    size_t hl = strlen(dict), pre = major == 1 ? 10 : 12;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    if (major == 1) {
        buf[8] = (uint8_t)hl;
        buf[9] = (uint8_t)(hl >> 8);
    } else {
        for (int i = 0; i < 4; i++) buf[8 + i] = (uint8_t)(hl >> (8 * i));
    }
    memcpy(buf + pre, dict, hl);
    memset(buf + pre + hl, 0x3f, data_bytes);
    const char *p = tmp_path("crafted.npy");
    write_bytes(p, buf, pre + hl + data_bytes);
    return p;
}

static void hostile(void) {
    nmf_array a;
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
    CHECK_OK(nmf_npy_read(craft(ok, 24, 1), &a));
    nmf_array_free(&a);
    CHECK_OK(nmf_npy_read(craft(ok, 24, 2), &a));
    nmf_array_free(&a);
    CHECK_OK(nmf_npy_read(craft(ok, 24, 3), &a));
    nmf_array_free(&a);
    CHECK_OK(nmf_npy_read(craft("{'shape':(6,),'fortran_order':False,'descr':'<f4'}", 24, 1), &a));
    CHECK(a.ndim == 1 && a.shape[0] == 6);
    nmf_array_free(&a);

    CHECK_FAILS(nmf_npy_read(craft(ok, 20, 1), &a), NMF_ERR_FORMAT, "truncated");
    CHECK_FAILS(nmf_npy_read(craft(ok, 28, 1), &a), NMF_ERR_FORMAT, "trailing");
    CHECK_FAILS(nmf_npy_read(craft(ok, 24, 4), &a), NMF_ERR_UNSUPPORTED, "version 4.0");
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                   "(4294967296, 4294967296, 4294967296), }",
                                   24, 1),
                             &a),
                NMF_ERR_FORMAT, "overflow");
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                   "(99999999999999999999,), }",
                                   24, 1),
                             &a),
                NMF_ERR_FORMAT, "too large");
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                   "(1, 1, 1, 1, 6), }",
                                   24, 1),
                             &a),
                NMF_ERR_UNSUPPORTED, "dimensions");
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }", 24, 1),
                             &a),
                NMF_ERR_UNSUPPORTED, "Fortran");
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f2', 'fortran_order': False, 'shape': (6,), }", 12, 1),
                             &a),
                NMF_ERR_UNSUPPORTED, "'<f2'");
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f4', 'shape': (6,), }", 24, 1), &a),
                NMF_ERR_FORMAT, "once");
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (6,), }",
                                   24, 1),
                             &a),
                NMF_ERR_FORMAT, "once");
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), "
                                   "'extra': 1}",
                                   24, 1),
                             &a),
                NMF_ERR_FORMAT, "'extra'");
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f4', 'fortran_order': False, 'shape': (06,), }", 24, 1),
                             &a),
                NMF_ERR_FORMAT, "bad shape entry");
    CHECK_OK(nmf_npy_read(craft("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 6), }", 0, 1), &a));
    CHECK(a.numel == 0);
    nmf_array_free(&a);
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", 24, 1),
                             &a),
                NMF_ERR_FORMAT, "shape");
    CHECK_FAILS(nmf_npy_read(craft("[1, 2]", 24, 1), &a), NMF_ERR_FORMAT, "not a dict");
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f4", 24, 1), &a), NMF_ERR_FORMAT, "npy header");
    CHECK_FAILS(nmf_npy_read(craft("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x", 24, 1),
                             &a),
                NMF_ERR_FORMAT, "junk");

    /* header length beyond the file; bad magic */
    uint8_t bad[16] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0xff, 0xff, '{', '}'};
    write_bytes(tmp_path("b.npy"), bad, 12);
    CHECK_FAILS(nmf_npy_read(tmp_path("b.npy"), &a), NMF_ERR_FORMAT, "header length");
    bad[8] = 0xff, bad[9] = 0xff, bad[6] = 2; /* v2: 4-byte length 0x0000ffff.. beyond file */
    write_bytes(tmp_path("b.npy"), bad, 12);
    CHECK_FAILS(nmf_npy_read(tmp_path("b.npy"), &a), NMF_ERR_FORMAT, "header length");
    write_bytes(tmp_path("b.npy"), "PK\x03\x04 not numpy", 14);
    CHECK_FAILS(nmf_npy_read(tmp_path("b.npy"), &a), NMF_ERR_FORMAT, "magic");
    CHECK_FAILS(nmf_npy_read(tmp_path("does-not-exist.npy"), &a), NMF_ERR_IO, "cannot open");
    CHECK_FAILS(nmf_npy_read(tmp_dir(), &a), NMF_ERR_IO, "not a regular file");

    /* every truncation of a valid file is refused */
    size_t size;
    uint8_t *raw = read_bytes(test_source_path("tests/fixtures/npy/f4_v2.npy"), &size);
    int all = 1;
    for (size_t cut = 0; cut < size; cut++) {
        write_bytes(tmp_path("t.npy"), raw, cut);
        nmf_clear_error();
        nmf_status st = nmf_npy_read(tmp_path("t.npy"), &a);
        if (st == NMF_OK || !nmf_last_error()[0]) {
            all = 0;
            fprintf(stderr, "truncation at %zu accepted\n", cut);
            if (st == NMF_OK) nmf_array_free(&a);
        }
    }
    CHECK(all);

    /* every single-bit flip in the magic, version, length and header dict is refused with a
     * message (none crashes); a flip in the data is just another float value */
    size_t hend = 12 + ((size_t)raw[8] | (size_t)raw[9] << 8);
    size_t refused = 0, flips = 0;
    for (size_t bit = 0; bit < hend * 8; bit++) {
        if (bit == 6 * 8) continue; /* major version 2 -> 3: 3.0 has the same layout */
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        write_bytes(tmp_path("f.npy"), raw, size);
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        nmf_clear_error();
        flips++;
        if (nmf_npy_read(tmp_path("f.npy"), &a) == NMF_OK) {
            fprintf(stderr, "header bit flip %zu accepted\n", bit);
            nmf_array_free(&a);
        } else if (nmf_last_error()[0]) {
            refused++;
        }
    }
    CHECK_MSG(refused == flips, "%zu of %zu header bit flips refused", refused, flips);
    raw[size - 1] ^= 0x40;
    write_bytes(tmp_path("f.npy"), raw, size);
    CHECK_OK(nmf_npy_read(tmp_path("f.npy"), &a));
    nmf_array_free(&a);
    free(raw);
}

/* Token ids: NumPy's int32 fixture and a PyTorch-written int64 one, our int64 writer, refusals. */
static void ids(void) {
    nmf_id_array a;
    CHECK_OK(nmf_npy_read_ids(test_source_path("tests/fixtures/npy/i4.npy"), &a));
    CHECK(a.ndim == 3 && a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 4 && a.numel == 24);
    int exact = 1;
    for (int i = 0; i < 24 && a.data; i++) exact &= a.data[i] == (int64_t)((double)i / 7 - 1);
    CHECK(exact);
    nmf_id_array_free(&a);
    CHECK_OK(nmf_npy_read_ids(test_source_path("tests/fixtures/hf/gpt2_lm/input_ids.npy"), &a));
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 7 && a.data && a.data[0] == 53 &&
          a.data[13] == 65);
    nmf_id_array_free(&a);

    int64_t v[6] = {0, -1, 50256, INT64_MAX, INT64_MIN, 7}, shape[2] = {3, 2};
    const char *p = tmp_path("ids.npy");
    CHECK_OK(nmf_npy_write_ids(p, v, 2, shape));
    size_t size;
    uint8_t *raw = read_bytes(p, &size);
    CHECK(size > sizeof v && (size - sizeof v) % 64 == 0 && !memcmp(raw + 10, "{'descr': '<i8'", 15));
    free(raw);
    CHECK_OK(nmf_npy_read_ids(p, &a));
    CHECK(a.ndim == 2 && a.shape[0] == 3 && a.shape[1] == 2 && a.data && !memcmp(a.data, v, sizeof v));
    nmf_id_array_free(&a);

    CHECK_OK(nmf_npy_read_ids(craft("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 8, 1), &a));
    CHECK(a.numel == 2 && a.data[0] == 0x3f3f3f3f);
    nmf_id_array_free(&a);
    CHECK_FAILS(nmf_npy_read_ids(test_source_path("tests/fixtures/npy/f4_v1.npy"), &a),
                NMF_ERR_UNSUPPORTED, "'<f4'");
    CHECK_FAILS(nmf_npy_read(p, &(nmf_array){0}), NMF_ERR_UNSUPPORTED, "'<i8'");
    const char *bad[] = {"<u8", ">i8", "<i2", "|i1"};
    for (int i = 0; i < 4; i++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }", bad[i]);
        CHECK_FAILS(nmf_npy_read_ids(craft(dict, 16, 1), &a), NMF_ERR_UNSUPPORTED, bad[i]);
    }
    CHECK_FAILS(nmf_npy_read_ids(craft("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", 20, 1), &a),
                NMF_ERR_FORMAT, "truncated");
    CHECK_FAILS(nmf_npy_read_ids(craft("{'descr': '<i8', 'fortran_order': True, 'shape': (3,), }", 24, 1), &a),
                NMF_ERR_UNSUPPORTED, "Fortran");
    CHECK(a.data == NULL && a.numel == 0);
}

int main(void) {
    numpy_written();
    write_read();
    hostile();
    ids();
    rm_tmp_dir();
    return test_finish("io_npy");
}
