/* .nmf family container: round trips (f32 exact, f16/bf16 as converted), sharing, the layout,
 * atomic replacement, and hostile files: every truncation and every single-bit flip of a small
 * family is refused, and hand-made files with correct CRCs but wrong structure are refused with
 * a message naming the problem. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

#include "io/io_internal.h"
#include "io_test_util.h"

static const nmf_pattern P28 = {2, 8}, P18 = {1, 8};

/* dense: x[3,5] w[4,16] bias[4]; 2:8: x, w packed 2:8, bias, p[3,10] packed 2:8 (padded);
 * 1:8: bias, w packed 1:8, x. x and bias are shared by all three. */
static void small_family(nmf_family *f, float *w) {
    nmf_family_init(f);
    unsigned long long r = 99;
    float x[15], bias[4], p[30];
    for (int i = 0; i < 15; i++) x[i] = test_rand_float(&r);
    for (int i = 0; i < 64; i++) w[i] = test_rand_float(&r);
    for (int i = 0; i < 4; i++) bias[i] = test_rand_float(&r);
    for (int i = 0; i < 30; i++) p[i] = test_rand_float(&r);
    int64_t sx[2] = {3, 5}, sw[2] = {4, 16}, sb[1] = {4};
    nmf_tensor_set s;
    nmf_nm_matrix m;

    nmf_tensors_init(&s);
    CHECK_OK(nmf_tensors_add_dense(&s, "x", 2, sx, x, NULL));
    CHECK_OK(nmf_tensors_add_dense(&s, "w", 2, sw, w, NULL));
    CHECK_OK(nmf_tensors_add_dense(&s, "bias", 1, sb, bias, NULL));
    CHECK_OK(nmf_tensors_set_meta(&s, "note", "dense model"));
    CHECK_OK(nmf_family_add(f, "dense", &s));

    nmf_tensors_init(&s);
    CHECK_OK(nmf_tensors_add_dense(&s, "x", 2, sx, x, NULL));
    CHECK_OK(nmf_nm_pack(&m, w, 4, 16, P28, 0));
    CHECK_OK(nmf_tensors_add_nm(&s, "w", &m, NULL));
    CHECK_OK(nmf_tensors_add_dense(&s, "bias", 1, sb, bias, NULL));
    CHECK_OK(nmf_nm_pack(&m, p, 3, 10, P28, 1));
    CHECK_OK(nmf_tensors_add_nm(&s, "p", &m, NULL));
    CHECK_OK(nmf_family_add(f, "2:8", &s));

    nmf_tensors_init(&s);
    CHECK_OK(nmf_tensors_add_dense(&s, "bias", 1, sb, bias, NULL));
    CHECK_OK(nmf_nm_pack(&m, w, 4, 16, P18, 0));
    CHECK_OK(nmf_tensors_add_nm(&s, "w", &m, NULL));
    CHECK_OK(nmf_tensors_add_dense(&s, "x", 2, sx, x, NULL));
    CHECK_OK(nmf_family_add(f, "1:8", &s));
}

static float conv(float v, nmf_dtype dt) {
    if (dt == NMF_DTYPE_F16) return nmf_f16_to_f32(nmf_f32_to_f16(v));
    if (dt == NMF_DTYPE_BF16) return nmf_bf16_to_f32(nmf_f32_to_bf16(v));
    return v;
}

/* Every tensor of a equals b's (values converted through dt). */
static int same_family(const nmf_family *a, const nmf_family *b, nmf_dtype dt) {
    if (a->count != b->count) return 0;
    for (size_t m = 0; m < a->count; m++) {
        const nmf_tensor_set *x = &a->models[m].tensors, *y = &b->models[m].tensors;
        if (strcmp(a->models[m].name, b->models[m].name) || x->count != y->count) return 0;
        for (size_t i = 0; i < x->count; i++) {
            const nmf_tensor *s = &x->items[i], *t = &y->items[i];
            if (strcmp(s->name, t->name) || s->ndim != t->ndim || s->numel != t->numel) return 0;
            if (!s->nm != !t->nm) return 0;
            if (s->nm) {
                const nmf_nm_matrix *p = s->nm, *q = t->nm;
                size_t slots = p->rows * p->groups * (size_t)p->pattern.n;
                if (p->pattern.n != q->pattern.n || p->pattern.m != q->pattern.m ||
                    p->rows != q->rows || p->cols != q->cols || p->groups != q->groups)
                    return 0;
                if (memcmp(p->pos, q->pos, slots)) return 0;
                for (size_t k = 0; k < slots; k++) {
                    float v = conv(p->values[k], dt);
                    if (memcmp(&v, &q->values[k], 4)) return 0;
                }
            } else {
                for (size_t k = 0; k < s->numel; k++) {
                    float v = conv(s->data[k], dt);
                    if (memcmp(&v, &t->data[k], 4)) return 0;
                }
            }
        }
    }
    return 1;
}

static void round_trip(void) {
    float w[64];
    nmf_family f;
    small_family(&f, w);
    for (int dt = 0; dt < NMF_DTYPE_COUNT; dt++) {
        nmf_write_options opt = {(nmf_dtype)dt};
        const char *p = tmp_path("small.nmf");
        CHECK_OK(nmf_family_write(p, &f, &opt));
        nmf_family g;
        nmf_family_layout lay;
        CHECK_OK(nmf_family_read_layout(p, &g, &lay));
        CHECK_MSG(same_family(&f, &g, (nmf_dtype)dt), "dtype %s", nmf_dtype_name((nmf_dtype)dt));
        CHECK(g.count == 3 && !strcmp(g.models[1].name, "2:8"));
        CHECK(!memcmp(&g.config, &f.config, sizeof f.config));
        const char *note = g.count ? nmf_tensors_get_meta(&g.models[0].tensors, "note") : NULL;
        CHECK(note && !strcmp(note, "dense model"));
        /* x and bias stored once: payloads = x, w dense, bias, w 2:8, p 2:8, w 1:8 */
        CHECK(lay.count == 10);
        CHECK(lay.payloads == 6);
        size_t es = nmf_dtype_size((nmf_dtype)dt);
        for (size_t i = 0; i < lay.count; i++) {
            const nmf_stored_tensor *s = &lay.items[i];
            const nmf_tensor *t = &g.models[s->model].tensors.items[s->tensor];
            CHECK(s->offset % 64 == 0 && s->dtype == (nmf_dtype)dt);
            if (!strcmp(t->name, "w") && s->pattern.n == 2) /* 4 rows x 2 groups: 16 values + 4 rows x 10 bits */
                CHECK(s->size == 16 * es + 4 * 2);
            if (!strcmp(t->name, "w") && s->pattern.n == 1) CHECK(s->size == 8 * es + 4 * 1);
            if (!strcmp(t->name, "p")) CHECK(s->size == 3 * 2 * 2 * es + 3 * 2); /* 2 groups, 10 bits */
            if (!strcmp(t->name, "x")) CHECK(s->size == 15 * es && s->payload == lay.items[0].payload);
        }
        CHECK(lay.file_size == lay.data_offset + lay.data_size);
        nmf_family_layout_free(&lay);
        nmf_family_free(&g);
    }
    /* a written file is deterministic */
    size_t n1, n2;
    CHECK_OK(nmf_family_write(tmp_path("a.nmf"), &f, NULL));
    CHECK_OK(nmf_family_write(tmp_path("b.nmf"), &f, NULL));
    uint8_t *a = read_bytes(tmp_path("a.nmf"), &n1), *b = read_bytes(tmp_path("b.nmf"), &n2);
    CHECK(n1 == n2 && !memcmp(a, b, n1));
    free(a);
    free(b);
    /* writer refuses what it cannot store */
    nmf_family empty;
    nmf_family_init(&empty);
    CHECK_FAILS(nmf_family_write(tmp_path("e.nmf"), &empty, NULL), NMF_ERR_INVALID_ARG, "no models");
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    CHECK_FAILS(nmf_family_add(&f, "2:8", &s), NMF_ERR_INVALID_ARG, "already has a model named '2:8'");
    CHECK_FAILS(nmf_family_add(&f, "", &s), NMF_ERR_INVALID_ARG, "model name");
    CHECK(nmf_family_find(&f, "1:8") == &f.models[2] && nmf_family_find(&f, "4:8") == NULL);
    nmf_family_free(&f);
}

/* Every truncation and every single-bit flip of a small family file is refused. */
static void corruption(void) {
    float w[64];
    nmf_family f;
    small_family(&f, w);
    const char *p = tmp_path("c.nmf");
    CHECK_OK(nmf_family_write(p, &f, NULL));
    nmf_family_free(&f);
    size_t size;
    uint8_t *raw = read_bytes(p, &size);
    const char *q = tmp_path("bad.nmf");
    int sanitized = getenv("NMF_SANITIZED") != NULL;
    size_t accepted = 0, silent = 0;
    for (size_t cut = 0; cut < size; cut += sanitized ? 2 : 1) {
        write_bytes(q, raw, cut);
        nmf_clear_error();
        nmf_family g;
        if (nmf_family_read(q, &g) == NMF_OK) {
            accepted++;
            nmf_family_free(&g);
        } else if (!nmf_last_error()[0]) {
            silent++;
        }
    }
    CHECK_MSG(accepted == 0 && silent == 0, "truncations: %zu accepted, %zu without message",
              accepted, silent);
    write_bytes(q, raw, size);
    uint8_t *extra = malloc(size + 64);
    memcpy(extra, raw, size);
    memset(extra + size, 0, 64);
    write_bytes(q, extra, size + 64);
    free(extra);
    nmf_family g;
    CHECK_FAILS(nmf_family_read(q, &g), NMF_ERR_FORMAT, "trailing bytes");

    size_t flips = 0, crc = 0, fmt = 0, other = 0;
    accepted = 0;
    for (size_t bit = 0; bit < size * 8; bit += sanitized ? 5 : 1) {
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        write_bytes(q, raw, size);
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        flips++;
        nmf_clear_error();
        nmf_status st = nmf_family_read(q, &g);
        if (st == NMF_OK) {
            accepted++;
            fprintf(stderr, "flip of bit %zu accepted\n", bit);
            nmf_family_free(&g);
        } else if (st == NMF_ERR_CHECKSUM) {
            crc++;
        } else if (st == NMF_ERR_FORMAT || st == NMF_ERR_UNSUPPORTED) {
            fmt++;
        } else {
            other++;
        }
    }
    CHECK_MSG(accepted == 0, "%zu of %zu bit flips accepted", accepted, flips);
    CHECK(crc > flips / 2); /* most bytes are covered by a CRC */
    CHECK(other == 0);
    printf("bit flips: %zu tried, %zu CRC errors, %zu format errors\n", flips, crc, fmt);
    free(raw);
}

/* The version byte craft() writes. */
static uint8_t craft_version = 1;

/* A file from hand-written JSON (printf template, %u = crc32 of the data) with a correct header
 * CRC, so the structural checks behind the CRC are reached. */
static const char *craft(const char *json_fmt, const uint8_t *data, size_t data_size, size_t crc_len) {
    char json[2048];
    uint32_t dcrc = (uint32_t)crc32(0, data, (uInt)crc_len);
    snprintf(json, sizeof json, json_fmt, dcrc, dcrc, dcrc);
    size_t jl = strlen(json), head = 32 + jl, start = (head + 63) / 64 * 64;
    static uint8_t buf[8192];
    memset(buf, 0, sizeof buf);
    memcpy(buf, "\x89NMF\r\n\x1a\n", 8);
    buf[8] = craft_version;
    for (int i = 0; i < 8; i++) buf[16 + i] = (uint8_t)((uint64_t)jl >> (8 * i));
    for (int i = 0; i < 8; i++) buf[24 + i] = (uint8_t)((uint64_t)data_size >> (8 * i));
    memcpy(buf + 32, json, jl);
    uint32_t hc = (uint32_t)crc32(0, buf + 16, 16);
    hc = (uint32_t)crc32(hc, (const uint8_t *)json, (uInt)jl);
    for (int i = 0; i < 4; i++) buf[12 + i] = (uint8_t)(hc >> (8 * i));
    memcpy(buf + start, data, data_size);
    const char *p = tmp_path("crafted.nmf");
    write_bytes(p, buf, start + data_size);
    return p;
}

#define HEAD "{\"format\":\"nmformer.family\",\"config\":{},\"models\":"
#define ONE(t) HEAD "[{\"name\":\"dense\",\"tensors\":[" t "]}]}"
#define A8 "{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[2],\"pattern\":\"dense\",\"offset\":0,\"size\":8,\"crc32\":%u}"

static void structure(void) {
    uint8_t d[256] = {0};
    for (int i = 0; i < 8; i++) d[i] = (uint8_t)(i + 1);
    nmf_family g;
    CHECK_OK(nmf_family_read(craft(ONE(A8), d, 64, 8), &g));
    CHECK(g.count == 1 && g.models[0].tensors.count == 1);
    nmf_family_free(&g);

#define BAD(json, size, crc_len, want, needle) \
    CHECK_FAILS(nmf_family_read(craft(json, d, size, crc_len), &g), want, needle)
    BAD(ONE(A8), 64, 7, NMF_ERR_CHECKSUM, "tensor 'a' (model 'dense'): CRC mismatch");
    BAD(ONE(A8), 128, 8, NMF_ERR_FORMAT, "64 bytes after the last payload");
    BAD(ONE("{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[2],\"pattern\":\"dense\",\"offset\":64,"
            "\"size\":8,\"crc32\":%u}"),
        128, 8, NMF_ERR_FORMAT, "64 unaccounted bytes before tensor 'a'");
    BAD(ONE("{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[2],\"pattern\":\"dense\",\"offset\":32,"
            "\"size\":8,\"crc32\":%u}"),
        64, 8, NMF_ERR_FORMAT, "not 64-byte aligned");
    BAD(ONE("{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[2],\"pattern\":\"dense\",\"offset\":"
            "18446744073709551552,\"size\":8,\"crc32\":%u}"),
        64, 8, NMF_ERR_FORMAT, "naturals");
    BAD(ONE("{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[2],\"pattern\":\"dense\",\"offset\":128,"
            "\"size\":8,\"crc32\":%u}"),
        64, 8, NMF_ERR_FORMAT, "outside the data section");
    BAD(ONE("{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[3],\"pattern\":\"dense\",\"offset\":0,"
            "\"size\":8,\"crc32\":%u}"),
        64, 8, NMF_ERR_FORMAT, "8 bytes stored, F32 dense needs 12");
    BAD(ONE("{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
            "\"pattern\":\"dense\",\"offset\":0,\"size\":8,\"crc32\":%u}"),
        64, 8, NMF_ERR_FORMAT, "shape too large");
    BAD(ONE("{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[0],\"pattern\":\"dense\",\"offset\":0,"
            "\"size\":0,\"crc32\":%u}"),
        64, 0, NMF_ERR_FORMAT, "no elements");
    BAD(ONE("{\"name\":\"a\",\"dtype\":\"F64\",\"shape\":[1],\"pattern\":\"dense\",\"offset\":0,"
            "\"size\":8,\"crc32\":%u}"),
        64, 8, NMF_ERR_UNSUPPORTED, "unknown dtype 'F64'");
    BAD(ONE("{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[2],\"pattern\":\"2:9x\",\"offset\":0,"
            "\"size\":8,\"crc32\":%u}"),
        64, 8, NMF_ERR_FORMAT, "bad pattern '2:9x'");
    BAD(ONE("{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[8],\"pattern\":\"2:8\",\"offset\":0,"
            "\"size\":8,\"crc32\":%u}"),
        64, 8, NMF_ERR_FORMAT, "must be 2-D");
    BAD(ONE(A8 "," A8), 64, 8, NMF_ERR_FORMAT, "tensor 'a' appears twice");
    BAD(ONE("{\"dtype\":\"F32\",\"shape\":[2],\"pattern\":\"dense\",\"offset\":0,\"size\":8,\"crc32\":%u}"),
        64, 8, NMF_ERR_FORMAT, "without a valid name");
    BAD(HEAD "[{\"name\":\"m\",\"tensors\":[" A8 "]},{\"name\":\"m\",\"tensors\":[" A8 "]}]}", 64, 8,
        NMF_ERR_FORMAT, "already has a model named 'm'");
    BAD(HEAD "[{\"name\":\"m\",\"tensors\":[" A8 "]},{\"name\":\"n\",\"tensors\":["
             "{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[2,1],\"pattern\":\"dense\",\"offset\":0,"
             "\"size\":8,\"crc32\":%u}]}]}",
        64, 8, NMF_ERR_FORMAT, "overlaps tensor 'a' (model 'm')");
    BAD(HEAD "[{\"name\":\"m\",\"tensors\":[" A8 "]},{\"name\":\"n\",\"tensors\":["
             "{\"name\":\"b\",\"dtype\":\"F32\",\"shape\":[1],\"pattern\":\"dense\",\"offset\":0,"
             "\"size\":4,\"crc32\":%u}]}]}",
        64, 8, NMF_ERR_FORMAT, "overlaps");
    BAD(HEAD "[{\"name\":\"m\",\"tensors\":[" A8 "]},{\"name\":\"n\",\"tensors\":["
             "{\"name\":\"b\",\"dtype\":\"F32\",\"shape\":[32],\"pattern\":\"dense\",\"offset\":0,"
             "\"size\":128,\"crc32\":%u}]}]}",
        192, 8, NMF_ERR_FORMAT, "overlaps");
    BAD(HEAD "[]}", 0, 0, NMF_ERR_FORMAT, "'models'");
    BAD(HEAD "[{\"name\":\"m\"}]}", 0, 0, NMF_ERR_FORMAT, "'tensors'");
    BAD("{\"format\":\"nmformer.family\",\"models\":[{\"name\":\"dense\",\"tensors\":[" A8 "]}]}", 64, 8,
        NMF_ERR_FORMAT, "'config'");
    BAD("{\"format\":\"nmformer.family\",\"config\":{\"dim\":30,\"heads\":4},\"models\":[{\"name\":"
        "\"dense\",\"tensors\":[" A8 "]}]}",
        64, 8, NMF_ERR_INVALID_ARG, "config");
    BAD("{\"format\":\"nmformer.family\",\"config\":{\"dim\":\"big\"},\"models\":[]}", 0, 0,
        NMF_ERR_FORMAT, "config");
    BAD("{\"format\":\"other\",\"config\":{},\"models\":[]}", 0, 0, NMF_ERR_FORMAT, "'format'");
    BAD("{\"format\":\"nmformer.family\",", 0, 0, NMF_ERR_FORMAT, "not a JSON object");
    BAD(ONE(A8) " x", 64, 8, NMF_ERR_FORMAT, "not a JSON object");
    BAD(HEAD "[{\"name\":\"m\",\"metadata\":{\"k\":1},\"tensors\":[]}]}", 0, 0, NMF_ERR_FORMAT,
        "metadata 'k'");
    BAD(HEAD "[{\"name\":\"a-name-that-is-longer-than-31-bytes\",\"tensors\":[]}]}", 0, 0,
        NMF_ERR_FORMAT, "model name");

    /* N:M payloads: 2:4 of [1,4] = 2 f32 values + 1 code byte (3 bits). */
    const char *nm = ONE("{\"name\":\"w\",\"dtype\":\"F32\",\"shape\":[1,4],\"pattern\":\"2:4\","
                         "\"offset\":0,\"size\":9,\"crc32\":%u}");
    float v[2] = {1.5f, -2.0f};
    memcpy(d, v, 8);
    d[8] = 5; /* rank 5 = {2,3} in colex order */
    CHECK_OK(nmf_family_read(craft(nm, d, 64, 9), &g));
    if (g.count == 1 && g.models[0].tensors.count == 1) {
        const nmf_tensor *t = &g.models[0].tensors.items[0];
        float dense[4];
        CHECK(t->nm != NULL);
        CHECK_OK(nmf_tensor_dense(t, dense));
        CHECK(dense[0] == 0 && dense[1] == 0 && dense[2] == 1.5f && dense[3] == -2.0f);
    }
    nmf_family_free(&g);
    d[8] = 6; /* C(4,2) = 6: out of range */
    BAD(nm, 64, 9, NMF_ERR_FORMAT, "tensor 'w': row 0 group 0");
    d[8] = 5 | 8; /* padding bit set */
    BAD(nm, 64, 9, NMF_ERR_FORMAT, "padding bits");
    /* 2:4 of [1,3]: position 3 is padding and must hold 0 */
    d[8] = 5;
    BAD(ONE("{\"name\":\"w\",\"dtype\":\"F32\",\"shape\":[1,3],\"pattern\":\"2:4\","
            "\"offset\":0,\"size\":9,\"crc32\":%u}"),
        64, 9, NMF_ERR_FORMAT, "padding");
    v[1] = 0;
    memcpy(d, v, 8);
    CHECK_OK(nmf_family_read(craft(ONE("{\"name\":\"w\",\"dtype\":\"F32\",\"shape\":[1,3],"
                                       "\"pattern\":\"2:4\",\"offset\":0,\"size\":9,\"crc32\":%u}"),
                                   d, 64, 9),
                             &g));
    nmf_family_free(&g);
    BAD(ONE("{\"name\":\"w\",\"dtype\":\"F32\",\"shape\":[1,4],\"pattern\":\"2:4\","
            "\"offset\":0,\"size\":8,\"crc32\":%u}"),
        64, 8, NMF_ERR_FORMAT, "needs 9");

    /* fixed header */
    size_t size;
    const char *p = craft(ONE(A8), d, 64, 8);
    uint8_t *raw = read_bytes(p, &size);
    raw[8] = 3;
    write_bytes(p, raw, size);
    CHECK_FAILS(nmf_family_read(p, &g), NMF_ERR_UNSUPPORTED, "version 3 is not supported");
    raw[8] = 0;
    write_bytes(p, raw, size);
    CHECK_FAILS(nmf_family_read(p, &g), NMF_ERR_UNSUPPORTED, "version 0 is not supported");
    raw[8] = 1;
    raw[23] = 0x40; /* json_size huge */
    write_bytes(p, raw, size);
    CHECK_FAILS(nmf_family_read(p, &g), NMF_ERR_FORMAT, "exceeds the file");
    raw[23] = 0;
    raw[31] = 0x7f; /* data_size huge */
    write_bytes(p, raw, size);
    CHECK_FAILS(nmf_family_read(p, &g), NMF_ERR_FORMAT, "truncated");
    raw[31] = 0;
    raw[0] = 'P';
    write_bytes(p, raw, size);
    CHECK_FAILS(nmf_family_read(p, &g), NMF_ERR_FORMAT, "bad magic");
    free(raw);
    CHECK_FAILS(nmf_family_read(tmp_path("missing.nmf"), &g), NMF_ERR_IO, "missing.nmf");
#undef BAD
}

/* Version 2: an N:M weight stored [in, out] ("in_axis": 0) is the N:M form of its (out, in)
 * view; a version-1 file cannot say so, and the key is checked. */
static void in_axis(void) {
    uint8_t d[64] = {0};
    float v[2] = {1.5f, -2.0f};
    memcpy(d, v, 8);
    d[8] = 5; /* rank 5 = {2,3}: inputs 2 and 3 of the one output */
#define T41(axis) ONE("{\"name\":\"w\",\"dtype\":\"F32\",\"shape\":[4,1],\"pattern\":\"2:4\"," \
                      axis "\"offset\":0,\"size\":9,\"crc32\":%u}")
    nmf_family g;
    craft_version = 2;
    CHECK_OK(nmf_family_read(craft(T41("\"in_axis\":0,"), d, 64, 9), &g));
    if (g.count == 1 && g.models[0].tensors.count == 1) {
        const nmf_tensor *t = &g.models[0].tensors.items[0];
        float dense[4];
        CHECK(t->nm && t->nm_transposed && t->nm->rows == 1 && t->nm->cols == 4);
        CHECK(t->ndim == 2 && t->shape[0] == 4 && t->shape[1] == 1);
        CHECK_OK(nmf_tensor_dense(t, dense)); /* [in = 4, out = 1] */
        CHECK(dense[0] == 0 && dense[1] == 0 && dense[2] == 1.5f && dense[3] == -2.0f);
    }
    nmf_family_free(&g);
    /* [4,1] read as [out, in] has 4 rows of one padded group: 4 x (2 values + 1 code byte) */
    CHECK_FAILS(nmf_family_read(craft(T41(""), d, 64, 9), &g), NMF_ERR_FORMAT, "needs 36");
    CHECK_FAILS(nmf_family_read(craft(T41("\"in_axis\":2,"), d, 64, 9), &g), NMF_ERR_FORMAT,
                "\"in_axis\" must be 0 or 1");
    CHECK_FAILS(nmf_family_read(craft(T41("\"in_axis\":\"0\","), d, 64, 9), &g), NMF_ERR_FORMAT,
                "\"in_axis\" must be 0 or 1");
    CHECK_FAILS(nmf_family_read(craft(ONE("{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[2],"
                                          "\"pattern\":\"dense\",\"in_axis\":0,\"offset\":0,"
                                          "\"size\":8,\"crc32\":%u}"),
                                      d, 64, 8),
                                &g),
                NMF_ERR_FORMAT, "on an N:M tensor");
    craft_version = 1; /* a version-1 reader would ignore the key and misread the payload */
    CHECK_FAILS(nmf_family_read(craft(T41("\"in_axis\":0,"), d, 64, 9), &g), NMF_ERR_FORMAT,
                "needs a version-2 file");
#undef T41

    /* the writer: version 2 only for a file that needs it; the flag and the values survive */
    unsigned long long r = 7;
    float w[8 * 3], back[8 * 3]; /* [in = 8, out = 3] */
    for (int i = 0; i < 24; i++) w[i] = test_rand_float(&r);
    float view[3 * 8]; /* (out, in) */
    for (int i = 0; i < 8; i++)
        for (int o = 0; o < 3; o++) view[o * 8 + i] = w[i * 3 + o];
    nmf_nm_matrix m;
    CHECK_OK(nmf_nm_pack(&m, view, 3, 8, P28, 0));
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    nmf_tensor *t = NULL;
    CHECK_OK(nmf_tensors_add_nm_transposed(&s, "w", &m, 1, &t));
    CHECK(t && t->shape[0] == 8 && t->shape[1] == 3 && t->numel == 24);
    CHECK_OK(nmf_tensor_dense(t, back));
    int kept = 0;
    for (int i = 0; i < 24; i++) {
        CHECK(back[i] == 0 || back[i] == w[i]);
        kept += back[i] != 0;
    }
    CHECK(kept == 3 * 2); /* one group of 8 inputs per output keeps 2 */
    nmf_family f;
    nmf_family_init(&f);
    CHECK_OK(nmf_family_add(&f, "2:8", &s));
    const char *p = tmp_path("in_axis.nmf");
    for (int dt = 0; dt < NMF_DTYPE_COUNT; dt++) {
        nmf_write_options opt = {(nmf_dtype)dt};
        CHECK_OK(nmf_family_write(p, &f, &opt));
        size_t size;
        uint8_t *raw = read_bytes(p, &size);
        CHECK(size > 8 && raw[8] == 2);
        CHECK(strstr((const char *)raw + 32, "\"in_axis\":0") != NULL);
        free(raw);
        CHECK_OK(nmf_family_read(p, &g));
        const nmf_tensor *u = g.count ? nmf_tensors_find(&g.models[0].tensors, "w") : NULL;
        CHECK(u && u->nm && u->nm_transposed && u->shape[0] == 8 && u->stored_dtype == (nmf_dtype)dt);
        float again[24];
        if (u) CHECK_OK(nmf_tensor_dense(u, again));
        for (int i = 0; u && i < 24; i++) CHECK(again[i] == conv(back[i], (nmf_dtype)dt));
        nmf_family_free(&g);
    }
    nmf_family_free(&f);
    float w64[64]; /* small_family's w[4, 16] */
    small_family(&f, w64);
    CHECK_OK(nmf_family_write(p, &f, NULL));
    size_t size;
    uint8_t *raw = read_bytes(p, &size);
    CHECK(size > 8 && raw[8] == 1 && !strstr((const char *)raw + 32, "in_axis"));
    free(raw);
    nmf_family_free(&f);
}

/* Writes an .nmf file from JSON text and data (header CRC computed, data copied as given). */
static void write_nmf(const char *path, const char *json, const uint8_t *data, size_t data_size) {
    size_t jl = strlen(json), start = (32 + jl + 63) / 64 * 64;
    uint8_t *buf = calloc(start + data_size, 1);
    memcpy(buf, "\x89NMF\r\n\x1a\n", 8);
    buf[8] = 1;
    for (int i = 0; i < 8; i++) buf[16 + i] = (uint8_t)((uint64_t)jl >> (8 * i));
    for (int i = 0; i < 8; i++) buf[24 + i] = (uint8_t)((uint64_t)data_size >> (8 * i));
    memcpy(buf + 32, json, jl);
    uint32_t hc = (uint32_t)crc32(crc32(0, buf + 16, 16), (const uint8_t *)json, (uInt)jl);
    for (int i = 0; i < 4; i++) buf[12 + i] = (uint8_t)(hc >> (8 * i));
    memcpy(buf + start, data, data_size);
    write_bytes(path, buf, start + data_size);
    free(buf);
}

/* A decompression bomb: thousands of entries sharing one 64 KiB payload would decode to ~300 MB
 * from a ~0.5 MB file. The reader refuses the table before allocating anything. */
static void share_bomb(void) {
    enum { FLOATS = 16384, ENTRIES = 4400 };
    uint8_t *data = calloc(FLOATS, 4);
    uint32_t dcrc = (uint32_t)crc32(0, data, FLOATS * 4);
    size_t cap = (size_t)ENTRIES * 128 + 256, at = 0;
    char *json = malloc(cap);
    at += (size_t)snprintf(json + at, cap - at, HEAD "[{\"name\":\"dense\",\"tensors\":[");
    for (int i = 0; i < ENTRIES; i++)
        at += (size_t)snprintf(json + at, cap - at,
                               "%s{\"name\":\"t%d\",\"dtype\":\"F32\",\"shape\":[%d],"
                               "\"pattern\":\"dense\",\"offset\":0,\"size\":%d,\"crc32\":%u}",
                               i ? "," : "", i, FLOATS, FLOATS * 4, dcrc);
    snprintf(json + at, cap - at, "]}]}");
    const char *p = tmp_path("bomb.nmf");
    write_nmf(p, json, data, FLOATS * 4);
    nmf_family g;
    CHECK_FAILS(nmf_family_read(p, &g), NMF_ERR_FORMAT, "too many entries share payloads");
    /* a few entries sharing it are fine */
    snprintf(strstr(json, ",{\"name\":\"t8\""), 8, "]}]}");
    write_nmf(p, json, data, FLOATS * 4);
    CHECK_OK(nmf_family_read(p, &g));
    CHECK(g.count == 1 && g.models[0].tensors.count == 8);
    nmf_family_free(&g);
    /* a model's metadata with more keys than any real file (searched linearly) */
    at = (size_t)snprintf(json, cap, HEAD "[{\"name\":\"dense\",\"metadata\":{");
    for (int i = 0; i < 4097; i++) at += (size_t)snprintf(json + at, cap - at, "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(json + at, cap - at, "},\"tensors\":[]}]}");
    write_nmf(p, json, data, 0);
    CHECK_FAILS(nmf_family_read(p, &g), NMF_ERR_UNSUPPORTED, "metadata has more than 4096 keys");
    free(json);
    free(data);
}

/* A failed write leaves the old file intact and no temporary file behind. */
static void atomicity(void) {
    float w[64];
    nmf_family f;
    small_family(&f, w);
    const char *p = tmp_path("atomic.nmf");
    CHECK_OK(nmf_family_write(p, &f, NULL));
    size_t n0, n1;
    uint8_t *before = read_bytes(p, &n0);
    int entries = count_dir_entries(tmp_dir());

    /* abort */
    nmf_atomic_file *af;
    CHECK_OK(nmf_atomic_open(p, &af));
    CHECK_OK(nmf_atomic_write(af, "garbage", 7));
    nmf_atomic_abort(af);
    uint8_t *after = read_bytes(p, &n1);
    CHECK(n0 == n1 && !memcmp(before, after, n0));
    free(after);
    CHECK(count_dir_entries(tmp_dir()) == entries);

    /* a write that fails half way (file size limit: EFBIG) */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 200;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    nmf_write_options bf16 = {NMF_DTYPE_BF16};
    nmf_status st = nmf_family_write(p, &f, &bf16);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK_MSG(st == NMF_ERR_IO, "write under a 200-byte limit: %s", nmf_strerror(st));
    CHECK(strstr(nmf_last_error(), "write failed") != NULL);
    after = read_bytes(p, &n1);
    CHECK(n0 == n1 && !memcmp(before, after, n0));
    free(after);
    CHECK(count_dir_entries(tmp_dir()) == entries);

    /* a write refused before any byte (bad tensor) */
    int64_t sh[1] = {0};
    CHECK_OK(nmf_tensors_add_dense(&f.models[0].tensors, "empty", 1, sh, NULL, NULL));
    CHECK_FAILS(nmf_family_write(p, &f, NULL), NMF_ERR_INVALID_ARG, "'empty' has no elements");
    after = read_bytes(p, &n1);
    CHECK(n0 == n1 && !memcmp(before, after, n0));
    free(after);
    CHECK(count_dir_entries(tmp_dir()) == entries);

    /* an invalid N:M tensor (positions not ascending) is refused, not written */
    nmf_family_free(&f);
    small_family(&f, w);
    nmf_tensor *bad = nmf_tensors_find(&f.models[1].tensors, "w");
    bad->nm->pos[1] = bad->nm->pos[0];
    CHECK_FAILS(nmf_family_write(p, &f, NULL), NMF_ERR_INVALID_ARG, "tensor 'w': N:M positions");
    bad->nm->pos[1] = 40; /* out of range: would not even rank */
    CHECK_FAILS(nmf_family_write(p, &f, NULL), NMF_ERR_INVALID_ARG, "tensor 'w'");
    after = read_bytes(p, &n1);
    CHECK(n0 == n1 && !memcmp(before, after, n0));
    free(after);
    CHECK(count_dir_entries(tmp_dir()) == entries);

    /* a successful write replaces the file */
    nmf_family_free(&f);
    small_family(&f, w);
    CHECK_OK(nmf_family_write(p, &f, &bf16));
    after = read_bytes(p, &n1);
    CHECK(n1 != n0);
    free(after);
    CHECK(count_dir_entries(tmp_dir()) == entries);
    CHECK_FAILS(nmf_family_write("/nonexistent-dir/f.nmf", &f, NULL), NMF_ERR_IO, "temporary file");
    /* a new file has the mode the umask asks for (as open(..., 0666) would give); a replaced
     * one keeps its own (tests/io/test_output_targets.c) */
    mode_t old_mask = umask(027);
    unlink(p);
    CHECK_OK(nmf_family_write(p, &f, NULL));
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0640);
    umask(022);
    unlink(p);
    CHECK_OK(nmf_family_write(p, &f, NULL));
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0644);
    umask(old_mask);
    free(before);
    nmf_family_free(&f);
}

/* The fixture ViT as dense + 4:8 + 2:8 + 1:8: loads by name, the shared payloads are exactly the
 * tensors pruning leaves alone, and flips sampled over the whole file are refused. */
static void vit_family(void) {
    nmf_model_config c;
    nmf_tensor_set dense;
    const char *src = test_source_path("tests/fixtures/vit_tiny.safetensors");
    CHECK_OK(nmf_load_model(src, NULL, NULL, &c, &dense));
    nmf_tensor_set none;
    nmf_model_config cn;
    CHECK_FAILS(nmf_load_model(src, "2:8", NULL, &cn, &none), NMF_ERR_NOT_FOUND, "'2:8'");
    nmf_family f;
    nmf_family_init(&f);
    f.config = c;
    const nmf_pattern pats[3] = {{4, 8}, {2, 8}, {1, 8}};
    for (int k = -1; k < 3; k++) {
        nmf_tensor_set s;
        nmf_tensors_init(&s);
        for (size_t i = 0; i < dense.count; i++) {
            const nmf_tensor *t = &dense.items[i];
            int lin = strstr(t->name, "blocks.") && t->ndim == 2;
            if (k >= 0 && lin) {
                nmf_nm_matrix m;
                CHECK_OK(nmf_nm_pack(&m, t->data, (size_t)t->shape[0], (size_t)t->shape[1], pats[k], 0));
                CHECK_OK(nmf_tensors_add_nm(&s, t->name, &m, NULL));
            } else {
                CHECK_OK(nmf_tensors_add_dense(&s, t->name, t->ndim, t->shape, t->data, NULL));
            }
        }
        char name[16] = "dense";
        if (k >= 0) nmf_pattern_format(pats[k], name, sizeof name);
        CHECK_OK(nmf_family_add(&f, name, &s));
    }
    const char *p = tmp_path("vit.nmf");
    CHECK_OK(nmf_family_write(p, &f, NULL));
    nmf_family_free(&f);
    nmf_tensor_set t;
    nmf_model_config c2;
    CHECK_OK(nmf_load_model(p, "2:8", NULL, &c2, &t));
    CHECK(!memcmp(&c, &c2, sizeof c));
    const nmf_tensor *q = nmf_tensors_find(&t, "blocks.0.mlp.fc1.weight");
    CHECK(q && q->nm && q->nm->pattern.n == 2);
    CHECK(nmf_tensors_get_meta(&t, NMF_CONFIG_META_KEY) != NULL);
    nmf_tensors_free(&t);
    CHECK_FAILS(nmf_load_model(p, NULL, NULL, &c2, &t), NMF_ERR_NOT_FOUND, "dense, 4:8, 2:8, 1:8");
    CHECK_FAILS(nmf_load_model(p, "3:8", NULL, &c2, &t), NMF_ERR_NOT_FOUND,
                "no model '3:8' (available: dense, 4:8, 2:8, 1:8)");
    nmf_family_layout lay;
    CHECK_OK(nmf_family_read_layout(p, &f, &lay));
    /* 32 tensors per model, 8 block linears: 24 shared + 4 x 8 linears */
    CHECK(lay.count == 4 * 32 && lay.payloads == 24 + 4 * 8);
    nmf_family_layout_free(&lay);
    nmf_family_free(&f);

    size_t size;
    uint8_t *raw = read_bytes(p, &size);
    unsigned long long r = 5;
    int n = getenv("NMF_SANITIZED") ? 40 : 300;
    size_t accepted = 0;
    for (int i = 0; i < n; i++) {
        size_t bit = (size_t)(test_rand_u64(&r) % (size * 8));
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        write_bytes(tmp_path("vflip.nmf"), raw, size);
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (nmf_family_read(tmp_path("vflip.nmf"), &f) == NMF_OK) {
            accepted++;
            nmf_family_free(&f);
        }
    }
    CHECK_MSG(accepted == 0, "%zu sampled flips accepted", accepted);
    free(raw);

    /* wrong config vs tensors is reported by name */
    nmf_model_config other = c;
    other.depth = 3;
    nmf_family_init(&f);
    f.config = other;
    nmf_tensor_set s;
    CHECK_OK(nmf_safetensors_read(src, &s));
    CHECK_OK(nmf_family_add(&f, "dense", &s));
    CHECK_OK(nmf_family_write(p, &f, NULL));
    nmf_family_free(&f);
    CHECK_FAILS(nmf_load_model(p, NULL, NULL, &c2, &t), NMF_ERR_NOT_FOUND, "'blocks.2.norm1.weight' missing");
    nmf_tensors_free(&dense);
}

/* The worked examples of docs/FORMAT.md. */
static void format_doc_examples(void) {
    CHECK(nmf_crc32_update(0, (const uint8_t *)"123456789", 9) == 0xCBF43926u);
    /* 2:8, one row of two groups with ranks 27 ({6,7}) and 1 ({0,2}) -> bytes 3B 00 */
    nmf_nm_matrix m;
    CHECK_OK(nmf_nm_alloc(&m, 1, 16, P28, 0));
    const uint8_t pos[4] = {6, 7, 0, 2};
    memcpy(m.pos, pos, 4);
    CHECK(nmf_nm_rank(pos, P28) == 27 && nmf_nm_rank(pos + 2, P28) == 1);
    uint8_t codes[2] = {0xff, 0xff};
    CHECK(nmf_nm_code_row_bytes(2, P28) == 2);
    CHECK_OK(nmf_nm_encode_positions(codes, &m));
    CHECK(codes[0] == 0x3B && codes[1] == 0x00);
    nmf_nm_free(&m);
    /* 2:4 ranks in colex order */
    const uint8_t sets[6][2] = {{0, 1}, {0, 2}, {1, 2}, {0, 3}, {1, 3}, {2, 3}};
    for (uint32_t r = 0; r < 6; r++) CHECK(nmf_nm_rank(sets[r], (nmf_pattern){2, 4}) == r);
}

int main(void) {
    format_doc_examples();
    round_trip();
    corruption();
    structure();
    in_axis();
    share_bomb();
    atomicity();
    vit_family();
    rm_tmp_dir();
    return test_finish("io_nmf");
}
