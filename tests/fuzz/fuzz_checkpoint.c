/* libFuzzer harness: the training checkpoint reader, against a tiny model with a two-stage plan.
 * The harness rewrites the trailing CRC-32 itself so that mutations reach the fields behind it.
 * With NMF_FUZZ_SEED_OUT=path set, it writes a valid checkpoint of that model there and exits
 * (how tests/fuzz/corpus/checkpoint/ was made). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "nmformer/io.h"
#include "train/train_internal.h"

#define FINGERPRINT 0x6e6d66757a7aULL /* any value: the seed carries it */
#define STAGES 2

static nmf_vit_train *model;
static nmf_run_state rs;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init();
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.img_size = 4, c.patch = 2, c.dim = 8, c.depth = 1, c.heads = 2, c.mlp_ratio = 2.0f;
    c.num_classes = 3;
    if (nmf_vit_train_create(&model, &c, 2) != NMF_OK) abort();
    nmf_vit_train_init(model, 7);
    if (nmf_vit_train_set_pattern(model, (nmf_pattern){2, 4}) != NMF_OK) abort();
    const size_t P = model->num_params, MB = model->mask_total ? model->mask_total : 1;
    rs.fingerprint = FINGERPRINT;
    rs.num_stages = STAGES;
    rs.best_params = nmf_alloc(P, sizeof(float));
    rs.best_mask = nmf_alloc(MB, 1);
    for (int i = 0; i < STAGES; i++) {
        rs.cand[i].params = nmf_alloc(P, sizeof(float));
        rs.cand[i].mask = nmf_alloc(MB, 1);
    }
    const char *seed = getenv("NMF_FUZZ_SEED_OUT");
    if (seed) {
        rs.stage = 1, rs.step = 3, rs.ncand = 1, rs.global_step = 9;
        snprintf(rs.cand[0].name, sizeof rs.cand[0].name, "dense");
        if (nmf_checkpoint_save(seed, model, &rs) != NMF_OK) {
            fprintf(stderr, "%s\n", nmf_last_error());
            exit(1);
        }
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) abort();
    memcpy(copy, data, size);
    if (size >= 12) {
        uint32_t crc = nmf_crc32_update(0, copy, size - 4);
        memcpy(copy + size - 4, &crc, 4); /* the file stores it in host (little-endian) order */
    }
    (void)nmf_checkpoint_load(fuzz_file(0, copy, size), model, &rs);
    free(copy);
    return 0;
}
