/* The simulated STA accelerator: latency per simulated candidate (bars) and, per simulation,
 * a timeline of every unit (engine, softmax unit, vector unit, DRAM) from `sim --trace`. */
#include "report/report_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define CHART_W 560
#define CHART_H 340
#define GANTT_W 1120
#define GANTT_ROW 30

/* The op's kind for colouring: "blocks.3.mlp.fc1 load" -> "mlp.fc1" (every block's fc1 alike). */
static void op_type(const char *op, char *out, size_t n) {
    const char *p = op;
    if (!strncmp(p, "blocks.", 7)) {
        const char *q = p + 7;
        while (isdigit((unsigned char)*q)) q++;
        if (q > p + 7 && *q == '.') p = q + 1;
    }
    snprintf(out, n, "%s", p);
    char *sp = strchr(out, ' '); /* DRAM transfers: " load" / " store" */
    if (sp) *sp = '\0';
}

/* Distinct op types of a simulation in order of appearance (their colour index); SIZE_MAX
 * when out of memory. */
typedef struct {
    char (*names)[64];
    size_t n, cap;
} type_set;

static size_t type_index(type_set *t, const char *type) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->names[i], type)) return i;
    if (!rpt_grow((void **)&t->names, &t->cap, t->n + 1, sizeof *t->names)) return SIZE_MAX;
    snprintf(t->names[t->n], sizeof t->names[0], "%s", type);
    return t->n++;
}

static int timeline(FILE *f, const rpt_sim *s) {
    type_set types = {0};
    const char **names = calloc(s->row_count ? s->row_count : 1, sizeof *names);
    const char **tn = NULL, **tc = NULL;
    int rc = -1;
    if (!names) return -1;
    for (size_t r = 0; r < s->row_count; r++) names[r] = s->rows[r].name;
    for (size_t r = 0; r < s->row_count; r++) /* colours in order of first appearance */
        for (size_t k = 0; k < s->rows[r].n; k++) {
            char t[64];
            op_type(s->rows[r].spans[k].op, t, sizeof t);
            if (type_index(&types, t) == SIZE_MAX) goto out;
        }
    tn = calloc(types.n ? types.n : 1, sizeof *tn);
    tc = calloc(types.n ? types.n : 1, sizeof *tc);
    if (!tn || !tc) goto out;
    const int h = (int)s->row_count * GANTT_ROW + 16 + 48;
    double legend_h = rpt_legend_height(GANTT_W - 120, types.n);
    char label[320];
    snprintf(label, sizeof label, "timeline of %s", s->file);
    rpt_svg_begin(f, GANTT_W, h + (int)legend_h + 8, "chart timeline", label);
    rpt_chart c;
    rpt_chart_rows(&c, f, GANTT_W, h, 0, s->t_end > 0 ? s->t_end : 1, s->row_count, names,
                   "time (\xc2\xb5s)");
    for (size_t r = 0; r < s->row_count; r++)
        for (size_t k = 0; k < s->rows[r].n; k++) {
            const rpt_span *sp = &s->rows[r].spans[k];
            char t[64], tip[400];
            op_type(sp->op, t, sizeof t);
            snprintf(tip, sizeof tip, "%s on %s: %.3f-%.3f \xc2\xb5s (%.3f \xc2\xb5s)", sp->op,
                     s->rows[r].name, sp->t0, sp->t1, sp->t1 - sp->t0);
            rpt_chart_span(&c, r, sp->t0, sp->t1, rpt_color(type_index(&types, t)), s->rows[r].name,
                           sp->op, tip);
        }
    for (size_t i = 0; i < types.n; i++) {
        tn[i] = types.names[i];
        tc[i] = rpt_color(i);
    }
    rpt_legend(f, c.left, h + 4, GANTT_W - 120, types.n, tn, tc);
    rpt_svg_end(f);
    rc = 0;
out:
    free(tn), free(tc), free(types.names), free(names);
    return rc;
}

static void sim_heading(FILE *f, const rpt_sim *s) {
    fprintf(f, "<h3>");
    rpt_put_text(f, s->label);
    fprintf(f, " <small>(<code>");
    rpt_put_text(f, s->file);
    fprintf(f, "</code>");
    if (s->design) {
        fprintf(f, ", design ");
        rpt_put_text(f, s->design);
    }
    fprintf(f, ")</small></h3>\n<p class=\"sim-total\">%.4f ms (%.0f cycles", s->time_ms, s->cycles);
    if (s->freq_mhz > 0) fprintf(f, " at %g MHz", s->freq_mhz);
    fprintf(f, "), %zu ops", s->ops);
    if (s->mac_efficiency >= 0) fprintf(f, ", MAC efficiency %.2f%%", 100 * s->mac_efficiency);
    fprintf(f, ".</p>\n");
}

int rpt_section_sta(FILE *f, const rpt_run *run) {
    fprintf(f, "<section id=\"sta\">\n<h2>STA accelerator (simulated)</h2>\n<p>Cycle-level "
               "simulation of the N:M sparse accelerator (docs/STA.md), batch 1. The timeline "
               "shows when each unit is busy and with which op; Q K<sup>T</sup>, softmax and "
               "A V alternate head by head.</p>\n");
    if (run->sim_count > 1) {
        const char **names = calloc(run->sim_count, sizeof *names);
        if (!names) return -1;
        {
            double ymax = 0;
            for (size_t i = 0; i < run->sim_count; i++) {
                names[i] = run->sims[i].label;
                if (run->sims[i].time_ms > ymax) ymax = run->sims[i].time_ms;
            }
            rpt_chart c;
            fprintf(f, "<div class=\"charts\">\n");
            rpt_svg_begin(f, CHART_W, CHART_H, "chart bars sta", "simulated latency per candidate");
            rpt_chart_bands(&c, f, CHART_W, CHART_H, run->sim_count, names, ymax,
                            "simulated latency (ms)");
            for (size_t i = 0; i < run->sim_count; i++) {
                const rpt_sim *s = &run->sims[i];
                char value[64], tip[400];
                snprintf(value, sizeof value, "%.4f", s->time_ms);
                snprintf(tip, sizeof tip, "%s (%s): %.4f ms", s->label, s->file, s->time_ms);
                rpt_chart_bar(&c, i, s->time_ms, rpt_color(i), value, tip);
            }
            rpt_svg_end(f);
            fprintf(f, "</div>\n");
            free(names);
        }
    }
    for (size_t i = 0; i < run->sim_count; i++) {
        const rpt_sim *s = &run->sims[i];
        fprintf(f, "<div class=\"sim\">\n");
        sim_heading(f, s);
        if (s->rows) {
            if (timeline(f, s)) return -1;
        } else {
            fprintf(f, "<p class=\"note\">No timeline: <code>");
            rpt_put_text(f, s->file);
            fprintf(f, "</code> has no <code>.trace.json</code> beside it.</p>\n");
        }
        fprintf(f, "</div>\n");
    }
    fprintf(f, "</section>\n");
    return 0;
}
