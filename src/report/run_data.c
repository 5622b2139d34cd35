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

/* Plotted values beyond this are refused: real ones are far smaller, and a chart's arithmetic
 * (ranges, ticks) stays finite below it. */
#define MAX_VALUE 1e15
#define MAX_ITEMS 100000 /* candidates, sims, log files, series; far above a real run */
#define TRACE_MAX_ROWS 64 /* units of a trace (the sim has 4) */

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

/* A number member in [lo, hi]: 1 found, 0 absent; out of range or not a number is an error
 * naming file and member (what[index].key). */
static nmf_status number_in(const char *path, const char *what, long index, const cJSON *obj,
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

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 || errno != ENOENT; /* unreadable: let the read say why */
}

/* ---- summary.json, train_summary.json ---- */

static nmf_status load_summary(const char *path, rpt_summary *s) {
    cJSON *root;
    nmf_status st = rpt_json_file(path, &root);
    if (st) return st;
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(root, "candidates");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(cands)) {
        cJSON_Delete(root);
        return nmf_error(NMF_ERR_FORMAT, "%s: want an object with a \"candidates\" array", path);
    }
    s->file_bytes = s->train_seconds = s->total_seconds = -1;
    if ((st = number_in(path, "", -1, root, "file_bytes", 0, MAX_VALUE, 0, &s->file_bytes, NULL)) ||
        (st = number_in(path, "", -1, root, "train_seconds", 0, MAX_VALUE, 0, &s->train_seconds, NULL)) ||
        (st = number_in(path, "", -1, root, "total_seconds", 0, MAX_VALUE, 0, &s->total_seconds, NULL)))
        goto out;
    const char *note = rpt_json_string(root, "latency");
    if (note && !(s->latency_note = rpt_strdup(note))) goto nomem;
    size_t n = (size_t)cJSON_GetArraySize(cands);
    if (n > MAX_ITEMS) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: %zu candidates, over the limit of %d", path, n, MAX_ITEMS);
        goto out;
    }
    if (n && !(s->items = calloc(n, sizeof *s->items))) goto nomem;
    const cJSON *c;
    cJSON_ArrayForEach(c, cands) {
        long i = (long)s->count;
        rpt_candidate *d = &s->items[s->count];
        const char *model = rpt_json_string(c, "model");
        if (!model) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: candidates[%ld].model: missing or not a string", path, i);
            goto out;
        }
        if (!(d->model = rpt_strdup(model))) goto nomem;
        s->count++;
        if ((st = number_in(path, "candidates", i, c, "accuracy", 0, 1, 1, &d->accuracy, NULL)) ||
            (st = number_in(path, "candidates", i, c, "bytes", 0, MAX_VALUE, 1, &d->bytes, NULL)) ||
            (st = number_in(path, "candidates", i, c, "latency_ms", 0, MAX_VALUE, 0, &d->latency_ms,
                            &d->has_latency)) ||
            (st = number_in(path, "candidates", i, c, "speedup", 0, MAX_VALUE, 0, &d->speedup,
                            &d->has_speedup)))
            goto out;
    }
    goto out;
nomem:
    st = nmf_error(NMF_ERR_NOMEM, "%s: out of memory", path);
out:
    cJSON_Delete(root);
    return st;
}

/* Held-out accuracy of each candidate, matched by name (`nmformer train --summary`). */
static nmf_status load_train_summary(const char *path, rpt_summary *s) {
    cJSON *root;
    nmf_status st = rpt_json_file(path, &root);
    if (st) return st;
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(root, "candidates"), *c;
    if (!cJSON_IsObject(root) || !cJSON_IsArray(cands)) {
        cJSON_Delete(root);
        return nmf_error(NMF_ERR_FORMAT, "%s: want an object with a \"candidates\" array", path);
    }
    long i = 0;
    cJSON_ArrayForEach(c, cands) {
        const char *model = rpt_json_string(c, "model");
        double h = 0;
        int found = 0;
        if ((st = number_in(path, "candidates", i++, c, "heldout_accuracy", 0, 1, 0, &h, &found))) break;
        for (size_t k = 0; found && model && k < s->count; k++)
            if (!strcmp(s->items[k].model, model)) {
                s->items[k].heldout = h;
                s->items[k].has_heldout = 1;
            }
    }
    cJSON_Delete(root);
    return st;
}

/* ---- training logs (JSON lines) ---- */

static int points_push(rpt_points *p, double x, double y) {
    size_t cx = p->cap, cy = p->cap;
    if (!rpt_grow((void **)&p->x, &cx, p->n + 1, sizeof(double)) ||
        !rpt_grow((void **)&p->y, &cy, p->n + 1, sizeof(double)))
        return 0;
    p->cap = cx < cy ? cx : cy;
    p->x[p->n] = x;
    p->y[p->n++] = y;
    return 1;
}

/* A resumed run appends the steps it repeats: the later records replace the earlier ones. */
static void points_cut(rpt_points *p, double from_step) {
    while (p->n && p->x[p->n - 1] >= from_step) p->n--;
}

static rpt_series *series_for(rpt_training *t, int file, const char *key) {
    for (size_t i = 0; i < t->count; i++)
        if (t->items[i].file == file && !strcmp(t->items[i].key, key)) return &t->items[i];
    size_t cap = t->count;
    if (t->count >= MAX_ITEMS || !rpt_grow((void **)&t->items, &cap, t->count + 1, sizeof *t->items))
        return NULL;
    rpt_series *s = &t->items[t->count];
    memset(s, 0, sizeof *s);
    s->file = file;
    if (!(s->key = rpt_strdup(key))) return NULL;
    t->count++;
    return s;
}

static nmf_status log_record(const char *path, int line, const cJSON *r, rpt_training *t,
                             int file, double *last_step) {
    const char *stage = rpt_json_string(r, "stage");
    if (!cJSON_IsObject(r) || !stage)
        return nmf_error(NMF_ERR_FORMAT, "%s: line %d: want an object with a \"stage\" string", path,
                         line);
    double step = 0, index = 0, v = 0;
    int has_index = 0, found = 0;
    nmf_status st;
    char where[32];
    snprintf(where, sizeof where, "line %d", line);
    if ((st = number_in(path, where, -1, r, "global_step", 0, MAX_VALUE, 1, &step, NULL)) ||
        (st = number_in(path, where, -1, r, "stage_index", 0, MAX_ITEMS, 0, &index, &has_index)))
        return st;
    char key[48];
    if (has_index) snprintf(key, sizeof key, "#%ld", (long)index);
    rpt_series *s = series_for(t, file, has_index ? key : stage);
    if (!s) return nmf_error(NMF_ERR_NOMEM, "%s: out of memory", path);
    char *name = rpt_strdup(stage);
    if (!name) return nmf_error(NMF_ERR_NOMEM, "%s: out of memory", path);
    free(s->stage);
    s->stage = name;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "stage_done")))
        return NMF_OK; /* repeats the stage's best held-out accuracy: no new point */
    if (step <= *last_step)
        for (size_t i = 0; i < t->count; i++)
            if (t->items[i].file == file) {
                points_cut(&t->items[i].loss, step);
                points_cut(&t->items[i].acc, step);
                points_cut(&t->items[i].heldout, step);
            }
    *last_step = step;
    if ((st = number_in(path, where, -1, r, "loss", -MAX_VALUE, MAX_VALUE, 0, &v, &found))) return st;
    if (found && !points_push(&s->loss, step, v)) goto nomem;
    if ((st = number_in(path, where, -1, r, "acc", 0, 1, 0, &v, &found))) return st;
    if (found && !points_push(&s->acc, step, v)) goto nomem;
    if ((st = number_in(path, where, -1, r, "heldout_acc", 0, 1, 0, &v, &found))) return st;
    if (found && !points_push(&s->heldout, step, v)) goto nomem;
    return NMF_OK;
nomem:
    return nmf_error(NMF_ERR_NOMEM, "%s: out of memory", path);
}

static nmf_status load_log(const char *path, rpt_training *t, int file) {
    char *text;
    size_t size;
    nmf_status st = rpt_read_text(path, &text, &size);
    if (st) return st;
    double last_step = -1;
    int line = 0;
    for (size_t pos = 0; pos < size && !st;) {
        const char *start = text + pos, *nl = memchr(start, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - start) : size - pos;
        pos += len + 1;
        line++;
        size_t k = 0;
        while (k < len && (start[k] == ' ' || start[k] == '\t' || start[k] == '\r')) k++;
        if (k == len) continue; /* blank line */
        cJSON *r;
        if ((st = rpt_json_text(path, line, start, len, &r))) break;
        st = log_record(path, line, r, t, file, &last_step);
        cJSON_Delete(r);
    }
    free(text);
    return st;
}

/* Legend names, once every log is read: the stage, with the log's name when there are several. */
static nmf_status name_series(rpt_training *t) {
    for (size_t i = 0; i < t->count; i++) {
        rpt_series *s = &t->items[i];
        const char *file = t->files[s->file];
        size_t n = strlen(file) + strlen(s->stage) + 3;
        if (!(s->name = malloc(n))) return nmf_error(NMF_ERR_NOMEM, "report: out of memory");
        if (t->file_count > 1) snprintf(s->name, n, "%s: %s", file, s->stage);
        else snprintf(s->name, n, "%s", s->stage);
    }
    return NMF_OK;
}

/* ---- sim*.json and their traces ---- */

static nmf_status load_trace(const char *path, rpt_sim *sim) {
    cJSON *root;
    nmf_status st = rpt_json_file(path, &root);
    if (st) return st;
    const cJSON *events = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "traceEvents");
    if (!cJSON_IsArray(events)) {
        cJSON_Delete(root);
        return nmf_error(NMF_ERR_FORMAT, "%s: want a Chrome trace (a \"traceEvents\" array)", path);
    }
    if (!(sim->rows = calloc(TRACE_MAX_ROWS, sizeof *sim->rows))) goto nomem;
    const cJSON *e;
    long i = -1;
    cJSON_ArrayForEach(e, events) {
        i++;
        const char *ph = rpt_json_string(e, "ph");
        double pid = -1, tid = 0;
        if (!ph || rpt_json_number(e, "pid", &pid) != 1 || pid != 0) continue; /* pid 1: op spans */
        if (strcmp(ph, "M") && strcmp(ph, "X")) continue;
        if ((st = number_in(path, "traceEvents", i, e, "tid", 0, TRACE_MAX_ROWS - 1, 1, &tid, NULL))) goto out;
        rpt_unit_row *row = &sim->rows[(int)tid];
        if ((size_t)tid + 1 > sim->row_count) sim->row_count = (size_t)tid + 1;
        if (!strcmp(ph, "M")) {
            const char *name = rpt_json_string(cJSON_GetObjectItemCaseSensitive(e, "args"), "name");
            if (name && !strcmp(rpt_json_string(e, "name") ? rpt_json_string(e, "name") : "", "thread_name")) {
                free(row->name);
                if (!(row->name = rpt_strdup(name))) goto nomem;
            }
            continue;
        }
        double ts = 0, dur = 0;
        const char *op = rpt_json_string(e, "name");
        if ((st = number_in(path, "traceEvents", i, e, "ts", 0, MAX_VALUE, 1, &ts, NULL)) ||
            (st = number_in(path, "traceEvents", i, e, "dur", 0, MAX_VALUE, 1, &dur, NULL)))
            goto out;
        if (!rpt_grow((void **)&row->spans, &row->cap, row->n + 1, sizeof *row->spans)) goto nomem;
        rpt_span *sp = &row->spans[row->n];
        if (!(sp->op = rpt_strdup(op ? op : "?"))) goto nomem;
        row->n++;
        sp->t0 = ts;
        sp->t1 = ts + dur;
        if (sp->t1 > sim->t_end) sim->t_end = sp->t1;
    }
    for (size_t r = 0; r < sim->row_count; r++)
        if (!sim->rows[r].name) {
            char name[32];
            snprintf(name, sizeof name, "unit %zu", r);
            if (!(sim->rows[r].name = rpt_strdup(name))) goto nomem;
        }
    goto out;
nomem:
    st = nmf_error(NMF_ERR_NOMEM, "%s: out of memory", path);
out:
    cJSON_Delete(root);
    return st;
}

static nmf_status load_sim(rpt_run *run, const char *dir, const char *file, rpt_sim *sim) {
    char *path = nmf_io_path_join(dir, file), *trace = NULL;
    cJSON *root = NULL;
    nmf_status st;
    if (!path || !(sim->file = rpt_strdup(file))) goto nomem;
    if ((st = rpt_json_file(path, &root))) goto out;
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(root, "total");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(root, "ops");
    if (!cJSON_IsObject(total) || !cJSON_IsArray(ops)) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: want `nmformer sim --json` output (\"total\" and \"ops\")", path);
        goto out;
    }
    sim->ops = (size_t)cJSON_GetArraySize(ops);
    sim->mac_efficiency = sim->freq_mhz = -1;
    if ((st = number_in(path, "total", -1, total, "time_ms", 0, MAX_VALUE, 1, &sim->time_ms, NULL)) ||
        (st = number_in(path, "total", -1, total, "cycles", 0, MAX_VALUE, 1, &sim->cycles, NULL)) ||
        (st = number_in(path, "total", -1, total, "mac_efficiency", 0, 1, 0, &sim->mac_efficiency, NULL)))
        goto out;
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *engine = cJSON_GetObjectItemCaseSensitive(config, "engine");
    if ((st = number_in(path, "config.engine", -1, engine, "freq_mhz", 0, MAX_VALUE, 0, &sim->freq_mhz, NULL)))
        goto out;
    const char *design = rpt_json_string(cJSON_GetObjectItemCaseSensitive(config, "design"), "name");
    const char *pattern = rpt_json_string(cJSON_GetObjectItemCaseSensitive(root, "model"), "pattern");
    if (design && !(sim->design = rpt_strdup(design))) goto nomem;
    /* the sim calls a model without one N:M pattern "dense/mixed": the dense candidate here */
    if (!(sim->label = rpt_strdup(!pattern ? file : !strcmp(pattern, "dense/mixed") ? "dense" : pattern)))
        goto nomem;
    /* the timeline: NAME.trace.json next to NAME.json */
    size_t n = strlen(path);
    if (!(trace = malloc(n + 8))) goto nomem;
    memcpy(trace, path, n - 5);
    strcpy(trace + n - 5, ".trace.json");
    if (exists(trace)) st = load_trace(trace, sim);
    else
        rpt_note(run, "%s has no timeline: no %.*s.trace.json next to it (nmformer sim --trace)",
                 file, (int)(strlen(file) - 5), file);
    goto out;
nomem:
    st = nmf_error(NMF_ERR_NOMEM, "%s: out of memory", file);
out:
    cJSON_Delete(root);
    free(trace);
    free(path);
    return st;
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
        if (*count >= MAX_ITEMS) {
            st = nmf_error(NMF_ERR_UNSUPPORTED, "%s: over %d report inputs", dir, MAX_ITEMS);
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
    if (exists(path)) {
        if ((st = load_summary(path, &run->summary))) goto out;
        run->has_summary = 1;
        free(path);
        if (!(path = nmf_io_path_join(dir, "train_summary.json"))) goto nomem;
        if (exists(path)) {
            if ((st = load_train_summary(path, &run->summary))) goto out;
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
        if ((st = load_log(path, t, (int)i))) goto out;
        names[i][strlen(names[i]) - 6] = '\0'; /* the legend's name: without ".jsonl" */
    }
    if ((st = name_series(t))) goto out;
    if (!n) rpt_note(run, "no training log (*.jsonl, nmformer train --log): no training curves");
    else if (!t->count) rpt_note(run, "the training logs (*.jsonl) hold no records: no training curves");
    if ((st = list_dir(dir, is_sim, &names, &n))) goto out;
    if (n && !(run->sims = calloc(n, sizeof *run->sims))) {
        free_names(names, n);
        goto nomem;
    }
    for (size_t i = 0; i < n && !st; i++) {
        st = load_sim(run, dir, names[i], &run->sims[i]);
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
        for (size_t r = 0; s->rows && r < TRACE_MAX_ROWS; r++) {
            for (size_t k = 0; k < s->rows[r].n; k++) free(s->rows[r].spans[k].op);
            free(s->rows[r].spans);
            free(s->rows[r].name);
        }
        free(s->rows);
    }
    free(run->sims);
    memset(run, 0, sizeof *run);
}
