/* The one generator (core/rng.h): splitmix64's published sequence, and the distributions'
 * ranges and moments. */
#include "core/rng.h"
#include "test.h"

int main(void) {
    /* splitmix64 from seed 0 (Vigna's reference splitmix64.c) */
    uint64_t s = 0;
    CHECK(nmf_rng_next(&s) == 0xE220A8397B1DCDAFull);
    CHECK(nmf_rng_next(&s) == 0x6E789E6AA1B965F4ull);
    CHECK(nmf_rng_next(&s) == 0x06C45D188009454Full);

    const int n = 200000;
    double sum = 0, sum2 = 0, tsum = 0, tsum2 = 0;
    int below_ok = 1, uniform_ok = 1, trunc_ok = 1, hits[7] = {0};
    s = 12345;
    for (int i = 0; i < n; i++) {
        float u = nmf_rng_uniform(&s);
        uniform_ok &= u >= 0.0f && u < 1.0f && u * 16777216.0f == (float)(int)(u * 16777216.0f);
        uint64_t k = nmf_rng_below(&s, 7);
        below_ok &= k < 7;
        if (k < 7) hits[k]++;
        double z = nmf_rng_normal(&s);
        sum += z, sum2 += z * z;
        float t = nmf_rng_trunc_normal(&s);
        trunc_ok &= t >= -2.0f && t <= 2.0f;
        tsum += t, tsum2 += (double)t * t;
    }
    CHECK(uniform_ok && below_ok && trunc_ok);
    for (int k = 0; k < 7; k++) CHECK(fabs(hits[k] - n / 7.0) < 5 * sqrt(n / 7.0));
    /* N(0, 1): mean within 5 standard errors, variance within 2% */
    CHECK(fabs(sum / n) < 5.0 / sqrt(n));
    CHECK(fabs(sum2 / n - 1.0) < 0.02);
    /* truncated at +-2: mean 0, variance 1 - 2*2*phi(2)/(2*Phi(2)-1) = 0.7737 */
    CHECK(fabs(tsum / n) < 5.0 / sqrt(n));
    CHECK(fabs(tsum2 / n - 0.7737) < 0.02);

    /* same seed, same stream; the state is the whole story */
    uint64_t a = 99, b = 99;
    for (int i = 0; i < 10; i++) CHECK(nmf_rng_next(&a) == nmf_rng_next(&b));
    CHECK(a == b);
    return test_finish("rng");
}
