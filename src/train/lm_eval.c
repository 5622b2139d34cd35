/* A language model's figures on a corpus split outside training (`nmformer eval --corpus`): the
 * weights go into the trainable model, pruned candidates with their own masks, and the trainer's
 * evaluation (lm_data.c) scores them, so a candidate's perplexity here is the one `train`
 * reported for it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/lm.h"
#include "train/train_internal.h"

/* What both evaluations require of the model and the corpus; *n: the windows to score. */
static nmf_status check_evaluation(const nmf_model_config *c, const nmf_corpus *corpus,
                                   nmf_text_split split, size_t limit, int batch, size_t *n) {
    if (!nmf_model_is_token(c) || strcmp(c->arch, "gpt2") || c->hf.head != NMF_HF_HEAD_LM)
        return nmf_error(NMF_ERR_INVALID_ARG, "perplexity on a text corpus is for GPT-2 byte-level "
                         "language models; this model is %s", c->arch);
    if (c->hf.vocab_size < 256)
        return nmf_error(NMF_ERR_INVALID_ARG, "the corpus is bytes (0..255); this model's vocabulary "
                         "has %d tokens", c->hf.vocab_size);
    if (batch < 1) return nmf_error(NMF_ERR_INVALID_ARG, "evaluation batch %d: must be >= 1", batch);
    const int T = c->hf.max_position_embeddings;
    const size_t len = corpus->len[split];
    *n = nmf_lm_eval_windows(len, T, limit);
    if (*n == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "the corpus's %s split has %zu bytes, fewer than one "
                         "window of %d", nmf_text_split_name(split), len, T + 1);
    return NMF_OK;
}

nmf_status nmf_lm_evaluate(const nmf_model_config *c, const nmf_tensor_set *weights,
                           const nmf_corpus *corpus, nmf_text_split split, size_t limit, int batch,
                           nmf_lm_eval_result *r) {
    if (!c || !weights || !corpus || !r || (unsigned)split >= NMF_TEXT_SPLITS)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_lm_evaluate: NULL argument or bad split");
    memset(r, 0, sizeof *r);
    size_t n;
    nmf_status st0 = check_evaluation(c, corpus, split, limit, batch, &n);
    if (st0) return st0;
    const int T = c->hf.max_position_embeddings;
    const size_t len = corpus->len[split];
    nmf_vit_train *m = NULL;
    nmf_status st = nmf_vit_train_create(&m, c, batch);
    if (st == NMF_OK) st = nmf_vit_train_import(m, weights);
    nmf_pattern p = {0, 0};
    if (st == NMF_OK) st = nmf_vit_train_import_masks(m, weights, &p);
    double loss = 0, acc = 0;
    if (st == NMF_OK) st = nmf_lm_eval_split(m, corpus->text[split], len, n, &loss, &acc);
    nmf_vit_train_free(m);
    if (st != NMF_OK) return st;
    r->loss = loss;
    r->accuracy = acc;
    r->perplexity = exp(loss);
    r->bits_per_byte = loss / log(2.0);
    r->windows = n;
    r->tokens = n * (size_t)T;
    r->pattern = p;
    return NMF_OK;
}

/* The same windows through the inference engine: logits of a forward of `per` windows at a time
 * (per bounded so that the logits stay under ~256 MiB), cross-entropy by a log-sum-exp in
 * double, next-byte accuracy by the argmax (the first of equal maxima, as the trainer's). */
nmf_status nmf_lm_evaluate_model(nmf_lm *m, const nmf_corpus *corpus, nmf_text_split split,
                                 size_t limit, int batch, nmf_lm_eval_result *r) {
    if (!m || !corpus || !r || (unsigned)split >= NMF_TEXT_SPLITS)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_lm_evaluate_model: NULL argument or bad split");
    memset(r, 0, sizeof *r);
    const nmf_model_config *c = nmf_lm_get_config(m);
    size_t n;
    nmf_status st0 = check_evaluation(c, corpus, split, limit, batch, &n);
    if (st0) return st0;
    const int T = c->hf.max_position_embeddings;
    const size_t V = (size_t)c->hf.vocab_size, len = corpus->len[split];
    size_t per = ((size_t)64 << 20) / ((size_t)T * V);
    if (per < 1) per = 1;
    if (per > (size_t)batch) per = (size_t)batch;
    int64_t *ids = malloc(per * (size_t)T * sizeof *ids);
    float *logits = malloc(nmf_lm_output_floats(m, per, (size_t)T) * sizeof *logits);
    nmf_status st = ids && logits ? NMF_OK : nmf_error(NMF_ERR_NOMEM, "evaluation windows");
    double loss = 0;
    size_t right = 0;
    const uint8_t *text = corpus->text[split];
    for (size_t w = 0; w < n && st == NMF_OK; w += per) {
        const size_t cnt = n - w < per ? n - w : per;
        for (size_t i = 0; i < cnt; i++) {
            const uint8_t *s = text + nmf_lm_window_start(len, T, n, w + i);
            for (int t = 0; t < T; t++) ids[i * T + t] = s[t];
        }
        st = nmf_lm_forward(m, logits, ids, cnt, (size_t)T, NULL);
        for (size_t i = 0; i < cnt && st == NMF_OK; i++) {
            const uint8_t *s = text + nmf_lm_window_start(len, T, n, w + i);
            for (int t = 0; t < T; t++) {
                const float *z = logits + (i * (size_t)T + (size_t)t) * V; // (V)
                size_t best = 0;
                for (size_t v = 1; v < V; v++) best = z[v] > z[best] ? v : best;
                double sum = 0;
                for (size_t v = 0; v < V; v++) sum += exp((double)z[v] - z[best]);
                loss += (double)z[best] + log(sum) - z[s[t + 1]];
                right += best == s[t + 1];
            }
        }
    }
    free(ids);
    free(logits);
    if (st != NMF_OK) return st;
    const double tokens = (double)n * T;
    r->loss = loss / tokens;
    r->accuracy = (double)right / tokens;
    r->perplexity = exp(r->loss);
    r->bits_per_byte = r->loss / log(2.0);
    r->windows = n;
    r->tokens = n * (size_t)T;
    return NMF_OK; /* r->pattern stays {0, 0}: the caller knows its weights */
}
