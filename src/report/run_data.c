/* What a run directory holds (include/nmformer/report.h lists the files): read, checked and
 * kept as plain arrays for the sections. A missing part is a note; a part that is there but
 * wrong is an error naming the file (and the line or the JSON member). */
#include "report/report_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/io_internal.h"


int rpt_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        if (n > SIZE_MAX / 2) return 0;
        n *= 2;
    }
    if (n > SIZE_MAX / elem) return 0;
    void *q = realloc(*p, n * elem);
    if (!q) return 0;
    *p = q;
    *cap = n;
    return 1;
}

void rpt_note(rpt_run *run, const char *fmt, ...) {
    nmf_report_info *info = run->info;
    if (info->note_count >= NMF_REPORT_MAX_NOTES) return;
    char *s = info->notes[info->note_count++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, NMF_REPORT_NOTE_LEN, fmt, ap);
    va_end(ap);
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

nmf_status rpt_number_in(const char *path, const char *what, long index, const cJSON *obj,
                         const char *key, double lo, double hi, int required, double *out,
                         int *found) {
    double v = 0;
    int r = rpt_json_number(obj, key, &v);
    if (found) *found = 0;
    if (r == 0 && !required) return NMF_OK;
    if (r <= 0 || v < lo || v > hi) {
        char where[96] = "";
        if (index >= 0) snprintf(where, sizeof where, "%s[%ld].", what, index);
        else if (what && *what) snprintf(where, sizeof where, "%s.", what);
        return nmf_error(NMF_ERR_FORMAT, "%s: %s%s: %s (want a number in [%g, %g])", path, where,
                         key, r == 0 ? "missing" : "out of range or not a number", lo, hi);
    }
    *out = v;
    if (found) *found = 1;
    return NMF_OK;
}

int rpt_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 || errno != ENOENT; /* unreadable: let the read say why */
}

/* ---- the directory ---- */

static int ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Names in dir that `want` accepts, sorted (the page's order does not depend on the filesystem). */
static nmf_status list_dir(const char *dir, int (*want)(const char *), char ***out, size_t *count) {
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return nmf_error(NMF_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    size_t cap = 0;
    nmf_status st = NMF_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!want(e->d_name)) continue;
        if (*count >= RPT_MAX_ITEMS) {
            st = nmf_error(NMF_ERR_UNSUPPORTED, "%s: over %d report inputs", dir, RPT_MAX_ITEMS);
            break;
        }
        if (!rpt_grow((void **)out, &cap, *count + 1, sizeof **out) ||
            !((*out)[*count] = rpt_strdup(e->d_name))) {
            st = nmf_error(NMF_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        (*count)++;
    }
    closedir(d);
    if (st) {
        free_names(*out, *count);
        *out = NULL;
        *count = 0;
    } else if (*count) {
        qsort(*out, *count, sizeof **out, cmp_str);
    }
    return st;
}

static int is_log(const char *name) { return name[0] != '.' && ends_with(name, ".jsonl"); }
static int is_sim(const char *name) {
    return !strncmp(name, "sim", 3) && ends_with(name, ".json") && !ends_with(name, ".trace.json");
}

/* Simulations in the order of the candidates they simulate (summary.json's order: dense first),
 * the others after them by file name. */
static int cmp_sim(const void *a, const void *b) {
    const rpt_sim *x = a, *y = b;
    return x->rank != y->rank ? (x->rank < y->rank ? -1 : 1) : strcmp(x->file, y->file);
}

static void order_sims(rpt_run *run) {
    for (size_t k = 0; k < run->sim_count; k++) {
        rpt_sim *s = &run->sims[k];
        s->rank = SIZE_MAX;
        for (size_t i = 0; i < run->summary.count && s->rank == SIZE_MAX; i++)
            if (!strcmp(run->summary.items[i].model, s->label)) s->rank = i;
    }
    if (run->sim_count > 1) qsort(run->sims, run->sim_count, sizeof *run->sims, cmp_sim);
}

nmf_status rpt_run_load(const char *dir, rpt_run *run) {
    struct stat sb;
    if (stat(dir, &sb) != 0) return nmf_error(NMF_ERR_NOT_FOUND, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return nmf_error(NMF_ERR_INVALID_ARG, "%s: not a directory", dir);
    nmf_status st = NMF_OK;
    char *path = nmf_io_path_join(dir, "summary.json");
    if (!path) return nmf_error(NMF_ERR_NOMEM, "report: out of memory");
    if (rpt_exists(path)) {
        if ((st = rpt_summary_load(path, &run->summary))) goto out;
        run->has_summary = 1;
        free(path);
        if (!(path = nmf_io_path_join(dir, "train_summary.json"))) goto nomem;
        if (rpt_exists(path)) {
            if ((st = rpt_train_summary_load(path, &run->summary))) goto out;
            run->has_train_summary = 1;
        }
    } else {
        rpt_note(run, "no summary.json: no accuracy, size or latency of the candidates (make run "
                      "writes it)");
    }
    char **names = NULL;
    size_t n = 0;
    if ((st = list_dir(dir, is_log, &names, &n))) goto out;
    rpt_training *t = &run->training;
    t->files = names;
    t->file_count = n;
    for (size_t i = 0; i < n; i++) {
        free(path);
        if (!(path = nmf_io_path_join(dir, names[i]))) goto nomem;
        if ((st = rpt_log_load(path, t, (int)i))) goto out;
        names[i][strlen(names[i]) - 6] = '\0'; /* the legend's name: without ".jsonl" */
    }
    if ((st = rpt_training_name(t))) goto out;
    if (!n) rpt_note(run, "no training log (*.jsonl, nmformer train --log): no training curves");
    else if (!t->count) rpt_note(run, "the training logs (*.jsonl) hold no records: no training curves");
    if ((st = list_dir(dir, is_sim, &names, &n))) goto out;
    if (n && !(run->sims = calloc(n, sizeof *run->sims))) {
        free_names(names, n);
        goto nomem;
    }
    for (size_t i = 0; i < n && !st; i++) {
        st = rpt_sim_load(run, dir, names[i], &run->sims[i]);
        run->sim_count = i + 1;
    }
    free_names(names, n);
    if (st) goto out;
    if (!n) rpt_note(run, "no simulation (sim*.json, nmformer sim --json): no accelerator timeline");
    order_sims(run);
    if (!run->has_summary && !t->count && !run->sim_count)
        st = nmf_error(NMF_ERR_NOT_FOUND, "%s: no summary.json, training log (*.jsonl) or "
                                          "simulation (sim*.json): nothing to report", dir);
    goto out;
nomem:
    st = nmf_error(NMF_ERR_NOMEM, "report: out of memory");
out:
    free(path);
    return st;
}

void rpt_run_free(rpt_run *run) {
    for (size_t i = 0; i < run->summary.count; i++) free(run->summary.items[i].model);
    free(run->summary.items);
    free(run->summary.latency_note);
    rpt_training *t = &run->training;
    for (size_t i = 0; i < t->count; i++) {
        rpt_series *s = &t->items[i];
        free(s->name), free(s->key), free(s->stage);
        rpt_points *p[] = {&s->loss, &s->acc, &s->heldout};
        for (int k = 0; k < 3; k++) free(p[k]->x), free(p[k]->y);
    }
    free(t->items);
    free_names(t->files, t->file_count);
    for (size_t i = 0; i < run->sim_count; i++) {
        rpt_sim *s = &run->sims[i];
        free(s->file), free(s->label), free(s->design);
        for (size_t r = 0; s->rows && r < RPT_TRACE_ROWS; r++) {
            for (size_t k = 0; k < s->rows[r].n; k++) free(s->rows[r].spans[k].op);
            free(s->rows[r].spans);
            free(s->rows[r].name);
        }
        free(s->rows);
    }
    free(run->sims);
    memset(run, 0, sizeof *run);
}
