/* nmformer report: the HTML report of a run directory (include/nmformer/report.h,
 * docs/REPORT.md). Parses and prints; the page is built by the library. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "nmformer/report.h"

static const char about[] =
    "One self-contained HTML page (inline SVG, no script, no network) from what a run\n"
    "directory holds (what `make run` writes in out/): accuracy against stored bytes\n"
    "and latency per candidate (summary.json, train_summary.json), training curves\n"
    "(*.jsonl from `train --log`) and the accelerator timeline (sim*.json from\n"
    "`sim --json`, with sim*.trace.json from `sim --trace`). A missing part leaves its\n"
    "section out with a warning; a malformed one is an error naming file and line.\n"
    "On success the page's path is printed on stdout.\n";

int cmd_report(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    int quiet = 0;
    const cli_opt opts[] = {
        CLI_STR("output", 'o', &out, "PATH", "where to write (default RUN_DIR/report.html;\n- for stdout)"),
        CLI_FLAG("quiet", 'q', &quiet, "print nothing on success"),
        CLI_END,
    };
    const cli_command cmd = {"report", "RUN_DIR [-o report.html]", about, opts, {&dir}, NULL};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_GO_ON) return rc;
    if (!dir) return cli_usage_error("report", "need RUN_DIR (see --help)");
    nmf_report_info info;
    nmf_status st = nmf_report_write(dir, out, &info);
    rc = 0;
    if (st) {
        rc = cli_fail("report", dir, st);
    } else {
        for (int i = 0; i < info.note_count; i++) /* notes hold no control characters */
            fprintf(stderr, "nmformer report: warning: %s\n", info.notes[i]);
        if (quiet || (out && !strcmp(out, "-"))) return 0;
        if (out) printf("%s\n", out);
        else /* the library's default: RUN_DIR/report.html */
            printf("%s%s" NMF_REPORT_DEFAULT_NAME "\n", dir, dir[strlen(dir) - 1] == '/' ? "" : "/");
    }
    return rc;
}
