/* nmformer train: IDP (and baselines) on Fashion-MNIST -> a family file of N:M candidates. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "nmformer/data.h"
#include "nmformer/dist.h"
#include "nmformer/io.h"
#include "nmformer/train.h"

static const char about[] =
    "Trains a ViT on Fashion-MNIST (--config demo|full) or a byte-level GPT-2 decoder on a\n"
    "text corpus (--config lm: dim 64, depth 4, 4 heads, 64-byte windows, scored by held-out\n"
    "perplexity and bits per byte): a dense stage, then one N:M stage per pattern (IDP: each\n"
    "stage starts from the previous one's weights; SR-STE masks recomputed from magnitudes).\n"
    "The best held-out checkpoint of each stage becomes a candidate; all go into FAMILY.nmf.\n"
    "--config picks the preset; every other option overrides it.\n";

static const char epilog[] =
    "Data-parallel: mpirun -np K nmformer train ... splits every batch over K processes (one\n"
    "all-reduce of the gradients a step; only rank 0 writes files and prints progress).\n";

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
        if (p->heldout_acc >= 0 && p->lm) /* the LM's held-out score is exp(-loss) */
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

static nmf_status parse_patterns(const char *s, void *dest) {
    nmf_train_options *o = dest;
    char buf[512];
    if (strlen(s) >= sizeof buf) return nmf_error(NMF_ERR_INVALID_ARG, "list too long");
    snprintf(buf, sizeof buf, "%s", s);
    o->num_patterns = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (o->num_patterns >= NMF_TRAIN_MAX_PATTERNS)
            return nmf_error(NMF_ERR_INVALID_ARG, "at most %d patterns", NMF_TRAIN_MAX_PATTERNS);
        nmf_status st = nmf_pattern_parse(tok, &o->patterns[o->num_patterns]);
        if (st) return st;
        o->num_patterns++;
    }
    return o->num_patterns > 0 ? NMF_OK : nmf_error(NMF_ERR_INVALID_ARG, "no pattern");
}

static nmf_status parse_method(const char *s, void *dest) { return nmf_train_method_parse(s, dest); }

/* The results as the JSON document of --summary FILE and --json. */
static char *summary_json(const nmf_train_options *o, const nmf_train_result *r, const char *out) {
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
    return text;
}

static int write_summary(const char *path, const char *text) {
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
    return st == NMF_OK;
}

/* What the options say besides nmf_train_options. */
typedef struct {
    const char *config, *out, *log_path, *summary;
    int report_every, quiet, json, threads;
    int steps;                        /* -1: the preset's */
    int dim, depth, heads, patch;     /* 0: the preset's (or --init's) */
    int seq_len;                      /* LM window; 0: the preset's */
    float mlp_ratio;
} train_cli;

/* One pass over argv into o (already the preset) and t. Every option is one row below; a new
 * option is a row plus, when it is not a field of nmf_train_options, its use in cmd_train. */
static int parse(int argc, char **argv, nmf_train_options *o, train_cli *t) {
    const cli_opt opts[] = {
        CLI_STR("output", 'o', &t->out, "FAMILY.nmf", "where the family goes (required)"),
        CLI_ALIAS("out", "output"),
        CLI_STR("config", 'c', &t->config, "NAME", "demo (default) or full: the ViT; lm: a byte-level\nGPT-2 on a text corpus"),
        CLI_STR("corpus", 0, &o->corpus, "PATH", "LM text: a directory of '%'-separated documents\n"
                "or one file (default /usr/share/games/fortunes,\nDebian package fortunes); split by "
                "document into\ntrain / valid (held-out) / test"),
        CLI_INT("seq-len", 0, &t->seq_len, 2, 4096, "N", "LM: bytes per training window"),
        CLI_FN("pattern", 'p', parse_patterns, o, "LIST", "N:M chain, e.g. 4:8,2:8,1:8 (default)"),
        CLI_ALIAS("patterns", "pattern"),
        CLI_FN("method", 0, parse_method, &o->method, "M", "idp (default) | srste | asp | oneshot"),
        CLI_STR("init", 0, &o->init_path, "FILE", "start from dense weights (.nmf / .safetensors);\n"
                "skips the dense stage unless --steps is given"),
        CLI_STR("init-model", 0, &o->init_model, "NAME", "the candidate of an --init family to start "
                "from\n(default: dense); an asp stage of its pattern\nkeeps its mask (one-shot + "
                "fine-tune)"),
        CLI_STR("data", 0, &o->data_dir, "DIR", "Fashion-MNIST IDX directory (default:\n"
                "$NMF_DATA_DIR or " NMF_FASHION_MNIST_DIR ")"),
        CLI_INT("steps", 0, &t->steps, 0, 100000000, "N", "dense stage steps"),
        CLI_INT("stage-steps", 0, &o->stage_steps, 0, 100000000, "N", "steps per N:M stage"),
        CLI_INT("batch", 'b', &o->batch, 1, 65536, "N", "batch size"),
        CLI_U64("seed", 0, &o->seed, "N", "RNG seed"),
        CLI_FLOAT("lr", 0, &o->lr, 0, 1e6, "X", "peak learning rate of the dense stage"),
        CLI_FLOAT("stage-lr", 0, &o->stage_lr, 0, 1e6, "X", "peak learning rate of the N:M stages"),
        CLI_FLOAT("lr-min-ratio", 0, &o->lr_min_ratio, 0, 1, "X", "cosine floor / peak"),
        CLI_INT("warmup", 0, &o->warmup, 0, 100000000, "N", "linear warm-up steps (dense stage)"),
        CLI_INT("stage-warmup", 0, &o->stage_warmup, 0, 100000000, "N", "linear warm-up steps (N:M stages)"),
        CLI_FLOAT("weight-decay", 0, &o->weight_decay, -1e6, 1e6, "X", "AdamW decoupled decay"),
        CLI_FLOAT("beta1", 0, &o->beta1, -1e6, 1e6, "X", "AdamW beta1"),
        CLI_FLOAT("beta2", 0, &o->beta2, -1e6, 1e6, "X", "AdamW beta2"),
        CLI_FLOAT("eps", 0, &o->eps, -1e6, 1e6, "X", "AdamW epsilon"),
        CLI_FLOAT("clip", 0, &o->grad_clip, -1e6, 1e6, "X", "global grad-norm clip (0: off)"),
        CLI_FLOAT("lambda", 0, &o->srste_lambda, -1e6, 1e6, "X", "SR-STE decay on pruned weights (default 2e-4)"),
        CLI_INT("mask-interval", 0, &o->mask_interval, 1, 100000000, "K", "recompute masks every K steps (default 1)"),
        CLI_FLOAT("ramp", 0, &o->ramp_frac, -1e6, 1e6, "X", "fraction of a stage used to step N down where\n"
                  "the chain skips"),
        CLI_INT("holdout", 0, &o->holdout, 1, 10000000, "N", "last N training images select checkpoints\n(default 5000)"),
        CLI_INT("eval-every", 0, &o->eval_every, 1, 100000000, "N", "held-out evaluation period (steps)"),
        CLI_INT("augment", 0, &o->augment, 0, 1, "0|1", "random shift +-2 px and horizontal flip"),
        CLI_INT("dim", 0, &t->dim, 1, 16384, "N", "model width"),
        CLI_INT("depth", 0, &t->depth, 1, 256, "N", "blocks"),
        CLI_INT("heads", 0, &t->heads, 1, 16384, "N", "attention heads"),
        CLI_INT("patch", 0, &t->patch, 1, 4096, "N", "patch size"),
        CLI_FLOAT("mlp-ratio", 0, &t->mlp_ratio, 1e-6, 1e6, "X", "MLP hidden width / dim"),
        CLI_STR("checkpoint", 0, &o->checkpoint_path, "FILE", "write a checkpoint (atomically) every\n"
                "--checkpoint-every steps"),
        CLI_INT("checkpoint-every", 0, &o->checkpoint_every, 1, 100000000, "N", "checkpoint period (steps)"),
        CLI_FLAG("resume", 0, &o->resume, "continue from --checkpoint (same options: same\nlosses)"),
        CLI_STR("log", 0, &t->log_path, "FILE", "metrics as JSON lines"),
        CLI_STR("summary", 0, &t->summary, "FILE", "results as JSON"),
        CLI_FLAG("json", 0, &t->json, "the results as JSON on stdout instead of the table"),
        CLI_INT("threads", 'j', &t->threads, 1, 1024, "N", "worker threads"),
        CLI_INT("report-every", 0, &t->report_every, 1, 100000000, "N", "progress period (steps)"),
        CLI_INT("test-limit", 0, &o->test_limit, 0, 100000000, "N", "test accuracy on the first N test images only\n"
                "(default all)"),
        CLI_INT("max-steps-this-run", 0, &o->max_steps_this_run, 0, 100000000, "N", "stop after N steps as if "
                "killed (for resume\ntests)"),
        CLI_FLAG("quiet", 'q', &t->quiet, "no progress output, no results table"),
        CLI_FLAG("deterministic", 0, &o->deterministic, "data-parallel: sum the gradients of --shards\n"
                 "fixed micro-batches in a fixed order:\nbit-identical results for any K <= --shards"),
        CLI_INT("shards", 0, &o->shards, 1, 65536, "N", "micro-batches per batch with --deterministic\n(default 8)"),
        CLI_INT("check-every", 0, &o->check_every, 1, 100000000, "N", "compare weights and masks across ranks every\n"
                "N steps (100)"),
        CLI_END,
    };
    const cli_command cmd = {"train", "--output FAMILY.nmf [options]", about, opts, {NULL}, epilog};
    return cli_parse(&cmd, argc, argv);
}


static int run(const nmf_train_options *opt, const char *out, const train_cli *t);

int cmd_train(int argc, char **argv) {
    /* --config picks the preset the other options override, wherever it stands: a first pass
     * finds it (and reports any usage error), the second fills the preset. */
    nmf_train_options o;
    train_cli t = {.config = "demo", .steps = -1};
    nmf_status st = nmf_train_options_preset(&o, "demo");
    int rc = st ? cli_fail("train", "preset", st) : parse(argc, argv, &o, &t);
    if (rc != CLI_GO_ON) return rc;
    if ((st = nmf_train_options_preset(&o, t.config)))
        return cli_usage_error("train", "--config '%s': %s", t.config, nmf_last_error());
    t = (train_cli){.config = t.config, .steps = -1};
    if ((rc = parse(argc, argv, &o, &t)) != CLI_GO_ON) return rc;
    if (!t.out) return cli_usage_error("train", "--output FAMILY.nmf is required (see --help)");
    if (t.threads) nmf_set_threads(t.threads);
    const int steps_given = t.steps >= 0;
    if (steps_given) o.dense_steps = t.steps;
    const int shape_given = t.dim || t.depth || t.heads || t.patch || t.mlp_ratio > 0;
    if (nmf_model_is_token(&o.model)) { /* the LM: its config from the preset's shape and the flags */
        const nmf_hf_config *h = &o.model.hf;
        if (t.patch) return cli_usage_error("train", "--patch is for the ViT");
        st = nmf_train_lm_config(&o.model, t.dim ? t.dim : h->hidden_size,
                                 t.depth ? t.depth : h->num_hidden_layers,
                                 t.heads ? t.heads : h->num_attention_heads,
                                 t.mlp_ratio > 0 ? t.mlp_ratio
                                                 : (float)h->intermediate_size / (float)h->hidden_size,
                                 t.seq_len ? t.seq_len : h->max_position_embeddings);
        if (st) return cli_fail("train", "LM shape", st);
    } else {
        if (t.seq_len) return cli_usage_error("train", "--seq-len is for language models (--config lm)");
        if (t.dim) o.model.dim = t.dim;
        if (t.depth) o.model.depth = t.depth;
        if (t.heads) o.model.heads = t.heads;
        if (t.patch) o.model.patch = t.patch;
        if (t.mlp_ratio > 0) o.model.mlp_ratio = t.mlp_ratio;
    }
    const char *out = t.out;
    if (o.init_path && !steps_given) o.dense_steps = 0;
    if (o.init_path && !shape_given) {
        /* train the model that --init holds: take its shape from the file */
        nmf_model_config cfg;
        nmf_tensor_set s;
        st = nmf_train_load_init(o.init_path, o.init_model, &o.model, &cfg, &s);
        if (st != NMF_OK) return cli_fail("train", o.init_path, st);
        nmf_tensors_free(&s);
        o.model = cfg;
    }
    if (o.resume && !o.checkpoint_path)
        return cli_usage_error("train", "--resume needs --checkpoint FILE");
    if ((st = nmf_model_config_validate(&o.model)) != NMF_OK) return cli_fail("train", "model", st);
    /* one of K ranks under mpirun (else rank 0 of 1): only rank 0 prints and writes the log and
     * summary; a failure on any rank ends the whole job (the others would wait for it forever) */
    if ((st = nmf_dist_init()) != NMF_OK) return cli_fail("train", "MPI", st);
    /* every rank's error a whole line (one write), even when mpirun interleaves their stderr */
    if (nmf_dist_size() > 1) setvbuf(stderr, NULL, _IOLBF, 0);
    rc = run(&o, out, &t);
    if (rc != 0 && nmf_dist_size() > 1) {
        /* An error every rank sees (a failed check) is ended by rank 0's abort; another rank
         * waits a moment first so that one abort, not K at once, ends the job. */
        if (nmf_dist_rank() != 0) sleep(2);
        nmf_dist_abort(rc);
    }
    nmf_dist_finalize();
    return rc;
}

static int run(const nmf_train_options *opt, const char *out, const train_cli *t) {
    const nmf_train_options o = *opt;
    const char *log_path = t->log_path, *summary = t->summary;
    int report_every = t->report_every, quiet = t->quiet;
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
    char *doc = summary_json(&o, &r, out);
    if (!doc) return cli_fail("train", "results", nmf_error(NMF_ERR_NOMEM, "summary document"));
    if (t->json && rank == 0) {
        printf("%s\n", doc);
    } else if (!quiet && r.lm) {
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
    const int written = !summary || write_summary(summary, doc);
    free(doc);
    if (!written) {
        fprintf(stderr, "nmformer train: cannot write --summary %s: %s\n", summary,
                nmf_last_error());
        return 1;
    }
    return 0;
}
