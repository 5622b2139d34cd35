#include "nmformer/core.h"

#include <stdlib.h>
#include <string.h>

int nmf_mul_overflow(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out);
}

int nmf_add_overflow(size_t a, size_t b, size_t *out) {
    return __builtin_add_overflow(a, b, out);
}

void *nmf_alloc(size_t count, size_t size) {
    size_t bytes;
    if (nmf_mul_overflow(count, size, &bytes)) return NULL;
    if (bytes == 0) bytes = 1;
    /* round up to the alignment: aligned_alloc requires a multiple of it */
    if (nmf_add_overflow(bytes, 63, &bytes)) return NULL;
    bytes &= ~(size_t)63;
    void *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void nmf_free(void *p) { free(p); }
