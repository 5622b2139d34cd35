/* HTML report of a run directory: one self-contained file (inline SVG and CSS, no script, no
 * network) with accuracy against stored bytes, latency and speed-up per candidate, training
 * curves and the STA accelerator's timeline (docs/REPORT.md).
 *
 * What a run directory may hold (what `make run` writes; every part is optional):
 *   summary.json           {"candidates": [{"model", "accuracy", "bytes", "latency_ms", "speedup"}],
 *                           "file_bytes", "train_seconds", "total_seconds", "latency", ...}
 *   train_summary.json     `nmformer train --summary`: held-out accuracy per candidate
 *   *.jsonl                `nmformer train --log`: one JSON object per line (a line per series
 *                           and stage; several files, e.g. one per method, are told apart by name)
 *   sim*.json              `nmformer sim --json`; its timeline from `sim --trace` written next to
 *                           it as the same name with .trace.json in place of .json
 * A missing part leaves its section out and adds a note (in the page and in info->notes); a part
 * that is there but malformed is an error naming the file and the line. */
#ifndef NMFORMER_REPORT_H
#define NMFORMER_REPORT_H

#include <stddef.h>

#include "nmformer/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sections of the page (nmf_report_info.sections). */
enum {
    NMF_REPORT_CANDIDATES = 1 << 0, /* accuracy against bytes: scatter + table */
    NMF_REPORT_LATENCY = 1 << 1,    /* latency and speed-up per candidate: bars */
    NMF_REPORT_TRAINING = 1 << 2,   /* loss and accuracy over steps: lines */
    NMF_REPORT_STA = 1 << 3         /* simulated accelerator: latency bars, per-unit timeline */
};

#define NMF_REPORT_MAX_NOTES 16
#define NMF_REPORT_NOTE_LEN 320

typedef struct {
    unsigned sections; /* NMF_REPORT_* of the sections the page has */
    int note_count;    /* notes about missing parts (also shown in the page) */
    char notes[NMF_REPORT_MAX_NOTES][NMF_REPORT_NOTE_LEN];
} nmf_report_info;

/* Builds the page of run_dir in memory: *html (malloc'd, NUL-terminated, caller frees) of *size
 * bytes. info may be NULL. A directory with none of the parts is NMF_ERR_NOT_FOUND. */
NMF_API nmf_status nmf_report_render(const char *run_dir, char **html, size_t *size,
                                     nmf_report_info *info);
/* The page's name in the run directory when no output path is given. */
#define NMF_REPORT_DEFAULT_NAME "report.html"

/* nmf_report_render, then an atomic write to out_path ("-": standard output; NULL:
 * run_dir/NMF_REPORT_DEFAULT_NAME). */
NMF_API nmf_status nmf_report_write(const char *run_dir, const char *out_path,
                                    nmf_report_info *info);

#ifdef __cplusplus
}
#endif
#endif
