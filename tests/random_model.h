/* A model's tensors with random weights, for tests that need a large source without a fixture
 * file (the streaming and memory-budget tests). */
#ifndef NMF_TESTS_RANDOM_MODEL_H
#define NMF_TESTS_RANDOM_MODEL_H

#include <stdlib.h>

#include "nmformer/desc.h"
#include "nmformer/io.h"
#include "test.h"

/* A ViT of width 256, 4 heads, depth blocks of MLP ratio mlp_ratio (the default config
 * otherwise): a source of tens of MB for the memory-budget tests. */
static inline nmf_model_config test_budget_vit(int depth, float mlp_ratio) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.dim = 256;
    c.depth = depth;
    c.heads = 4;
    c.mlp_ratio = mlp_ratio;
    CHECK_OK(nmf_model_config_validate(&c));
    return c;
}

/* s = every tensor of config c (nmf_model_describe), values 0.05 * uniform[-1, 1) from seed, and
 * c in the metadata as the loaders want it; bytes / largest: the f32 bytes of all the tensors and
 * of the largest one (either may be NULL). */
static inline void test_random_model(nmf_tensor_set *s, const nmf_model_config *c,
                                     unsigned long long seed, size_t *bytes, size_t *largest) {
    nmf_model_desc d;
    nmf_tensors_init(s);
    CHECK_OK(nmf_model_describe(&d, c));
    size_t all = 0, big = 0;
    for (size_t i = 0; i < d.count; i++) {
        nmf_tensor *t = NULL;
        CHECK_OK(nmf_tensors_add_dense(s, d.params[i].name, d.params[i].ndim, d.params[i].shape, NULL, &t));
        for (size_t j = 0; t && j < t->numel; j++) t->data[j] = 0.05f * test_rand_float(&seed);
        const size_t b = d.params[i].numel * sizeof(float);
        all += b;
        if (b > big) big = b;
    }
    nmf_model_desc_free(&d);
    char *json = nmf_model_config_to_json(c);
    CHECK_OK(nmf_tensors_set_meta(s, NMF_CONFIG_META_KEY, json));
    free(json);
    if (bytes) *bytes = all;
    if (largest) *largest = big;
}

#endif
