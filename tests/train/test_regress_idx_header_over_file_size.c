/* Regression (issue 15): an IDX header claiming 1,000,000 x 28 x 28 images in a 24-byte file made
 * `eval` allocate and zero ~770 MB before it reported "truncated": each dimension was checked,
 * never their product against what the file can hold. Now the claim is compared with the file
 * size (times deflate's largest expansion for gzip) before anything is allocated. */
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "nmformer/data.h"
#include "test.h"

static void put_be32(uint8_t *b, uint32_t v) {
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static void write_plain(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

static void write_gz(const char *path, const uint8_t *data, size_t size) {
    gzFile f = gzopen(path, "wb9");
    if (!f || gzwrite(f, data, (unsigned)size) != (int)size) abort();
    gzclose(f);
}

enum { CLAIMED = 1000000 };

/* Loads the pair in a child and returns the child's peak resident size in MiB (-1 on failure);
 * *child_status receives the loader's status (the child exits with it). */
static long load_in_child(const char *img, const char *lab, int *child_status) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        nmf_dataset ds;
        nmf_status st = nmf_dataset_load_files(&ds, img, lab, 10);
        if (st == NMF_OK) nmf_dataset_free(&ds);
        _exit(st == NMF_OK ? 0 : (int)st < 0 ? -(int)st : (int)st);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status)) return -1;
    *child_status = WEXITSTATUS(status);
    return ru.ru_maxrss / 1024;
}

int main(void) {
    char dir[] = "/tmp/nmf_regress_idx_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char img[256], imggz[256], lab[256], cmd[512];
    snprintf(img, sizeof img, "%s/img", dir);
    snprintf(imggz, sizeof imggz, "%s/img.gz", dir);
    snprintf(lab, sizeof lab, "%s/lab.gz", dir);

    /* 1,000,000 real labels (they compress to a few KB) and the 24-byte lying image file */
    uint8_t *labels = calloc(8 + CLAIMED, 1);
    CHECK(labels != NULL);
    if (!labels) return test_finish("regress_idx_header_over_file_size");
    labels[2] = 0x08;
    labels[3] = 1;
    put_be32(labels + 4, CLAIMED);
    write_gz(lab, labels, 8 + CLAIMED);
    free(labels);
    uint8_t head[24] = {0, 0, 0x08, 3};
    put_be32(head + 4, CLAIMED);
    put_be32(head + 8, 28);
    put_be32(head + 12, 28);
    write_plain(img, head, sizeof head);
    write_gz(imggz, head, sizeof head);

    const char *paths[2] = {img, imggz};
    for (int k = 0; k < 2; k++) {
        nmf_dataset ds;
        CHECK_STATUS(nmf_dataset_load_files(&ds, paths[k], lab, 10), NMF_ERR_FORMAT);
        CHECK_MSG(strstr(nmf_last_error(), "can hold at most") != NULL, "%s", nmf_last_error());
        /* refused before allocating: the child's peak memory stays far below the 784 MB claimed
         * (sanitizer builds carry their own shadow memory, hence the generous bound) */
        int child = -1;
        long peak_mib = load_in_child(paths[k], lab, &child);
        CHECK_MSG(peak_mib >= 0 && peak_mib < 300, "%s: child peak %ld MiB", paths[k], peak_mib);
        CHECK(child != 0);
    }

    /* the limit is not too tight: a file holding what its header claims still loads */
    uint8_t small[16 + 2 * 2 * 3] = {0, 0, 0x08, 3};
    put_be32(small + 4, 2);
    put_be32(small + 8, 2);
    put_be32(small + 12, 3);
    write_plain(img, small, sizeof small);
    uint8_t lab2[8 + 2] = {0, 0, 0x08, 1, 0, 0, 0, 2, 1, 2};
    write_plain(lab, lab2, sizeof lab2);
    nmf_dataset ds;
    CHECK_OK(nmf_dataset_load_files(&ds, img, lab, 10));
    CHECK(ds.n == 2 && ds.labels && ds.labels[1] == 2);
    nmf_dataset_free(&ds);
    /* and a label file claiming more than it can hold is refused the same way */
    put_be32(lab2 + 4, 3);
    write_plain(lab, lab2, sizeof lab2);
    put_be32(small + 4, 3);
    write_plain(img, small, sizeof small);
    CHECK_STATUS(nmf_dataset_load_files(&ds, img, lab, 10), NMF_ERR_FORMAT);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_finish("regress_idx_header_over_file_size");
}
