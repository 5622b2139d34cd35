/* What the gradient tests (test_grad.c: ViT, test_lm_grad.c: byte-level GPT-2) share: reading
 * the PyTorch fixture of tests/ref/make_*train_fixtures.py and comparing against it. */
#ifndef NMF_TESTS_GRAD_FIXTURE_H
#define NMF_TESTS_GRAD_FIXTURE_H

#include <math.h>
#include <string.h>

#include "nmformer/io.h"
#include "nmformer/train.h"
#include "test.h"

static inline const nmf_tensor *fixture_get(const nmf_tensor_set *fx, const char *name) {
    const nmf_tensor *t = nmf_tensors_find(fx, name);
    CHECK_MSG(t != NULL, "fixture tensor %s missing", name);
    return t;
}

/* The fixture's "params.*" tensors, under the model's own names, into m. */
static inline nmf_status fixture_load_params(const nmf_tensor_set *fx, nmf_vit_train *m) {
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    nmf_status st = NMF_OK;
    for (size_t i = 0; i < fx->count && st == NMF_OK; i++) {
        const nmf_tensor *t = &fx->items[i];
        if (strncmp(t->name, "params.", 7)) continue;
        st = nmf_tensors_add_dense(&s, t->name + 7, t->ndim, t->shape, t->data, NULL);
    }
    if (st == NMF_OK) st = nmf_vit_train_import(m, &s);
    nmf_tensors_free(&s);
    return st;
}

static inline double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

#endif
