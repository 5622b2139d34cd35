/* Index codec: exhaustive for every (N, M) with M <= 8, random up to M = 32. */
#include "nmformer/nm.h"
#include "test.h"

static void subset_from_bits(uint32_t bits, int m, uint8_t *pos) {
    int k = 0;
    for (int j = 0; j < m; j++)
        if (bits >> j & 1u) pos[k++] = (uint8_t)j;
}

static void test_exhaustive_small(void) {
    for (int m = 2; m <= 8; m++)
        for (int n = 1; n < m; n++) {
            nmf_pattern p = {n, m};
            uint64_t count = nmf_binomial(m, n);
            uint8_t seen[256] = {0};
            uint64_t subsets = 0;
            for (uint32_t bits = 0; bits < (1u << m); bits++) {
                if (__builtin_popcount(bits) != n) continue;
                uint8_t pos[8], back[8];
                subset_from_bits(bits, m, pos);
                uint32_t r = nmf_nm_rank(pos, p);
                CHECK_MSG(r < count, "%d:%d rank %u >= %llu", n, m, r, (unsigned long long)count);
                if (r >= count) continue;
                CHECK_MSG(!seen[r], "%d:%d rank %u produced twice", n, m, r);
                seen[r] = 1;
                CHECK_OK(nmf_nm_unrank(r, p, back));
                CHECK(memcmp(pos, back, (size_t)n) == 0);
                subsets++;
            }
            CHECK(subsets == count); /* rank is a bijection onto 0..C-1 */
            CHECK((1ull << nmf_nm_code_bits(p)) >= count);
            CHECK((1ull << (nmf_nm_code_bits(p) - 1)) < count); /* fewest bits */
            uint8_t tmp[8];
            if ((1ull << nmf_nm_code_bits(p)) > count)
                CHECK_STATUS(nmf_nm_unrank((uint32_t)count, p, tmp), NMF_ERR_FORMAT);
        }
}

static void test_known_bits(void) {
    CHECK(nmf_nm_code_bits((nmf_pattern){2, 4}) == 3);
    CHECK(nmf_nm_code_bits((nmf_pattern){2, 8}) == 5);
    CHECK(nmf_nm_code_bits((nmf_pattern){1, 8}) == 3);
    CHECK(nmf_nm_code_bits((nmf_pattern){4, 8}) == 7);
    CHECK(nmf_nm_code_bits((nmf_pattern){1, 4}) == 2);
    CHECK(nmf_nm_code_bits((nmf_pattern){16, 32}) == 30);
    CHECK(nmf_binomial(32, 16) == 601080390ull);
    uint8_t first[3] = {0, 1, 2}, last[3] = {29, 30, 31};
    CHECK(nmf_nm_rank(first, (nmf_pattern){3, 32}) == 0);
    CHECK(nmf_nm_rank(last, (nmf_pattern){3, 32}) == nmf_binomial(32, 3) - 1);
}

static void test_random_large(void) {
    unsigned long long s = 0x9e3779b97f4a7c15ull;
    for (int m = 9; m <= 32; m++)
        for (int n = 1; n < m; n++) {
            nmf_pattern p = {n, m};
            for (int trial = 0; trial < 40; trial++) {
                uint8_t chosen[32] = {0}, pos[32], back[32];
                for (int k = 0; k < n;) { /* random n-subset */
                    int j = (int)(test_rand_u64(&s) % (unsigned)m);
                    if (!chosen[j]) chosen[j] = 1, k++;
                }
                int k = 0;
                for (int j = 0; j < m; j++)
                    if (chosen[j]) pos[k++] = (uint8_t)j;
                uint32_t r = nmf_nm_rank(pos, p);
                CHECK(r < nmf_binomial(m, n));
                CHECK_OK(nmf_nm_unrank(r, p, back));
                CHECK(memcmp(pos, back, (size_t)n) == 0);
            }
        }
}

/* Bit-packed rows: random matrices for every pattern, with ragged columns (padding). */
static void test_encode_decode(void) {
    unsigned long long s = 12345;
    for (int m = 2; m <= 32; m++)
        for (int n = 1; n < m; n += (m > 12 ? 3 : 1)) {
            nmf_pattern p = {n, m};
            size_t rows = 3, cols = (size_t)m * 5 + (m > 2 ? 1 : 0);
            float *w = nmf_alloc(rows * cols, sizeof *w);
            for (size_t i = 0; i < rows * cols; i++) w[i] = test_rand_float(&s);
            nmf_nm_matrix a, b;
            CHECK_OK(nmf_nm_pack(&a, w, rows, cols, p, 1));
            size_t bytes = rows * nmf_nm_code_row_bytes(a.groups, p);
            uint8_t *codes = nmf_alloc(bytes, 1);
            CHECK_OK(nmf_nm_encode_positions(codes, &a));
            CHECK_OK(nmf_nm_alloc(&b, rows, cols, p, 1));
            CHECK_OK(nmf_nm_decode_positions(&b, codes, bytes));
            CHECK(memcmp(a.pos, b.pos, rows * a.groups * (size_t)n) == 0);
            CHECK_STATUS(nmf_nm_decode_positions(&b, codes, bytes - 1), NMF_ERR_FORMAT);
            /* a set padding bit at the end of a row is rejected */
            size_t used_bits = a.groups * (size_t)nmf_nm_code_bits(p);
            if (used_bits % 8) {
                codes[nmf_nm_code_row_bytes(a.groups, p) - 1] |= 0x80;
                CHECK_STATUS(nmf_nm_decode_positions(&b, codes, bytes), NMF_ERR_FORMAT);
            }
            nmf_free(codes);
            nmf_nm_free(&a);
            nmf_nm_free(&b);
            nmf_free(w);
        }
}

int main(void) {
    test_exhaustive_small();
    test_known_bits();
    test_random_large();
    test_encode_decode();
    return test_finish("nm_codec");
}
