/* The one random generator of the library (and its tests): splitmix64 (Steele, Lea, Flood
 * 2014), with the few distributions the code draws from. The whole state is one u64, so a
 * checkpoint stores it trivially and a stream is reproduced from (seed, counter) alone: callers
 * derive a stream's seed as seed ^ (odd constant * counter) and draw from it.
 *
 * trunc_normal has ONE meaning here: a standard normal truncated at +-2 (standard deviations) by
 * redrawing, scaled by the caller (w = std * nmf_rng_trunc_normal(&s)). timm's trunc_normal_(std)
 * cuts at absolute +-2, which for std 0.02 is 100 std, i.e. an untruncated normal in practice;
 * truncating at 2 std keeps the initial weights in the same range and avoids outliers. */
#ifndef NMF_CORE_RNG_H
#define NMF_CORE_RNG_H

#include <math.h>
#include <stdint.h>

/* next 64 random bits */
static inline uint64_t nmf_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) on a grid of 2^-24 (every value exact in float) */
static inline float nmf_rng_uniform(uint64_t *s) {
    return (float)(nmf_rng_next(s) >> 40) * (1.0f / 16777216.0f);
}

/* uniform integer in [0, n), n > 0 (the modulo bias, < n / 2^64, is irrelevant here) */
static inline uint64_t nmf_rng_below(uint64_t *s, uint64_t n) { return nmf_rng_next(s) % n; }

/* standard normal by Box-Muller (the cosine branch; u1 in (0, 1] so log never sees 0) */
static inline double nmf_rng_normal(uint64_t *s) {
    double u1 = ((double)(nmf_rng_next(s) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(nmf_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* standard normal truncated to [-2, 2] by redrawing (see the top of this file) */
static inline float nmf_rng_trunc_normal(uint64_t *s) {
    for (;;) {
        double z = nmf_rng_normal(s);
        if (z >= -2.0 && z <= 2.0) return (float)z;
    }
}

#endif
