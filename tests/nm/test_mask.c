/* Masks, packing, unpacking, validation. */
#include "nmformer/nm.h"
#include "test.h"

/* Independent reference: sort indices of a group by (|w| desc, index asc), keep first n. */
static void ref_keep(uint8_t *keep, const float *g, int n, int m) {
    int idx[32];
    for (int j = 0; j < m; j++) idx[j] = j, keep[j] = 0;
    for (int i = 1; i < m; i++) /* insertion sort: stable, so ties keep the lower index first */
        for (int j = i; j > 0 && fabsf(g[idx[j]]) > fabsf(g[idx[j - 1]]); j--) {
            int t = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = t;
        }
    for (int k = 0; k < n; k++) keep[idx[k]] = 1;
}

static void test_mask_vs_reference(void) {
    unsigned long long s = 7;
    int pats[][2] = {{2, 4}, {1, 4}, {4, 8}, {2, 8}, {1, 8}, {1, 16}, {2, 16}, {3, 32}, {5, 7}};
    for (size_t pi = 0; pi < sizeof pats / sizeof pats[0]; pi++) {
        nmf_pattern p = {pats[pi][0], pats[pi][1]};
        size_t rows = 5, cols = (size_t)p.m * 4;
        float *w = malloc(rows * cols * sizeof *w), *pruned = malloc(rows * cols * sizeof *w),
              *back = malloc(rows * cols * sizeof *w);
        uint8_t *mask = malloc(rows * cols);
        for (size_t i = 0; i < rows * cols; i++) /* quantised values -> plenty of ties */
            w[i] = (float)((int)(test_rand_u64(&s) % 7) - 3);
        CHECK_OK(nmf_nm_mask(mask, w, rows, cols, p, 0));
        int bad = 0;
        for (size_t r = 0; r < rows; r++)
            for (size_t g = 0; g < cols / (size_t)p.m; g++) {
                uint8_t keep[32];
                ref_keep(keep, w + r * cols + g * (size_t)p.m, p.n, p.m);
                bad += memcmp(keep, mask + r * cols + g * (size_t)p.m, (size_t)p.m) != 0;
            }
        CHECK_MSG(bad == 0, "%d:%d: %d groups differ from reference", p.n, p.m, bad);
        memcpy(pruned, w, rows * cols * sizeof *w);
        CHECK_OK(nmf_nm_prune(pruned, rows, cols, p, 0));
        for (size_t i = 0; i < rows * cols; i++) bad += pruned[i] != (mask[i] ? w[i] : 0.0f);
        CHECK(bad == 0);
        int is_nm = -1;
        CHECK_OK(nmf_nm_check(pruned, rows, cols, p, 0, &is_nm));
        CHECK(is_nm == 1);
        /* pack -> unpack reproduces the pruned tensor; packing the pruned tensor is identical */
        nmf_nm_matrix a, b;
        CHECK_OK(nmf_nm_pack(&a, w, rows, cols, p, 0));
        CHECK_OK(nmf_nm_validate(&a));
        CHECK_OK(nmf_nm_unpack(back, &a));
        CHECK(memcmp(back, pruned, rows * cols * sizeof *w) == 0);
        CHECK_OK(nmf_nm_pack_masked(&b, w, mask, rows, cols, p, 0));
        CHECK(memcmp(a.pos, b.pos, rows * a.groups * (size_t)p.n) == 0);
        CHECK(memcmp(a.values, b.values, rows * a.groups * (size_t)p.n * sizeof(float)) == 0);
        nmf_nm_free(&a);
        nmf_nm_free(&b);
        free(w); free(pruned); free(back); free(mask);
    }
}

static void test_ties_and_errors(void) {
    float w[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    uint8_t mask[8];
    CHECK_OK(nmf_nm_mask(mask, w, 1, 8, (nmf_pattern){3, 8}, 0));
    CHECK(mask[0] && mask[1] && mask[2] && !mask[3] && !mask[7]); /* ties to the lower index */
    float neg[4] = {-3, 2, -2, 1};
    CHECK_OK(nmf_nm_mask(mask, neg, 1, 4, (nmf_pattern){2, 4}, 0));
    CHECK(mask[0] && mask[1] && !mask[2] && !mask[3]); /* |-2| ties |2|: lower index wins */
    CHECK_STATUS(nmf_nm_mask(mask, w, 1, 6, (nmf_pattern){2, 4}, 0), NMF_ERR_SHAPE);
    CHECK_STATUS(nmf_nm_mask(mask, w, 1, 8, (nmf_pattern){4, 4}, 0), NMF_ERR_INVALID_ARG);
    float nan_w[4] = {1, NAN, 0, 0};
    CHECK_STATUS(nmf_nm_mask(mask, nan_w, 1, 4, (nmf_pattern){2, 4}, 0), NMF_ERR_NUMERIC);
    nmf_pattern p;
    CHECK_OK(nmf_pattern_parse("2:8", &p));
    CHECK(p.n == 2 && p.m == 8);
    CHECK_OK(nmf_pattern_parse("3:32", &p));
    const char *bad[] = {"", "2", "2:", ":8", "0:4", "4:4", "5:4", "1:33", "2:8x", "a:b", "-1:4", "2:8:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_STATUS(nmf_pattern_parse(bad[i], &p), NMF_ERR_INVALID_ARG);
    int is_nm = -1;
    float dense[4] = {1, 2, 3, 0};
    CHECK_OK(nmf_nm_check(dense, 1, 4, (nmf_pattern){2, 4}, 0, &is_nm));
    CHECK(is_nm == 0);
}

static void test_padding(void) {
    /* 10 columns, 2:4 with padding: groups of 4, 4, 2 (+2 padding columns) */
    float w[10] = {0.1f, 5, 4, 0.2f, 9, 0, 0, 8, 7, 0.5f};
    float back[10];
    nmf_nm_matrix a;
    CHECK_STATUS(nmf_nm_pack(&a, w, 1, 10, (nmf_pattern){2, 4}, 0), NMF_ERR_SHAPE);
    CHECK_OK(nmf_nm_pack(&a, w, 1, 10, (nmf_pattern){2, 4}, 1));
    CHECK(a.groups == 3);
    CHECK_OK(nmf_nm_validate(&a));
    CHECK_OK(nmf_nm_unpack(back, &a));
    float want[10] = {0, 5, 4, 0, 9, 0, 0, 8, 7, 0.5f};
    CHECK(memcmp(back, want, sizeof want) == 0);
    /* 1 real column in the last group of a 3:4 pattern: padding slots hold zeros */
    float w5[5] = {1, 2, 3, 4, 6};
    nmf_nm_matrix b;
    CHECK_OK(nmf_nm_pack(&b, w5, 1, 5, (nmf_pattern){3, 4}, 1));
    CHECK(b.pos[3] == 0 && b.values[3] == 6.0f && b.values[4] == 0.0f && b.values[5] == 0.0f);
    CHECK_OK(nmf_nm_validate(&b));
    b.values[5] = 1.0f; /* a value in padding is corrupt */
    CHECK_STATUS(nmf_nm_validate(&b), NMF_ERR_FORMAT);
    b.values[5] = 0.0f;
    b.pos[1] = b.pos[0]; /* positions must ascend */
    CHECK_STATUS(nmf_nm_validate(&b), NMF_ERR_FORMAT);
    nmf_nm_free(&a);
    nmf_nm_free(&b);
}

static void test_groups(void) {
    size_t g = 0;
    CHECK_OK(nmf_nm_groups(10, (nmf_pattern){2, 4}, 1, &g));
    CHECK(g == 3);
    CHECK_OK(nmf_nm_groups(SIZE_MAX, (nmf_pattern){1, 2}, 1, &g)); /* no wrap-around */
    CHECK(g == SIZE_MAX / 2 + 1);
    CHECK_STATUS(nmf_nm_groups(SIZE_MAX, (nmf_pattern){1, 2}, 0, &g), NMF_ERR_SHAPE);
}

static void test_pack_masked_short(void) {
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t mask[8] = {0, 0, 0, 1, 0, 0, 0, 0}; /* one kept in a 2:8 group */
    nmf_nm_matrix a;
    CHECK_OK(nmf_nm_pack_masked(&a, w, mask, 1, 8, (nmf_pattern){2, 8}, 0));
    CHECK(a.pos[0] == 0 && a.values[0] == 0.0f && a.pos[1] == 3 && a.values[1] == 4.0f);
    CHECK_OK(nmf_nm_validate(&a));
    nmf_nm_free(&a);
    uint8_t many[8] = {1, 1, 1, 0, 0, 0, 0, 0};
    CHECK_STATUS(nmf_nm_pack_masked(&a, w, many, 1, 8, (nmf_pattern){2, 8}, 0), NMF_ERR_INVALID_ARG);
}

/* nmf_nm_unpack_transposed is the transpose of nmf_nm_unpack (a weight stored [in, out] whose
 * (out, in) view is packed), padded groups included. */
static void test_unpack_transposed(void) {
    unsigned long long s = 11;
    const size_t shapes[][2] = {{1, 4}, {3, 8}, {5, 10}, {7, 33}, {16, 16}};
    const nmf_pattern pats[] = {{2, 4}, {1, 8}, {3, 4}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (size_t k = 0; k < sizeof pats / sizeof pats[0]; k++) {
            size_t rows = shapes[i][0], cols = shapes[i][1];
            float *w = malloc(rows * cols * sizeof *w), *d = malloc(rows * cols * sizeof *d),
                  *t = malloc(rows * cols * sizeof *t);
            for (size_t j = 0; j < rows * cols; j++) w[j] = test_rand_float(&s);
            nmf_nm_matrix a;
            CHECK_OK(nmf_nm_pack(&a, w, rows, cols, pats[k], 1));
            for (size_t j = 0; j < rows * cols; j++) t[j] = NAN; /* every entry must be written */
            CHECK_OK(nmf_nm_unpack(d, &a));
            CHECK_OK(nmf_nm_unpack_transposed(t, &a));
            int ok = 1;
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < cols; c++) ok &= t[c * rows + r] == d[r * cols + c];
            CHECK_MSG(ok, "%zu x %zu at %d:%d", rows, cols, pats[k].n, pats[k].m);
            nmf_nm_free(&a);
            free(w);
            free(d);
            free(t);
        }
}

int main(void) {
    test_unpack_transposed();
    test_mask_vs_reference();
    test_ties_and_errors();
    test_padding();
    test_pack_masked_short();
    test_groups();
    return test_finish("nm_mask");
}
