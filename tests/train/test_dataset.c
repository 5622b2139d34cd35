/* Fashion-MNIST IDX reader: small synthetic files (good and hostile) written here, plus the real
 * package files when they are installed. */
#include <stdint.h>
#include <unistd.h>
#include <zlib.h>

#include "nmformer/data.h"
#include "test.h"

static char tmpdir[256];

static void put_be32(uint8_t *b, uint32_t v) {
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

/* Writes raw bytes, gzip-compressed when gz != 0. */
static void write_file(const char *path, const uint8_t *data, size_t size, int gz) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f) abort();
        if (size && gzwrite(f, data, (unsigned)size) != (int)size) abort();
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        if (!f) abort();
        if (size && fwrite(data, 1, size, f) != size) abort();
        fclose(f);
    }
}

/* An IDX ubyte file: header (magic type/ndim may be overridden) + payload. */
static size_t make_idx(uint8_t *buf, uint8_t type, uint8_t ndim, const uint32_t *dims,
                       const uint8_t *payload, size_t payload_size) {
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = type;
    buf[3] = ndim;
    for (int i = 0; i < ndim; i++) put_be32(buf + 4 + 4 * i, dims[i]);
    size_t off = 4 + 4 * (size_t)ndim;
    memcpy(buf + off, payload, payload_size);
    return off + payload_size;
}

static const char *tpath(const char *name) {
    static char buf[2][512];
    static int which = 0;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", tmpdir, name);
    return buf[which];
}

enum { N = 5, R = 3, C = 4 };
static uint8_t pixels[N * R * C], labels[N];
static uint8_t buf_img[64 + N * R * C + 16], buf_lab[64 + N + 16];

static void write_good_pair(const char *img, const char *lab, int gz) {
    uint32_t idims[3] = {N, R, C}, ldims[1] = {N};
    size_t si = make_idx(buf_img, 0x08, 3, idims, pixels, sizeof pixels);
    size_t sl = make_idx(buf_lab, 0x08, 1, ldims, labels, sizeof labels);
    write_file(tpath(img), buf_img, si, gz);
    write_file(tpath(lab), buf_lab, sl, gz);
}

static void test_good(int gz) {
    write_good_pair("img", "lab", gz);
    nmf_dataset ds;
    CHECK_OK(nmf_dataset_load_files(&ds, tpath("img"), tpath("lab"), 10));
    CHECK(ds.n == N && ds.rows == R && ds.cols == C && ds.num_classes == 10);
    CHECK(ds.images && !memcmp(ds.images, pixels, sizeof pixels));
    CHECK(ds.labels && !memcmp(ds.labels, labels, sizeof labels));

    /* batch conversion with an index list: (x/255 - mean)/std in NCHW */
    size_t idx[3] = {4, 0, 2};
    float out[3 * R * C];
    int lab[3];
    CHECK_OK(nmf_dataset_batch(out, lab, &ds, idx, 3, 0.25f, 0.5f));
    int bad = 0;
    for (int b = 0; b < 3; b++) {
        if (lab[b] != labels[idx[b]]) bad++;
        for (int p = 0; p < R * C; p++) {
            double want = (pixels[idx[b] * R * C + p] / 255.0 - 0.25) / 0.5;
            if (fabs(out[b * R * C + p] - want) > 1e-6) bad++;
        }
    }
    CHECK_MSG(bad == 0, "%d batch values wrong", bad);
    /* NULL idx = the first count examples; out-of-range index refused */
    CHECK_OK(nmf_dataset_batch(out, NULL, &ds, NULL, 2, 0.0f, 1.0f));
    CHECK_NEAR(out[R * C], pixels[R * C] / 255.0, 1e-7);
    size_t badidx[1] = {N};
    CHECK_STATUS(nmf_dataset_batch(out, NULL, &ds, badidx, 1, 0.0f, 1.0f), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_dataset_batch(out, NULL, &ds, NULL, 1, 0.0f, 0.0f), NMF_ERR_INVALID_ARG);
    nmf_dataset_free(&ds);
    CHECK(ds.images == NULL && ds.n == 0);
}

/* Writes a hostile image file (labels good) and expects `want` from the loader. */
static void expect_bad_images(const uint8_t *data, size_t size, nmf_status want, const char *why) {
    uint32_t ldims[1] = {N};
    size_t sl = make_idx(buf_lab, 0x08, 1, ldims, labels, sizeof labels);
    write_file(tpath("lab"), buf_lab, sl, 1);
    write_file(tpath("img"), data, size, 1);
    nmf_dataset ds;
    nmf_status st = nmf_dataset_load_files(&ds, tpath("img"), tpath("lab"), 10);
    CHECK_MSG(st == want, "%s: got %s (%s)", why, nmf_strerror(st), nmf_last_error());
    CHECK_MSG(strlen(nmf_last_error()) > 0, "%s: no detail", why);
}

static void test_hostile(void) {
    uint32_t idims[3] = {N, R, C};
    size_t si = make_idx(buf_img, 0x08, 3, idims, pixels, sizeof pixels);
    uint8_t bad[sizeof buf_img];

    memcpy(bad, buf_img, si);
    bad[1] = 0x01;
    expect_bad_images(bad, si, NMF_ERR_FORMAT, "bad magic");
    memcpy(bad, buf_img, si);
    bad[2] = 0x0D; /* float */
    expect_bad_images(bad, si, NMF_ERR_UNSUPPORTED, "float element type");
    memcpy(bad, buf_img, si);
    bad[3] = 1; /* claims 1-D */
    expect_bad_images(bad, si, NMF_ERR_FORMAT, "wrong ndim");
    expect_bad_images(buf_img, si - 1, NMF_ERR_FORMAT, "truncated data");
    expect_bad_images(buf_img, 10, NMF_ERR_FORMAT, "truncated header");
    expect_bad_images(buf_img, 0, NMF_ERR_FORMAT, "empty file");
    memcpy(bad, buf_img, si);
    bad[si] = 7;
    expect_bad_images(bad, si + 1, NMF_ERR_FORMAT, "trailing bytes");

    uint32_t d0[3] = {0, R, C};
    expect_bad_images(buf_img, make_idx(buf_img, 0x08, 3, d0, pixels, 0), NMF_ERR_FORMAT,
                      "zero images");
    uint32_t dbig[3] = {N, 100000, 100000}; /* would be 50 GB: must be refused, not allocated */
    expect_bad_images(buf_img, make_idx(buf_img, 0x08, 3, dbig, pixels, 0), NMF_ERR_FORMAT,
                      "huge dims");
    uint32_t dmany[3] = {0xFFFFFFFFu, R, C};
    expect_bad_images(buf_img, make_idx(buf_img, 0x08, 3, dmany, pixels, 0), NMF_ERR_FORMAT,
                      "huge count");
    uint32_t dmis[3] = {N - 1, R, C}; /* count disagrees with the label file */
    expect_bad_images(buf_img, make_idx(buf_img, 0x08, 3, dmis, pixels, (N - 1) * R * C),
                      NMF_ERR_FORMAT, "count mismatch");

    /* label out of range */
    write_good_pair("img", "lab", 1);
    uint8_t badlab[N];
    memcpy(badlab, labels, N);
    badlab[3] = 10;
    uint32_t ldims[1] = {N};
    write_file(tpath("lab"), buf_lab, make_idx(buf_lab, 0x08, 1, ldims, badlab, N), 1);
    nmf_dataset ds;
    CHECK_STATUS(nmf_dataset_load_files(&ds, tpath("img"), tpath("lab"), 10), NMF_ERR_FORMAT);
    CHECK(strstr(nmf_last_error(), "label") != NULL);
    /* ... but fine when the caller allows more classes */
    CHECK_OK(nmf_dataset_load_files(&ds, tpath("img"), tpath("lab"), 11));
    nmf_dataset_free(&ds);

    /* corrupt gzip stream: flip bytes inside the deflate data and the CRC trailer */
    write_good_pair("img", "lab", 1);
    FILE *f = fopen(tpath("img"), "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        uint8_t z[512];
        fseek(f, 0, SEEK_SET);
        size_t got = fread(z, 1, sizeof z, f);
        CHECK(got == (size_t)len);
        for (long i = 12; i < len; i += 3) z[i] ^= 0x5A;
        fseek(f, 0, SEEK_SET);
        fwrite(z, 1, got, f);
        fclose(f);
        nmf_status st = nmf_dataset_load_files(&ds, tpath("img"), tpath("lab"), 10);
        CHECK_MSG(st == NMF_ERR_FORMAT || st == NMF_ERR_UNSUPPORTED, "corrupt gzip: %s",
                  nmf_strerror(st));
    }

    /* missing files, directories, bad arguments */
    CHECK_STATUS(nmf_dataset_load_files(&ds, tpath("nope"), tpath("lab"), 10), NMF_ERR_NOT_FOUND);
    CHECK_STATUS(nmf_dataset_load_files(&ds, tmpdir, tpath("lab"), 10), NMF_ERR_IO);
    CHECK_STATUS(nmf_dataset_load_files(&ds, tpath("img"), tpath("lab"), 0), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_dataset_load(&ds, tmpdir, NMF_SPLIT_TRAIN), NMF_ERR_NOT_FOUND);
    CHECK(strstr(nmf_last_error(), "dataset-fashion-mnist") != NULL);
    CHECK_STATUS(nmf_dataset_load(&ds, tmpdir, NMF_SPLIT_COUNT), NMF_ERR_INVALID_ARG);
}

/* nmf_dataset_load finds the package's file names in a directory, gz or plain. */
static void test_load_dir(void) {
    write_good_pair("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 0);
    nmf_dataset ds;
    CHECK_OK(nmf_dataset_load(&ds, tmpdir, NMF_SPLIT_TEST));
    CHECK(ds.n == N && !memcmp(ds.labels, labels, N));
    nmf_dataset_free(&ds);
    write_good_pair("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 1);
    CHECK_OK(nmf_dataset_load(&ds, tmpdir, NMF_SPLIT_TRAIN));
    CHECK(ds.n == N && !memcmp(ds.images, pixels, sizeof pixels));
    nmf_dataset_free(&ds);
    CHECK(!strcmp(nmf_split_name(NMF_SPLIT_TEST), "test"));
    CHECK(!strcmp(nmf_fashion_mnist_class_name(9), "Ankle boot"));
    CHECK(!strcmp(nmf_fashion_mnist_class_name(10), "?"));
}

/* The real package: 60k/10k, 28x28, every class present, mean/std as the constants say. */
static void test_real(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", NMF_FASHION_MNIST_DIR);
    if (access(path, R_OK) != 0) {
        printf("real Fashion-MNIST: skipped (%s absent; package dataset-fashion-mnist)\n", path);
        CHECK(1);
        return;
    }
    nmf_dataset tr, te;
    CHECK_OK(nmf_dataset_load(&tr, NMF_FASHION_MNIST_DIR, NMF_SPLIT_TRAIN));
    CHECK_OK(nmf_dataset_load(&te, NMF_FASHION_MNIST_DIR, NMF_SPLIT_TEST));
    CHECK(tr.n == 60000 && tr.rows == 28 && tr.cols == 28);
    CHECK(te.n == 10000 && te.rows == 28 && te.cols == 28);
    if (tr.n == 60000 && te.n == 10000) {
        size_t counts[10] = {0};
        for (size_t i = 0; i < te.n; i++) counts[te.labels[i]]++;
        for (int c = 0; c < 10; c++) CHECK(counts[c] == 1000); /* test split is balanced */
        double sum = 0, sq = 0;
        size_t total = tr.n * 28 * 28;
        for (size_t i = 0; i < total; i++) {
            double v = tr.images[i] / 255.0;
            sum += v;
            sq += v * v;
        }
        double mean = sum / total, std = sqrt(sq / total - mean * mean);
        CHECK_NEAR(mean, NMF_FASHION_MNIST_MEAN, 5e-4);
        CHECK_NEAR(std, NMF_FASHION_MNIST_STD, 5e-4);
    }
    nmf_dataset_free(&tr);
    nmf_dataset_free(&te);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nmf_test_dataset_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    for (size_t i = 0; i < sizeof pixels; i++) pixels[i] = (uint8_t)(i * 37 + 11);
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)(9 - i);
    test_good(1);
    test_good(0);
    test_hostile();
    test_load_dir();
    test_real();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return test_finish("test_dataset");
}
