/* The option parser of every command (args.h): one loop, one set of messages, one help layout. */
#include "cli/args.h"
#include "cli/cli_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/dist.h"
#include "nmformer/kernels.h"
#include "nmformer/version.h"

void cli_print_version(void) {
    const nmf_gemm_backend dense = nmf_gemm_backend_active();
    char desc[128], mpi[128];
    printf("nmformer %s (kernels: %s; dense: %s, %s; mpi: %s)\n", nmf_version(),
           nmf_isa_name(nmf_active_isa()), nmf_gemm_backend_name(dense),
           nmf_gemm_backend_describe(dense, desc, sizeof desc), nmf_dist_describe(mpi, sizeof mpi));
    if (nmf_gemm_backend_generic(dense))
        fprintf(stderr, "nmformer: warning: the dense backend runs a generic kernel on this CPU "
                        "(several times below its speed); install oneDNN (libdnnl-dev)\n");
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "nmformer %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_USAGE;
}

/* The row of a long name (len bytes of name; an alias resolves to its target), or NULL. */
static const cli_opt *find_long(const cli_opt *opts, const char *name, size_t len) {
    for (const cli_opt *o = opts; o->kind != CLI_KIND_END; o++) {
        if (strlen(o->name) != len || strncmp(o->name, name, len)) continue;
        if (o->kind != CLI_KIND_ALIAS) return o;
        return find_long(opts, o->meta, strlen(o->meta));
    }
    return NULL;
}

static const cli_opt *find_short(const cli_opt *opts, char c) {
    for (const cli_opt *o = opts; o->kind != CLI_KIND_END; o++)
        if (o->short_name == c && o->kind != CLI_KIND_ALIAS) return o;
    return NULL;
}

/* Whole decimal integer / finite number; 0 on success. */
static int to_long(const char *s, double lo, double hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || (double)v < lo || (double)v > hi) return 1;
    *out = v;
    return 0;
}

static int to_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return 1;
    *out = v;
    return 0;
}

/* Stores value into o's variable; 2 and one line on stderr when it is not a value of o. */
static int store(const char *cmd, const cli_opt *o, const char *value) {
    long long i = 0;
    double d = 0;
    switch (o->kind) {
    case CLI_KIND_STR:
        *(const char **)o->dest = value;
        return 0;
    case CLI_KIND_INT:
    case CLI_KIND_LONG:
        if (to_long(value, o->lo, o->hi, &i))
            return cli_usage_error(cmd, "--%s '%s': expected an integer in %.0f..%.0f", o->name,
                                   value, o->lo, o->hi);
        if (o->kind == CLI_KIND_INT) *(int *)o->dest = (int)i;
        else *(long *)o->dest = (long)i;
        return 0;
    case CLI_KIND_U64: {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' || value[0] == '+')
            return cli_usage_error(cmd, "--%s '%s': expected a non-negative integer", o->name, value);
        *(uint64_t *)o->dest = (uint64_t)u;
        return 0;
    }
    case CLI_KIND_FLOAT:
    case CLI_KIND_DOUBLE:
        if (to_double(value, o->lo, o->hi, &d))
            return cli_usage_error(cmd, "--%s '%s': expected a number in [%g, %g]", o->name, value,
                                   o->lo, o->hi);
        if (o->kind == CLI_KIND_FLOAT) *(float *)o->dest = (float)d;
        else *(double *)o->dest = d;
        return 0;
    case CLI_KIND_FN: {
        nmf_status st = o->fn(value, o->dest);
        if (st == NMF_OK) return 0;
        const char *detail = nmf_last_error();
        return cli_usage_error(cmd, "--%s '%s': %s", o->name, value,
                               detail && *detail ? detail : nmf_strerror(st));
    }
    default:
        return cli_usage_error(cmd, "--%s: internal error (bad option table)", o->name);
    }
}

static int operand(const cli_command *cmd, const char *arg) {
    for (int k = 0; k < CLI_MAX_OPERANDS && cmd->operands[k]; k++)
        if (!*cmd->operands[k]) {
            *cmd->operands[k] = arg;
            return 0;
        }
    return cli_usage_error(cmd->name, "unexpected argument '%s' (see --help)", arg);
}

int cli_parse(const cli_command *cmd, int argc, char **argv) {
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || !a[1]) { /* an operand; "-" is stdin/stdout */
            if (operand(cmd, a)) return CLI_EXIT_USAGE;
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = 1;
            continue;
        }
        const cli_opt *o;
        const char *value = NULL; /* given inline: --name=VALUE or -xVALUE */
        char shown[64];           /* the option as the user wrote it, for messages */
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            if (eq) value = eq + 1;
            snprintf(shown, sizeof shown, "--%.*s", (int)(len < 48 ? len : 48), a + 2);
            o = find_long(cmd->opts, a + 2, len);
            if (!eq && len == 5 && !strncmp(a + 2, "quiet", 5)) {
                cli_progress(1); /* every command: no progress lines; a table row may want more */
                if (!o) continue;
            }
            if (!o && len == 4 && !strncmp(a + 2, "help", 4)) goto help;
            if (!o && len == 7 && !strncmp(a + 2, "version", 7)) goto version;
        } else {
            snprintf(shown, sizeof shown, "-%c", a[1]);
            o = find_short(cmd->opts, a[1]);
            if (a[2]) value = a + 2;
            if (a[1] == 'q' && !a[2]) {
                cli_progress(1);
                if (!o) continue;
            }
            if (!o && a[1] == 'h' && !a[2]) goto help;
            if (!o && a[1] == 'V' && !a[2]) goto version;
        }
        if (!o) return cli_usage_error(cmd->name, "unknown option '%s' (see --help)", a);
        if (o->kind == CLI_KIND_FLAG) {
            if (value)
                return cli_usage_error(cmd->name, "%s takes no value (got '%s')", shown, a);
            *(int *)o->dest = o->set;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) return cli_usage_error(cmd->name, "%s needs a value", shown);
            value = argv[++i];
        }
        if (store(cmd->name, o, value)) return CLI_EXIT_USAGE;
    }
    return CLI_GO_ON;
help:
    cli_help(cmd, stdout);
    return CLI_EXIT_OK;
version:
    cli_print_version();
    return CLI_EXIT_OK;
}

/* text with every line after the first indented by `indent` columns; no final newline */
static void put_indented(FILE *out, const char *text, int indent) {
    for (const char *p = text; *p; p++) {
        if (*p == '\n' && !p[1]) break;
        fputc(*p, out);
        if (*p == '\n') fprintf(out, "%*s", indent, "");
    }
}

#define HELP_COLUMN 26

static void put_option(FILE *out, const cli_command *cmd, const cli_opt *o) {
    char left[96];
    int n = snprintf(left, sizeof left, "  %c%c%s--%s%s%s", o->short_name ? '-' : ' ',
                     o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
                     o->meta ? " " : "", o->meta ? o->meta : "");
    fputs(left, out);
    if (n >= HELP_COLUMN - 1) fprintf(out, "\n%*s", HELP_COLUMN, "");
    else fprintf(out, "%*s", HELP_COLUMN - n, "");
    char aliases[128] = "";
    for (const cli_opt *a = cmd->opts; a->kind != CLI_KIND_END; a++)
        if (a->kind == CLI_KIND_ALIAS && !strcmp(a->meta, o->name))
            snprintf(aliases + strlen(aliases), sizeof aliases - strlen(aliases), "%s--%s",
                     aliases[0] ? ", " : " (also ", a->name);
    put_indented(out, o->help, HELP_COLUMN);
    fprintf(out, "%s%s\n", aliases, aliases[0] ? ")" : "");
}

void cli_help(const cli_command *cmd, FILE *out) {
    fprintf(out, "usage: nmformer %s ", cmd->name);
    put_indented(out, cmd->synopsis, 7); /* under "usage:"'s nmformer */
    fputc('\n', out);
    if (cmd->about) fprintf(out, "\n%s", cmd->about);
    fprintf(out, "\noptions:\n");
    for (const cli_opt *o = cmd->opts; o->kind != CLI_KIND_END; o++)
        if (o->kind != CLI_KIND_ALIAS) put_option(out, cmd, o);
    fprintf(out, "%-*sthis text\n%-*sthe version, kernels and backends\n"
                 "%-*sthe words after it are operands, not options\n",
            HELP_COLUMN, "  -h, --help", HELP_COLUMN, "  -V, --version", HELP_COLUMN, "  --");
    if (cmd->epilog) fprintf(out, "%s", cmd->epilog);
    fprintf(out, "Options take a value as --opt VALUE or --opt=VALUE (-x VALUE or -xVALUE).\n"
                 CLI_EXIT_HELP);
}
