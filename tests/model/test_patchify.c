/* The one patch im2col (model/patchify.h) against its definition, in float and int16, on a
 * hand-checked case and on ragged sizes (odd channel counts, patch 1, patch = image). */
#include <stdint.h>

#include "model/patchify.h"
#include "test.h"

/* out[(b, gy, gx)][(c, ky, kx)] == img[b][c][gy*P + ky][gx*P + kx], element by element */
static int matches(const float *out, const float *img, int B, int C, int S, int P) {
    const int G = S / P, K = C * P * P;
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < G; gy++)
            for (int gx = 0; gx < G; gx++)
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < P; ky++)
                        for (int kx = 0; kx < P; kx++) {
                            size_t r = ((size_t)b * G + gy) * G + gx, k = ((size_t)c * P + ky) * P + kx;
                            size_t i = (((size_t)b * C + c) * S + gy * P + ky) * S + gx * P + kx;
                            if (out[r * K + k] != img[i]) return 0;
                        }
    return 1;
}

int main(void) {
    /* 1 image, 1 channel, 4x4, patch 2: the four 2x2 blocks in grid order */
    {
        float img[16], out[16];
        for (int i = 0; i < 16; i++) img[i] = (float)i;
        nmf_patchify(out, img, sizeof(float), 1, 1, 4, 2);
        const float want[16] = {0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15};
        CHECK(!memcmp(out, want, sizeof want));
    }
    const int cases[][4] = {{1, 1, 28, 7}, {2, 3, 12, 4}, {3, 5, 9, 3}, {2, 2, 5, 1}, {2, 3, 6, 6},
                            {4, 3, 64, 16}};
    unsigned long long seed = 11;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int B = cases[t][0], C = cases[t][1], S = cases[t][2], P = cases[t][3];
        const size_t n = (size_t)B * C * S * S;
        float *img = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
        int16_t *img16 = malloc(n * sizeof(int16_t)), *out16 = malloc(n * sizeof(int16_t));
        float *back = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            img[i] = test_rand_float(&seed);
            img16[i] = (int16_t)(test_rand_u64(&seed) & 0xffff);
        }
        nmf_patchify(out, img, sizeof(float), (size_t)B, C, S, P);
        CHECK(matches(out, img, B, C, S, P));
        /* int16: the same permutation (checked through float copies of the values) */
        nmf_patchify(out16, img16, sizeof(int16_t), (size_t)B, C, S, P);
        for (size_t i = 0; i < n; i++) img[i] = img16[i], back[i] = out16[i];
        CHECK(matches(back, img, B, C, S, P));
        free(img), free(out), free(img16), free(out16), free(back);
    }
    return test_finish("patchify");
}
