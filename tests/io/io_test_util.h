/* Scratch files for the I/O tests: a private temp directory, writing raw bytes, and checking that
 * a call fails with a message naming the problem. */
#ifndef NMF_IO_TEST_UTIL_H
#define NMF_IO_TEST_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nmformer/io.h"
#include "nmformer/model.h"
#include "tensor_compare.h"
#include "test.h"

static char io_test_dir[256];

static inline const char *tmp_dir(void) {
    if (!io_test_dir[0]) {
        /* tmpfs when there is one: the hostile-input loops write thousands of small files */
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(io_test_dir, sizeof io_test_dir, "%s/nmf_io_test_XXXXXX", base);
        if (!mkdtemp(io_test_dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return io_test_dir;
}

/* Path of a scratch file (16 rotating static buffers: several may be live at once). */
static inline const char *tmp_path(const char *name) {
    static char bufs[16][512];
    static int next;
    char *b = bufs[next++ & 15];
    snprintf(b, sizeof bufs[0], "%s/%s", tmp_dir(), name);
    return b;
}

static inline void write_bytes(const char *path, const void *data, size_t size) {
    /* A fresh file each time: truncating and rewriting one makes ext4 flush it on close
     * (auto_da_alloc), which turns thousands of tiny writes into seconds of waiting. */
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        exit(1);
    }
}

static inline uint8_t *read_bytes(const char *path, size_t *size) {
    uint8_t *data;
    if (nmf_read_file(path, (size_t)1 << 30, &data, size) != NMF_OK) {
        fprintf(stderr, "%s: %s\n", path, nmf_last_error());
        exit(1);
    }
    return data;
}

static inline int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static inline void rm_tmp_dir(void) {
    if (!io_test_dir[0]) return;
    DIR *d = opendir(io_test_dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[800];
            snprintf(p, sizeof p, "%s/%s", io_test_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(io_test_dir);
}

/* The call must fail with `want` and a detail containing `needle` (case-sensitive). */
#define CHECK_FAILS(expr, want, needle)                                                      \
    do {                                                                                     \
        nmf_clear_error();                                                                   \
        nmf_status st2_ = (expr);                                                            \
        CHECK_MSG(st2_ == (want) && strstr(nmf_last_error(), (needle)) != NULL,              \
                  "got %s (%s), want %s mentioning '%s'", nmf_strerror(st2_),                \
                  nmf_last_error(), nmf_strerror(want), (needle));                           \
    } while (0)

/* The call must fail (any status) with a non-empty detail. */
#define CHECK_REJECTS(expr)                                                                  \
    do {                                                                                     \
        nmf_clear_error();                                                                   \
        nmf_status st3_ = (expr);                                                            \
        CHECK_MSG(st3_ != NMF_OK && nmf_last_error()[0], "accepted (or no detail): %s",      \
                  nmf_strerror(st3_));                                                       \
    } while (0)

/* The model at src pruned by magnitude to dense + the n patterns, written to tmp/file as dtype. */
static inline const char *family_write_pruned(const char *file, const char *src,
                                              const nmf_pattern *pats, size_t n, nmf_dtype dtype) {
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(src, NULL, NULL, &c, &s));
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = c;
    const nmf_write_options o = {dtype};
    const char *p = tmp_path(file);
    CHECK_OK(nmf_family_prune(&fam, &c, &s, pats, n, 1, NULL));
    CHECK_OK(nmf_family_write(p, &fam, &o));
    nmf_family_free(&fam);
    nmf_tensors_free(&s);
    return p;
}

/* fam with one byte of tensor `victim` (of candidate `in`) flipped, at tmp/file; the candidates
 * whose entries refer to that payload get a bit mask in *users. */
static inline const char *family_corrupt_copy(const char *fam, const char *in, const char *victim, const char *file,
                                unsigned *users) {
    nmf_family f;
    nmf_family_layout lay;
    *users = 0;
    CHECK_OK(nmf_family_read_layout(fam, &f, &lay));
    const nmf_stored_tensor *hit = NULL;
    for (size_t i = 0; i < lay.count && !hit; i++)
        if (!strcmp(f.models[lay.items[i].model].name, in) &&
            !strcmp(f.models[lay.items[i].model].tensors.items[lay.items[i].tensor].name, victim))
            hit = &lay.items[i];
    CHECK_MSG(hit != NULL, "%s: no tensor %s in %s", fam, victim, in);
    const char *q = tmp_path(file);
    if (hit) {
        for (size_t i = 0; i < lay.count; i++)
            if (lay.items[i].payload == hit->payload) *users |= 1u << lay.items[i].model;
        size_t size;
        uint8_t *raw = read_bytes(fam, &size);
        raw[lay.data_offset + hit->offset + hit->size / 3] ^= 0x10;
        write_bytes(q, raw, size);
        free(raw);
    }
    nmf_family_layout_free(&lay);
    nmf_family_free(&f);
    return q;
}

/* a and b (files) hold the same candidates in the same order with the same tensors. */
static inline void same_families(const char *a, const char *b, const char *what) {
    nmf_family fa, fb;
    nmf_status sa = nmf_family_read(a, &fa);
    CHECK_MSG(sa == NMF_OK, "%s: %s", what, nmf_last_error());
    nmf_status sb = nmf_family_read(b, &fb);
    CHECK_MSG(sb == NMF_OK, "%s: %s", what, nmf_last_error());
    if (sa || sb) {
        if (!sa) nmf_family_free(&fa);
        if (!sb) nmf_family_free(&fb);
        return;
    }
    CHECK_MSG(fa.count == fb.count, "%s: %zu vs %zu candidates", what, fa.count, fb.count);
    for (size_t m = 0; m < fa.count && m < fb.count; m++)
        CHECK_MSG(!strcmp(fa.models[m].name, fb.models[m].name) &&
                      nmf_test_same_tensors(&fa.models[m].tensors, &fb.models[m].tensors, 1),
                  "%s: candidate %s differs", what, fa.models[m].name);
    nmf_family_free(&fa);
    nmf_family_free(&fb);
}

#endif
