/* nmformer eval LM --corpus [PATH]: a byte-level language model's perplexity and bits per byte
 * on a split of a text corpus, by the library's nmf_lm_evaluate (the trainer's evaluation), or
 * with a precision by nmf_lm_evaluate_model (the inference engine computing in it). */
#include <stdio.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/model_cli.h"
#include "nmformer/data.h"
#include "nmformer/lm.h"
#include "nmformer/train.h"

/* The inference engine's evaluation at precision p. */
static nmf_status evaluate_at(const cmd_eval_lm_args *a, const nmf_model_config *c,
                              const nmf_tensor_set *w, const nmf_corpus *corpus,
                              nmf_lm_eval_result *r) {
    nmf_lm *lm = NULL;
    nmf_status st = nmf_lm_create(&lm, c, w);
    if (!st && a->prec != NMF_PREC_F32) st = nmf_lm_set_precision(lm, a->prec);
    if (!st) st = nmf_lm_evaluate_model(lm, corpus, a->split, a->limit, a->batch, r);
    nmf_lm_free(lm);
    return st;
}

int cmd_eval_lm(const cmd_eval_lm_args *a, const nmf_model_config *c, const nmf_tensor_set *w) {
    nmf_corpus corpus;
    const char *where = a->corpus ? a->corpus : NMF_FORTUNES_DIR;
    nmf_status st = nmf_corpus_load(&corpus, a->corpus);
    if (st) return cli_fail("eval", where, st);
    nmf_lm_eval_result r;
    const double t0 = nmf_now();
    st = a->prec == NMF_PREC_COUNT ? nmf_lm_evaluate(c, w, &corpus, a->split, a->limit, a->batch, &r)
                                   : evaluate_at(a, c, w, &corpus, &r);
    const double secs = nmf_now() - t0;
    nmf_corpus_free(&corpus);
    if (st) return cli_fail("eval", a->model, st);
    const char *split = nmf_text_split_name(a->split);
    if (a->json) {
        printf("{\"model\": ");
        model_cli_json_string(stdout, a->model);
        printf(", \"candidate\": ");
        model_cli_json_string(stdout, a->name ? a->name : "");
        printf(", \"corpus\": ");
        model_cli_json_string(stdout, where);
        /* every digit: the figures compare exactly with train's --summary */
        if (a->prec != NMF_PREC_COUNT) printf(", \"precision\": \"%s\"", nmf_precision_name(a->prec));
        printf(", \"split\": \"%s\", \"windows\": %zu, \"tokens\": %zu, \"loss\": %.17g, "
               "\"perplexity\": %.17g, \"bits_per_byte\": %.17g, \"accuracy\": %.17g, "
               "\"seconds\": %.3f}\n", split, r.windows, r.tokens, r.loss, r.perplexity, r.bits_per_byte,
               r.accuracy, secs);
    } else {
        const int at = a->prec != NMF_PREC_COUNT; /* "MODEL NAME int8: ..." */
        printf("%s%s%s%s%s: perplexity %.3f, %.3f bits per byte, next-byte accuracy %.2f%% on %zu "
               "windows of %d bytes of the %s split of %s, %.2f s\n", a->model, a->name ? " " : "",
               a->name ? a->name : "", at ? " " : "", at ? nmf_precision_name(a->prec) : "",
               r.perplexity, r.bits_per_byte, 100.0 * r.accuracy, r.windows,
               c->hf.max_position_embeddings, split, where, secs);
    }
    return 0;
}
