/* libFuzzer harness: the IDX (Fashion-MNIST) reader. The input holds both files: a 2-byte
 * little-endian length of the image file, the image file, then the label file (either may be
 * gzip or plain). A pair that reads is converted to a normalised batch. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "nmformer/data.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t split = (size_t)data[0] | (size_t)data[1] << 8;
    if (split > size - 2) split = size - 2;
    const char *images = fuzz_file(0, data + 2, split);
    const char *labels = fuzz_file(1, data + 2 + split, size - 2 - split);
    nmf_dataset ds;
    if (nmf_dataset_load_files(&ds, images, labels, 10) != NMF_OK) return 0;
    /* the header was checked against what the file holds: the images came from the input */
    if (ds.n * (size_t)ds.rows * (size_t)ds.cols > (size_t)1032 * size) abort();
    size_t count = ds.n < 4 ? ds.n : 4;
    float *x = malloc(count * (size_t)ds.rows * (size_t)ds.cols * sizeof *x);
    int labels_out[4];
    if (!x) abort();
    if (nmf_dataset_batch(x, labels_out, &ds, NULL, count, 0.5f, 0.25f) != NMF_OK) abort();
    for (size_t i = 0; i < count; i++)
        if (labels_out[i] < 0 || labels_out[i] >= 10) abort();
    free(x);
    nmf_dataset_free(&ds);
    return 0;
}
