/* The HTML report (include/nmformer/report.h): its parts, shared between the files of src/report/.
 * Not public API. Every page fragment is written to a FILE * (an open_memstream buffer), and
 * every string that comes from an input file goes through rpt_put_text. */
#ifndef NMF_REPORT_INTERNAL_H
#define NMF_REPORT_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "nmformer/report.h"

/* ---- escape.c: text from input files ---- */

/* Writes s as HTML/XML character data or a quoted attribute value: & < > " ' as entities; control
 * characters (XML forbids them) and bytes that are not valid UTF-8 as U+FFFD. */
void rpt_put_text(FILE *f, const char *s);

/* ---- axis.c: linear axes with round ticks ---- */

typedef struct {
    double lo, hi, step; /* ticks lo, lo + step, ..., hi */
    int count;           /* number of ticks */
} rpt_ticks;

/* Ticks at multiples of 1, 2 or 5 x 10^k covering [lo, hi] in about `target` intervals; an
 * empty or inverted range is widened around its value. lo and hi must be finite. */
void rpt_ticks_nice(double lo, double hi, int target, rpt_ticks *t);
double rpt_tick_at(const rpt_ticks *t, int i);
/* v printed with as many decimals as the step needs ("0.25", "1e+06" stays "1000000"). */
void rpt_tick_label(char *buf, size_t n, double v, double step);

/* ---- svg.c: charts ---- */

typedef struct {
    FILE *f;
    double left, top, width, height; /* the plot area, in px of the SVG */
    rpt_ticks x, y;                  /* x unused for a category chart */
    size_t categories;               /* > 0: the x axis has this many bands */
    size_t rows;                     /* > 0: a timeline of this many rows */
} rpt_chart;

/* Colour i of a palette that cycles. */
const char *rpt_color(size_t i);
/* <svg> of width x height px (scaled down by CSS on narrow screens); label is its accessible
 * name; cls its class (the test and the CSS find charts by it). */
void rpt_svg_begin(FILE *f, int width, int height, const char *cls, const char *label);
void rpt_svg_end(FILE *f);
/* A chart with numeric axes over [xlo, xhi] x [ylo, yhi] (rounded out to ticks): frame, grid,
 * ticks and axis titles. */
void rpt_chart_xy(rpt_chart *c, FILE *f, int width, int height, double xlo, double xhi,
                  double ylo, double yhi, const char *xlabel, const char *ylabel);
/* A bar chart of n named bands; y from 0 to at least ymax. */
void rpt_chart_bands(rpt_chart *c, FILE *f, int width, int height, size_t n,
                     const char *const *names, double ymax, const char *ylabel);
/* A timeline: a numeric x axis over [xlo, xhi] and one named row per unit, top to bottom. */
void rpt_chart_rows(rpt_chart *c, FILE *f, int width, int height, double xlo, double xhi,
                    size_t rows, const char *const *names, const char *xlabel);
double rpt_chart_row_y(const rpt_chart *c, size_t row); /* top of a row, px */
double rpt_chart_row_h(const rpt_chart *c);
/* A bar from x0 to x1 in a row (class "span", data-unit and data-op for a reader). */
void rpt_chart_span(const rpt_chart *c, size_t row, double x0, double x1, const char *color,
                    const char *unit, const char *op, const char *tooltip);
double rpt_chart_px(const rpt_chart *c, double x);
double rpt_chart_py(const rpt_chart *c, double y);
/* A polyline of n points (class "series", data-series = name). */
void rpt_chart_line(const rpt_chart *c, size_t n, const double *x, const double *y,
                    const char *color, const char *name, int dashed);
/* A circle (class cls) with an optional text label beside it and a tooltip. */
void rpt_chart_point(const rpt_chart *c, double x, double y, double r, const char *color,
                     const char *cls, const char *label, const char *tooltip);
/* Bar i of a band chart (class "bar"), value_text written above it, tooltip on hover. */
void rpt_chart_bar(const rpt_chart *c, size_t i, double value, const char *color,
                   const char *value_text, const char *tooltip);
/* A horizontal reference line at y (e.g. speed-up 1), labelled with text unless it is NULL. */
void rpt_chart_hline(const rpt_chart *c, double y, const char *text);
/* Legend entries (a colour swatch and a name each) in columns that fit width, from (x, y) down;
 * rpt_legend_height says how tall they are. */
void rpt_legend(FILE *f, double x, double y, double width, size_t n, const char *const *names,
                const char *const *colors);
double rpt_legend_height(double width, size_t n);

/* ---- json_in.c: reading the inputs ---- */

/* Reads path whole and parses it as one JSON value. A syntax error is NMF_ERR_FORMAT naming the
 * file, line and column. */
nmf_status rpt_json_file(const char *path, cJSON **out);
/* Parses text[0..len) (one line of a JSON-lines file, line number `line`) as one JSON value. */
nmf_status rpt_json_text(const char *path, int line, const char *text, size_t len, cJSON **out);
/* Reads path whole (for JSON-lines files, split by the caller). */
nmf_status rpt_read_text(const char *path, char **text, size_t *size);
/* Member `key` of obj as a finite number: 1 found, 0 absent (or null), -1 there but not a finite
 * number. */
int rpt_json_number(const cJSON *obj, const char *key, double *out);
/* Member `key` as a string (NULL when absent or not a string). */
const char *rpt_json_string(const cJSON *obj, const char *key);
char *rpt_strdup(const char *s);

/* ---- run_data.c: what a run directory holds ---- */

typedef struct {
    char *model;
    double accuracy, bytes, latency_ms, speedup, heldout;
    int has_latency, has_speedup, has_heldout;
} rpt_candidate;

typedef struct {
    rpt_candidate *items;
    size_t count;
    double file_bytes, train_seconds, total_seconds; /* < 0 when absent */
    char *latency_note;                              /* NULL when absent */
} rpt_summary;

typedef struct {
    double *x, *y;
    size_t n, cap;
} rpt_points;

typedef struct {
    char *name;  /* what the legend says: the stage, "file: stage" when there are several logs */
    char *key;   /* which records belong to it: "#<stage_index>", else the stage name */
    char *stage; /* the stage's name as its last record (the one closing it) gives it */
    int file;    /* index into rpt_training.files */
    rpt_points loss, acc, heldout; /* over global steps: batch loss, batch accuracy, held-out */
} rpt_series;

typedef struct {
    rpt_series *items;
    size_t count;
    char **files; /* log file names without ".jsonl" */
    size_t file_count;
} rpt_training;

typedef struct {
    char *op; /* op name ("blocks.0.mlp.fc1", "... load" on DRAM) */
    double t0, t1; /* microseconds */
} rpt_span;

typedef struct {
    char *name; /* unit: "engine", "softmax unit", "vector unit", "DRAM" */
    rpt_span *spans;
    size_t n, cap;
} rpt_unit_row;

typedef struct {
    char *file, *label, *design;
    double time_ms, cycles, mac_efficiency, freq_mhz;
    size_t ops;
    rpt_unit_row *rows; /* from the trace; NULL when there is none */
    size_t row_count;
    double t_end; /* end of the last span, microseconds */
    size_t rank;  /* place in the page: the index of its candidate in summary.json */
} rpt_sim;

typedef struct {
    rpt_summary summary;
    int has_summary, has_train_summary;
    rpt_training training;
    rpt_sim *sims;
    size_t sim_count;
    nmf_report_info *info; /* notes go here */
} rpt_run;

/* Plotted values beyond RPT_MAX_VALUE are refused: real ones are far smaller, and a chart's
 * arithmetic (ranges, ticks) stays finite below it. */
#define RPT_MAX_VALUE 1e15
#define RPT_MAX_ITEMS 100000 /* candidates, sims, log files, series; far above a real run */
#define RPT_TRACE_ROWS 64    /* units of a trace (the sim has 4) */

/* A number member `key` of obj in [lo, hi]: *found 1 when there, 0 when absent (an error when
 * required); out of range or not a number is an error naming file and member (what[index].key,
 * or what.key when index < 0). */
nmf_status rpt_number_in(const char *path, const char *what, long index, const cJSON *obj,
                         const char *key, double lo, double hi, int required, double *out,
                         int *found);
/* 1 when path exists (or cannot be checked: the read will say why), 0 when it does not. */
int rpt_exists(const char *path);

/* summary_in.c */
nmf_status rpt_summary_load(const char *path, rpt_summary *s);
/* Held-out accuracy of each candidate of s, matched by name. */
nmf_status rpt_train_summary_load(const char *path, rpt_summary *s);
/* log_in.c: the records of one log (file index `file` of t->files) into t's series */
nmf_status rpt_log_load(const char *path, rpt_training *t, int file);
/* Legend names, once every log is read. */
nmf_status rpt_training_name(rpt_training *t);
/* sim_in.c: dir/file and, when it is there, its trace; a missing trace is a note in run. */
nmf_status rpt_sim_load(rpt_run *run, const char *dir, const char *file, rpt_sim *sim);

/* Loads everything run_dir has; a missing part adds a note, a malformed one is an error. */
nmf_status rpt_run_load(const char *run_dir, rpt_run *run);
void rpt_run_free(rpt_run *run);
/* Adds a note (printf-style) to run->info; control characters become '?' (a note is one line). */
void rpt_note(rpt_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Grows *p (elements of elem bytes, capacity *cap) to hold at least need; 0 when out of memory. */
int rpt_grow(void **p, size_t *cap, size_t need, size_t elem);

/* ---- sections: each returns 0, or -1 when out of memory (the page would miss a chart) ---- */
int rpt_section_candidates(FILE *f, const rpt_run *run);
int rpt_section_latency(FILE *f, const rpt_run *run);
int rpt_section_training(FILE *f, const rpt_run *run);
int rpt_section_sta(FILE *f, const rpt_run *run);

#endif
