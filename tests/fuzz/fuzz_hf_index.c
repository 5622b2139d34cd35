/* libFuzzer harness: a sharded Hugging Face folder's model.safetensors.index.json
 * (nmf_hf_weights_read). The input is the index; the folder beside it holds the two real shards
 * of tests/fixtures/hf/llama_gqa6x2_sharded (symlinks, as in the HF cache), so mutations reach the
 * checks that tie index entries to shard contents (missing, unlisted, duplicated, misplaced
 * tensors; shard names that leave the folder). A folder that reads has every tensor unpacked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "nmformer/io.h"

#ifndef NMF_FUZZ_HF_SHARDS
#error "NMF_FUZZ_HF_SHARDS: the folder with the sharded fixture (tests/fuzz/CMakeLists.txt)"
#endif

static char dir[] = "/tmp/nmf_fuzz_hf_XXXXXX";
static char index_path[sizeof dir + 64];

static void link_shard(const char *name) {
    char from[4096], to[sizeof dir + 64];
    snprintf(from, sizeof from, "%s/%s", NMF_FUZZ_HF_SHARDS, name);
    snprintf(to, sizeof to, "%s/%s", dir, name);
    if (symlink(from, to) != 0) {
        perror("fuzz_hf_index: symlink");
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init();
    if (!mkdtemp(dir)) {
        perror("fuzz_hf_index: mkdtemp");
        abort();
    }
    link_shard("model-00001-of-00002.safetensors");
    link_shard("model-00002-of-00002.safetensors");
    snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json", dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fopen(index_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    nmf_tensor_set set;
    nmf_dtype *dtypes = NULL;
    if (nmf_hf_weights_read(dir, &set, &dtypes) != NMF_OK) return 0;
    fuzz_exercise(NULL, &set);
    free(dtypes);
    nmf_tensors_free(&set);
    return 0;
}
