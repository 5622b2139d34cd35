/* The default calibration sets: what a model of the built-in data is calibrated on when no file
 * is given. A ViT of Fashion-MNIST's shape takes the first training images (calib.c); a
 * byte-level token model takes windows of the text corpus's train split, the same evenly spread
 * windows the trainer evaluates on (train/text_windows.h) but of the split it trains on, so the
 * calibration text is never the held-out or test text that its perplexity is measured on. */
#include <string.h>

#include "nmformer/data.h"
#include "nmformer/model.h"
#include "prune/prune_internal.h"
#include "train/text_windows.h"

nmf_status nmf_calib_corpus(nmf_calib *out, const nmf_model_config *c, const char *corpus,
                            size_t samples, size_t seq_len) {
    if (!out || !c || samples == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_calib_corpus: NULL argument or no samples");
    memset(out, 0, sizeof *out);
    if (!nmf_model_is_token(c))
        return nmf_error(NMF_ERR_INVALID_ARG, "the corpus calibration set is text; this %s model "
                         "takes images", c->arch);
    const nmf_hf_config *h = &c->hf;
    /* the corpus is bytes: ids 0..255 mean bytes only to a byte-level vocabulary */
    if (h->vocab_size != 256)
        return nmf_error(NMF_ERR_INVALID_ARG, "the default calibration set is byte-level text; this "
                         "model's vocabulary has %d tokens: it needs a calibration file of its "
                         "token ids", h->vocab_size);
    const size_t ctx = (size_t)h->max_position_embeddings;
    const size_t T = seq_len ? seq_len : ctx;
    if (T > ctx || T > (size_t)1 << 30)
        return nmf_error(NMF_ERR_SHAPE, "calibration windows of %zu tokens; the model takes at "
                         "most %zu", T, ctx);
    nmf_corpus corp;
    nmf_status st = nmf_corpus_load(&corp, corpus);
    if (st) return st;
    const uint8_t *text = corp.text[NMF_TEXT_TRAIN];
    const size_t len = corp.len[NMF_TEXT_TRAIN];
    const size_t n = nmf_lm_eval_windows(len, (int)T, samples);
    if (n == 0) {
        st = nmf_error(NMF_ERR_INVALID_ARG, "corpus %s: its train split has %zu bytes, fewer than "
                       "one calibration window of %zu", corpus ? corpus : NMF_FORTUNES_DIR, len,
                       T + 1);
    } else if (!(out->ids = nmf_alloc(n * T, sizeof(int64_t)))) {
        st = nmf_error(NMF_ERR_NOMEM, "%zu calibration windows of %zu bytes", n, T);
    } else {
        // ids (n, T) = the bytes of window k, k = 0..n-1
        for (size_t k = 0; k < n; k++) {
            const uint8_t *s = text + nmf_lm_window_start(len, (int)T, n, k);
            for (size_t t = 0; t < T; t++) out->ids[k * T + t] = s[t];
        }
        out->count = n;
        out->seq_len = out->sample_len = T;
    }
    nmf_corpus_free(&corp);
    return st;
}

nmf_status nmf_calib_default(nmf_calib *out, const nmf_model_config *c, const char *data,
                             size_t samples, size_t seq_len) {
    if (!out || !c) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_calib_default: NULL argument");
    if (nmf_model_is_token(c)) return nmf_calib_corpus(out, c, data, samples, seq_len);
    memset(out, 0, sizeof *out);
    if (seq_len)
        return nmf_error(NMF_ERR_INVALID_ARG, "a sequence length is for token models; this %s "
                         "model takes images", c->arch);
    return nmf_calib_fashion_mnist(out, c, data, samples);
}
