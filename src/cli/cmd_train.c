/* nmformer train: IDP (and baselines) on Fashion-MNIST (ViT) or on a text corpus (byte-level
 * GPT-2, --config lm) -> a family file of N:M candidates. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "nmformer/dist.h"
#include "nmformer/io.h"
#include "nmformer/train.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: nmformer train --out FAMILY.nmf [options]\n"
        "Trains a ViT on Fashion-MNIST: a dense stage, then one N:M stage per pattern (IDP: each\n"
        "stage starts from the previous one's weights; SR-STE masks recomputed from magnitudes).\n"
        "The best held-out checkpoint of each stage becomes a candidate; all go into "
        "FAMILY.nmf.\n\n"
        "  --config NAME          demo (default) or full: the ViT; lm: a byte-level GPT-2 decoder\n"
        "                         (dim 64, depth 4, 4 heads, 64-byte windows) on a text corpus,\n"
        "                         scored by held-out perplexity; every value below overrides it\n"
        "  --patterns LIST        N:M chain, e.g. 4:8,2:8,1:8 (default)\n"
        "  --method M             idp (default) | srste | asp | oneshot\n"
        "  --init FILE            start from dense weights (.nmf / .safetensors); skips the dense\n"
        "                         stage unless --steps is given\n"
        "  --data DIR             Fashion-MNIST IDX directory (default "
        "/usr/share/datasets/fashion-mnist)\n"
        "  --corpus PATH          LM text: a directory of '%%'-separated documents or one file\n"
        "                         (default /usr/share/games/fortunes, Debian package fortunes);\n"
        "                         split by document into train / valid (held-out) / test\n"
        "  --steps N              dense stage steps          --stage-steps N  steps per N:M stage\n"
        "  --batch N              batch size                 --seed N         RNG seed\n"
        "  --lr X, --stage-lr X   peak learning rates        --lr-min-ratio X cosine floor / peak\n"
        "  --warmup N, --stage-warmup N                      linear warm-up steps\n"
        "  --weight-decay X, --beta1 X, --beta2 X, --eps X   AdamW (decoupled decay)\n"
        "  --clip X               global grad-norm clip (0: off)\n"
        "  --lambda X             SR-STE decay on pruned weights (default 2e-4)\n"
        "  --mask-interval K      recompute masks every K steps (default 1)\n"
        "  --ramp X               fraction of a stage used to step N down where the chain skips\n"
        "  --holdout N            last N training images select checkpoints (default 5000; LM:\n"
        "                         N windows of the valid split, default 256)\n"
        "  --eval-every N         held-out evaluation period (steps)\n"
        "  --augment 0|1          random shift +-2 px and horizontal flip\n"
        "  --dim N --depth N --heads N --mlp-ratio X --patch N   model shape (LM: --seq-len N)\n"
        "  --checkpoint FILE      write a checkpoint (atomically) every --checkpoint-every steps\n"
        "  --resume               continue from --checkpoint (same options: same losses)\n"
        "  --log FILE             metrics as JSON lines      --summary FILE   results as JSON\n"
        "  --threads N            worker threads             --report-every N progress period\n"
        "  --test-limit N         test accuracy on the first N test images only (default all)\n"
        "  --max-steps-this-run N stop after N steps as if killed (for resume tests)\n"
        "  --quiet                no progress output\n"
        "Data-parallel: mpirun -np K nmformer train ... splits every batch over K processes (one\n"
        "all-reduce of the gradients a step; only rank 0 writes files and prints progress).\n"
        "  --deterministic        sum the gradients of --shards fixed micro-batches in a fixed\n"
        "                         order: bit-identical results for any K <= --shards\n"
        "  --shards N             micro-batches per batch with --deterministic (default 8)\n"
        "  --check-every N        compare weights and masks across ranks every N steps (100)\n");
}

typedef struct {
    FILE *log;
    int tty, quiet;
} ui;

static void fmt_time(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void on_progress(const nmf_train_progress *p, void *user) {
    ui *u = user;
    if (u->log) {
        fprintf(u->log, "{\"stage\":\"%s\",\"stage_index\":%d,\"step\":%d,\"global_step\":%lld",
                p->stage, p->stage_index, p->step, p->global_step);
        if (!p->stage_done)
            fprintf(u->log, ",\"loss\":%.9g,\"acc\":%.6g,\"lr\":%.6g,\"grad_norm\":%.6g", p->loss,
                    p->acc, p->lr, p->grad_norm);
        if (p->heldout_acc >= 0 && p->lm)
            fprintf(u->log, ",\"heldout_ppl\":%.6g,\"heldout_bpb\":%.6g", 1.0 / p->heldout_acc,
                    -log2(p->heldout_acc));
        else if (p->heldout_acc >= 0)
            fprintf(u->log, ",\"heldout_acc\":%.6g", p->heldout_acc);
        fprintf(u->log, ",\"stage_done\":%s,\"elapsed_s\":%.3f}\n",
                p->stage_done ? "true" : "false", p->elapsed_s);
        fflush(u->log);
    }
    if (u->quiet) return;
    char eta[32], el[32];
    fmt_time(eta, sizeof eta, p->eta_s);
    fmt_time(el, sizeof el, p->elapsed_s);
    if (p->stage_done && p->lm) {
        fprintf(stderr, "%s[%d/%d %s] done: best held-out perplexity %.3f (%.3f bits/byte, %s "
                "elapsed)\n", u->tty ? "\r\033[K" : "", p->stage_index + 1, p->num_stages,
                p->stage, 1.0 / p->heldout_acc, -log2(p->heldout_acc), el);
        return;
    }
    if (p->stage_done) {
        fprintf(stderr, "%s[%d/%d %s] done: best held-out accuracy %.2f%% (%s elapsed)%s\n",
                u->tty ? "\r\033[K" : "", p->stage_index + 1, p->num_stages, p->stage,
                100 * p->heldout_acc, el, "");
        return;
    }
    char held[48] = "";
    if (p->heldout_acc >= 0 && p->lm)
        snprintf(held, sizeof held, " held-out ppl %.3f", 1.0 / p->heldout_acc);
    else if (p->heldout_acc >= 0)
        snprintf(held, sizeof held, " held-out %.2f%%", 100 * p->heldout_acc);
    fprintf(stderr, "%s[%d/%d %s] step %d/%d loss %.4f acc %.1f%% lr %.2e%s | %s, ETA %s%s",
            u->tty ? "\r\033[K" : "", p->stage_index + 1, p->num_stages, p->stage, p->step,
            p->stage_total, p->loss, 100 * p->acc, p->lr, held, el, eta,
            u->tty && p->heldout_acc < 0 ? "" : "\n");
    fflush(stderr);
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return 0;
    *out = (float)v;
    return 1;
}

static int parse_patterns(const char *s, nmf_train_options *o) {
    char buf[512];
    if (strlen(s) >= sizeof buf) return 0;
    snprintf(buf, sizeof buf, "%s", s);
    o->num_patterns = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (o->num_patterns >= NMF_TRAIN_MAX_PATTERNS) return 0;
        if (nmf_pattern_parse(tok, &o->patterns[o->num_patterns]) != NMF_OK) return 0;
        o->num_patterns++;
    }
    return o->num_patterns > 0;
}

static int write_summary(const char *path, const nmf_train_options *o, const nmf_train_result *r,
                         const char *out) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "method", nmf_train_method_name(o->method));
    cJSON_AddStringToObject(root, "family", out);
    cJSON_AddNumberToObject(root, "total_steps", (double)r->total_steps);
    cJSON_AddNumberToObject(root, "seconds", r->seconds);
    cJSON *dp = cJSON_AddObjectToObject(root, "data_parallel");
    cJSON_AddNumberToObject(dp, "ranks", r->ranks);
    cJSON_AddBoolToObject(dp, "deterministic", o->deterministic);
    cJSON_AddNumberToObject(dp, "steps_run", (double)r->steps_run);
    cJSON_AddNumberToObject(dp, "step_seconds", r->step_seconds);
    cJSON_AddNumberToObject(dp, "comm_seconds", r->comm_seconds);
    cJSON_AddNumberToObject(dp, "reduced_bytes_per_step", (double)r->reduced_bytes);
    cJSON *arr = cJSON_AddArrayToObject(root, "candidates");
    for (int i = 0; i < r->count; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "model", r->cand[i].name);
        cJSON_AddNumberToObject(c, "accuracy", r->cand[i].test_acc);
        if (r->lm) { /* test figures on the corpus's test split; held-out on its valid split */
            cJSON_AddNumberToObject(c, "perplexity", exp(r->cand[i].test_loss));
            cJSON_AddNumberToObject(c, "bits_per_byte", r->cand[i].test_loss / log(2.0));
            cJSON_AddNumberToObject(c, "heldout_perplexity", 1.0 / r->cand[i].heldout_acc);
        } else {
            cJSON_AddNumberToObject(c, "heldout_accuracy", r->cand[i].heldout_acc);
        }
        cJSON_AddNumberToObject(c, "best_step", r->cand[i].best_step);
        cJSON_AddNumberToObject(c, "steps", (double)r->cand[i].steps);
        cJSON_AddItemToArray(arr, c);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return 0;
    /* atomic, like every file we write: a killed run leaves the old summary or the new one */
    nmf_atomic_file *f = NULL;
    nmf_status st = nmf_atomic_open(path, &f);
    if (st == NMF_OK) st = nmf_atomic_write(f, text, strlen(text));
    if (st == NMF_OK) st = nmf_atomic_write(f, "\n", 1);
    if (st == NMF_OK) {
        st = nmf_atomic_commit(f);
    } else if (f) {
        nmf_atomic_abort(f);
    }
    free(text);
    return st == NMF_OK;
}

static int run(const nmf_train_options *o, const char *out, const char *log_path,
               const char *summary, int report_every, int quiet);

int cmd_train(int argc, char **argv) {
    const char *config = "demo";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[i + 1];
    }
    nmf_train_options o;
    nmf_status st = nmf_train_options_preset(&o, config);
    if (st != NMF_OK) return cli_fail("train", "--config", st);
    const char *out = NULL, *log_path = NULL, *summary = NULL;
    int report_every = 0, quiet = 0, steps_given = 0, shape_given = 0, seq_len = 0;
    const int lm = nmf_model_is_token(&o.model);
    /* the LM's shape flags parse into the ViT's fields: the preset's shape unless given */
    if (lm) {
        o.model.dim = o.model.hf.hidden_size, o.model.depth = o.model.hf.num_hidden_layers;
        o.model.heads = o.model.hf.num_attention_heads;
        o.model.mlp_ratio = (float)o.model.hf.intermediate_size / (float)o.model.hf.hidden_size;
        seq_len = o.model.hf.max_position_embeddings;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define FLAG(name) (!strcmp(a, name))
#define NEED()                                                                        \
    do {                                                                              \
        if (!v) {                                                                     \
            fprintf(stderr, "nmformer train: %s needs a value\n", a);                 \
            return 2;                                                                 \
        }                                                                             \
        i++;                                                                          \
    } while (0)
#define BADV()                                                                        \
    do {                                                                              \
        fprintf(stderr, "nmformer train: bad value '%s' for %s\n", v, a);             \
        return 2;                                                                     \
    } while (0)
#define INT(name, field, lo, hi)                                                      \
    if (FLAG(name)) {                                                                 \
        NEED();                                                                       \
        if (!parse_int(v, lo, hi, &(field))) BADV();                                  \
        continue;                                                                     \
    }
#define FLT(name, field)                                                              \
    if (FLAG(name)) {                                                                 \
        NEED();                                                                       \
        if (!parse_float(v, &(field))) BADV();                                        \
        continue;                                                                     \
    }
        if (FLAG("--config")) { NEED(); continue; }
        if (FLAG("--out")) { NEED(); out = v; continue; }
        if (FLAG("--init")) { NEED(); o.init_path = v; continue; }
        if (FLAG("--data")) { NEED(); o.data_dir = v; continue; }
        if (FLAG("--corpus")) { NEED(); o.corpus = v; continue; }
        if (FLAG("--checkpoint")) { NEED(); o.checkpoint_path = v; continue; }
        if (FLAG("--log")) { NEED(); log_path = v; continue; }
        if (FLAG("--summary")) { NEED(); summary = v; continue; }
        if (FLAG("--resume")) { o.resume = 1; continue; }
        if (FLAG("--deterministic")) { o.deterministic = 1; continue; }
        if (FLAG("--quiet")) { quiet = 1; continue; }
        if (FLAG("--patterns")) { NEED(); if (!parse_patterns(v, &o)) BADV(); continue; }
        if (FLAG("--method")) {
            NEED();
            if ((st = nmf_train_method_parse(v, &o.method)) != NMF_OK)
                return cli_fail("train", "--method", st);
            continue;
        }
        if (FLAG("--seed")) {
            NEED();
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end) BADV();
            o.seed = s;
            continue;
        }
        if (FLAG("--steps")) {
            NEED();
            if (!parse_int(v, 0, 100000000, &o.dense_steps)) BADV();
            steps_given = 1;
            continue;
        }
        if (FLAG("--threads")) {
            int t;
            NEED();
            if (!parse_int(v, 1, 1024, &t)) BADV();
            nmf_set_threads(t);
            continue;
        }
        INT("--stage-steps", o.stage_steps, 0, 100000000)
        INT("--batch", o.batch, 1, 65536)
        INT("--warmup", o.warmup, 0, 100000000)
        INT("--stage-warmup", o.stage_warmup, 0, 100000000)
        INT("--mask-interval", o.mask_interval, 1, 100000000)
        INT("--holdout", o.holdout, 1, 10000000)
        INT("--eval-every", o.eval_every, 1, 100000000)
        INT("--augment", o.augment, 0, 1)
        INT("--checkpoint-every", o.checkpoint_every, 1, 100000000)
        INT("--report-every", report_every, 1, 100000000)
        INT("--max-steps-this-run", o.max_steps_this_run, 0, 100000000)
        INT("--test-limit", o.test_limit, 0, 100000000)
        INT("--shards", o.shards, 1, 65536)
        INT("--check-every", o.check_every, 1, 100000000)
        if (FLAG("--dim") || FLAG("--depth") || FLAG("--heads") || FLAG("--patch") ||
            FLAG("--mlp-ratio") || FLAG("--seq-len"))
            shape_given = 1;
        INT("--seq-len", seq_len, 2, 4096)
        INT("--dim", o.model.dim, 1, 16384)
        INT("--depth", o.model.depth, 1, 256)
        INT("--heads", o.model.heads, 1, 16384)
        INT("--patch", o.model.patch, 1, 4096)
        FLT("--mlp-ratio", o.model.mlp_ratio)
        FLT("--lr", o.lr)
        FLT("--stage-lr", o.stage_lr)
        FLT("--lr-min-ratio", o.lr_min_ratio)
        FLT("--weight-decay", o.weight_decay)
        FLT("--beta1", o.beta1)
        FLT("--beta2", o.beta2)
        FLT("--eps", o.eps)
        FLT("--clip", o.grad_clip)
        FLT("--lambda", o.srste_lambda)
        FLT("--ramp", o.ramp_frac)
        fprintf(stderr, "nmformer train: unknown option '%s' (see --help)\n", a);
        return 2;
#undef FLAG
#undef NEED
#undef BADV
#undef INT
#undef FLT
    }
    if (!out) {
        fprintf(stderr, "nmformer train: --out FAMILY.nmf is required (see --help)\n");
        return 2;
    }
    /* the LM's config from its shape (which zeroes the ViT fields used to parse it) */
    if (lm &&
        (st = nmf_train_lm_config(&o.model, o.model.dim, o.model.depth, o.model.heads,
                                  o.model.mlp_ratio, seq_len)) != NMF_OK)
        return cli_fail("train", "LM shape", st);
    if (!lm && seq_len) {
        fprintf(stderr, "nmformer train: --seq-len is for language models (--config lm)\n");
        return 2;
    }
    if (o.init_path && !steps_given) o.dense_steps = 0;
    if (o.init_path && !shape_given) {
        /* train the model that --init holds: take its shape from the file */
        nmf_model_config cfg;
        nmf_tensor_set s;
        st = nmf_train_load_init(o.init_path, &o.model, &cfg, &s);
        if (st != NMF_OK) return cli_fail("train", o.init_path, st);
        nmf_tensors_free(&s);
        o.model = cfg;
    }
    if (o.resume && !o.checkpoint_path) {
        fprintf(stderr, "nmformer train: --resume needs --checkpoint FILE\n");
        return 2;
    }
    if ((st = nmf_model_config_validate(&o.model)) != NMF_OK) return cli_fail("train", "model", st);
    /* one of K ranks under mpirun (else rank 0 of 1): only rank 0 prints and writes the log and
     * summary; a failure on any rank ends the whole job (the others would wait for it forever) */
    if ((st = nmf_dist_init()) != NMF_OK) return cli_fail("train", "MPI", st);
    /* every rank's error a whole line (one write), even when mpirun interleaves their stderr */
    if (nmf_dist_size() > 1) setvbuf(stderr, NULL, _IOLBF, 0);
    int rc = run(&o, out, log_path, summary, report_every, quiet);
    if (rc != 0 && nmf_dist_size() > 1) {
        /* An error every rank sees (a failed check) is ended by rank 0's abort; another rank
         * waits a moment first so that one abort, not K at once, ends the job. */
        if (nmf_dist_rank() != 0) sleep(2);
        nmf_dist_abort(rc);
    }
    nmf_dist_finalize();
    return rc;
}

static int run(const nmf_train_options *opt, const char *out, const char *log_path,
               const char *summary, int report_every, int quiet) {
    const nmf_train_options o = *opt;
    const int rank = nmf_dist_rank(), ranks = nmf_dist_size();
    if (rank != 0) log_path = summary = NULL, quiet = 1;
    ui u = {NULL, isatty(STDERR_FILENO), quiet};
    if (log_path) {
        /* appending keeps the first run's lines when resuming */
        u.log = fopen(log_path, o.resume ? "a+" : "w");
        if (!u.log) {
            fprintf(stderr, "nmformer train: cannot open --log %s: %s\n", log_path,
                    strerror(errno));
            return 1;
        }
        /* a killed run may have left half a line: end it so the next line stays parseable */
        if (o.resume && fseek(u.log, -1, SEEK_END) == 0) {
            int last = fgetc(u.log);
            fseek(u.log, 0, SEEK_END);
            if (last != '\n' && last != EOF) fputc('\n', u.log);
        }
    }
    if (!report_every) report_every = u.tty ? 10 : 100;
    nmf_train_result r;
    nmf_status st = nmf_train_run(&o, out, on_progress, report_every, &u, &r);
    if (u.log) fclose(u.log);
    if (st != NMF_OK) {
        char what[64] = "training failed";
        if (ranks > 1) snprintf(what, sizeof what, "training failed on rank %d of %d", rank, ranks);
        return cli_fail("train", what, st);
    }
    if (r.stopped_early) {
        fprintf(stderr,
                "nmformer train: stopped after --max-steps-this-run; resume with --resume\n");
        return 0;
    }
    if (!quiet && r.lm) {
        printf("%-8s %10s %8s %9s %10s %10s %8s\n", "model", "test ppl", "bits/B", "next-byte",
               "held-out", "best step", "steps");
        for (int i = 0; i < r.count; i++)
            printf("%-8s %10.3f %8.3f %8.2f%% %10.3f %10d %8lld\n", r.cand[i].name,
                   exp(r.cand[i].test_loss), r.cand[i].test_loss / log(2.0),
                   100 * r.cand[i].test_acc, 1.0 / r.cand[i].heldout_acc, r.cand[i].best_step,
                   r.cand[i].steps);
        printf("method %s, %lld steps in %.1f s; family written to %s\n",
               nmf_train_method_name(o.method), r.total_steps, r.seconds, out);
    } else if (!quiet) {
        printf("%-8s %10s %10s %10s %8s\n", "model", "test acc", "held-out", "best step", "steps");
        for (int i = 0; i < r.count; i++)
            printf("%-8s %9.2f%% %9.2f%% %10d %8lld\n", r.cand[i].name, 100 * r.cand[i].test_acc,
                   100 * r.cand[i].heldout_acc, r.cand[i].best_step, r.cand[i].steps);
        printf("method %s, %lld steps in %.1f s; family written to %s\n",
               nmf_train_method_name(o.method), r.total_steps, r.seconds, out);
        if (ranks > 1 && r.steps_run > 0)
            printf("data-parallel: %d ranks%s, %.1f steps/s, %lld bytes reduced a step, "
                   "communication %.1f%% of the step time\n",
                   ranks, o.deterministic ? " (deterministic)" : "",
                   (double)r.steps_run / r.step_seconds, r.reduced_bytes,
                   100.0 * r.comm_seconds / r.step_seconds);
    }
    if (summary && !write_summary(summary, &o, &r, out)) {
        fprintf(stderr, "nmformer train: cannot write --summary %s: %s\n", summary,
                nmf_last_error());
        return 1;
    }
    return 0;
}
