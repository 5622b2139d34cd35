/* Training logs, JSON lines (`nmformer train --log`): one series per log and stage. */
#include "report/report_internal.h"

#include <stdlib.h>
#include <string.h>

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
    if (t->count >= RPT_MAX_ITEMS || !rpt_grow((void **)&t->items, &cap, t->count + 1, sizeof *t->items))
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
    if ((st = rpt_number_in(path, where, -1, r, "global_step", 0, RPT_MAX_VALUE, 1, &step, NULL)) ||
        (st = rpt_number_in(path, where, -1, r, "stage_index", 0, RPT_MAX_ITEMS, 0, &index, &has_index)))
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
    if ((st = rpt_number_in(path, where, -1, r, "loss", -RPT_MAX_VALUE, RPT_MAX_VALUE, 0, &v, &found))) return st;
    if (found && !points_push(&s->loss, step, v)) goto nomem;
    if ((st = rpt_number_in(path, where, -1, r, "acc", 0, 1, 0, &v, &found))) return st;
    if (found && !points_push(&s->acc, step, v)) goto nomem;
    if ((st = rpt_number_in(path, where, -1, r, "heldout_acc", 0, 1, 0, &v, &found))) return st;
    if (found && !points_push(&s->heldout, step, v)) goto nomem;
    return NMF_OK;
nomem:
    return nmf_error(NMF_ERR_NOMEM, "%s: out of memory", path);
}

nmf_status rpt_log_load(const char *path, rpt_training *t, int file) {
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
nmf_status rpt_training_name(rpt_training *t) {
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

