/* A language model outside the trainer: nmf_lm_evaluate gives a trained family's candidates
 * exactly the test and held-out figures the trainer reported for them (same windows, same
 * batches, pruned candidates with their own masks); `--init-model` fine-tuning (asp) keeps the
 * init candidate's mask even where its weights' magnitudes would pick another; bad inputs are
 * clear errors. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "nmformer/data.h"
#include "nmformer/io.h"
#include "nmformer/lm.h"
#include "nmformer/train.h"
#include "test.h"
#include "text_corpus.h"

static void options(nmf_train_options *o, const char *corpus) {
    CHECK_OK(nmf_train_options_preset(o, "lm"));
    CHECK_OK(nmf_train_lm_config(&o->model, 16, 1, 2, 2.0f, 16));
    o->corpus = corpus;
    o->batch = 8;
    o->dense_steps = 20;
    o->stage_steps = 6;
    o->patterns[0] = (nmf_pattern){2, 4};
    o->num_patterns = 1;
    o->warmup = 2;
    o->stage_warmup = 1;
    o->lr = 3e-3f;
    o->holdout = 16;
    o->eval_every = 5;
    o->test_limit = 24;
    o->seed = 3;
}

/* the first packed N:M tensor of a candidate */
static nmf_tensor *first_nm(nmf_candidate *c) {
    for (size_t i = 0; c && i < c->tensors.count; i++)
        if (c->tensors.items[i].nm) return &c->tensors.items[i];
    return NULL;
}

int main(void) {
    char dir[] = "/tmp/nmf_test_lm_eval.XXXXXX", corpus[96], fam[96], init[96], tuned[96];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(corpus, sizeof corpus, "%s/corpus", dir);
    snprintf(fam, sizeof fam, "%s/fam.nmf", dir);
    snprintf(init, sizeof init, "%s/init.nmf", dir);
    snprintf(tuned, sizeof tuned, "%s/tuned.nmf", dir);
    CHECK(text_corpus_write(corpus, 400, 11) == 0);
    nmf_set_threads(1);

    /* 1. train dense -> 2:4; every candidate's figures again through nmf_lm_evaluate */
    nmf_train_options o;
    options(&o, corpus);
    nmf_train_result res;
    CHECK_OK(nmf_train_run(&o, fam, NULL, 1, NULL, &res));
    CHECK(res.lm && res.count == 2);
    nmf_corpus corp;
    CHECK_OK(nmf_corpus_load(&corp, corpus));
    nmf_family f;
    CHECK_OK(nmf_family_read(fam, &f));
    for (int i = 0; i < res.count; i++) {
        const nmf_train_candidate_info *ci = &res.cand[i];
        nmf_candidate *c = nmf_family_find(&f, ci->name);
        CHECK(c != NULL);
        if (!c) continue;
        nmf_lm_eval_result t, h;
        CHECK_OK(nmf_lm_evaluate(&f.config, &c->tensors, &corp, NMF_TEXT_TEST, (size_t)o.test_limit,
                                 o.batch, &t));
        CHECK_OK(nmf_lm_evaluate(&f.config, &c->tensors, &corp, NMF_TEXT_VALID, (size_t)o.holdout,
                                 o.batch, &h));
        CHECK_MSG(t.loss == ci->test_loss, "%s: test loss %.17g, the trainer's %.17g", ci->name,
                  t.loss, ci->test_loss);
        CHECK(t.accuracy == ci->test_acc);
        CHECK_MSG(exp(-h.loss) == ci->heldout_acc, "%s: held-out exp(-loss) %.17g, the trainer's "
                  "%.17g", ci->name, exp(-h.loss), ci->heldout_acc);
        CHECK(t.windows == (size_t)o.test_limit && t.tokens == t.windows * 16);
        CHECK_NEAR(t.perplexity, exp(t.loss), 1e-12 * t.perplexity);
        CHECK_NEAR(t.bits_per_byte, t.loss / log(2.0), 1e-12);
        CHECK(t.perplexity > 1.0 && t.perplexity < 256.0); /* trained: far below uniform */
        CHECK(t.pattern.n == (i ? 2 : 0) && t.pattern.m == (i ? 4 : 0));
        /* the inference engine on the same windows: at f32 the trainer's figures to float
         * rounding; at bf16 and int8 close to them (a trained tiny model: within 5 % of the
         * loss), and not bit-identical to f32 (the precision really changed the arithmetic) */
        nmf_lm *lm = NULL;
        CHECK_OK(nmf_lm_create(&lm, &f.config, &c->tensors));
        if (!lm) continue;
        nmf_lm_eval_result e;
        CHECK_OK(nmf_lm_evaluate_model(lm, &corp, NMF_TEXT_TEST, (size_t)o.test_limit, 5, &e));
        CHECK_MSG(fabs(e.loss - t.loss) <= 1e-5 * t.loss, "%s: inference loss %.9g, trainer %.9g",
                  ci->name, e.loss, t.loss);
        CHECK(fabs(e.accuracy - t.accuracy) <= 2.0 / (double)t.tokens);
        CHECK(e.windows == t.windows && e.tokens == t.tokens);
        CHECK_NEAR(e.perplexity, exp(e.loss), 1e-12 * e.perplexity);
        nmf_lm_free(lm);
        if (i == 0) continue; /* dense layers keep f32 at int8 */
        for (int p = NMF_PREC_BF16; p <= NMF_PREC_INT8; p++) {
            lm = NULL;
            CHECK_OK(nmf_lm_create(&lm, &f.config, &c->tensors));
            if (!lm) continue;
            CHECK_OK(nmf_lm_set_precision(lm, (nmf_precision)p));
            nmf_lm_eval_result q;
            CHECK_OK(nmf_lm_evaluate_model(lm, &corp, NMF_TEXT_TEST, (size_t)o.test_limit, 8, &q));
            CHECK_MSG(fabs(q.loss - t.loss) <= 0.05 * t.loss && q.loss != e.loss,
                      "%s at %s: loss %.9g, f32 %.9g", ci->name,
                      nmf_precision_name((nmf_precision)p), q.loss, e.loss);
            nmf_lm_free(lm);
        }
    }

    /* 2. fine-tuning a pruned candidate with its mask fixed: make a group whose second kept
     * weight is 0 and sits after a pruned position, so that the magnitude mask of the weights
     * (ties: the lower index) would keep the pruned position instead; the tuned candidate must
     * keep exactly the init candidate's positions everywhere */
    nmf_candidate *c24 = nmf_family_find(&f, "2:4");
    nmf_tensor *t = first_nm(c24);
    CHECK(t != NULL && t->data == NULL);
    size_t crafted = (size_t)-1;
    for (size_t g = 0; t && g < t->nm->rows * t->nm->groups; g++)
        if (t->nm->pos[2 * g + 1] >= 2) { /* positions (p0, p1) with a pruned one below p1 */
            t->nm->values[2 * g + 1] = 0.0f;
            crafted = g;
            break;
        }
    CHECK(crafted != (size_t)-1);
    nmf_write_options wo = {NMF_DTYPE_F32};
    CHECK_OK(nmf_family_write(init, &f, &wo));
    nmf_train_options ft;
    options(&ft, corpus);
    ft.init_path = init;
    ft.init_model = "2:4";
    ft.method = NMF_METHOD_ASP;
    ft.dense_steps = 0;
    ft.stage_steps = 4;
    CHECK_OK(nmf_train_run(&ft, tuned, NULL, 1, NULL, NULL));
    nmf_family g;
    CHECK_OK(nmf_family_read(tuned, &g));
    nmf_candidate *before = nmf_family_find(&f, "2:4"), *after = nmf_family_find(&g, "2:4");
    CHECK(before && after);
    size_t tensors = 0, differ = 0;
    for (size_t i = 0; before && after && i < before->tensors.count; i++) {
        const nmf_tensor *a = &before->tensors.items[i];
        if (!a->nm) continue;
        const nmf_tensor *b = nmf_tensors_find(&after->tensors, a->name);
        CHECK(b && b->nm);
        if (!b || !b->nm) continue;
        tensors++;
        const size_t slots = a->nm->rows * a->nm->groups * 2;
        differ += memcmp(a->nm->pos, b->nm->pos, slots) != 0;
        /* the kept weights were trained (the zeroed one too) */
        if (a == t) CHECK(b->nm->values[2 * crafted + 1] != 0.0f);
    }
    CHECK(tensors >= 4);
    CHECK_MSG(differ == 0, "%zu of %zu tensors lost the init candidate's mask", differ, tensors);
    nmf_family_free(&g);
    /* 3. errors */
    ft.init_model = "2:4";
    ft.init_path = NULL;
    ft.dense_steps = 5;
    CHECK_STATUS(nmf_train_run(&ft, tuned, NULL, 1, NULL, NULL), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "--init-model") != NULL);
    ft.init_path = init;
    ft.init_model = "1:8";
    CHECK(nmf_train_run(&ft, tuned, NULL, 1, NULL, NULL) != NMF_OK);
    CHECK(strstr(nmf_last_error(), "1:8") != NULL);
    nmf_lm_eval_result r;
    CHECK_STATUS(nmf_lm_evaluate(&f.config, &f.models[0].tensors, &corp, NMF_TEXT_TEST, 0, 0, &r),
                 NMF_ERR_INVALID_ARG);
    nmf_model_config vit;
    nmf_model_config_default(&vit);
    CHECK_STATUS(nmf_lm_evaluate(&vit, &f.models[0].tensors, &corp, NMF_TEXT_TEST, 0, 8, &r),
                 NMF_ERR_INVALID_ARG);
    {
        nmf_lm *lm = NULL;
        CHECK_OK(nmf_lm_create(&lm, &f.config, &f.models[0].tensors));
        CHECK_STATUS(nmf_lm_evaluate_model(lm, &corp, NMF_TEXT_TEST, 0, 0, &r), NMF_ERR_INVALID_ARG);
        CHECK_STATUS(nmf_lm_evaluate_model(NULL, &corp, NMF_TEXT_TEST, 0, 8, &r), NMF_ERR_INVALID_ARG);
        nmf_corpus tiny = corp;
        tiny.len[NMF_TEXT_VALID] = 3;
        CHECK_STATUS(nmf_lm_evaluate_model(lm, &tiny, NMF_TEXT_VALID, 0, 8, &r), NMF_ERR_INVALID_ARG);
        nmf_lm_free(lm);
    }
    nmf_corpus small = corp;
    small.len[NMF_TEXT_TEST] = 16; /* shorter than a window of 17 bytes */
    CHECK_STATUS(nmf_lm_evaluate(&f.config, &f.models[0].tensors, &small, NMF_TEXT_TEST, 0, 8, &r),
                 NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "test split") != NULL);

    nmf_family_free(&f);
    nmf_corpus_free(&corp);
    remove(corpus), remove(fam), remove(init), remove(tuned);
    rmdir(dir);
    return test_finish("test_lm_eval");
}
