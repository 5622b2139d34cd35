/* The packed N:M matrix: per group, N kept values and their positions within the group. */
#include <math.h>
#include <string.h>

#include "nm_internal.h"

nmf_status nmf_nm_alloc(nmf_nm_matrix *a, size_t rows, size_t cols, nmf_pattern p, int pad) {
    memset(a, 0, sizeof *a);
    size_t groups, slots, values_bytes, total;
    nmf_status st = nmf_nm_groups(cols, p, pad, &groups);
    if (st != NMF_OK) return st;
    if (nmf_mul_overflow(rows, groups, &slots) || nmf_mul_overflow(slots, (size_t)p.n, &slots) ||
        nmf_mul_overflow(slots, sizeof(float), &values_bytes) ||
        nmf_add_overflow(values_bytes, 64, &values_bytes) ||
        nmf_add_overflow(values_bytes & ~(size_t)63, slots, &total))
        return nmf_error(NMF_ERR_NOMEM, "N:M matrix %zu x %zu too large", rows, cols);
    values_bytes &= ~(size_t)63; /* positions start on a cache line */
    uint8_t *mem = nmf_alloc(total, 1);
    if (!mem) return nmf_error(NMF_ERR_NOMEM, "N:M matrix %zu x %zu: out of memory", rows, cols);
    a->rows = rows;
    a->cols = cols;
    a->groups = groups;
    a->pattern = p;
    a->values = (float *)mem;
    a->pos = mem + values_bytes;
    a->storage_ = mem;
    for (size_t s = 0; s < slots; s++) a->pos[s] = (uint8_t)(s % (size_t)p.n);
    return NMF_OK;
}

void nmf_nm_free(nmf_nm_matrix *a) {
    if (!a) return;
    nmf_free(a->storage_);
    memset(a, 0, sizeof *a);
}

/* Writes one group's slots from a keep[] selection (exactly n set). */
static void store_group(float *values, uint8_t *pos, const uint8_t *keep, const float *row,
                        size_t cols, size_t g, int m) {
    int k = 0;
    for (int j = 0; j < m; j++) {
        if (!keep[j]) continue;
        size_t c = g * (size_t)m + (size_t)j;
        values[k] = c < cols ? row[c] : 0.0f;
        pos[k] = (uint8_t)j;
        k++;
    }
}

nmf_status nmf_nm_pack(nmf_nm_matrix *a, const float *w, size_t rows, size_t cols, nmf_pattern p,
                       int pad) {
    nmf_status st = nmf_nm_alloc(a, rows, cols, p, pad);
    if (st != NMF_OK) return st;
    float mag[NMF_NM_MAX_M];
    uint8_t keep[NMF_NM_MAX_M];
    size_t n = (size_t)p.n;
    for (size_t r = 0; r < rows; r++) {
        const float *row = w + r * cols;
        for (size_t g = 0; g < a->groups; g++) {
            if (!nm_group_magnitudes(mag, row, cols, g, p.m)) {
                nmf_nm_free(a);
                return nmf_error(NMF_ERR_NUMERIC, "NaN weight in row %zu, group %zu", r, g);
            }
            nm_group_topn(keep, mag, p.n, p.m);
            size_t slot = (r * a->groups + g) * n;
            store_group(a->values + slot, a->pos + slot, keep, row, cols, g, p.m);
        }
    }
    return NMF_OK;
}

nmf_status nmf_nm_pack_masked(nmf_nm_matrix *a, const float *w, const uint8_t *mask, size_t rows,
                              size_t cols, nmf_pattern p, int pad) {
    nmf_status st = nmf_nm_alloc(a, rows, cols, p, pad);
    if (st != NMF_OK) return st;
    uint8_t keep[NMF_NM_MAX_M];
    size_t n = (size_t)p.n;
    for (size_t r = 0; r < rows; r++) {
        for (size_t g = 0; g < a->groups; g++) {
            int count = 0;
            for (int j = 0; j < p.m; j++) {
                size_t c = g * (size_t)p.m + (size_t)j;
                keep[j] = c < cols && mask[r * cols + c];
                count += keep[j];
            }
            if (count > p.n) {
                nmf_nm_free(a);
                return nmf_error(NMF_ERR_INVALID_ARG,
                                 "mask keeps %d > N=%d weights in row %zu, group %zu", count, p.n,
                                 r, g);
            }
            size_t slot = (r * a->groups + g) * n;
            store_group(a->values + slot, a->pos + slot, keep, w + r * cols, cols, g, p.m);
            /* fill the missing slots with zeros at the lowest unselected positions, keeping
             * positions ascending: rebuild the slot list from a merged selection */
            if (count < p.n) {
                uint8_t sel[NMF_NM_MAX_M];
                memcpy(sel, keep, (size_t)p.m);
                for (int j = 0; j < p.m && count < p.n; j++)
                    if (!sel[j]) sel[j] = 2, count++; /* 2: filler, value 0 */
                int k = 0;
                for (int j = 0; j < p.m; j++) {
                    if (!sel[j]) continue;
                    size_t c = g * (size_t)p.m + (size_t)j;
                    a->values[slot + k] = sel[j] == 1 ? w[r * cols + c] : 0.0f;
                    a->pos[slot + k] = (uint8_t)j;
                    k++;
                }
            }
        }
    }
    return NMF_OK;
}

/* out[r * row_stride + c * col_stride] = W[r][c], zeros where the pattern dropped a weight */
static void unpack_strided(float *out, const nmf_nm_matrix *a, size_t row_stride, size_t col_stride) {
    size_t n = (size_t)a->pattern.n, m = (size_t)a->pattern.m;
    memset(out, 0, a->rows * a->cols * sizeof *out);
    for (size_t r = 0; r < a->rows; r++)
        for (size_t g = 0; g < a->groups; g++) {
            size_t slot = (r * a->groups + g) * n;
            for (size_t k = 0; k < n; k++) {
                size_t c = g * m + a->pos[slot + k];
                if (c < a->cols) out[r * row_stride + c * col_stride] = a->values[slot + k];
            }
        }
}

nmf_status nmf_nm_unpack(float *w, const nmf_nm_matrix *a) {
    unpack_strided(w, a, a->cols, 1);
    return NMF_OK;
}

nmf_status nmf_nm_unpack_transposed(float *wt, const nmf_nm_matrix *a) {
    unpack_strided(wt, a, 1, a->rows); /* W^T[c][r] */
    return NMF_OK;
}

nmf_status nmf_nm_validate(const nmf_nm_matrix *a) {
    if (!nmf_pattern_valid(a->pattern))
        return nmf_error(NMF_ERR_FORMAT, "invalid N:M pattern %d:%d", a->pattern.n, a->pattern.m);
    size_t groups;
    if (nmf_nm_groups(a->cols, a->pattern, 1, &groups) != NMF_OK || groups != a->groups)
        return nmf_error(NMF_ERR_FORMAT, "N:M matrix: %zu groups for %zu columns", a->groups,
                         a->cols);
    size_t n = (size_t)a->pattern.n, m = (size_t)a->pattern.m;
    for (size_t r = 0; r < a->rows; r++)
        for (size_t g = 0; g < a->groups; g++) {
            size_t slot = (r * a->groups + g) * n;
            for (size_t k = 0; k < n; k++) {
                uint8_t p = a->pos[slot + k];
                if (p >= m || (k > 0 && p <= a->pos[slot + k - 1]))
                    return nmf_error(NMF_ERR_FORMAT,
                                     "N:M positions not ascending within 0..%zu at row %zu group %zu",
                                     m - 1, r, g);
                if (g * m + p >= a->cols && a->values[slot + k] != 0.0f)
                    return nmf_error(NMF_ERR_FORMAT,
                                     "non-zero value in padding at row %zu group %zu", r, g);
            }
        }
    return NMF_OK;
}
