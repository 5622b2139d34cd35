/* Generation with a key/value cache: one prefill of the prompt, then one cached step of one
 * token per sequence for each new token; the next token from the last position's logits,
 * greedy or sampled (temperature, top-k) with the library's RNG. Nothing is allocated per step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "model/lm_internal.h"

typedef struct {
    float v;
    size_t i;
} cand;

/* the lower of two candidates: smaller logit, or the higher id on equal logits (so that the
 * lowest id wins ties, as argmax does) */
static int below(cand a, cand b) { return a.v < b.v || (a.v == b.v && a.i > b.i); }

static void sift_down(cand *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < n && below(h[l], h[s])) s = l;
        if (r < n && below(h[r], h[s])) s = r;
        if (s == i) return;
        cand t = h[i];
        h[i] = h[s], h[s] = t;
        i = s;
    }
}

/* The next token from logits (V): argmax (lowest id on ties) when temperature is 0, else a draw
 * from softmax(logits / temperature) over the top_k largest (all when top_k is 0). heap: V
 * candidates of scratch. */
static size_t choose(const float *logits, size_t V, const nmf_sampling *s, uint64_t *rng, cand *heap) {
    if (!s || s->temperature == 0.0f) {
        size_t best = 0;
        for (size_t i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    const size_t k = s->top_k > 0 && (size_t)s->top_k < V ? (size_t)s->top_k : V;
    /* a min-heap of the k best seen so far: O(V log k) */
    size_t n = 0;
    for (size_t i = 0; i < V; i++) {
        const cand c = {logits[i], i};
        if (n < k) {
            heap[n++] = c;
            if (n == k) /* full: heapify once */
                for (size_t q = k / 2; q-- > 0;) sift_down(heap, k, q);
        } else if (below(heap[0], c)) {
            heap[0] = c;
            sift_down(heap, k, 0);
        }
    }
    float mx = heap[0].v;
    for (size_t j = 1; j < n; j++) mx = heap[j].v > mx ? heap[j].v : mx;
    double sum = 0.0;
    for (size_t j = 0; j < n; j++) sum += exp(((double)heap[j].v - mx) / s->temperature);
    double u = (double)nmf_rng_uniform(rng) * sum, acc = 0.0;
    size_t pick = heap[0].i;
    for (size_t j = 0; j < n; j++) { /* the first candidate whose cumulative mass passes u */
        acc += exp(((double)heap[j].v - mx) / s->temperature);
        pick = heap[j].i;
        if (acc > u) break;
    }
    return pick;
}

nmf_status nmf_lm_generate(nmf_lm *m, int64_t *out, const int64_t *prompt, size_t B, size_t T,
                           size_t G, const nmf_sampling *s, size_t max_tokens,
                           nmf_generate_stats *stats) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (!m || !out || !prompt || B == 0 || T == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "generate: NULL argument or empty prompt (B %zu, T %zu)", B, T);
    if (m->config.hf.head != NMF_HF_HEAD_LM)
        return nmf_error(NMF_ERR_UNSUPPORTED, "generate: the model has no LM head (a %s without "
                         "lm_head)", m->config.arch);
    if (s && (!(s->temperature >= 0.0f) || !isfinite(s->temperature) || s->top_k < 0))
        return nmf_error(NMF_ERR_INVALID_ARG, "generate: temperature %g / top-k %d invalid",
                         (double)(s ? s->temperature : 0), s ? s->top_k : 0);
    const size_t total = T + (G < m->P ? G : m->P), cap = max_tokens ? max_tokens : total;
    if (T > m->P || G > m->P || total > cap || total > m->P) /* (T, G <= P: no overflow) */
        return nmf_error(NMF_ERR_INVALID_ARG, "generate: %zu prompt + %zu new tokens exceed %s (%zu)", T, G,
                         total > m->P ? "max_position_embeddings" : "the cache's max_tokens",
                         total > m->P ? m->P : cap);
    for (size_t b = 0; b < B; b++) memcpy(out + b * total, prompt + b * T, T * sizeof(int64_t));
    if (G == 0) return NMF_OK;
    nmf_kv_cache *cache = NULL;
    nmf_status st = nmf_kv_cache_create(&cache, m, B, cap);
    if (st) return st;
    float *logits = malloc(B * m->V * sizeof(float)); // (B, V)
    int64_t *step = malloc(B * sizeof(int64_t));
    cand *heap = malloc(m->V * sizeof(cand));
    uint64_t rng = s ? s->seed : 0;
    if (!logits || !step || !heap) st = nmf_error(NMF_ERR_NOMEM, "generate: logits for %zu sequences", B);
    double t0 = nmf_now();
    if (!st) st = nmf_lm_forward_cached(m, cache, logits, prompt, T, 1);
    double t1 = nmf_now();
    for (size_t g = 0; !st && g < G; g++) {
        if (g > 0) st = nmf_lm_forward_cached(m, cache, logits, step, 1, 1);
        for (size_t b = 0; !st && b < B; b++) {
            step[b] = (int64_t)choose(logits + b * m->V, m->V, s, &rng, heap);
            out[b * total + T + g] = step[b];
        }
    }
    if (!st && stats) {
        stats->prefill_seconds = t1 - t0;
        stats->decode_seconds = nmf_now() - t1;
        stats->decode_tokens = B * (G - 1);
    }
    free(heap);
    free(step);
    free(logits);
    nmf_kv_cache_free(cache);
    return st;
}
