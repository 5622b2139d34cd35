/* The LM's data for the trainer: random windows of a split's text as training batches, and
 * evaluation windows spread over a split, scored over the ranks.
 *
 * A window of T + 1 bytes gives T inputs and their T next bytes. Training windows start at
 * uniform random offsets drawn from a stream seeded by (seed, global step), so a resumed run
 * draws what an uninterrupted one would have. Evaluation windows are the split's consecutive
 * T-byte windows (every byte predicted once), or `limit` of them evenly spaced. */
#include <math.h>
#include <stdlib.h>

#include "core/rng.h"
#include "train/dist.h"
#include "train/train_internal.h"

void nmf_lm_sample_batch(int *ids, int *targets, const uint8_t *text, size_t len, int B, int T,
                         uint64_t seed, long long g) {
    uint64_t r = seed ^ (0xA24BAED4963EE407ull * (uint64_t)(g + 1));
    for (int b = 0; b < B; b++) {
        const size_t start = (size_t)nmf_rng_below(&r, len - (size_t)T); /* len > T */
        for (int t = 0; t < T; t++) {
            ids[(size_t)b * T + t] = text[start + t];
            targets[(size_t)b * T + t] = text[start + t + 1];
        }
    }
}

size_t nmf_lm_eval_windows(size_t len, int T, size_t limit) {
    size_t all = len > (size_t)T ? (len - 1) / (size_t)T : 0;
    return limit > 0 && limit < all ? limit : all;
}

size_t nmf_lm_window_start(size_t len, int T, size_t n, size_t w) {
    size_t all = (len - 1) / (size_t)T;
    return (size_t)((unsigned long long)w * all / n) * (size_t)T;
}

nmf_status nmf_lm_eval_split(nmf_vit_train *m, const uint8_t *text, size_t len, size_t n,
                             double *loss, double *acc) {
    const int T = nmf_vit_train_seq_len(m);
    if (n == 0) return nmf_error(NMF_ERR_INVALID_ARG, "evaluation: no window of %d bytes", T + 1);
    /* chunks of the model's batch; each rank a contiguous run of chunks (as eval_split) */
    const size_t E = (size_t)m->max_batch, chunks = (n + E - 1) / E;
    nmf_dist_part mine = nmf_dist_split(chunks, nmf_dist_size(), nmf_dist_rank());
    size_t b = mine.begin * E, e = (mine.begin + mine.count) * E;
    if (e > n) e = n;
    int *ids = malloc(E * (size_t)T * sizeof *ids), *tg = malloc(E * (size_t)T * sizeof *tg);
    if (!ids || !tg) {
        free(ids), free(tg);
        return nmf_error(NMF_ERR_NOMEM, "evaluation windows");
    }
    /* sums: correct tokens, and the loss in micro-nats (an integer sum is the same for any
     * number of ranks and any order) */
    long long sums[2] = {0, 0};
    nmf_status st = NMF_OK;
    for (size_t w = b; w < e && st == NMF_OK; w += E) {
        const size_t cnt = e - w < E ? e - w : E;
        for (size_t i = 0; i < cnt; i++) {
            const uint8_t *s = text + nmf_lm_window_start(len, T, n, w + i);
            for (int t = 0; t < T; t++) ids[i * T + t] = s[t], tg[i * T + t] = s[t + 1];
        }
        float l = 0;
        int right = 0;
        st = nmf_lm_train_forward(m, ids, tg, (int)cnt, &l, &right);
        sums[0] += right;
        sums[1] += llround((double)l * (double)(cnt * (size_t)T) * 1e6);
    }
    m->has_labels = 0; /* evaluation batches are not for backward */
    free(ids), free(tg);
    if (st != NMF_OK) return st;
    if ((st = nmf_dist_allreduce_i64(sums, 2)) != NMF_OK) return st;
    const double tokens = (double)n * T;
    *loss = (double)sums[1] * 1e-6 / tokens;
    *acc = (double)sums[0] / tokens;
    return NMF_OK;
}
