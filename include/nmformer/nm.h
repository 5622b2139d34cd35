/* N:M sparsity: patterns, masks, the packed in-memory matrix, and the combinatorial index code.
 *
 * A weight W is [rows = out][cols = in]. Each row is split into groups of M consecutive columns;
 * an N:M tensor has at most N non-zeros per group. The packed form keeps, per group, the N kept
 * values and their positions within the group (ascending). */
#ifndef NMFORMER_NM_H
#define NMFORMER_NM_H

#include "nmformer/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NMF_NM_MAX_M 32

typedef struct {
    int n, m; /* keep n of every m; 1 <= n < m <= 32 */
} nmf_pattern;

NMF_API int nmf_pattern_valid(nmf_pattern p);
/* Parses "2:8"; rejects anything else (including 0:4, 4:4, 1:33, "2:8x") with a clear detail. */
NMF_API nmf_status nmf_pattern_parse(const char *text, nmf_pattern *out);
/* Writes "2:8" into buf (at least 8 bytes). */
NMF_API void nmf_pattern_format(nmf_pattern p, char *buf, size_t size);

/* Number of groups per row: cols/M, or ceil(cols/M) when pad != 0 (the tail is zero padded).
 * Fails with NMF_ERR_SHAPE when cols % M != 0 and pad == 0. */
NMF_API nmf_status nmf_nm_groups(size_t cols, nmf_pattern p, int pad, size_t *groups);

/* mask[r*cols+c] = 1 for kept weights: per group the N of largest |w|, ties to the lower index.
 * NaN weights are an error (NMF_ERR_NUMERIC). */
NMF_API nmf_status nmf_nm_mask(uint8_t *mask, const float *w, size_t rows, size_t cols, nmf_pattern p,
                       int pad);
/* *is_nm = 1 when every group has at most N non-zeros. */
NMF_API nmf_status nmf_nm_check(const float *w, size_t rows, size_t cols, nmf_pattern p, int pad,
                        int *is_nm);
/* w[i] = 0 where the magnitude mask drops it (in place). */
NMF_API nmf_status nmf_nm_prune(float *w, size_t rows, size_t cols, nmf_pattern p, int pad);

/* Packed N:M matrix. One allocation holds both arrays.
 *   values[r][g*N + k]  f32 value of the k-th kept weight of group g in row r
 *   pos   [r][g*N + k]  its column within the group, 0..M-1, strictly ascending in k
 * Dense column = g*M + pos. Padding columns (>= cols) always hold value 0. */
typedef struct {
    size_t rows, cols;   /* dense shape [rows][cols] */
    size_t groups;       /* groups per row */
    nmf_pattern pattern;
    float *values;       /* [rows][groups*n] */
    uint8_t *pos;        /* [rows][groups*n] */
    void *storage_;      /* owning allocation */
} nmf_nm_matrix;

/* Allocates an empty (all values 0, positions 0..N-1) packed matrix. */
NMF_API nmf_status nmf_nm_alloc(nmf_nm_matrix *a, size_t rows, size_t cols, nmf_pattern p, int pad);
/* Packs dense w, keeping per group the magnitude top-N (so a tensor that already is N:M packs
 * exactly). */
NMF_API nmf_status nmf_nm_pack(nmf_nm_matrix *a, const float *w, size_t rows, size_t cols, nmf_pattern p,
                       int pad);
/* Packs w keeping the entries where mask is set (at most N per group, else NMF_ERR_INVALID_ARG).
 * A group with fewer than N set fills its remaining slots with zeros at the lowest unselected
 * positions, so the packed form always has exactly N slots per group. */
NMF_API nmf_status nmf_nm_pack_masked(nmf_nm_matrix *a, const float *w, const uint8_t *mask, size_t rows,
                              size_t cols, nmf_pattern p, int pad);
/* w = dense form, [rows][cols], zeros where pruned. */
NMF_API nmf_status nmf_nm_unpack(float *w, const nmf_nm_matrix *a);
/* wt = the transpose of the dense form, [cols][rows]: a weight stored [in, out] (GPT-2's Conv1D)
 * whose (out, in) view a holds. */
NMF_API nmf_status nmf_nm_unpack_transposed(float *wt, const nmf_nm_matrix *a);
/* Checks positions (in range, ascending) and padding; used on anything read from a file. */
NMF_API nmf_status nmf_nm_validate(const nmf_nm_matrix *a);
NMF_API void nmf_nm_free(nmf_nm_matrix *a);

/* ---- Index code: a group's kept subset as its combinatorial rank ---------------------------
 * Subsets {p0 < p1 < ... < p(N-1)} of {0..M-1} are ranked in colex order:
 *   rank = sum_k C(p_k, k+1)            (combinatorial number system)
 * rank < C(M,N) <= C(32,16) = 601080390 < 2^30. Stored in ceil(log2 C(M,N)) bits. */
NMF_API uint64_t nmf_binomial(int n, int k);
NMF_API int nmf_nm_code_bits(nmf_pattern p); /* ceil(log2 C(M,N)) */
NMF_API uint32_t nmf_nm_rank(const uint8_t *pos, nmf_pattern p);
/* Inverse of nmf_nm_rank; fails (NMF_ERR_FORMAT) when rank >= C(M,N). */
NMF_API nmf_status nmf_nm_unrank(uint32_t rank, nmf_pattern p, uint8_t *pos);

/* Bytes of the bit-packed codes of one matrix: each row starts on a byte boundary,
 * row_bytes = ceil(groups*bits/8). */
NMF_API size_t nmf_nm_code_row_bytes(size_t groups, nmf_pattern p);
/* Encodes positions of all rows into out (rows*row_bytes bytes; LSB-first bit order). */
NMF_API nmf_status nmf_nm_encode_positions(uint8_t *out, const nmf_nm_matrix *a);
/* Decodes codes into a->pos (a already allocated with matching shape/pattern). Rejects ranks
 * out of range and non-zero padding bits at the end of a row. */
NMF_API nmf_status nmf_nm_decode_positions(nmf_nm_matrix *a, const uint8_t *codes, size_t size);

#ifdef __cplusplus
}
#endif
#endif
