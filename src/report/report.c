/* The report page: header, notes about missing parts, the four sections, all inline (CSS in a
 * <style>, charts as <svg>); no script, no external resource, so the file can be mailed,
 * archived or opened offline and shows the same. */
#include "nmformer/report.h"

#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"
#include "nmformer/io.h"
#include "nmformer/version.h"
#include "report/report_internal.h"

static const char css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;"
    "max-width:1180px;padding:0 16px;color:#1b1f24;background:#fff}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid "
    "#d0d7de;padding-bottom:4px}h3{font-size:15px;margin:18px 0 4px}small{color:#57606a;"
    "font-weight:normal}code{font-size:12px;background:#f3f4f6;padding:1px 4px;border-radius:3px}"
    ".meta{color:#57606a;margin:0 0 12px}.note{background:#fff8c5;border:1px solid #e3c500;"
    "padding:6px 10px;border-radius:4px;margin:6px 0}.charts{display:flex;flex-wrap:wrap;gap:12px}"
    "svg{max-width:100%;height:auto;font-size:11px}svg .frame{fill:none;stroke:#8c959f}"
    "svg .grid{stroke:#eaeef2}svg .tick,svg .row-label{fill:#57606a}svg .axis-title{fill:#1b1f24;"
    "font-size:12px}svg .point-label{font-size:12px;font-weight:600}svg .value{fill:#1b1f24}"
    "svg .ref{stroke:#cf222e;stroke-dasharray:5 4}svg .ref-label{fill:#cf222e}"
    "svg .heldout{stroke:#fff;stroke-width:1}svg .span{stroke:none}"
    "table.data{border-collapse:collapse;margin:12px 0}table.data th,table.data td{border:1px "
    "solid #d0d7de;padding:4px 10px;text-align:right}table.data td:first-child,table.data "
    "th:first-child{text-align:left}table.data thead{background:#f6f8fa}";

static void header(FILE *f, const char *run_dir, const rpt_run *run) {
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
               "<title>nmformer report: ");
    rpt_put_text(f, run_dir);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>nmformer run report</h1>\n"
               "<p class=\"meta\">Run directory <code>",
            css);
    rpt_put_text(f, run_dir);
    fprintf(f, "</code>; written by nmformer %s.", nmf_version());
    const rpt_summary *s = &run->summary;
    if (run->has_summary && s->train_seconds >= 0)
        fprintf(f, " Training took %.0f s", s->train_seconds);
    if (run->has_summary && s->total_seconds >= 0)
        fprintf(f, "%s the whole run %.0f s", s->train_seconds >= 0 ? ";" : " The", s->total_seconds);
    if (run->has_summary && (s->train_seconds >= 0 || s->total_seconds >= 0)) fprintf(f, ".");
    fprintf(f, "</p>\n");
    const nmf_report_info *info = run->info;
    for (int i = 0; i < info->note_count; i++) {
        fprintf(f, "<p class=\"note\">");
        rpt_put_text(f, info->notes[i]);
        fprintf(f, "</p>\n");
    }
}

nmf_status nmf_report_render(const char *run_dir, char **html, size_t *size, nmf_report_info *info) {
    if (!run_dir || !html || !size)
        return nmf_error(NMF_ERR_INVALID_ARG, "report: run_dir, html and size are required");
    *html = NULL;
    *size = 0;
    nmf_report_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    rpt_run run;
    memset(&run, 0, sizeof run);
    run.info = info;
    nmf_status st = rpt_run_load(run_dir, &run);
    if (st) {
        rpt_run_free(&run);
        return st;
    }
    if (run.has_summary && !run.summary.count)
        rpt_note(&run, "summary.json lists no candidates: no accuracy or latency sections");
    int latency = 0;
    for (size_t i = 0; i < run.summary.count; i++) latency |= run.summary.items[i].has_latency;
    if (run.summary.count && !latency)
        rpt_note(&run, "summary.json has no latency_ms: no latency section");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        rpt_run_free(&run);
        return nmf_error(NMF_ERR_NOMEM, "report: out of memory");
    }
    header(f, run_dir, &run);
    int oom = 0; /* a chart that could not be drawn fails the page (never a page missing it) */
    if (run.summary.count) {
        oom |= rpt_section_candidates(f, &run);
        info->sections |= NMF_REPORT_CANDIDATES;
    }
    if (latency) {
        oom |= rpt_section_latency(f, &run);
        info->sections |= NMF_REPORT_LATENCY;
    }
    if (run.training.count) {
        oom |= rpt_section_training(f, &run);
        info->sections |= NMF_REPORT_TRAINING;
    }
    if (run.sim_count) {
        oom |= rpt_section_sta(f, &run);
        info->sections |= NMF_REPORT_STA;
    }
    fprintf(f, "</body>\n</html>\n");
    int bad = ferror(f) || oom;
    if (fclose(f) != 0 || bad || !buf) {
        free(buf);
        rpt_run_free(&run);
        return nmf_error(NMF_ERR_NOMEM, "report: out of memory while writing the page");
    }
    rpt_run_free(&run);
    *html = buf;
    *size = len;
    return NMF_OK;
}

nmf_status nmf_report_write(const char *run_dir, const char *out_path, nmf_report_info *info) {
    char *html, *def = NULL;
    size_t size;
    nmf_status st = nmf_report_render(run_dir, &html, &size, info);
    if (st) return st;
    if (!out_path && !(out_path = def = nmf_io_path_join(run_dir, NMF_REPORT_DEFAULT_NAME))) {
        free(html);
        return nmf_error(NMF_ERR_NOMEM, "report: out of memory");
    }
    nmf_atomic_file *af = NULL;
    if (!(st = nmf_atomic_open(out_path, &af))) {
        if ((st = nmf_atomic_write(af, html, size))) nmf_atomic_abort(af);
        else st = nmf_atomic_commit(af);
    }
    free(html);
    free(def);
    return st;
}
