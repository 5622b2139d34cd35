/* IDP and its baselines: the stage plan, the training loop (SR-STE / ASP), held-out checkpoint
 * selection, checkpoints + resume, and the family file at the end.
 *
 * Determinism: every source of randomness is a function of (seed, global step) -- the data order
 * of epoch e is a Fisher-Yates shuffle seeded by (seed, e), augmentation of step g is seeded by
 * (seed, g) -- so a checkpoint only needs the counters, and a resumed run repeats exactly what
 * an uninterrupted run would have done.
 *
 * Data parallelism (nmformer/dist.h): every rank builds the same global batch and runs the
 * forward and backward of its own rows only; the gradients (and the step's loss and correct
 * count) are summed over the ranks in one all-reduce of the gradient buffer, after which every
 * rank holds the same gradient and takes the same optimizer step, so weights and masks stay
 * identical everywhere without being sent (a checksum verifies it every --check-every steps).
 * Evaluations split their examples over the ranks and sum the correct counts.
 *
 * Two tasks share all of this: the ViT on Fashion-MNIST (examples are images, the held-out score
 * is accuracy) and the GPT-2 LM on a text corpus (lm_data.c: examples are windows of T bytes,
 * the held-out score is exp(-loss) on the corpus's valid split, i.e. 1 / perplexity, and the
 * candidates are measured on its test split). The model config's family picks the task. */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "train/dist.h"
#include "train/train_internal.h"

typedef enum { STAGE_DENSE = 0, STAGE_SRSTE, STAGE_ASP, STAGE_ONESHOT } stage_kind;

typedef struct {
    char name[32];
    stage_kind kind;
    nmf_pattern target, from; /* from: the previous stage's pattern ({0,0} dense) for ramps */
    int steps;
    int source; /* candidate index the stage starts from; -1: init / random */
} stage_plan;

/* ---- plan --------------------------------------------------------------------------------- */
static nmf_status make_plan(const nmf_train_options *o, stage_plan *plan, int *count) {
    int n = 0;
    plan[n] = (stage_plan){.kind = STAGE_DENSE, .steps = o->dense_steps, .source = -1};
    snprintf(plan[n].name, sizeof plan[n].name, "dense");
    n++;
    for (int i = 0; i < o->num_patterns; i++) {
        stage_plan *s = &plan[n];
        memset(s, 0, sizeof *s);
        nmf_pattern_format(o->patterns[i], s->name, sizeof s->name);
        s->target = o->patterns[i];
        s->steps = o->stage_steps;
        s->source = 0;
        switch (o->method) {
        case NMF_METHOD_IDP:
            s->kind = STAGE_SRSTE;
            s->source = n - 1;
            s->from = i == 0 ? (nmf_pattern){0, 0} : o->patterns[i - 1];
            break;
        case NMF_METHOD_SRSTE: s->kind = STAGE_SRSTE; break;
        case NMF_METHOD_ASP: s->kind = STAGE_ASP; break;
        default: s->kind = STAGE_ONESHOT; s->steps = 0; break;
        }
        for (int j = 1; j < n; j++)
            if (!strcmp(plan[j].name, s->name))
                return nmf_error(NMF_ERR_INVALID_ARG, "pattern %s listed twice", s->name);
        n++;
    }
    *count = n;
    return NMF_OK;
}

nmf_pattern nmf_idp_stage_pattern(nmf_pattern from, nmf_pattern target, int steps, int step,
                                  float ramp_frac) {
    int gap = from.m == target.m ? from.n - target.n : 0;
    if (gap <= 1 || steps <= 0) return target;
    int ramp = (int)(ramp_frac * (float)steps), sub = gap - 1;
    if (step >= ramp || ramp < sub) return target;
    int k = step / (ramp / sub);
    if (k >= sub) k = sub - 1;
    return (nmf_pattern){from.n - 1 - k, target.m};
}

static nmf_pattern stage_pattern(const stage_plan *s, int step, float ramp_frac) {
    if (s->kind == STAGE_DENSE) return (nmf_pattern){0, 0};
    return nmf_idp_stage_pattern(s->from, s->target, s->steps, step, ramp_frac);
}

/* ---- fingerprint: FNV-1a over the options that shape the trajectory ----------------------- */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

static uint64_t fingerprint(const nmf_train_options *o) {
    uint64_t h = 0xCBF29CE484222325ull;
    const nmf_model_config *c = &o->model;
    int ints[] = {c->img_size, c->patch, c->in_chans, c->dim, c->depth, c->heads, c->num_classes,
                  (int)o->method, o->num_patterns, o->batch, o->dense_steps, o->stage_steps,
                  o->warmup, o->stage_warmup, o->mask_interval, o->holdout, o->eval_every,
                  o->augment, o->init_path != NULL};
    float fl[] = {c->mlp_ratio, c->mean, c->std, o->lr, o->stage_lr, o->lr_min_ratio,
                  o->weight_decay, o->beta1, o->beta2, o->eps, o->grad_clip, o->srste_lambda,
                  o->ramp_frac};
    h = fnv(h, ints, sizeof ints);
    h = fnv(h, fl, sizeof fl);
    if (nmf_model_is_token(c)) { /* only then, so that ViT checkpoints keep their fingerprint */
        const nmf_hf_config *f = &c->hf;
        int lm[] = {f->hidden_size, f->num_hidden_layers, f->num_attention_heads,
                    f->intermediate_size, f->vocab_size, f->max_position_embeddings,
                    (int)f->hidden_act};
        h = fnv(h, lm, sizeof lm);
        h = fnv(h, &f->norm_eps, sizeof f->norm_eps);
    }
    h = fnv(h, o->patterns, sizeof o->patterns[0] * (size_t)o->num_patterns);
    h = fnv(h, &o->seed, sizeof o->seed);
    /* the fixed micro-batches change the rounding of every step; the number of ranks does not
     * enter: a checkpoint resumes with any K (only hashed when on, so that older checkpoints
     * keep their fingerprint) */
    if (o->deterministic) h = fnv(h, &o->shards, sizeof o->shards);
    if (o->init_model) h = fnv(h, o->init_model, strlen(o->init_model)); /* (only when set, too) */
    return h;
}

nmf_status nmf_train_load_init(const char *path, const char *name,
                               const nmf_model_config *fallback, nmf_model_config *config,
                               nmf_tensor_set *tensors) {
    if (name) return nmf_load_model(path, name, fallback, config, tensors);
    /* a family: its dense model; a single model: that one */
    nmf_status st = nmf_load_model(path, "dense", fallback, config, tensors);
    if (st == NMF_ERR_NOT_FOUND) st = nmf_load_model(path, NULL, fallback, config, tensors);
    return st;
}

/* The mask of the --init-model candidate, for the `asp` stages of its pattern: read from its
 * packed tensors (nmf_vit_train_import_masks) into mask (mask_total bytes); m is left dense and
 * its weights untouched. *pattern {0,0}: the candidate is dense. */
static nmf_status load_init_mask(nmf_vit_train *m, const nmf_train_options *o, uint8_t *mask,
                                 nmf_pattern *pattern) {
    nmf_model_config cfg;
    nmf_tensor_set s;
    nmf_status st = nmf_train_load_init(o->init_path, o->init_model, &o->model, &cfg, &s);
    if (st != NMF_OK) return st;
    st = nmf_vit_train_import_masks(m, &s, pattern);
    nmf_tensors_free(&s);
    if (st != NMF_OK) return nmf_error_context(st, "--init-model %s", o->init_model);
    if (pattern->m) memcpy(mask, m->mask_mem, m->mask_total);
    return nmf_vit_train_use_pattern(m, (nmf_pattern){0, 0});
}

/* ---- data stream -------------------------------------------------------------------------- */
typedef struct {
    const nmf_dataset *ds;
    size_t ntrain;  /* examples used for training: the first ds->n - holdout */
    size_t *perm;   /* order of the cached epoch */
    long long epoch; /* which epoch perm holds (-1: none) */
    uint64_t seed;
} stream;

static void stream_epoch(stream *s, long long e) {
    if (s->epoch == e) return;
    uint64_t r = s->seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(e + 1));
    for (size_t i = 0; i < s->ntrain; i++) s->perm[i] = i;
    for (size_t i = s->ntrain - 1; i > 0; i--) {
        size_t j = (size_t)nmf_rng_below(&r, i + 1);
        size_t t = s->perm[i];
        s->perm[i] = s->perm[j];
        s->perm[j] = t;
    }
    s->epoch = e;
}

/* indices of the batch of global step g: positions g*B .. g*B+B-1 of the endless shuffled stream */
static void stream_batch(stream *s, long long g, int B, size_t *idx) {
    for (int b = 0; b < B; b++) {
        unsigned long long pos = (unsigned long long)g * (unsigned long long)B + (unsigned)b;
        stream_epoch(s, (long long)(pos / s->ntrain));
        idx[b] = s->perm[pos % s->ntrain];
    }
}

/* Random shift by up to +-2 pixels (background fill) and horizontal flip, per image. */
static void augment(float *x, int B, int S, float fill, uint64_t seed, long long g) {
    uint64_t r = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(g + 7));
    float tmp[64 * 64];
    if (S > 64) return;
    for (int b = 0; b < B; b++) {
        float *img = x + (size_t)b * S * S;
        int dx = (int)nmf_rng_below(&r, 5) - 2, dy = (int)nmf_rng_below(&r, 5) - 2;
        int flip = (int)nmf_rng_below(&r, 2);
        for (int y = 0; y < S; y++)
            for (int xx = 0; xx < S; xx++) {
                int sy = y + dy, sx = xx + dx;
                if (flip) sx = S - 1 - sx;
                tmp[y * S + xx] =
                    (sy >= 0 && sy < S && sx >= 0 && sx < S) ? img[sy * S + sx] : fill;
            }
        memcpy(img, tmp, (size_t)S * S * sizeof(float));
    }
}

/* ---- helpers ------------------------------------------------------------------------------ */
static void copy_state(float *dst_p, uint8_t *dst_m, nmf_vit_train *m) {
    memcpy(dst_p, m->param_mem, m->num_params * sizeof(float));
    memcpy(dst_m, m->mask_mem, m->mask_total);
}

/* Loads params + mask + pattern (a candidate) into the model. */
static nmf_status load_state(nmf_vit_train *m, const float *p, const uint8_t *mask,
                             nmf_pattern pat) {
    memcpy(m->param_mem, p, m->num_params * sizeof(float));
    nmf_status st = nmf_vit_train_use_pattern(m, pat); /* masks: the candidate's, below */
    if (st != NMF_OK) return st;
    if (pat.m) {
        memcpy(m->mask_mem, mask, m->mask_total);
        nmf_vit_train_refresh_masked(m);
    }
    return NMF_OK;
}

/* Accuracy over examples first .. first+count of ds, split over the ranks: the examples are cut
 * into chunks of the model's batch size, each rank evaluates a contiguous run of chunks, and the
 * correct counts are summed exactly. (With --deterministic the chunk size does not depend on the
 * number of ranks, so neither does any prediction.) */
static nmf_status eval_split(nmf_vit_train *m, const nmf_dataset *ds, size_t first, size_t count,
                             double *acc) {
    const size_t E = (size_t)m->max_batch, chunks = (count + E - 1) / E;
    nmf_dist_part mine = nmf_dist_split(chunks, nmf_dist_size(), nmf_dist_rank());
    size_t b = mine.begin * E, e = (mine.begin + mine.count) * E;
    if (e > count) e = count;
    long long right = 0;
    if (e > b) {
        size_t *idx = malloc((e - b) * sizeof *idx);
        if (!idx) return nmf_error(NMF_ERR_NOMEM, "evaluation indices");
        for (size_t i = b; i < e; i++) idx[i - b] = first + i;
        nmf_status st = nmf_vit_train_count_correct(m, ds, idx, e - b, &right, NULL);
        free(idx);
        if (st != NMF_OK) return st;
    }
    nmf_status st = nmf_dist_allreduce_i64(&right, 1);
    if (st != NMF_OK) return st;
    *acc = (double)right / (double)count;
    return NMF_OK;
}

/* What a run learns from: Fashion-MNIST images (ViT) or a text corpus (LM). */
typedef struct {
    int lm, T;                   /* LM: T bytes a window */
    nmf_dataset train, test;     /* ViT: held-out = the last `holdout` training images */
    size_t hold_start, holdout;
    nmf_corpus corpus;           /* LM: train / valid / test by document */
    size_t valid_windows;
} run_data;

/* The score of the current weights on the held-out examples (test = 0) or on the test set
 * (test = 1, the first `limit` examples / windows when limit > 0): ViT accuracy; LM exp(-mean
 * loss) (1 / perplexity, higher is better like an accuracy), with its loss and next-token
 * accuracy (may be NULL). */
static nmf_status eval_score(nmf_vit_train *m, const run_data *d, int test, int limit,
                             double *score, double *loss, double *acc) {
    if (d->lm) {
        const nmf_text_split sp = test ? NMF_TEXT_TEST : NMF_TEXT_VALID;
        const size_t len = d->corpus.len[sp];
        const size_t n = test ? nmf_lm_eval_windows(len, d->T, limit > 0 ? (size_t)limit : 0)
                              : d->valid_windows;
        double l = 0, a = 0;
        nmf_status st = nmf_lm_eval_split(m, d->corpus.text[sp], len, n, &l, &a);
        if (st != NMF_OK) return st;
        *score = exp(-l);
        if (loss) *loss = l;
        if (acc) *acc = a;
        return NMF_OK;
    }
    if (loss) *loss = 0;
    nmf_status st;
    if (!test) {
        st = eval_split(m, &d->train, d->hold_start, d->holdout, score);
    } else {
        size_t n = limit > 0 && (size_t)limit < d->test.n ? (size_t)limit : d->test.n;
        st = eval_split(m, &d->test, 0, n, score);
    }
    if (st == NMF_OK && acc) *acc = *score;
    return st;
}

/* Held-out score of the current weights. SR-STE evaluates the magnitude mask of the current
 * weights (what the candidate will be), then puts the training mask back so that the training
 * trajectory does not depend on when we evaluate. */
static nmf_status eval_heldout(nmf_vit_train *m, const run_data *d, int fixed_mask,
                               uint8_t *mask_backup, double *score) {
    if (m->pattern.m && !fixed_mask) {
        memcpy(mask_backup, m->mask_mem, m->mask_total);
        nmf_status st = nmf_vit_train_update_masks(m);
        if (st != NMF_OK) return st;
    }
    return eval_score(m, d, 0, 0, score, NULL, NULL);
}

static void restore_mask(nmf_vit_train *m, int fixed_mask, const uint8_t *mask_backup) {
    if (m->pattern.m && !fixed_mask) {
        memcpy(m->mask_mem, mask_backup, m->mask_total);
        nmf_vit_train_refresh_masked(m);
    }
}

static nmf_status write_family(nmf_vit_train *m, const nmf_run_state *rs, const char *path) {
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = m->cfg;
    nmf_status st = NMF_OK;
    for (int i = 0; i < rs->ncand && st == NMF_OK; i++) {
        const nmf_run_candidate *c = &rs->cand[i];
        st = load_state(m, c->params, c->mask, c->pattern);
        nmf_tensor_set s;
        if (st == NMF_OK) st = nmf_vit_train_export(m, 1, &s);
        if (st == NMF_OK) {
            st = nmf_family_add(&fam, c->name, &s);
            nmf_tensors_free(&s);
        }
    }
    nmf_write_options wo = {NMF_DTYPE_F32};
    if (st == NMF_OK) st = nmf_family_write(path, &fam, &wo);
    nmf_family_free(&fam);
    return st;
}

static nmf_status check_options(const nmf_train_options *o) {
#define BAD(...) return nmf_error(NMF_ERR_INVALID_ARG, __VA_ARGS__)
    if (o->batch < 1 || o->batch > 65536) BAD("--batch %d out of range 1..65536", o->batch);
    if (o->dense_steps < 0 || o->stage_steps < 0) BAD("step counts must be >= 0");
    if (o->num_patterns < 0 || o->num_patterns > NMF_TRAIN_MAX_PATTERNS)
        BAD("1..%d patterns", NMF_TRAIN_MAX_PATTERNS);
    for (int i = 0; i < o->num_patterns; i++)
        if (!nmf_pattern_valid(o->patterns[i])) BAD("invalid pattern #%d", i + 1);
    if (!(o->lr > 0) || !(o->stage_lr > 0) || !(o->lr_min_ratio >= 0) || o->lr_min_ratio > 1)
        BAD("learning rates must be > 0 (lr-min-ratio in [0,1])");
    if (o->warmup < 0 || o->stage_warmup < 0) BAD("warm-up must be >= 0");
    if (!(o->weight_decay >= 0) || !(o->beta1 >= 0 && o->beta1 < 1) ||
        !(o->beta2 >= 0 && o->beta2 < 1) || !(o->eps > 0))
        BAD("AdamW: weight decay >= 0, betas in [0,1), eps > 0");
    if (!(o->srste_lambda >= 0)) BAD("--lambda must be >= 0");
    if (o->mask_interval < 1) BAD("--mask-interval must be >= 1");
    if (!(o->ramp_frac >= 0 && o->ramp_frac < 1)) BAD("--ramp must be in [0,1)");
    if (o->holdout < 1) BAD("--holdout must be >= 1");
    if (o->eval_every < 1) BAD("--eval-every must be >= 1");
    if (o->checkpoint_every < 1) BAD("--checkpoint-every must be >= 1");
    if (o->dense_steps == 0 && !o->init_path)
        BAD("no dense training and no --init: nothing to prune");
    if (o->init_model && !o->init_path) BAD("--init-model names a candidate of --init FAMILY");
    if (!nmf_model_is_token(&o->model) && o->model.in_chans != 1)
        BAD("Fashion-MNIST has 1 channel (model in_chans %d)", o->model.in_chans);
    if (nmf_model_is_token(&o->model) && o->augment) BAD("--augment is for images, not text");
    const int K = nmf_dist_size();
    if (o->check_every < 1) BAD("--check-every must be >= 1");
    if (o->deterministic) {
        if (o->shards < 1 || o->shards > o->batch)
            BAD("--shards %d must be in 1..%d (the batch size)", o->shards, o->batch);
        if (K > o->shards)
            BAD("--deterministic with %d shards runs on at most %d ranks (%d started): raise "
                "--shards", o->shards, o->shards, K);
    } else if (K > o->batch) {
        BAD("--batch %d is smaller than the number of ranks (%d)", o->batch, K);
    }
#undef BAD
    return NMF_OK;
}

/* A SIGKILL during an atomic write leaves "<path>.XXXXXX.tmp" behind (never the file itself);
 * a resumed run removes those leftovers of its own checkpoint and output. */
static void remove_stale_temps(const char *path) {
    if (!path) return;
    char pat[4200];
    if ((size_t)snprintf(pat, sizeof pat, "%s.??????.tmp", path) >= sizeof pat) return;
    glob_t g;
    if (glob(pat, GLOB_NOSORT, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++) remove(g.gl_pathv[i]);
    globfree(&g);
}

/* ---- one step's gradient over the ranks ----------------------------------------------------- */
/* The rows of the global batch this rank computes: one part (its share) by default; with
 * --deterministic its run of the fixed shards. *parts is allocated. */
static nmf_status rank_parts(const nmf_train_options *o, nmf_dist_part **parts, int *nparts,
                             int *max_rows) {
    const int K = nmf_dist_size(), R = nmf_dist_rank();
    nmf_dist_part shards = {0, 1};
    if (o->deterministic) shards = nmf_dist_split((size_t)o->shards, K, R);
    *nparts = (int)shards.count;
    if (!(*parts = malloc(shards.count * sizeof **parts)))
        return nmf_error(NMF_ERR_NOMEM, "batch parts");
    if (o->deterministic) {
        for (size_t j = 0; j < shards.count; j++)
            (*parts)[j] = nmf_dist_split((size_t)o->batch, o->shards, (int)(shards.begin + j));
        *max_rows = (int)nmf_dist_split((size_t)o->batch, o->shards, 0).count;
    } else {
        (*parts)[0] = nmf_dist_split((size_t)o->batch, K, R);
        *max_rows = (int)nmf_dist_split((size_t)o->batch, K, 0).count;
    }
    return NMF_OK;
}

/* One global batch: images (B, pix) and labels (ViT), or windows ids / targets (B, T) (LM). */
typedef struct {
    const float *x;
    const int *labels;
    size_t pix;
    const int *ids, *targets;
    size_t T;
} batch_data;

/* Forward (with labels) of examples [begin, begin + count) of the batch */
static nmf_status forward_part(nmf_vit_train *m, const batch_data *d, size_t begin, size_t count,
                               float *loss, int *correct) {
    if (d->ids)
        return nmf_lm_train_forward(m, d->ids + begin * d->T, d->targets + begin * d->T,
                                    (int)count, loss, correct);
    return nmf_vit_train_forward(m, d->x + begin * d->pix, d->labels + begin, (int)count, loss,
                                 correct);
}

/* Gradient of the global batch's mean loss into m's gradient buffer, identical on every rank,
 * with the batch's mean loss and correct count in the buffer's tail (NMF_GRAD_TAIL). Each rank
 * runs forward + backward on its parts of the whole global batch d; the backward divides by the
 * global batch size (m->loss_denom), so the parts' gradients just add up. Default: one
 * all-reduce of the buffer. Deterministic: every shard's buffer is kept and the shards are
 * summed in shard order (nmf_dist_ordered_sum). */
static nmf_status batch_gradients(nmf_vit_train *m, const batch_data *d,
                                  const nmf_dist_part *parts, int nparts, int batch,
                                  float *const *shard_grads) {
    const size_t n = m->num_params + NMF_GRAD_TAIL;
    float *tail = m->grad_mem + m->num_params;
    for (int j = 0; j < nparts; j++) {
        const nmf_dist_part *p = &parts[j];
        float loss = 0.0f;
        int correct = 0;
        nmf_status st = forward_part(m, d, p->begin, p->count, &loss, &correct);
        if (st == NMF_OK) st = nmf_vit_train_backward(m);
        if (st != NMF_OK) return st;
        tail[0] = loss * ((float)p->count / (float)batch); /* this part's share of the mean */
        tail[1] = (float)correct;
        if (shard_grads) memcpy(shard_grads[j], m->grad_mem, n * sizeof(float));
    }
    if (shard_grads) return nmf_dist_ordered_sum(m->grad_mem, shard_grads, nparts, n);
    return nmf_dist_allreduce_f32(m->grad_mem, n);
}

/* Every rank must hold the same weights and masks: compared by checksum (with one rank: no-op). */
static nmf_status check_same_state(nmf_vit_train *m, long long step) {
    if (nmf_dist_size() == 1) return NMF_OK;
    uint32_t crc = nmf_crc32_update(0, (const uint8_t *)m->param_mem, m->num_params * sizeof(float));
    if (m->pattern.m) crc = nmf_crc32_update(crc, m->mask_mem, m->mask_total);
    uint64_t h = (uint64_t)crc << 32 | (uint32_t)(m->pattern.n << 16 | m->pattern.m);
    return nmf_dist_check_same(h, "weights and masks", step);
}

/* ---- the run ------------------------------------------------------------------------------ */
/* Creates and removes a temporary file next to path (what an atomic write will do). */
static nmf_status probe_writable(const char *path, const char *flag) {
    if (!path) return NMF_OK;
    nmf_atomic_file *f;
    nmf_status st = nmf_atomic_open(path, &f);
    if (st != NMF_OK) return nmf_error_context(st, "%s %s: cannot be written", flag, path);
    nmf_atomic_abort(f);
    return NMF_OK;
}

nmf_status nmf_train_run(const nmf_train_options *o, const char *out_path,
                         nmf_train_callback progress, int report_every, void *user,
                         nmf_train_result *result) {
    if (result) memset(result, 0, sizeof *result);
    nmf_status st = check_options(o);
    if (st != NMF_OK) return st;
    stage_plan plan[NMF_TRAIN_MAX_PATTERNS + 1];
    int nstages = 0;
    if ((st = make_plan(o, plan, &nstages)) != NMF_OK) return st;
    if (report_every < 1) report_every = 1;
    /* a run that can only fail at the end, after hours of training, loses the work: check now
     * that the family and the checkpoints can be written where they are asked for */
    const int K = nmf_dist_size(), R = nmf_dist_rank();
    if (R == 0 && ((st = probe_writable(out_path, "--out")) != NMF_OK ||
                   (st = probe_writable(o->checkpoint_path, "--checkpoint")) != NMF_OK))
        return st;

    run_data data = {0};
    nmf_dataset *train = &data.train;
    nmf_vit_train *m = NULL;
    nmf_run_state rs;
    memset(&rs, 0, sizeof rs);
    size_t *idx = NULL;
    float *x = NULL;
    int *labels = NULL, *ids = NULL, *targets = NULL;
    uint8_t *mask_backup = NULL, *init_mask = NULL;
    nmf_pattern init_pattern = {0, 0}; /* the --init-model candidate's; {0,0}: dense */
    stream ds_stream = {0};
    nmf_dist_part *parts = NULL;
    float **shard_grads = NULL;
    int nparts = 0, max_rows = 0;
    double step_s = 0, comm_s = 0;
    long long steps_this_run = 0;

    data.lm = nmf_model_is_token(&o->model);
    if (data.lm) {
        data.T = o->model.hf.max_position_embeddings;
        if ((st = nmf_corpus_load(&data.corpus, o->corpus)) != NMF_OK) goto done;
        for (int sp = 0; sp < NMF_TEXT_SPLITS; sp++)
            if (data.corpus.len[sp] <= (size_t)data.T) {
                st = nmf_error(NMF_ERR_INVALID_ARG, "corpus %s: its %s split has %zu bytes (%zu "
                               "documents), fewer than a window of %d", o->corpus ? o->corpus
                               : NMF_FORTUNES_DIR, nmf_text_split_name((nmf_text_split)sp),
                               data.corpus.len[sp], data.corpus.docs[sp], data.T + 1);
                goto done;
            }
        data.valid_windows = nmf_lm_eval_windows(data.corpus.len[NMF_TEXT_VALID], data.T,
                                                 (size_t)o->holdout);
    } else {
        if ((st = nmf_dataset_load(train, o->data_dir, NMF_SPLIT_TRAIN)) != NMF_OK) goto done;
        if ((size_t)o->holdout >= train->n) {
            st = nmf_error(NMF_ERR_INVALID_ARG, "--holdout %d leaves no training data (%zu "
                           "examples)", o->holdout, train->n);
            goto done;
        }
        if (train->rows != o->model.img_size || train->cols != o->model.img_size) {
            st = nmf_error(NMF_ERR_SHAPE, "images are %dx%d, model img_size %d", train->rows,
                           train->cols, o->model.img_size);
            goto done;
        }
        data.holdout = (size_t)o->holdout;
        data.hold_start = train->n - data.holdout;
    }
    if ((st = rank_parts(o, &parts, &nparts, &max_rows)) != NMF_OK) goto done;
    if ((st = nmf_vit_train_create(&m, &o->model, max_rows)) != NMF_OK) goto done;
    m->loss_denom = o->batch; /* each rank's gradient is its share of the global mean's */
    for (int i = 0; i < o->num_patterns; i++) {
        /* fail now, not after the dense stage */
        if ((st = nmf_vit_train_use_pattern(m, o->patterns[i])) != NMF_OK) goto done;
    }
    nmf_vit_train_use_pattern(m, (nmf_pattern){0, 0});

    const size_t P = m->num_params, MB = m->mask_total ? m->mask_total : 1;
    rs.fingerprint = fingerprint(o);
    rs.num_stages = nstages;
    rs.best_acc = -1;
    rs.best_params = nmf_alloc(P, sizeof(float));
    rs.best_mask = nmf_alloc(MB, 1);
    mask_backup = nmf_alloc(MB, 1);
    init_mask = nmf_alloc(MB, 1);
    int ok = rs.best_params && rs.best_mask && mask_backup && init_mask;
    for (int i = 0; i < nstages && ok; i++) {
        rs.cand[i].params = nmf_alloc(P, sizeof(float));
        rs.cand[i].mask = nmf_alloc(MB, 1);
        ok = rs.cand[i].params && rs.cand[i].mask;
    }
    const size_t pix = (size_t)train->rows * train->cols, BT = (size_t)o->batch * data.T;
    if (data.lm) {
        ids = nmf_alloc(BT, sizeof(int));
        targets = nmf_alloc(BT, sizeof(int));
        ok = ok && ids && targets;
    } else {
        idx = nmf_alloc((size_t)o->batch, sizeof(size_t));
        x = nmf_alloc((size_t)o->batch * pix, sizeof(float));
        labels = nmf_alloc((size_t)o->batch, sizeof(int));
        ds_stream = (stream){train, train->n - data.holdout, nmf_alloc(train->n, sizeof(size_t)),
                             -1, o->seed};
        ok = ok && idx && x && labels && ds_stream.perm;
    }
    const batch_data bd = {x, labels, pix, ids, targets, (size_t)data.T};
    if (o->deterministic && (shard_grads = calloc((size_t)nparts, sizeof *shard_grads)))
        for (int j = 0; j < nparts && ok; j++)
            ok = (shard_grads[j] = nmf_alloc(P + NMF_GRAD_TAIL, sizeof(float))) != NULL;
    if (!ok || (o->deterministic && !shard_grads)) {
        st = nmf_error(NMF_ERR_NOMEM, "training state");
        goto done;
    }

    /* before the checkpoint: a resumed run needs the init mask for the stages still to come */
    if (o->init_model && (st = load_init_mask(m, o, init_mask, &init_pattern)) != NMF_OK) goto done;
    if (o->resume && o->checkpoint_path) {
        int have = 0; /* no checkpoint yet (killed before the first one): start fresh */
        if (R == 0) {
            remove_stale_temps(o->checkpoint_path);
            remove_stale_temps(out_path);
            have = access(o->checkpoint_path, F_OK) == 0;
        }
        if ((st = nmf_dist_bcast(&have, sizeof have, 0)) != NMF_OK) goto done;
        if (have && (st = nmf_checkpoint_load(o->checkpoint_path, m, &rs)) != NMF_OK) goto done;
    }
    if (rs.stage == 0 && !rs.stage_started) {
        if (o->init_path) {
            nmf_model_config cfg;
            nmf_tensor_set s;
            if ((st = nmf_train_load_init(o->init_path, o->init_model, &o->model, &cfg, &s)) != NMF_OK)
                goto done;
            if (strcmp(cfg.arch, o->model.arch) || cfg.dim != o->model.dim ||
                cfg.depth != o->model.depth ||
                cfg.patch != o->model.patch || cfg.heads != o->model.heads ||
                cfg.mlp_ratio != o->model.mlp_ratio || cfg.num_classes != o->model.num_classes) {
                nmf_tensors_free(&s);
                st = nmf_error(NMF_ERR_SHAPE, "%s: its model config differs from the training "
                               "config (pass the matching --config / model flags)", o->init_path);
                goto done;
            }
            st = nmf_vit_train_import(m, &s);
            nmf_tensors_free(&s);
            if (st != NMF_OK) goto done;
        } else {
            nmf_vit_train_init(m, o->seed);
        }
    }
    /* same options, same starting point everywhere (e.g. the same --init file on every node) */
    if ((st = nmf_dist_check_same(rs.fingerprint, "options", rs.global_step)) != NMF_OK ||
        (st = check_same_state(m, rs.global_step)) != NMF_OK)
        goto done;

    long long global_total = 0;
    for (int i = 0; i < nstages; i++) global_total += plan[i].steps;
    const double t0 = nmf_now();
    const float fill = data.lm ? 0.0f : (0.0f - o->model.mean) / o->model.std;

    for (; rs.stage < nstages; rs.stage++, rs.step = 0, rs.stage_started = 0) {
        const stage_plan *sp = &plan[rs.stage];
        const int fixed_mask = sp->kind == STAGE_ASP;
        const float lr_max = sp->kind == STAGE_DENSE ? o->lr : o->stage_lr;
        const int warmup = sp->kind == STAGE_DENSE ? o->warmup : o->stage_warmup;
        nmf_adamw_config ac = {lr_max, o->beta1, o->beta2, o->eps, o->weight_decay, o->grad_clip};
        if (!rs.stage_started) {
            if (sp->source >= 0) {
                const nmf_run_candidate *src = &rs.cand[sp->source];
                if ((st = load_state(m, src->params, src->mask, src->pattern)) != NMF_OK) goto done;
            }
            if ((st = nmf_vit_train_set_pattern(m, stage_pattern(sp, 0, o->ramp_frac))) != NMF_OK)
                goto done;
            if (fixed_mask && init_pattern.m && init_pattern.n == sp->target.n &&
                init_pattern.m == sp->target.m) {
                /* fine-tuning a pruned --init-model: its own mask, not its weights' magnitudes */
                memcpy(m->mask_mem, init_mask, m->mask_total);
                nmf_vit_train_refresh_masked(m);
            }
            if (fixed_mask) {
                /* ASP: prune once, pruned weights stay exactly zero */
                for (int q = 0; q < m->desc.kind_count; q++) {
                    if (!m->desc.kinds[q].nm) continue;
                    float *w = m->param_mem + m->offsets[q];
                    const uint8_t *mk = m->mask_mem + m->mask_offsets[q];
                    for (size_t i = 0; i < m->sizes[q]; i++)
                        if (!mk[i]) w[i] = 0.0f;
                }
                nmf_vit_train_refresh_masked(m);
            }
            nmf_vit_train_reset_optimizer(m);
            rs.best_acc = -1;
            rs.best_step = 0;
            rs.stage_started = 1;
        }
        float loss_sum = 0, acc_sum = 0;
        int window = 0;
        for (; rs.step < sp->steps; rs.step++) {
            if (o->max_steps_this_run > 0 && steps_this_run >= o->max_steps_this_run) {
                if (result) result->stopped_early = 1;
                goto done; /* as if killed: the last checkpoint is what a resume sees */
            }
            nmf_pattern pat = stage_pattern(sp, rs.step, o->ramp_frac);
            if (pat.n != m->pattern.n || pat.m != m->pattern.m) {
                if ((st = nmf_vit_train_set_pattern(m, pat)) != NMF_OK) goto done;
            } else if (!fixed_mask && pat.m && rs.step % o->mask_interval == 0) {
                if ((st = nmf_vit_train_update_masks(m)) != NMF_OK) goto done;
            }
            const double step_t0 = nmf_now(), comm0 = nmf_dist_stats_get().seconds;
            if (data.lm) {
                nmf_lm_sample_batch(ids, targets, data.corpus.text[NMF_TEXT_TRAIN],
                                    data.corpus.len[NMF_TEXT_TRAIN], o->batch, data.T, o->seed,
                                    rs.global_step);
            } else {
                stream_batch(&ds_stream, rs.global_step, o->batch, idx);
                if ((st = nmf_dataset_batch(x, labels, train, idx, (size_t)o->batch,
                                            o->model.mean, o->model.std)) != NMF_OK)
                    goto done;
                if (o->augment) augment(x, o->batch, train->rows, fill, o->seed, rs.global_step);
            }
            if ((st = batch_gradients(m, &bd, parts, nparts, o->batch, shard_grads)) != NMF_OK)
                goto done;
            const float loss = m->grad_mem[P];
            const int correct = (int)m->grad_mem[P + 1];
            if (sp->kind == STAGE_SRSTE) nmf_vit_train_srste_decay(m, o->srste_lambda);
            if (fixed_mask) nmf_vit_train_mask_grads(m);
            ac.lr = nmf_lr_cosine(rs.step, sp->steps, warmup, lr_max, lr_max * o->lr_min_ratio);
            float gnorm = nmf_vit_train_adamw_step(m, &ac, rs.step + 1);
            rs.global_step++;
            steps_this_run++;
            step_s += nmf_now() - step_t0;
            comm_s += nmf_dist_stats_get().seconds - comm0;
            if (rs.global_step % o->check_every == 0 &&
                (st = check_same_state(m, rs.global_step)) != NMF_OK)
                goto done;
            loss_sum += loss;
            acc_sum += (float)correct / (float)(data.lm ? BT : (size_t)o->batch);
            window++;

            const int last = rs.step + 1 == sp->steps;
            double held = -1;
            if ((rs.step + 1) % o->eval_every == 0 || last) {
                if ((st = eval_heldout(m, &data, fixed_mask, mask_backup, &held)) != NMF_OK)
                    goto done;
                if (held > rs.best_acc) {
                    rs.best_acc = held;
                    rs.best_step = rs.step + 1;
                    copy_state(rs.best_params, rs.best_mask, m);
                }
                restore_mask(m, fixed_mask, mask_backup);
            }
            if (progress && R == 0 && ((rs.step + 1) % report_every == 0 || last || held >= 0)) {
                double el = nmf_now() - t0;
                nmf_train_progress pr = {
                    .stage = sp->name, .stage_index = rs.stage, .num_stages = nstages,
                    .step = rs.step + 1, .stage_total = sp->steps, .global_step = rs.global_step,
                    .global_total = global_total, .loss = loss_sum / window,
                    .acc = acc_sum / window, .lr = ac.lr, .grad_norm = gnorm,
                    .heldout_acc = held, .elapsed_s = rs.elapsed_s + el, .lm = data.lm,
                    .eta_s = el / (double)steps_this_run * (double)(global_total - rs.global_step),
                };
                char label[32];
                if (pat.n != sp->target.n && sp->kind != STAGE_DENSE) {
                    nmf_pattern_format(pat, label, sizeof label);
                    pr.stage = label;
                }
                progress(&pr, user);
                loss_sum = acc_sum = 0;
                window = 0;
            }
            if (R == 0 && o->checkpoint_path && rs.global_step % o->checkpoint_every == 0 && !last) {
                rs.step++; /* the checkpoint records the NEXT step to run */
                nmf_run_state tmp = rs;
                tmp.elapsed_s += nmf_now() - t0;
                st = nmf_checkpoint_save(o->checkpoint_path, m, &tmp);
                rs.step--;
                if (st != NMF_OK) goto done;
            }
        }
        /* stage done: its best held-out checkpoint is the candidate */
        nmf_run_candidate *c = &rs.cand[rs.ncand];
        snprintf(c->name, sizeof c->name, "%s", sp->name);
        c->pattern = sp->kind == STAGE_DENSE ? (nmf_pattern){0, 0} : sp->target;
        c->steps = sp->steps;
        if (rs.best_acc < 0) {
            /* no training step (one-shot, or dense from --init): the weights as they are */
            if (sp->kind != STAGE_DENSE &&
                (st = nmf_vit_train_set_pattern(m, sp->target)) != NMF_OK)
                goto done;
            if ((st = eval_heldout(m, &data, 1, mask_backup, &rs.best_acc)) != NMF_OK)
                goto done;
            rs.best_step = 0;
            copy_state(rs.best_params, rs.best_mask, m);
        }
        memcpy(c->params, rs.best_params, P * sizeof(float));
        memcpy(c->mask, rs.best_mask, m->mask_total);
        c->heldout_acc = rs.best_acc;
        c->best_step = rs.best_step;
        rs.ncand++;
        if (progress && R == 0) {
            double el = nmf_now() - t0;
            nmf_train_progress pr = {
                .stage = sp->name, .stage_index = rs.stage, .num_stages = nstages,
                .step = sp->steps, .stage_total = sp->steps, .global_step = rs.global_step,
                .global_total = global_total, .heldout_acc = rs.best_acc,
                .elapsed_s = rs.elapsed_s + el, .stage_done = 1, .lm = data.lm,
                .eta_s = steps_this_run ? el / (double)steps_this_run *
                                              (double)(global_total - rs.global_step) : 0,
            };
            progress(&pr, user);
        }
        if (R == 0 && o->checkpoint_path) {
            nmf_run_state tmp = rs;
            tmp.stage++, tmp.step = 0, tmp.stage_started = 0;
            tmp.elapsed_s += nmf_now() - t0;
            if ((st = nmf_checkpoint_save(o->checkpoint_path, m, &tmp)) != NMF_OK) goto done;
        }
    }

    /* test accuracy of every candidate (the test split is only ever used here) */
    if (!data.lm && (st = nmf_dataset_load(&data.test, o->data_dir, NMF_SPLIT_TEST)) != NMF_OK)
        goto done;
    if (result) {
        result->lm = data.lm;
        result->count = rs.ncand;
        result->total_steps = global_total;
        for (int i = 0; i < rs.ncand; i++) {
            const nmf_run_candidate *c = &rs.cand[i];
            nmf_train_candidate_info *ci = &result->cand[i];
            snprintf(ci->name, sizeof ci->name, "%s", c->name);
            ci->heldout_acc = c->heldout_acc;
            ci->best_step = c->best_step;
            ci->steps = c->steps;
            if ((st = load_state(m, c->params, c->mask, c->pattern)) != NMF_OK) goto done;
            double score;
            if ((st = eval_score(m, &data, 1, o->test_limit, &score, &ci->test_loss,
                                 &ci->test_acc)) != NMF_OK)
                goto done;
        }
    }
    if (R == 0 && out_path && (st = write_family(m, &rs, out_path)) != NMF_OK) goto done;
    if (result) result->seconds = rs.elapsed_s + (nmf_now() - t0);

done:
    if (result) {
        result->ranks = K;
        result->steps_run = steps_this_run;
        result->step_seconds = step_s;
        result->comm_seconds = comm_s;
        result->reduced_bytes = m ? (long long)((m->num_params + NMF_GRAD_TAIL) * sizeof(float)) : 0;
    }
    for (int j = 0; shard_grads && j < nparts; j++) nmf_free(shard_grads[j]);
    free(shard_grads);
    free(parts);
    for (int i = 0; i < nstages; i++) {
        nmf_free(rs.cand[i].params);
        nmf_free(rs.cand[i].mask);
    }
    nmf_free(rs.best_params);
    nmf_free(rs.best_mask);
    nmf_free(mask_backup);
    nmf_free(init_mask);
    nmf_free(idx);
    nmf_free(x);
    nmf_free(labels);
    nmf_free(ids);
    nmf_free(targets);
    nmf_free(ds_stream.perm);
    nmf_vit_train_free(m);
    nmf_dataset_free(&data.train);
    nmf_dataset_free(&data.test);
    nmf_corpus_free(&data.corpus);
    return st;
}
