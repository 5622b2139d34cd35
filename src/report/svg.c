/* A small SVG writer for the report's charts: frame, grid, ticks, axis titles, polylines,
 * points, bars and legends. Coordinates are px of the SVG's own box; the page scales it. */
#include "report/report_internal.h"

#include <math.h>

/* Margins around the plot area: room for tick labels (left, bottom) and the axis titles. */
#define M_LEFT 64
#define M_RIGHT 16
#define M_TOP 16
#define M_BOTTOM 48
#define ROW_LABELS 110 /* room for unit names left of a timeline */

/* Colour-blind-friendly first (Okabe-Ito), then Tableau's; cycles beyond. */
static const char *const palette[] = {"#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9",
                                      "#d55e00", "#f0e442", "#000000", "#4e79a7", "#f28e2b",
                                      "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
                                      "#ff9da7", "#9c755f", "#bab0ac"};

const char *rpt_color(size_t i) { return palette[i % (sizeof palette / sizeof palette[0])]; }

void rpt_svg_begin(FILE *f, int width, int height, const char *cls, const char *label) {
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"");
    rpt_put_text(f, cls);
    fprintf(f, "\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
            width, height, width, height);
    rpt_put_text(f, label);
    fprintf(f, "\">\n<title>");
    rpt_put_text(f, label);
    fprintf(f, "</title>\n");
}

void rpt_svg_end(FILE *f) { fprintf(f, "</svg>\n"); }

double rpt_chart_px(const rpt_chart *c, double x) {
    if (c->categories) return c->left + c->width * (x + 0.5) / (double)c->categories;
    return c->left + c->width * (x - c->x.lo) / (c->x.hi - c->x.lo);
}

double rpt_chart_py(const rpt_chart *c, double y) {
    return c->top + c->height * (1.0 - (y - c->y.lo) / (c->y.hi - c->y.lo));
}

static void frame(rpt_chart *c, FILE *f, int width, int height) {
    c->f = f;
    c->left = M_LEFT;
    c->top = M_TOP;
    c->width = width - M_LEFT - M_RIGHT;
    c->height = height - M_TOP - M_BOTTOM;
}

/* Horizontal grid lines and y tick labels, the y title turned along the axis. */
static void y_axis(const rpt_chart *c, const char *ylabel) {
    FILE *f = c->f;
    char t[64];
    fprintf(f, "<g class=\"axis y\">\n");
    for (int i = 0; i < c->y.count; i++) {
        double v = rpt_tick_at(&c->y, i), y = rpt_chart_py(c, v);
        rpt_tick_label(t, sizeof t, v, c->y.step);
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                   "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                c->left, y, c->left + c->width, y, c->left - 6, y + 4, t);
    }
    fprintf(f, "<text class=\"axis-title\" transform=\"translate(14 %.1f) rotate(-90)\" "
               "text-anchor=\"middle\">",
            c->top + c->height / 2);
    rpt_put_text(f, ylabel);
    fprintf(f, "</text>\n</g>\n");
}

static void x_title(const rpt_chart *c, const char *xlabel) {
    fprintf(c->f, "<text class=\"axis-title\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
            c->left + c->width / 2, c->top + c->height + 40);
    rpt_put_text(c->f, xlabel);
    fprintf(c->f, "</text>\n");
}

/* Vertical grid lines and x tick labels, then the x title. */
static void x_axis(const rpt_chart *c, const char *xlabel) {
    FILE *f = c->f;
    char t[64];
    fprintf(f, "<g class=\"axis x\">\n");
    for (int i = 0; i < c->x.count; i++) {
        double v = rpt_tick_at(&c->x, i), x = rpt_chart_px(c, v);
        rpt_tick_label(t, sizeof t, v, c->x.step);
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                   "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                x, c->top, x, c->top + c->height, x, c->top + c->height + 16, t);
    }
    x_title(c, xlabel);
    fprintf(f, "</g>\n");
}

static void box(const rpt_chart *c) {
    fprintf(c->f, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n",
            c->left, c->top, c->width, c->height);
}

void rpt_chart_xy(rpt_chart *c, FILE *f, int width, int height, double xlo, double xhi,
                  double ylo, double yhi, const char *xlabel, const char *ylabel) {
    frame(c, f, width, height);
    c->categories = 0;
    c->rows = 0;
    rpt_ticks_nice(xlo, xhi, 6, &c->x);
    rpt_ticks_nice(ylo, yhi, 5, &c->y);
    box(c);
    y_axis(c, ylabel);
    x_axis(c, xlabel);
}

void rpt_chart_rows(rpt_chart *c, FILE *f, int width, int height, double xlo, double xhi,
                    size_t rows, const char *const *names, const char *xlabel) {
    frame(c, f, width, height);
    c->left = ROW_LABELS;
    c->width = width - ROW_LABELS - M_RIGHT;
    c->categories = 0;
    c->rows = rows ? rows : 1;
    rpt_ticks_nice(xlo, xhi, 8, &c->x);
    c->y.lo = 0; /* rows top to bottom: row r spans y in [r, r + 1] counted from the top */
    c->y.hi = (double)c->rows;
    box(c);
    x_axis(c, xlabel);
    fprintf(f, "<g class=\"axis y\">\n");
    for (size_t r = 0; r < rows; r++) {
        fprintf(f, "<text class=\"row-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
                c->left - 6, rpt_chart_row_y(c, r) + rpt_chart_row_h(c) / 2 + 4);
        rpt_put_text(f, names[r]);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</g>\n");
}

double rpt_chart_row_y(const rpt_chart *c, size_t row) {
    return c->top + c->height * (double)row / (double)c->rows;
}

double rpt_chart_row_h(const rpt_chart *c) { return c->height / (double)c->rows; }

void rpt_chart_span(const rpt_chart *c, size_t row, double x0, double x1, const char *color,
                    const char *unit, const char *op, const char *tooltip) {
    FILE *f = c->f;
    double px0 = rpt_chart_px(c, x0), px1 = rpt_chart_px(c, x1);
    double h = rpt_chart_row_h(c), y = rpt_chart_row_y(c, row) + h * 0.15;
    fprintf(f, "<rect class=\"span\" data-unit=\"");
    rpt_put_text(f, unit);
    fprintf(f, "\" data-op=\"");
    rpt_put_text(f, op);
    /* at least 0.4 px: a short op still shows as a hairline */
    fprintf(f, "\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"%s\"><title>",
            px0, y, px1 - px0 > 0.4 ? px1 - px0 : 0.4, h * 0.7, color);
    rpt_put_text(f, tooltip);
    fprintf(f, "</title></rect>\n");
}

void rpt_chart_bands(rpt_chart *c, FILE *f, int width, int height, size_t n,
                     const char *const *names, double ymax, const char *ylabel) {
    frame(c, f, width, height);
    c->categories = n ? n : 1;
    c->rows = 0;
    rpt_ticks_nice(0, ymax > 0 ? ymax * 1.08 : 1, 5, &c->y); /* 8 %: room for the value text */
    c->y.lo = 0;
    c->y.count = (int)lround(c->y.hi / c->y.step) + 1;
    box(c);
    y_axis(c, ylabel);
    fprintf(f, "<g class=\"axis x\">\n");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                rpt_chart_px(c, (double)i), c->top + c->height + 16);
        rpt_put_text(f, names[i]);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</g>\n");
}

void rpt_chart_line(const rpt_chart *c, size_t n, const double *x, const double *y,
                    const char *color, const char *name, int dashed) {
    FILE *f = c->f;
    fprintf(f, "<polyline class=\"series\" data-series=\"");
    rpt_put_text(f, name);
    fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"", color,
            dashed ? " stroke-dasharray=\"4 3\"" : "");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%.1f,%.1f", i ? " " : "", rpt_chart_px(c, x[i]), rpt_chart_py(c, y[i]));
    fprintf(f, "\"><title>");
    rpt_put_text(f, name);
    fprintf(f, "</title></polyline>\n");
}

void rpt_chart_point(const rpt_chart *c, double x, double y, double r, const char *color,
                     const char *cls, const char *label, const char *tooltip) {
    FILE *f = c->f;
    double px = rpt_chart_px(c, x), py = rpt_chart_py(c, y);
    fprintf(f, "<circle class=\"");
    rpt_put_text(f, cls);
    fprintf(f, "\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"><title>", px, py, r, color);
    rpt_put_text(f, tooltip);
    fprintf(f, "</title></circle>\n");
    if (label && *label) {
        /* labels go left of points in the right third, so they stay inside the frame */
        int right = px > c->left + c->width * 0.66;
        fprintf(f, "<text class=\"point-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">",
                right ? px - r - 4 : px + r + 4, py - r - 2, right ? "end" : "start");
        rpt_put_text(f, label);
        fprintf(f, "</text>\n");
    }
}

void rpt_chart_bar(const rpt_chart *c, size_t i, double value, const char *color,
                   const char *value_text, const char *tooltip) {
    FILE *f = c->f;
    double band = c->width / (double)c->categories, w = band * 0.6;
    double x = rpt_chart_px(c, (double)i) - w / 2;
    double y0 = rpt_chart_py(c, 0), y = rpt_chart_py(c, value > 0 ? value : 0);
    fprintf(f, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
               "fill=\"%s\"><title>",
            x, y, w, y0 - y, color);
    rpt_put_text(f, tooltip);
    fprintf(f, "</title></rect>\n<text class=\"value\" x=\"%.1f\" y=\"%.1f\" "
               "text-anchor=\"middle\">",
            x + w / 2, y - 4);
    rpt_put_text(f, value_text);
    fprintf(f, "</text>\n");
}

void rpt_chart_hline(const rpt_chart *c, double y, const char *text) {
    double py = rpt_chart_py(c, y);
    fprintf(c->f, "<line class=\"ref\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
            c->left, py, c->left + c->width, py);
    if (!text) return;
    fprintf(c->f, "<text class=\"ref-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
            c->left + c->width - 4, py - 4);
    rpt_put_text(c->f, text);
    fprintf(c->f, "</text>\n");
}

/* Legend entries in columns of LEGEND_COL px, filled row by row. */
#define LEGEND_COL 180
#define LEGEND_ROW 18

static size_t legend_cols(double width) {
    size_t cols = width >= LEGEND_COL ? (size_t)(width / LEGEND_COL) : 1;
    return cols ? cols : 1;
}

double rpt_legend_height(double width, size_t n) {
    size_t cols = legend_cols(width);
    return (double)((n + cols - 1) / cols) * LEGEND_ROW + 4;
}

void rpt_legend(FILE *f, double x, double y, double width, size_t n, const char *const *names,
                const char *const *colors) {
    size_t cols = legend_cols(width);
    fprintf(f, "<g class=\"legend\">\n");
    for (size_t i = 0; i < n; i++) {
        double xx = x + (double)(i % cols) * LEGEND_COL, yy = y + (double)(i / cols) * LEGEND_ROW;
        fprintf(f, "<rect class=\"swatch\" x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"10\" "
                   "fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">",
                xx, yy + 2, colors[i], xx + 16, yy + 11);
        rpt_put_text(f, names[i]);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</g>\n");
}
