/* The one option parser of every nmformer command (docs/CLI.md).
 *
 * A command describes its options as a table of cli_opt rows, each pointing at the variable it
 * fills, and calls cli_parse once:
 *
 *     const char *model = NULL;
 *     int json = 0, threads = 0;
 *     const cli_opt opts[] = {
 *         CLI_STR("model", 'm', &model, "NAME", "candidate of a family file"),
 *         CLI_INT("threads", 'j', &threads, 1, 4096, "T", "threads"),
 *         CLI_FLAG("json", 0, &json, "one JSON object instead of text"),
 *         CLI_ALIAS("patterns", "pattern"),
 *         CLI_END,
 *     };
 *     const cli_command cmd = {"eval", "MODEL [options]", about, opts, {&model_path}};
 *     int rc = cli_parse(&cmd, argc, argv);
 *     if (rc != CLI_GO_ON) return rc;
 *
 * Conventions, the same for every command:
 *   --name VALUE, --name=VALUE, -x VALUE, -xVALUE   a value option (the next word is its value
 *                                                   even when it starts with '-')
 *   --name, -x                                      a flag (--name=... is an error)
 *   --                                              ends the options: the rest are operands
 *   -                                               an operand (stdin/stdout where a path is read
 *                                                   or written whole)
 *   -h/--help prints the command's help on stdout (exit 0), -V/--version the version.
 * Repeating an option keeps the last value. Every usage error is one line on stderr and exit 2. */
#ifndef NMF_CLI_ARGS_H
#define NMF_CLI_ARGS_H

#include <stdint.h>
#include <stdio.h>

#include "nmformer/core.h"

/* Exit statuses of every command (documented in every --help). */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };
#define CLI_EXIT_HELP "exit status: 0 success, 1 runtime failure, 2 usage error\n"

/* cli_parse's "parsed, go on": any other value is the exit status to return at once. */
#define CLI_GO_ON (-1)

typedef enum {
    CLI_KIND_END = 0, /* the row that ends a table */
    CLI_KIND_FLAG,    /* int *: set to .set (1 unless given) */
    CLI_KIND_STR,     /* const char **: the value as given */
    CLI_KIND_INT,     /* int *: a whole decimal number in [.lo, .hi] */
    CLI_KIND_LONG,    /* long *: a whole decimal number in [.lo, .hi] */
    CLI_KIND_U64,     /* uint64_t *: a whole non-negative decimal number */
    CLI_KIND_FLOAT,   /* float *: a finite number in [.lo, .hi] */
    CLI_KIND_DOUBLE,  /* double *: a finite number in [.lo, .hi] */
    CLI_KIND_FN,      /* .fn(value, dest): a value the library parses (a dtype, a method) */
    CLI_KIND_ALIAS    /* another long name of the option .meta names (no value of its own) */
} cli_kind;

/* fn's failure (nmf_status with a detail) is reported as a usage error naming the option. */
typedef nmf_status (*cli_value_fn)(const char *value, void *dest);

typedef struct {
    const char *name; /* long name without "--"; an alias row: the alias */
    char short_name;  /* -x, or 0 */
    cli_kind kind;
    void *dest;
    const char *meta; /* the value's name in --help ("N", "PATH"); an alias row: the option's name */
    const char *help; /* one or more lines ('\n' between them) */
    double lo, hi;    /* ranges of the number kinds */
    int set;          /* what a flag stores */
    cli_value_fn fn;
} cli_opt;

/* Table rows. The (1 ? d : (T *)0) makes the compiler check that d points at a T. */
#define CLI_FLAG(n, s, d, h) \
    {.name = (n), .short_name = (s), .kind = CLI_KIND_FLAG, .dest = (1 ? (d) : (int *)0), .help = (h), .set = 1}
/* A flag that stores v (--no-functional stores 0 where --functional stores 1). */
#define CLI_FLAG_SET(n, s, d, v, h) \
    {.name = (n), .short_name = (s), .kind = CLI_KIND_FLAG, .dest = (1 ? (d) : (int *)0), .help = (h), .set = (v)}
#define CLI_STR(n, s, d, m, h)                                                                    \
    {.name = (n), .short_name = (s), .kind = CLI_KIND_STR, .dest = (void *)(1 ? (d) : (const char **)0), \
     .meta = (m), .help = (h)}
#define CLI_INT(n, s, d, l, u, m, h) \
    {.name = (n), .short_name = (s), .kind = CLI_KIND_INT, .dest = (1 ? (d) : (int *)0), .meta = (m), .help = (h), .lo = (l), .hi = (u)}
#define CLI_LONG(n, s, d, l, u, m, h) \
    {.name = (n), .short_name = (s), .kind = CLI_KIND_LONG, .dest = (1 ? (d) : (long *)0), .meta = (m), .help = (h), .lo = (l), .hi = (u)}
#define CLI_U64(n, s, d, m, h) \
    {.name = (n), .short_name = (s), .kind = CLI_KIND_U64, .dest = (1 ? (d) : (uint64_t *)0), .meta = (m), .help = (h)}
#define CLI_FLOAT(n, s, d, l, u, m, h) \
    {.name = (n), .short_name = (s), .kind = CLI_KIND_FLOAT, .dest = (1 ? (d) : (float *)0), .meta = (m), .help = (h), .lo = (l), .hi = (u)}
#define CLI_DOUBLE(n, s, d, l, u, m, h) \
    {.name = (n), .short_name = (s), .kind = CLI_KIND_DOUBLE, .dest = (1 ? (d) : (double *)0), .meta = (m), .help = (h), .lo = (l), .hi = (u)}
#define CLI_FN(n, s, f, d, m, h) \
    {.name = (n), .short_name = (s), .kind = CLI_KIND_FN, .fn = (f), .dest = (d), .meta = (m), .help = (h)}
/* --alias means --target (its help shows "(also --alias)"). */
#define CLI_ALIAS(alias, target) {.name = (alias), .kind = CLI_KIND_ALIAS, .meta = (target)}
#define CLI_END {.kind = CLI_KIND_END}

#define CLI_MAX_OPERANDS 4

typedef struct {
    const char *name;     /* "convert", "bench gemm" */
    const char *synopsis; /* after "usage: nmformer NAME "; several lines joined by '\n' */
    const char *about;    /* what it does, printed before the options (may be NULL) */
    const cli_opt *opts;  /* ends with CLI_END */
    /* operands in order: each a pointer to the variable that receives it; unused slots NULL */
    const char **operands[CLI_MAX_OPERANDS];
    const char *epilog; /* printed after the options (may be NULL) */
} cli_command;

/* Parses argv[1..argc) (argv[0] is the command name): fills the table's variables and the
 * operands, and returns CLI_GO_ON; or returns the exit status to end with at once: 0 after
 * --help / --version, 2 after a usage error (one line on stderr). */
int cli_parse(const cli_command *cmd, int argc, char **argv);

/* The command's help: usage, about, options (from the table), epilog, exit statuses. */
void cli_help(const cli_command *cmd, FILE *out);

/* Prints "nmformer CMD: <message>" on stderr as one line and returns 2 (a usage error found
 * after parsing: a missing operand, options that do not go together). */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* nmformer --version's line (main.c). */
void cli_print_version(void);

#endif
