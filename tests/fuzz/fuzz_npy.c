/* libFuzzer harness: the .npy readers (float32 arrays and int64/int32 token ids); an array that
 * reads has shape and element count that agree, and every value is touched. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "nmformer/io.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size);
    nmf_id_array ids;
    if (nmf_npy_read_ids(path, &ids) == NMF_OK) {
        size_t numel = 1;
        for (int d = 0; d < ids.ndim; d++) numel *= (size_t)ids.shape[d];
        if (numel != ids.numel || ids.numel * 4 > size) abort(); /* shape and data disagree */
        volatile uint64_t isink = 0; /* unsigned: ids are any int64, their sum wraps */
        for (size_t i = 0; i < ids.numel; i++) isink += (uint64_t)ids.data[i];
        (void)isink;
        nmf_id_array_free(&ids);
    }
    nmf_array a;
    if (nmf_npy_read(path, &a) != NMF_OK) return 0;
    size_t numel = 1;
    for (int d = 0; d < a.ndim; d++) numel *= (size_t)a.shape[d];
    if (numel != a.numel || a.numel * sizeof(float) > size) abort(); /* shape and data disagree */
    volatile float sink = 0;
    for (size_t i = 0; i < a.numel; i++) sink += a.data[i];
    (void)sink;
    nmf_array_free(&a);
    return 0;
}
