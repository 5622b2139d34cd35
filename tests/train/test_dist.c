/* The data-parallel helpers that do not need several processes: ragged splits of a batch over
 * ranks/shards, and the fixed-order sum of --deterministic on one rank (the order itself: the
 * same additions, in the same order, as summing the terms left to right). */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "train/dist.h"

static void test_split(void) {
    /* every item exactly once, contiguous, sizes differ by at most one, larger ones first */
    for (size_t n = 0; n <= 40; n++)
        for (int parts = 1; parts <= 9; parts++) {
            size_t next = 0, prev = (size_t)-1;
            for (int i = 0; i < parts; i++) {
                nmf_dist_part p = nmf_dist_split(n, parts, i);
                CHECK(p.begin == next);
                CHECK(p.count == n / parts || p.count == n / parts + 1);
                CHECK(p.count <= prev);
                prev = p.count;
                next += p.count;
            }
            CHECK(next == n);
        }
    nmf_dist_part p = nmf_dist_split(30, 4, 3); /* 8, 8, 7, 7 */
    CHECK(p.begin == 23 && p.count == 7);
}

static void test_ordered_sum_one_rank(void) {
    CHECK(nmf_dist_size() == 1 && nmf_dist_rank() == 0); /* not started by mpirun */
    /* terms chosen so that the grouping matters in float: 1e8 + 1 + -1e8 + 1 */
    float t0[2] = {1e8f, 3.0f}, t1[2] = {1.0f, 0.25f}, t2[2] = {-1e8f, 1e-8f}, t3[2] = {1.0f, -3.0f};
    float *terms[4] = {t0, t1, t2, t3};
    float acc[2] = {42.0f, 42.0f}; /* overwritten, not accumulated into */
    CHECK_OK(nmf_dist_ordered_sum(acc, terms, 4, 2));
    float want0 = ((1e8f + 1.0f) + -1e8f) + 1.0f, want1 = ((3.0f + 0.25f) + 1e-8f) + -3.0f;
    CHECK(memcmp(&acc[0], &want0, sizeof want0) == 0);
    CHECK(memcmp(&acc[1], &want1, sizeof want1) == 0);
    CHECK(acc[0] == 1.0f); /* (1e8 + 1) rounds back to 1e8: left to right gives 1, not 2 */
    CHECK_OK(nmf_dist_ordered_sum(acc, terms, 0, 2)); /* no terms: zero */
    CHECK(acc[0] == 0.0f && acc[1] == 0.0f);
    /* one rank: every collective is the identity, checks always agree */
    long long c = 7;
    CHECK_OK(nmf_dist_allreduce_i64(&c, 1));
    CHECK(c == 7);
    CHECK_OK(nmf_dist_check_same(123, "test state", 0));
}

/* the launcher's environment decides whether MPI is initialised (a plain run never is) */
static void test_launcher_detection(void) {
    int size = -1;
    CHECK(!nmf_dist_launched(&size) && size == 0); /* ctest does not run us under mpirun */
    setenv("PMI_SIZE", "3", 1);
    CHECK(nmf_dist_launched(&size) && size == 3);
    unsetenv("PMI_SIZE");
    setenv("PMIX_RANK", "0", 1);
    CHECK(nmf_dist_launched(&size) && size == 0); /* launched, size not announced */
    unsetenv("PMIX_RANK");
    CHECK(!nmf_dist_launched(NULL));
}

int main(void) {
    test_split();
    test_launcher_detection();
    test_ordered_sum_one_rank();
    CHECK_OK(nmf_dist_init()); /* no launcher in the environment: stays one rank */
    CHECK(nmf_dist_size() == 1 && nmf_dist_rank() == 0);
    nmf_dist_abort(3); /* one rank: returns */
    nmf_dist_finalize();
    char buf[64];
    nmf_dist_describe(buf, sizeof buf);
    CHECK(nmf_dist_built_with_mpi() ? strcmp(buf, "no") != 0 : strcmp(buf, "no") == 0);
    return test_finish("test_dist");
}
