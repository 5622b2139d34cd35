/* Minimal test helpers: each test file is one executable run by ctest; any failed CHECK makes
 * the executable exit 1 after reporting file:line and the expression. */
#ifndef NMF_TEST_H
#define NMF_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/core.h"

static int test_failures = 0;
static int test_checks = 0;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        test_checks++;                                                                  \
        if (!(cond)) {                                                                  \
            test_failures++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
        }                                                                               \
    } while (0)

#define CHECK_MSG(cond, ...)                                                            \
    do {                                                                                \
        test_checks++;                                                                  \
        if (!(cond)) {                                                                  \
            test_failures++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
        }                                                                               \
    } while (0)

/* Expects an nmf_status of NMF_OK; prints the library's detail otherwise. */
#define CHECK_OK(expr)                                                                  \
    do {                                                                                \
        nmf_status st_ = (expr);                                                        \
        test_checks++;                                                                  \
        if (st_ != NMF_OK) {                                                            \
            test_failures++;                                                            \
            fprintf(stderr, "%s:%d: %s -> %s (%s)\n", __FILE__, __LINE__, #expr,        \
                    nmf_strerror(st_), nmf_last_error());                               \
        }                                                                               \
    } while (0)

/* Expects a specific failing status. */
#define CHECK_STATUS(expr, want)                                                        \
    do {                                                                                \
        nmf_status st_ = (expr);                                                        \
        test_checks++;                                                                  \
        if (st_ != (want)) {                                                            \
            test_failures++;                                                            \
            fprintf(stderr, "%s:%d: %s -> %s, expected %s (%s)\n", __FILE__, __LINE__,  \
                    #expr, nmf_strerror(st_), nmf_strerror(want), nmf_last_error());    \
        }                                                                               \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                           \
    do {                                                                                \
        double a_ = (a), b_ = (b);                                                      \
        test_checks++;                                                                  \
        if (!(fabs(a_ - b_) <= (tol))) {                                                \
            test_failures++;                                                            \
            fprintf(stderr, "%s:%d: %s = %.9g, %s = %.9g, |diff| > %g\n", __FILE__,     \
                    __LINE__, #a, a_, #b, b_, (double)(tol));                           \
        }                                                                               \
    } while (0)

/* Call at the end of main: prints a summary line and returns the exit status. */
static inline int test_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
    if (test_checks == 0) {
        fprintf(stderr, "%s: no checks ran\n", name);
        return 1;
    }
    return test_failures ? 1 : 0;
}

/* Deterministic xorshift RNG for tests. */
/* 1 when a and b hold the same n floats bit for bit; else says where they differ (as `what`). */
static inline int test_same_bits(const float *a, const float *b, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float))) {
            fprintf(stderr, "  %s: element %zu: %.9g vs %.9g\n", what, i, a[i], b[i]);
            return 0;
        }
    return 1;
}

static inline unsigned long long test_rand_u64(unsigned long long *s) {
    unsigned long long x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}
static inline float test_rand_float(unsigned long long *s) { /* uniform [-1, 1) */
    return (float)((test_rand_u64(s) >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* Path of a file under the source tree (NMF_SOURCE_DIR), in a static buffer. */
static inline const char *test_source_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("NMF_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

#endif
