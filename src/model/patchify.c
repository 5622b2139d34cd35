#include "model/patchify.h"

#include <string.h>

void nmf_patchify(void *out, const void *images, size_t elem_size, size_t B, int C, int S, int P) {
    const size_t G = (size_t)(S / P), NP = G * G, p = (size_t)P, s = (size_t)S, c_n = (size_t)C;
    const size_t row_bytes = p * elem_size, patch_elems = c_n * p * p;
    const long rows = (long)(B * NP);
    char *o = out;
    const char *img = images;
#pragma omp parallel for schedule(static) if ((size_t)rows * patch_elems >= 65536)
    for (long r = 0; r < rows; r++) {
        size_t b = (size_t)r / NP, gy = (size_t)r % NP / G, gx = (size_t)r % G;
        char *dst = o + (size_t)r * patch_elems * elem_size;
        for (size_t c = 0; c < c_n; c++)
            for (size_t ky = 0; ky < p; ky++)
                memcpy(dst + (c * p + ky) * row_bytes,
                       img + (((b * c_n + c) * s + gy * p + ky) * s + gx * p) * elem_size, row_bytes);
    }
}
