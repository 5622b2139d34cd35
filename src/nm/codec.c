/* The index code: a group's kept subset {p0 < ... < p(N-1)} of {0..M-1} stored as its rank in the
 * combinatorial number system (colex order), rank = sum_k C(p_k, k+1), in ceil(log2 C(M,N)) bits.
 * That is the fewest bits that can tell C(M,N) subsets apart: 2:4 -> 3, 2:8 -> 5, 4:8 -> 7. */
#include <stdlib.h>
#include <string.h>

#include "nmformer/nm.h"

uint64_t nmf_binomial(int n, int k) {
    if (k < 0 || n < 0 || k > n) return 0;
    if (k > n - k) k = n - k;
    uint64_t r = 1;
    for (int i = 0; i < k; i++) r = r * (uint64_t)(n - i) / (uint64_t)(i + 1); /* exact each step */
    return r;
}

int nmf_nm_code_bits(nmf_pattern p) {
    uint64_t count = nmf_binomial(p.m, p.n);
    int bits = 0;
    while (((uint64_t)1 << bits) < count) bits++;
    return bits;
}

uint32_t nmf_nm_rank(const uint8_t *pos, nmf_pattern p) {
    uint64_t rank = 0;
    for (int k = 0; k < p.n; k++) rank += nmf_binomial(pos[k], k + 1);
    return (uint32_t)rank;
}

nmf_status nmf_nm_unrank(uint32_t rank, nmf_pattern p, uint8_t *pos) {
    if ((uint64_t)rank >= nmf_binomial(p.m, p.n))
        return nmf_error(NMF_ERR_FORMAT, "index code %u out of range for %d:%d (C=%llu)", rank,
                         p.n, p.m, (unsigned long long)nmf_binomial(p.m, p.n));
    uint64_t r = rank;
    int limit = p.m; /* p_k < limit */
    for (int k = p.n - 1; k >= 0; k--) {
        int c = limit - 1;
        while (nmf_binomial(c, k + 1) > r) c--; /* largest c with C(c,k+1) <= r; c >= k */
        pos[k] = (uint8_t)c;
        r -= nmf_binomial(c, k + 1);
        limit = c;
    }
    return NMF_OK;
}

size_t nmf_nm_code_row_bytes(size_t groups, nmf_pattern p) {
    return (groups * (size_t)nmf_nm_code_bits(p) + 7) / 8;
}

nmf_status nmf_nm_encode_positions(uint8_t *out, const nmf_nm_matrix *a) {
    int bits = nmf_nm_code_bits(a->pattern);
    size_t row_bytes = nmf_nm_code_row_bytes(a->groups, a->pattern), n = (size_t)a->pattern.n;
    memset(out, 0, a->rows * row_bytes);
    for (size_t r = 0; r < a->rows; r++) {
        uint8_t *row = out + r * row_bytes;
        for (size_t g = 0; g < a->groups; g++) {
            uint32_t code = nmf_nm_rank(a->pos + (r * a->groups + g) * n, a->pattern);
            size_t bit = g * (size_t)bits; /* LSB-first: bit i of the code at row bit (bit+i) */
            for (int i = 0; i < bits; i++, bit++)
                if (code >> i & 1u) row[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        }
    }
    return NMF_OK;
}

#define DECODE_TABLE_MAX_CODES 65536 /* 8:16 has 12,870 codes; at most 64 KiB x n of table */

nmf_status nmf_nm_decode_positions(nmf_nm_matrix *a, const uint8_t *codes, size_t size) {
    int bits = nmf_nm_code_bits(a->pattern);
    size_t row_bytes = nmf_nm_code_row_bytes(a->groups, a->pattern), n = (size_t)a->pattern.n;
    size_t want;
    if (nmf_mul_overflow(a->rows, row_bytes, &want) || want != size)
        return nmf_error(NMF_ERR_FORMAT, "index codes: %zu bytes, expected %zu rows x %zu", size,
                         a->rows, row_bytes);
    /* every code's positions unranked once (a billion-weight model has ~10^8 groups but, for
     * the usual patterns, a few dozen codes: 4:8 has 70); patterns with very many codes unrank
     * each group */
    const uint64_t count = nmf_binomial(a->pattern.m, a->pattern.n);
    uint8_t *table = count <= DECODE_TABLE_MAX_CODES ? malloc((size_t)count * n) : NULL;
    for (uint64_t c = 0; table && c < count; c++) (void)nmf_nm_unrank((uint32_t)c, a->pattern, table + c * n);
    nmf_status st = NMF_OK;
    for (size_t r = 0; st == NMF_OK && r < a->rows; r++) {
        const uint8_t *row = codes + r * row_bytes;
        for (size_t g = 0; g < a->groups; g++) {
            uint32_t code = 0;
            size_t bit = g * (size_t)bits;
            for (int i = 0; i < bits; i++, bit++) code |= (uint32_t)(row[bit >> 3] >> (bit & 7) & 1u) << i;
            uint8_t *pos = a->pos + (r * a->groups + g) * n;
            if (table && code < count) {
                memcpy(pos, table + (size_t)code * n, n);
                continue;
            }
            st = nmf_nm_unrank(code, a->pattern, pos); /* an out-of-range code: its error */
            if (st != NMF_OK) {
                st = nmf_error_context(st, "row %zu group %zu", r, g);
                break;
            }
        }
        for (size_t bit = a->groups * (size_t)bits; st == NMF_OK && bit < row_bytes * 8; bit++)
            if (row[bit >> 3] >> (bit & 7) & 1u)
                st = nmf_error(NMF_ERR_FORMAT, "index codes: row %zu has non-zero padding bits", r);
    }
    free(table);
    return st;
}
