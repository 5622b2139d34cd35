/* The default calibration sets (src/prune/calib_default.c): for a byte-level LM, windows of the
 * corpus's train split, deterministic and well formed (every window is train text, at an
 * increasing offset, ids in [0, 256), the count capped by what the split holds, --seq-len
 * honoured); by kind, nmf_calib_default picks corpus or images; bad corpora, vocabularies and
 * lengths are clear errors. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nmformer/data.h"
#include "nmformer/prune.h"
#include "nmformer/train.h"
#include "test.h"
#include "text_corpus.h"

/* offset of window w (T bytes) in text at or after `from`, at a multiple of T; -1 if none */
static long find_window(const uint8_t *text, size_t len, const int64_t *w, size_t T, size_t from) {
    for (size_t s = (from + T - 1) / T * T; s + T <= len; s += T) {
        size_t t = 0;
        while (t < T && text[s + t] == w[t]) t++;
        if (t == T) return (long)s;
    }
    return -1;
}

static void check_windows(const nmf_calib *cal, const nmf_corpus *corp, size_t T) {
    const uint8_t *text = corp->text[NMF_TEXT_TRAIN];
    const size_t len = corp->len[NMF_TEXT_TRAIN];
    CHECK(cal->ids && !cal->images && cal->seq_len == T && cal->sample_len == T);
    for (size_t i = 0; i < cal->count * T; i++) CHECK(cal->ids[i] >= 0 && cal->ids[i] < 256);
    /* each window is train text, in order, the last one not far from the end (spread) */
    long at = -1;
    for (size_t k = 0; k < cal->count; k++) {
        long s = find_window(text, len, cal->ids + k * T, T, at < 0 ? 0 : (size_t)at + 1);
        CHECK_MSG(s > at, "window %zu not found after offset %ld", k, at);
        if (s <= at) return;
        at = s;
    }
    CHECK_MSG((size_t)at + 2 * len / cal->count >= len - T, "windows not spread: last at %ld of %zu",
              at, len);
}

int main(void) {
    char dir[] = "/tmp/nmf_test_calib_default.XXXXXX", path[96];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/corpus", dir);
    CHECK(text_corpus_write(path, 400, 7) == 0);
    nmf_corpus corp;
    CHECK_OK(nmf_corpus_load(&corp, path));

    nmf_model_config lm;
    CHECK_OK(nmf_train_lm_config(&lm, 16, 1, 2, 2.0f, 32));
    nmf_calib a, b;
    /* the model's context; twice the same windows */
    CHECK_OK(nmf_calib_corpus(&a, &lm, path, 20, 0));
    CHECK_OK(nmf_calib_default(&b, &lm, path, 20, 0));
    CHECK(a.count == 20 && b.count == 20);
    CHECK(a.ids && b.ids && !memcmp(a.ids, b.ids, 20 * 32 * sizeof(int64_t)));
    check_windows(&a, &corp, 32);
    nmf_calib_free(&a);
    nmf_calib_free(&b);
    CHECK(a.ids == NULL && a.count == 0);

    /* --seq-len: shorter windows; more samples than the split holds: all of them */
    CHECK_OK(nmf_calib_corpus(&a, &lm, path, 7, 8));
    CHECK(a.count == 7 && a.seq_len == 8);
    check_windows(&a, &corp, 8);
    nmf_calib_free(&a);
    const size_t all = (corp.len[NMF_TEXT_TRAIN] - 1) / 32;
    CHECK_OK(nmf_calib_corpus(&a, &lm, path, 1u << 30, 0));
    CHECK_MSG(a.count == all, "%zu windows, the split holds %zu", a.count, all);
    check_windows(&a, &corp, 32);
    /* every window once: window k is bytes k*T .. k*T + T - 1 */
    for (size_t i = 0; i < a.count * 32; i++)
        if (a.ids[i] != corp.text[NMF_TEXT_TRAIN][i]) {
            CHECK_MSG(0, "all windows: byte %zu differs", i);
            break;
        }
    nmf_calib_free(&a);

    /* errors: window longer than the context, another vocabulary, no such corpus, no sample,
     * a sequence length for an image model, a corpus whose train split is shorter than a window */
    CHECK_STATUS(nmf_calib_corpus(&a, &lm, path, 4, 33), NMF_ERR_SHAPE);
    CHECK(strstr(nmf_last_error(), "33") != NULL);
    nmf_model_config big = lm;
    big.hf.vocab_size = 300;
    CHECK_STATUS(nmf_calib_corpus(&a, &big, path, 4, 0), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "300") != NULL);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nowhere", dir);
    CHECK_STATUS(nmf_calib_default(&a, &lm, missing, 4, 0), NMF_ERR_NOT_FOUND);
    CHECK(strstr(nmf_last_error(), "nowhere") != NULL);
    CHECK_STATUS(nmf_calib_corpus(&a, &lm, path, 0, 0), NMF_ERR_INVALID_ARG);
    nmf_model_config vit;
    nmf_model_config_default(&vit);
    CHECK_STATUS(nmf_calib_default(&a, &vit, NULL, 4, 16), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_calib_corpus(&a, &vit, path, 4, 0), NMF_ERR_INVALID_ARG);
    char tiny[128];
    snprintf(tiny, sizeof tiny, "%s/tiny", dir);
    FILE *f = fopen(tiny, "wb");
    CHECK(f != NULL);
    if (f) {
        /* a few short documents: each split far below 33 bytes */
        for (int i = 0; i < 3; i++) fprintf(f, "d%d\n%%\n", i);
        fclose(f);
    }
    CHECK_STATUS(nmf_calib_corpus(&a, &lm, tiny, 4, 0), NMF_ERR_INVALID_ARG);
    CHECK(a.ids == NULL && a.count == 0);

    nmf_corpus_free(&corp);
    remove(path);
    remove(tiny);
    rmdir(dir);
    return test_finish("test_calib_default");
}
