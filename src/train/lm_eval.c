/* A language model's figures on a corpus split outside training (`nmformer eval --corpus`): the
 * weights go into the trainable model, pruned candidates with their own masks, and the trainer's
 * evaluation (lm_data.c) scores them, so a candidate's perplexity here is the one `train`
 * reported for it. */
#include <math.h>
#include <string.h>

#include "train/train_internal.h"

nmf_status nmf_lm_evaluate(const nmf_model_config *c, const nmf_tensor_set *weights,
                           const nmf_corpus *corpus, nmf_text_split split, size_t limit, int batch,
                           nmf_lm_eval_result *r) {
    if (!c || !weights || !corpus || !r || (unsigned)split >= NMF_TEXT_SPLITS)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_lm_evaluate: NULL argument or bad split");
    memset(r, 0, sizeof *r);
    if (!nmf_model_is_token(c) || strcmp(c->arch, "gpt2"))
        return nmf_error(NMF_ERR_INVALID_ARG, "perplexity on a text corpus is for GPT-2 byte-level "
                         "language models; this model is %s", c->arch);
    if (c->hf.vocab_size < 256)
        return nmf_error(NMF_ERR_INVALID_ARG, "the corpus is bytes (0..255); this model's vocabulary "
                         "has %d tokens", c->hf.vocab_size);
    if (batch < 1) return nmf_error(NMF_ERR_INVALID_ARG, "evaluation batch %d: must be >= 1", batch);
    const int T = c->hf.max_position_embeddings;
    const size_t len = corpus->len[split];
    const size_t n = nmf_lm_eval_windows(len, T, limit);
    if (n == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "the corpus's %s split has %zu bytes, fewer than one "
                         "window of %d", nmf_text_split_name(split), len, T + 1);
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
