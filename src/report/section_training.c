/* Training curves from the JSON-lines logs: loss and accuracy over global steps, one line per
 * stage (and per log, e.g. one per method), held-out evaluations as dots of the same colour. */
#include "report/report_internal.h"

#include <stdlib.h>

#define CHART_W 560
#define CHART_H 340

typedef enum { LOSS, ACCURACY } curve;

static void range(const rpt_points *p, double scale, double *lo, double *hi, double *xlo,
                  double *xhi) {
    for (size_t i = 0; i < p->n; i++) {
        double y = scale * p->y[i];
        if (y < *lo) *lo = y;
        if (y > *hi) *hi = y;
        if (p->x[i] < *xlo) *xlo = p->x[i];
        if (p->x[i] > *xhi) *xhi = p->x[i];
    }
}

static int chart(FILE *f, const rpt_training *t, curve which) {
    double lo = 1e300, hi = -1e300, xlo = 1e300, xhi = -1e300;
    for (size_t i = 0; i < t->count; i++) {
        const rpt_series *s = &t->items[i];
        if (which == LOSS) range(&s->loss, 1, &lo, &hi, &xlo, &xhi);
        else {
            range(&s->acc, 100, &lo, &hi, &xlo, &xhi);
            range(&s->heldout, 100, &lo, &hi, &xlo, &xhi);
        }
    }
    if (lo > hi) { /* no point of this kind in any log */
        fprintf(f, "<p class=\"note\">The logs have no %s values.</p>\n",
                which == LOSS ? "loss" : "accuracy");
        return 0;
    }
    if (which == LOSS && lo > 0) lo = 0; /* a loss axis from 0 shows how far it fell */
    rpt_chart c;
    rpt_svg_begin(f, CHART_W, CHART_H, which == LOSS ? "chart lines loss" : "chart lines accuracy",
                  which == LOSS ? "training loss over steps" : "accuracy over steps");
    rpt_chart_xy(&c, f, CHART_W, CHART_H, xlo, xhi, lo, hi, "global step",
                 which == LOSS ? "training loss (batch)" : "accuracy (%): lines batch, dots held-out");
    double *ys = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < t->count; i++) {
        const rpt_series *s = &t->items[i];
        const rpt_points *p = which == LOSS ? &s->loss : &s->acc;
        if (p->n) {
            if (!rpt_grow((void **)&ys, &cap, p->n, sizeof *ys)) {
                free(ys);
                return -1;
            }
            for (size_t k = 0; k < p->n; k++) ys[k] = which == LOSS ? p->y[k] : 100 * p->y[k];
            rpt_chart_line(&c, p->n, p->x, ys, rpt_color(i), s->name, 0);
        }
        if (which == ACCURACY)
            for (size_t k = 0; k < s->heldout.n; k++) {
                char tip[320];
                snprintf(tip, sizeof tip, "%s: held-out %.2f%% at step %.0f", s->name,
                         100 * s->heldout.y[k], s->heldout.x[k]);
                rpt_chart_point(&c, s->heldout.x[k], 100 * s->heldout.y[k], 3, rpt_color(i),
                                "heldout", NULL, tip);
            }
    }
    free(ys);
    rpt_svg_end(f);
    return 0;
}

int rpt_section_training(FILE *f, const rpt_run *run) {
    const rpt_training *t = &run->training;
    fprintf(f, "<section id=\"training\">\n<h2>Training curves</h2>\n<p>From ");
    for (size_t i = 0; i < t->file_count; i++) {
        fprintf(f, "%s<code>", i ? ", " : "");
        rpt_put_text(f, t->files[i]);
        fprintf(f, ".jsonl</code>");
    }
    fprintf(f, ": the training loss and accuracy of each reported batch, and the held-out "
               "evaluations, over the run's global step; one colour per stage.</p>\n"
               "<div class=\"charts\">\n");
    if (chart(f, t, LOSS) || chart(f, t, ACCURACY)) return -1;
    fprintf(f, "</div>\n");
    const char **names = malloc((t->count ? t->count : 1) * sizeof *names);
    const char **colors = malloc((t->count ? t->count : 1) * sizeof *colors);
    int rc = names && colors ? 0 : -1;
    if (!rc) {
        for (size_t i = 0; i < t->count; i++) {
            names[i] = t->items[i].name;
            colors[i] = rpt_color(i);
        }
        const int w = 2 * CHART_W;
        double h = rpt_legend_height(w, t->count);
        rpt_svg_begin(f, w, (int)h + 4, "legend-block", "stages");
        rpt_legend(f, 4, 4, w - 8, t->count, names, colors);
        rpt_svg_end(f);
    }
    free(names);
    free(colors);
    fprintf(f, "</section>\n");
    return rc;
}
