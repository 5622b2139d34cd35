/* Data-parallel helpers on top of the transport: ragged splits, the fixed-order sum of
 * --deterministic, the cross-rank state check, and communication accounting. */
#include <stdlib.h>
#include <string.h>

#include "train/dist.h"

static nmf_dist_stats stats;

int nmf_dist_launched(int *size) {
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    static const char *const ranks[] = {"PMI_RANK", "PMIX_RANK"};
    int found = 0, n = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const char *v = getenv(sizes[i]);
        if (v) found = 1, n = n ? n : atoi(v);
    }
    for (size_t i = 0; i < sizeof ranks / sizeof ranks[0]; i++)
        if (getenv(ranks[i])) found = 1;
    if (size) *size = n;
    return found;
}

void nmf_dist_stats_reset(void) { memset(&stats, 0, sizeof stats); }
nmf_dist_stats nmf_dist_stats_get(void) { return stats; }

void nmf_dist_account(double t0, size_t bytes) {
    stats.seconds += nmf_now() - t0;
    stats.bytes += bytes;
}

nmf_dist_part nmf_dist_split(size_t n, int parts, int i) {
    size_t q = n / (size_t)parts, r = n % (size_t)parts, k = (size_t)i;
    nmf_dist_part p = {k * q + (k < r ? k : r), q + (k < r)};
    return p;
}

nmf_status nmf_dist_ordered_sum(float *acc, float *const *mine, int nmine, size_t n) {
    const int rank = nmf_dist_rank(), size = nmf_dist_size();
    nmf_status st = NMF_OK;
    if (rank == 0) {
        memset(acc, 0, n * sizeof(float));
    } else if ((st = nmf_dist_recv_f32(acc, n, rank - 1)) != NMF_OK) {
        return st;
    }
    /* left to right, one term at a time: the same additions in the same order on any K */
    for (int j = 0; j < nmine; j++) {
        const float *x = mine[j];
        for (size_t i = 0; i < n; i++) acc[i] += x[i];
    }
    if (size == 1) return NMF_OK;
    if (rank + 1 < size && (st = nmf_dist_send_f32(acc, n, rank + 1)) != NMF_OK) return st;
    return nmf_dist_bcast(acc, n * sizeof(float), size - 1);
}

nmf_status nmf_dist_check_same(uint64_t hash, const char *what, long long step) {
    const int size = nmf_dist_size();
    if (size == 1) return NMF_OK;
    uint64_t *all = malloc((size_t)size * sizeof *all);
    if (!all) return nmf_error(NMF_ERR_NOMEM, "state check");
    nmf_status st = nmf_dist_allgather_u64(hash, all);
    for (int r = 1; r < size && st == NMF_OK; r++)
        if (all[r] != all[0])
            st = nmf_error(NMF_ERR_CHECKSUM,
                           "rank %d's %s differ from rank 0's at step %lld (checksum %016llx vs "
                           "%016llx): the ranks diverged (different input files, builds or "
                           "hardware?)",
                           r, what, step, (unsigned long long)all[r], (unsigned long long)all[0]);
    free(all);
    return st;
}
