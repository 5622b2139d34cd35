/* Fashion-MNIST IDX reader (zlib) and the batch -> normalised float NCHW conversion.
 *
 * IDX format (big-endian): magic = 0x00 0x00 <type> <ndim>, then ndim u32 sizes, then the data.
 * We accept type 0x08 (unsigned byte) only: images ndim 3 [n][rows][cols], labels ndim 1 [n]. */
#include "nmformer/data.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/env.h"

static const char *const split_names[] = {[NMF_SPLIT_TRAIN] = "train", [NMF_SPLIT_TEST] = "test"};
static_assert(sizeof split_names / sizeof split_names[0] == NMF_SPLIT_COUNT,
              "split_names must name every nmf_split");

/* File stems the dataset package uses for each split. */
static const char *const split_stems[] = {[NMF_SPLIT_TRAIN] = "train", [NMF_SPLIT_TEST] = "t10k"};
static_assert(sizeof split_stems / sizeof split_stems[0] == NMF_SPLIT_COUNT,
              "split_stems must cover every nmf_split");

static const char *const fashion_classes[NMF_FASHION_MNIST_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

const char *nmf_split_name(nmf_split s) {
    if ((unsigned)s >= NMF_SPLIT_COUNT) return "?";
    return split_names[s];
}

const char *nmf_fashion_mnist_class_name(int label) {
    if (label < 0 || label >= NMF_FASHION_MNIST_CLASSES) return "?";
    return fashion_classes[label];
}

/* Reads exactly size bytes; a short read is truncation, a zlib failure is corruption. */
static nmf_status gz_read_exact(gzFile f, const char *path, void *buf, size_t size,
                                const char *what) {
    uint8_t *p = buf;
    while (size > 0) {
        unsigned chunk = size > (1u << 30) ? (1u << 30) : (unsigned)size;
        int got = gzread(f, p, chunk);
        if (got < 0) {
            int errnum = 0;
            const char *msg = gzerror(f, &errnum);
            return nmf_error(NMF_ERR_FORMAT, "%s: corrupt gzip stream while reading %s (%s)", path,
                             what, msg ? msg : "?");
        }
        if (got == 0)
            return nmf_error(NMF_ERR_FORMAT, "%s: truncated: file ends inside the %s", path, what);
        p += got;
        size -= (size_t)got;
    }
    return NMF_OK;
}

static uint32_t be32(const uint8_t *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Deflate's largest expansion: a 258-byte match coded in 2 bits (1-bit length + 1-bit distance
 * code) gives 1032 output bytes per input byte; gzip member headers only lower the ratio. */
#define GZIP_MAX_RATIO 1032u

/* Opens path and reads an IDX header of unsigned bytes with `ndim` dimensions into dims[].
 * *capacity: the most payload bytes the file can hold after the header (its size when it is
 * plain, its size times deflate's largest expansion when gzip), so that a header claiming more
 * is refused before anything of the claimed size is allocated. */
static nmf_status idx_open(const char *path, int ndim, uint32_t *dims, uint64_t *capacity,
                           gzFile *out) {
    struct stat st;
    if (stat(path, &st) != 0)
        return nmf_error(errno == ENOENT ? NMF_ERR_NOT_FOUND : NMF_ERR_IO, "%s: %s", path,
                         strerror(errno));
    if (!S_ISREG(st.st_mode)) return nmf_error(NMF_ERR_IO, "%s: not a regular file", path);
    gzFile f = gzopen(path, "rb");
    if (!f) return nmf_error(NMF_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    uint8_t head[4 + 4 * 3];
    nmf_status st_ = gz_read_exact(f, path, head, 4 + 4 * (size_t)ndim, "IDX header");
    if (st_ != NMF_OK) {
        gzclose(f);
        return st_;
    }
    if (head[0] != 0 || head[1] != 0) {
        gzclose(f);
        return nmf_error(NMF_ERR_FORMAT, "%s: bad IDX magic %02x %02x (expected 00 00)", path,
                         head[0], head[1]);
    }
    if (head[2] != 0x08) {
        gzclose(f);
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: IDX element type 0x%02x (only 0x08 = ubyte)",
                         path, head[2]);
    }
    if (head[3] != ndim) {
        gzclose(f);
        return nmf_error(NMF_ERR_FORMAT, "%s: IDX has %d dimensions, expected %d", path, head[3],
                         ndim);
    }
    for (int i = 0; i < ndim; i++) dims[i] = be32(head + 4 + 4 * i);
    uint64_t file_size = (uint64_t)st.st_size, header = 4 + 4 * (uint64_t)ndim;
    if (gzdirect(f))
        *capacity = file_size > header ? file_size - header : 0;
    else /* file_size < 2^63 and the ratio < 2^11: no overflow */
        *capacity = file_size * GZIP_MAX_RATIO;
    *out = f;
    return NMF_OK;
}

/* After the payload the stream must end: extra bytes mean the header lied about the counts. */
static nmf_status idx_expect_end(gzFile f, const char *path) {
    uint8_t extra;
    int got = gzread(f, &extra, 1);
    if (got < 0) return nmf_error(NMF_ERR_FORMAT, "%s: corrupt gzip stream at the end", path);
    if (got > 0)
        return nmf_error(NMF_ERR_FORMAT, "%s: trailing bytes after the data the header declares",
                         path);
    return NMF_OK;
}

nmf_status nmf_dataset_load_files(nmf_dataset *ds, const char *images_path,
                                  const char *labels_path, int num_classes) {
    if (!ds || !images_path || !labels_path || num_classes < 1 || num_classes > 256)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_dataset_load_files: bad arguments");
    memset(ds, 0, sizeof *ds);

    uint32_t idims[3] = {0}, ldims[1] = {0};
    uint64_t icap = 0, lcap = 0;
    gzFile fi = NULL, fl = NULL;
    uint8_t *images = NULL, *labels = NULL;
    nmf_status st = idx_open(images_path, 3, idims, &icap, &fi);
    if (st != NMF_OK) goto fail;
    st = idx_open(labels_path, 1, ldims, &lcap, &fl);
    if (st != NMF_OK) goto fail;

    if (idims[0] == 0 || idims[0] > NMF_IDX_MAX_ITEMS) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: %u images (expected 1..%u)", images_path, idims[0],
                       NMF_IDX_MAX_ITEMS);
        goto fail;
    }
    if (idims[1] == 0 || idims[2] == 0 || idims[1] > NMF_IDX_MAX_SIDE ||
        idims[2] > NMF_IDX_MAX_SIDE) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: image size %ux%u (expected 1..%u per side)",
                       images_path, idims[1], idims[2], NMF_IDX_MAX_SIDE);
        goto fail;
    }
    if (ldims[0] != idims[0]) {
        st = nmf_error(NMF_ERR_FORMAT, "%s has %u labels but %s has %u images", labels_path,
                       ldims[0], images_path, idims[0]);
        goto fail;
    }
    size_t pixels, bytes;
    if (nmf_mul_overflow((size_t)idims[1], (size_t)idims[2], &pixels) ||
        nmf_mul_overflow(pixels, (size_t)idims[0], &bytes)) {
        st = nmf_error(NMF_ERR_NOMEM, "%s: image data size overflows", images_path);
        goto fail;
    }
    if ((uint64_t)bytes > icap) {
        st = nmf_error(NMF_ERR_FORMAT,
                       "%s: header claims %u images of %ux%u (%zu bytes) but the file can hold at "
                       "most %llu bytes",
                       images_path, idims[0], idims[1], idims[2], bytes, (unsigned long long)icap);
        goto fail;
    }
    if ((uint64_t)idims[0] > lcap) {
        st = nmf_error(NMF_ERR_FORMAT,
                       "%s: header claims %u labels but the file can hold at most %llu bytes",
                       labels_path, idims[0], (unsigned long long)lcap);
        goto fail;
    }
    images = nmf_alloc(bytes, 1);
    labels = nmf_alloc(idims[0], 1);
    if (!images || !labels) {
        st = nmf_error(NMF_ERR_NOMEM, "%s: cannot allocate %zu bytes", images_path, bytes);
        goto fail;
    }
    if ((st = gz_read_exact(fi, images_path, images, bytes, "image data")) != NMF_OK) goto fail;
    if ((st = idx_expect_end(fi, images_path)) != NMF_OK) goto fail;
    if ((st = gz_read_exact(fl, labels_path, labels, idims[0], "label data")) != NMF_OK) goto fail;
    if ((st = idx_expect_end(fl, labels_path)) != NMF_OK) goto fail;
    for (size_t i = 0; i < idims[0]; i++) {
        if (labels[i] >= num_classes) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: label %u of example %zu is out of range 0..%d",
                           labels_path, labels[i], i, num_classes - 1);
            goto fail;
        }
    }
    gzclose(fi);
    gzclose(fl);
    ds->n = idims[0];
    ds->rows = (int)idims[1];
    ds->cols = (int)idims[2];
    ds->num_classes = num_classes;
    ds->images = images;
    ds->labels = labels;
    return NMF_OK;

fail:
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    nmf_free(images);
    nmf_free(labels);
    return st;
}

/* dir/stem-kind-idxK-ubyte.gz, or without .gz when only the plain file exists. */
static nmf_status data_path(char *buf, size_t size, const char *dir, const char *stem,
                            const char *kind) {
    int n = snprintf(buf, size, "%s/%s-%s-ubyte.gz", dir, stem, kind);
    if (n < 0 || (size_t)n >= size) return nmf_error(NMF_ERR_INVALID_ARG, "%s: path too long", dir);
    struct stat st;
    if (stat(buf, &st) != 0) {
        char plain[4096];
        snprintf(plain, sizeof plain, "%s/%s-%s-ubyte", dir, stem, kind);
        if (stat(plain, &st) == 0) snprintf(buf, size, "%s", plain);
    }
    return NMF_OK;
}

nmf_status nmf_env_data_dir(const char **dir) {
    const char *env = getenv("NMF_DATA_DIR");
    struct stat sb;
    *dir = NULL;
    if (!env || !*env) return NMF_OK;
    if (stat(env, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return nmf_error(NMF_ERR_INVALID_ARG, "NMF_DATA_DIR='%s': not a directory", env);
    *dir = env;
    return NMF_OK;
}

nmf_status nmf_dataset_load(nmf_dataset *ds, const char *dir, nmf_split split) {
    if (!ds || (unsigned)split >= NMF_SPLIT_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_dataset_load: bad arguments");
    nmf_status st;
    if (!dir && (st = nmf_env_data_dir(&dir))) return st;
    if (!dir) dir = NMF_FASHION_MNIST_DIR;
    char ipath[4096], lpath[4096];
    st = data_path(ipath, sizeof ipath, dir, split_stems[split], "images-idx3");
    if (st != NMF_OK) return st;
    st = data_path(lpath, sizeof lpath, dir, split_stems[split], "labels-idx1");
    if (st != NMF_OK) return st;
    st = nmf_dataset_load_files(ds, ipath, lpath, NMF_FASHION_MNIST_CLASSES);
    if (st == NMF_ERR_NOT_FOUND) {
        /* keep the path, add the remedy */
        char detail[600];
        snprintf(detail, sizeof detail, "%s", nmf_last_error());
        return nmf_error(st, "%s (install the Debian package dataset-fashion-mnist, or set "
                             "NMF_DATA_DIR)", detail);
    }
    return st;
}

void nmf_dataset_free(nmf_dataset *ds) {
    if (!ds) return;
    nmf_free(ds->images);
    nmf_free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

nmf_status nmf_dataset_batch(float *out, int *labels_out, const nmf_dataset *ds,
                             const size_t *idx, size_t count, float mean, float std) {
    if (!out || !ds || !ds->images || !(std > 0.0f))
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_dataset_batch: bad arguments");
    size_t pixels = (size_t)ds->rows * (size_t)ds->cols;
    for (size_t b = 0; b < count; b++) {
        size_t i = idx ? idx[b] : b;
        if (i >= ds->n)
            return nmf_error(NMF_ERR_INVALID_ARG, "nmf_dataset_batch: index %zu >= %zu examples",
                             i, ds->n);
    }
    /* the same float operations as torchvision's ToTensor + Normalize, so results match */
#pragma omp parallel for schedule(static) if (count * pixels > (1u << 16))
    for (size_t b = 0; b < count; b++) {
        size_t i = idx ? idx[b] : b;
        const uint8_t *src = ds->images + i * pixels;
        float *dst = out + b * pixels;
        for (size_t p = 0; p < pixels; p++) dst[p] = ((float)src[p] / 255.0f - mean) / std;
        if (labels_out) labels_out[b] = ds->labels[i];
    }
    return NMF_OK;
}
