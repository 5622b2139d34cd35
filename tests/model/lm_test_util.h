/* Shared by the token-model tests: opening a fixture of tests/fixtures/hf (model, inputs,
 * reference outputs) and comparing outputs. */
#ifndef NMF_LM_TEST_UTIL_H
#define NMF_LM_TEST_UTIL_H

#include <unistd.h>

#include "nmformer/desc.h"
#include "nmformer/io.h"
#include "nmformer/lm.h"
#include "test.h"

static inline const char *fixture_path(const char *name, const char *file) {
    static char bufs[4][4300];
    static int next;
    char *b = bufs[next++ & 3];
    snprintf(b, sizeof bufs[0], "%.4095s/%.64s%s%.64s", test_source_path("tests/fixtures/hf"), name,
             file ? "/" : "", file ? file : "");
    return b;
}

/* ids (int64) of a fixture file; numel 0 when the file is absent */
static inline nmf_id_array fixture_ids(const char *name, const char *file) {
    nmf_id_array a;
    memset(&a, 0, sizeof a);
    if (access(fixture_path(name, file), R_OK) == 0) CHECK_OK(nmf_npy_read_ids(fixture_path(name, file), &a));
    return a;
}
static inline nmf_array fixture_floats(const char *name, const char *file) {
    nmf_array a;
    memset(&a, 0, sizeof a);
    if (access(fixture_path(name, file), R_OK) == 0) CHECK_OK(nmf_npy_read(fixture_path(name, file), &a));
    return a;
}

/* max |a - b| / max |b| */
static inline double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mx) mx = fabs(b[i]);
    }
    return mx > 0 ? e / mx : e;
}

#endif
