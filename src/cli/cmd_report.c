/* nmformer report: the HTML report of a run directory (include/nmformer/report.h,
 * docs/REPORT.md). Parses and prints; the page is built by the library. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "nmformer/report.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: nmformer report RUN_DIR [-o report.html]\n"
            "  One self-contained HTML page (inline SVG, no script, no network) from what a run\n"
            "  directory holds (what `make run` writes in out/): accuracy against stored bytes\n"
            "  and latency per candidate (summary.json, train_summary.json), training curves\n"
            "  (*.jsonl from `train --log`) and the accelerator timeline (sim*.json from\n"
            "  `sim --json`, with sim*.trace.json from `sim --trace`). A missing part leaves its\n"
            "  section out with a warning; a malformed one is an error naming file and line.\n"
            "  -o, --output PATH   where to write (default RUN_DIR/report.html; - for stdout)\n"
            "  --quiet             print nothing on success\n"
            "  --help              this text\n"
            "exit status: 0 written, 1 failed, 2 usage error\n");
}

int cmd_report(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out = cli_value("report", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
        } else if (cli_positional("report", a, (const char **[]){&dir}, 1)) {
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "nmformer report: need RUN_DIR (see --help)\n");
        return 2;
    }
    nmf_report_info info;
    nmf_status st = nmf_report_write(dir, out, &info);
    int rc = 0;
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
