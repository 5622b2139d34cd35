/* Small deterministic RNG for training (init, shuffling, augmentation): splitmix64. The whole
 * state is one u64, so checkpoints store it trivially. */
#ifndef NMF_TRAIN_RNG_H
#define NMF_TRAIN_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t nmf_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) with 24 bits */
static inline float nmf_rng_uniform(uint64_t *s) {
    return (float)(nmf_rng_next(s) >> 40) * (1.0f / 16777216.0f);
}

/* uniform integer in [0, n), n > 0 (tiny modulo bias is irrelevant here) */
static inline uint64_t nmf_rng_below(uint64_t *s, uint64_t n) { return nmf_rng_next(s) % n; }

/* standard normal (Box-Muller), truncated to [-2, 2] by redrawing */
static inline float nmf_rng_trunc_normal(uint64_t *s) {
    for (;;) {
        double u1 = ((double)(nmf_rng_next(s) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
        double u2 = (double)(nmf_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
        double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        if (z >= -2.0 && z <= 2.0) return (float)z;
    }
}

#endif
