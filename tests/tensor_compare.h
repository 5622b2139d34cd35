/* Comparing two tensor sets, for the tests and the fuzz harnesses (no test.h: it must not
 * depend on the test runner). */
#ifndef NMF_TESTS_TENSOR_COMPARE_H
#define NMF_TESTS_TENSOR_COMPARE_H

#include <stdlib.h>
#include <string.h>

#include "nmformer/tensor.h"

/* 1 when a and b hold the same tensors in the same order: names, shapes, storage (N:M pattern,
 * orientation, and the stored dtype when with_dtype) and values bit for bit. */
static inline int nmf_test_same_tensors(const nmf_tensor_set *a, const nmf_tensor_set *b, int with_dtype) {
    if (a->count != b->count) return 0;
    for (size_t i = 0; i < a->count; i++) {
        const nmf_tensor *x = &a->items[i], *y = &b->items[i];
        if (strcmp(x->name, y->name) || x->ndim != y->ndim || x->numel != y->numel ||
            memcmp(x->shape, y->shape, sizeof x->shape) || !x->nm != !y->nm ||
            x->nm_transposed != y->nm_transposed || (with_dtype && x->stored_dtype != y->stored_dtype) ||
            (x->nm && (x->nm->pattern.n != y->nm->pattern.n || x->nm->pattern.m != y->nm->pattern.m)))
            return 0;
        float *u = malloc(x->numel * sizeof *u), *v = malloc(x->numel * sizeof *v);
        int same = u && v && nmf_tensor_dense(x, u) == NMF_OK && nmf_tensor_dense(y, v) == NMF_OK &&
                   !memcmp(u, v, x->numel * sizeof *u);
        free(u);
        free(v);
        if (!same) return 0;
    }
    return 1;
}

#endif
