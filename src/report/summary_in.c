/* summary.json (make run's table) and train_summary.json (`nmformer train --summary`). */
#include "report/report_internal.h"

#include <stdlib.h>
#include <string.h>

nmf_status rpt_summary_load(const char *path, rpt_summary *s) {
    cJSON *root;
    nmf_status st = rpt_json_file(path, &root);
    if (st) return st;
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(root, "candidates");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(cands)) {
        cJSON_Delete(root);
        return nmf_error(NMF_ERR_FORMAT, "%s: want an object with a \"candidates\" array", path);
    }
    s->file_bytes = s->train_seconds = s->total_seconds = -1;
    if ((st = rpt_number_in(path, "", -1, root, "file_bytes", 0, RPT_MAX_VALUE, 0, &s->file_bytes, NULL)) ||
        (st = rpt_number_in(path, "", -1, root, "train_seconds", 0, RPT_MAX_VALUE, 0, &s->train_seconds, NULL)) ||
        (st = rpt_number_in(path, "", -1, root, "total_seconds", 0, RPT_MAX_VALUE, 0, &s->total_seconds, NULL)))
        goto out;
    const char *note = rpt_json_string(root, "latency");
    if (note && !(s->latency_note = rpt_strdup(note))) goto nomem;
    size_t n = (size_t)cJSON_GetArraySize(cands);
    if (n > RPT_MAX_ITEMS) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: %zu candidates, over the limit of %d", path, n, RPT_MAX_ITEMS);
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
        if ((st = rpt_number_in(path, "candidates", i, c, "accuracy", 0, 1, 1, &d->accuracy, NULL)) ||
            (st = rpt_number_in(path, "candidates", i, c, "bytes", 0, RPT_MAX_VALUE, 1, &d->bytes, NULL)) ||
            (st = rpt_number_in(path, "candidates", i, c, "latency_ms", 0, RPT_MAX_VALUE, 0, &d->latency_ms,
                            &d->has_latency)) ||
            (st = rpt_number_in(path, "candidates", i, c, "speedup", 0, RPT_MAX_VALUE, 0, &d->speedup,
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
nmf_status rpt_train_summary_load(const char *path, rpt_summary *s) {
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
        if ((st = rpt_number_in(path, "candidates", i++, c, "heldout_accuracy", 0, 1, 0, &h, &found))) break;
        for (size_t k = 0; found && model && k < s->count; k++)
            if (!strcmp(s->items[k].model, model)) {
                s->items[k].heldout = h;
                s->items[k].has_heldout = 1;
            }
    }
    cJSON_Delete(root);
    return st;
}

