/* The key/value cache of a decoder (GPT-2, LLaMA): per layer the keys and values of every
 * position seen so far, (L, 2, B, kv_heads, max_tokens, head_dim) floats in one allocation, so
 * that a decoding step appends one position per sequence and attention reads the cache in
 * place (no copy, no allocation per step). */
#include <stdlib.h>

#include "model/lm_internal.h"

/* floats of a cache; 0 on overflow */
static size_t cache_floats(const nmf_lm *m, size_t B, size_t max_tokens) {
    size_t n = 2 * m->L;
    if (nmf_mul_overflow(n, B, &n) || nmf_mul_overflow(n, max_tokens, &n) ||
        nmf_mul_overflow(n, m->KVW, &n) || n > SIZE_MAX / sizeof(float))
        return 0;
    return n;
}

size_t nmf_kv_cache_bytes(const nmf_lm *m, size_t B, size_t max_tokens) {
    return m ? cache_floats(m, B, max_tokens) * sizeof(float) : 0;
}

nmf_status nmf_kv_cache_create(nmf_kv_cache **out, const nmf_lm *m, size_t B, size_t max_tokens) {
    if (!out || !m) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_kv_cache_create: NULL argument");
    *out = NULL;
    if (m->k.encoder)
        return nmf_error(NMF_ERR_UNSUPPORTED, "key/value cache: %s is an encoder (no decoding)",
                         m->config.arch);
    if (B == 0 || max_tokens == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "key/value cache: %zu sequences x %zu positions", B,
                         max_tokens);
    if (max_tokens > m->P)
        return nmf_error(NMF_ERR_INVALID_ARG, "key/value cache: %zu positions exceed "
                         "max_position_embeddings (%zu)", max_tokens, m->P);
    const size_t floats = cache_floats(m, B, max_tokens);
    nmf_kv_cache *c = calloc(1, sizeof *c);
    float *data = floats ? nmf_alloc(floats, sizeof(float)) : NULL;
    if (!c || !data) {
        free(c);
        nmf_free(data);
        return nmf_error(NMF_ERR_NOMEM, "key/value cache of %zu sequences x %zu positions (%zu MB)", B,
                         max_tokens, floats * sizeof(float) >> 20);
    }
    *c = (nmf_kv_cache){m, B, max_tokens, 0, data};
    *out = c;
    return NMF_OK;
}

void nmf_kv_cache_free(nmf_kv_cache *cache) {
    if (!cache) return;
    nmf_free(cache->data);
    free(cache);
}

size_t nmf_kv_cache_length(const nmf_kv_cache *cache) { return cache ? cache->len : 0; }
void nmf_kv_cache_reset(nmf_kv_cache *cache) {
    if (cache) cache->len = 0;
}

nmf_status nmf_lm_forward_cached(nmf_lm *m, nmf_kv_cache *cache, float *out, const int64_t *ids,
                                 size_t T, int last_only) {
    if (!m || !cache || !out || !ids || T == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "cached forward: NULL argument or no tokens");
    if (cache->m != m)
        return nmf_error(NMF_ERR_INVALID_ARG, "cached forward: the cache belongs to another model");
    if (T > cache->cap - cache->len)
        return nmf_error(NMF_ERR_INVALID_ARG, "cached forward: the cache holds %zu of %zu positions, "
                         "no room for %zu more", cache->len, cache->cap, T);
    const nmf_lm_kv kv = {cache->data, 2 * cache->B * m->KVW * cache->cap, cache->cap, cache->len, NULL};
    nmf_status st = nmf_lm_run(m, out, ids, cache->B, T, NULL, &kv, last_only, NULL);
    if (st == NMF_OK) cache->len += T;
    return st;
}
