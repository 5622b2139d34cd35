/* `nmformer sim --json` output and the Chrome trace of `sim --trace` beside it. */
#include "report/report_internal.h"

#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"

static nmf_status load_trace(const char *path, rpt_sim *sim) {
    cJSON *root;
    nmf_status st = rpt_json_file(path, &root);
    if (st) return st;
    const cJSON *events = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "traceEvents");
    if (!cJSON_IsArray(events)) {
        cJSON_Delete(root);
        return nmf_error(NMF_ERR_FORMAT, "%s: want a Chrome trace (a \"traceEvents\" array)", path);
    }
    if (!(sim->rows = calloc(RPT_TRACE_ROWS, sizeof *sim->rows))) goto nomem;
    const cJSON *e;
    long i = -1;
    cJSON_ArrayForEach(e, events) {
        i++;
        const char *ph = rpt_json_string(e, "ph");
        double pid = -1, tid = 0;
        if (!ph || rpt_json_number(e, "pid", &pid) != 1 || pid != 0) continue; /* pid 1: op spans */
        if (strcmp(ph, "M") && strcmp(ph, "X")) continue;
        if ((st = rpt_number_in(path, "traceEvents", i, e, "tid", 0, RPT_TRACE_ROWS - 1, 1, &tid, NULL))) goto out;
        rpt_unit_row *row = &sim->rows[(int)tid];
        if ((size_t)tid + 1 > sim->row_count) sim->row_count = (size_t)tid + 1;
        if (!strcmp(ph, "M")) {
            const char *name = rpt_json_string(cJSON_GetObjectItemCaseSensitive(e, "args"), "name");
            const char *kind = rpt_json_string(e, "name");
            if (name && kind && !strcmp(kind, "thread_name")) {
                free(row->name);
                if (!(row->name = rpt_strdup(name))) goto nomem;
            }
            continue;
        }
        double ts = 0, dur = 0;
        const char *op = rpt_json_string(e, "name");
        if ((st = rpt_number_in(path, "traceEvents", i, e, "ts", 0, RPT_MAX_VALUE, 1, &ts, NULL)) ||
            (st = rpt_number_in(path, "traceEvents", i, e, "dur", 0, RPT_MAX_VALUE, 1, &dur, NULL)))
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

nmf_status rpt_sim_load(rpt_run *run, const char *dir, const char *file, rpt_sim *sim) {
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
    if ((st = rpt_number_in(path, "total", -1, total, "time_ms", 0, RPT_MAX_VALUE, 1, &sim->time_ms, NULL)) ||
        (st = rpt_number_in(path, "total", -1, total, "cycles", 0, RPT_MAX_VALUE, 1, &sim->cycles, NULL)) ||
        (st = rpt_number_in(path, "total", -1, total, "mac_efficiency", 0, 1, 0, &sim->mac_efficiency, NULL)))
        goto out;
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *engine = cJSON_GetObjectItemCaseSensitive(config, "engine");
    if ((st = rpt_number_in(path, "config.engine", -1, engine, "freq_mhz", 0, RPT_MAX_VALUE, 0, &sim->freq_mhz, NULL)))
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
    if (rpt_exists(trace)) st = load_trace(trace, sim);
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

