/* The candidates of a family: accuracy against stored bytes (scatter + table), latency and
 * speed-up per candidate (bars). Input: summary.json (+ train_summary.json). */
#include "report/report_internal.h"

#include <stdlib.h>
#include <string.h>

#define CHART_W 560
#define CHART_H 340

static const rpt_candidate *find_dense(const rpt_summary *s) {
    for (size_t i = 0; i < s->count; i++)
        if (!strcmp(s->items[i].model, "dense")) return &s->items[i];
    return NULL;
}

static void table(FILE *f, const rpt_run *run) {
    const rpt_summary *s = &run->summary;
    const rpt_candidate *dense = find_dense(s);
    int heldout = 0, latency = 0;
    for (size_t i = 0; i < s->count; i++) {
        heldout |= s->items[i].has_heldout;
        latency |= s->items[i].has_latency;
    }
    fprintf(f, "<table class=\"data\" id=\"candidates-table\">\n<thead><tr><th>candidate</th>"
               "<th>test accuracy</th>%s<th>stored bytes</th>%s%s</tr></thead>\n<tbody>\n",
            heldout ? "<th>held-out accuracy</th>" : "",
            dense && dense->bytes > 0 ? "<th>size vs dense</th>" : "",
            latency ? "<th>latency ms</th><th>speed-up</th>" : "");
    for (size_t i = 0; i < s->count; i++) {
        const rpt_candidate *c = &s->items[i];
        fprintf(f, "<tr><td>");
        rpt_put_text(f, c->model);
        fprintf(f, "</td><td>%.2f%%</td>", 100 * c->accuracy);
        if (heldout) {
            if (c->has_heldout) fprintf(f, "<td>%.2f%%</td>", 100 * c->heldout);
            else fprintf(f, "<td>-</td>");
        }
        fprintf(f, "<td>%.0f</td>", c->bytes);
        if (dense && dense->bytes > 0) fprintf(f, "<td>%.1f%%</td>", 100 * c->bytes / dense->bytes);
        if (latency) {
            if (c->has_latency) fprintf(f, "<td>%.4f</td>", c->latency_ms);
            else fprintf(f, "<td>-</td>");
            if (c->has_speedup) fprintf(f, "<td>%.2f&#215;</td>", c->speedup);
            else fprintf(f, "<td>-</td>");
        }
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</tbody>\n</table>\n");
}

int rpt_section_candidates(FILE *f, const rpt_run *run) {
    const rpt_summary *s = &run->summary;
    fprintf(f, "<section id=\"candidates\">\n<h2>Accuracy against stored bytes</h2>\n"
               "<p>Test accuracy of each candidate against the bytes its tensors take in the "
               "family file (N:M weights: kept values plus the index code).");
    if (s->file_bytes >= 0)
        fprintf(f, " The family file holds all of them in %.0f bytes (tensors shared between "
                   "candidates are stored once).", s->file_bytes);
    fprintf(f, "</p>\n<div class=\"charts\">\n");
    double xlo = 0, xhi = 0, ylo = 100, yhi = 0;
    for (size_t i = 0; i < s->count; i++) {
        double x = s->items[i].bytes / 1e3, y = 100 * s->items[i].accuracy;
        if (x > xhi) xhi = x;
        if (y < ylo) ylo = y;
        if (y > yhi) yhi = y;
    }
    double pad = (yhi - ylo) * 0.15; /* room above and below the points for their labels */
    rpt_chart c;
    rpt_svg_begin(f, CHART_W, CHART_H, "chart scatter", "test accuracy against stored bytes");
    rpt_chart_xy(&c, f, CHART_W, CHART_H, xlo, xhi * 1.05, ylo - pad, yhi + pad,
                 "stored bytes of the candidate (kB)", "test accuracy (%)");
    for (size_t i = 0; i < s->count; i++) {
        const rpt_candidate *d = &s->items[i];
        char tip[384];
        snprintf(tip, sizeof tip, "%s: %.2f%% at %.0f bytes", d->model, 100 * d->accuracy, d->bytes);
        rpt_chart_point(&c, d->bytes / 1e3, 100 * d->accuracy, 5, rpt_color(i), "pt", d->model, tip);
    }
    rpt_svg_end(f);
    fprintf(f, "</div>\n");
    table(f, run);
    fprintf(f, "</section>\n");
    return 0;
}

/* One bar chart of a value per candidate (those that have it). */
static int bars(FILE *f, const rpt_summary *s, const char *cls, const char *title,
                 const char *ylabel, int speedup) {
    size_t n = 0;
    const char **names = calloc(s->count ? s->count : 1, sizeof *names);
    size_t *idx = calloc(s->count ? s->count : 1, sizeof *idx);
    if (!names || !idx) {
        free(names), free(idx);
        return -1;
    }
    double ymax = speedup ? 1 : 0;
    for (size_t i = 0; i < s->count; i++) {
        const rpt_candidate *c = &s->items[i];
        if (!(speedup ? c->has_speedup : c->has_latency)) continue;
        double v = speedup ? c->speedup : c->latency_ms;
        if (v > ymax) ymax = v;
        names[n] = c->model;
        idx[n++] = i;
    }
    rpt_chart ch;
    rpt_svg_begin(f, CHART_W, CHART_H, cls, title);
    rpt_chart_bands(&ch, f, CHART_W, CHART_H, n, names, ymax, ylabel);
    for (size_t k = 0; k < n; k++) {
        const rpt_candidate *c = &s->items[idx[k]];
        char value[64], tip[384];
        if (speedup) {
            snprintf(value, sizeof value, "%.2f\xc3\x97", c->speedup);
            snprintf(tip, sizeof tip, "%s: %.2f\xc3\x97 the dense model's speed", c->model, c->speedup);
        } else {
            snprintf(value, sizeof value, "%.4f", c->latency_ms);
            snprintf(tip, sizeof tip, "%s: %.4f ms", c->model, c->latency_ms);
        }
        rpt_chart_bar(&ch, k, speedup ? c->speedup : c->latency_ms, rpt_color(idx[k]), value, tip);
    }
    if (speedup) rpt_chart_hline(&ch, 1.0, NULL); /* the dense model's speed */
    rpt_svg_end(f);
    free(names);
    free(idx);
    return 0;
}

int rpt_section_latency(FILE *f, const rpt_run *run) {
    const rpt_summary *s = &run->summary;
    fprintf(f, "<section id=\"latency\">\n<h2>Latency and speed-up per pattern</h2>\n<p>");
    if (s->latency_note) {
        fprintf(f, "Latency: ");
        rpt_put_text(f, s->latency_note);
        fprintf(f, ". ");
    }
    fprintf(f, "Speed-up: the dense candidate's latency over each candidate's.</p>\n"
               "<div class=\"charts\">\n");
    if (bars(f, s, "chart bars latency", "latency per candidate", "latency (ms)", 0)) return -1;
    int any_speedup = 0;
    for (size_t i = 0; i < s->count; i++) any_speedup |= s->items[i].has_speedup;
    if (any_speedup && bars(f, s, "chart bars speedup", "speed-up per candidate", "speed-up over dense (\xc3\x97; dashed: 1\xc3\x97)", 1))
        return -1;
    fprintf(f, "</div>\n</section>\n");
    return 0;
}
