/* Shared CLI helpers: config flags, file kinds, model loading. */
#include "cli/cli_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const config_flags[] = {"--img-size", "--patch", "--in-chans", "--dim",
                                           "--depth", "--heads", "--mlp-ratio", "--classes"};

const char *cli_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "nmformer %s: %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_positional(const char *cmd, const char *arg, const char **slots[], int n) {
    if (arg[0] == '-' && arg[1]) {
        fprintf(stderr, "nmformer %s: unknown option '%s' (see --help)\n", cmd, arg);
        return 2;
    }
    for (int k = 0; k < n; k++)
        if (!*slots[k]) {
            *slots[k] = arg;
            return 0;
        }
    fprintf(stderr, "nmformer %s: unexpected argument '%s'\n", cmd, arg);
    return 2;
}

int cli_take_config_flag(const char *cmd, int argc, char **argv, int *i, cli_config_flags *f) {
    for (size_t k = 0; k < sizeof config_flags / sizeof config_flags[0]; k++) {
        if (strcmp(argv[*i], config_flags[k]) != 0) continue;
        const char *v = cli_value(cmd, argc, argv, i);
        if (!v) return -1;
        if (f->count >= CLI_MAX_CONFIG_FLAGS) {
            fprintf(stderr, "nmformer %s: too many config flags\n", cmd);
            return -1;
        }
        f->key[f->count] = config_flags[k];
        f->value[f->count] = v;
        f->count++;
        return 1;
    }
    return 0;
}

static nmf_status parse_int(const char *flag, const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > 1000000)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s '%s': expected a positive integer", flag, s);
    *out = (int)v;
    return NMF_OK;
}

nmf_status cli_config_overrides(const cli_config_flags *f, nmf_config_overrides *o) {
    memset(o, 0, sizeof *o);
    for (int i = 0; f && i < f->count; i++) {
        const char *k = f->key[i], *v = f->value[i];
        nmf_status st = NMF_OK;
        if (!strcmp(k, "--img-size")) st = parse_int(k, v, &o->img_size);
        else if (!strcmp(k, "--patch")) st = parse_int(k, v, &o->patch);
        else if (!strcmp(k, "--in-chans")) st = parse_int(k, v, &o->in_chans);
        else if (!strcmp(k, "--dim")) st = parse_int(k, v, &o->dim);
        else if (!strcmp(k, "--depth")) st = parse_int(k, v, &o->depth);
        else if (!strcmp(k, "--heads")) st = parse_int(k, v, &o->heads);
        else if (!strcmp(k, "--classes")) st = parse_int(k, v, &o->num_classes);
        else if (!strcmp(k, "--mlp-ratio")) {
            char *end;
            errno = 0;
            double x = strtod(v, &end);
            if (errno || end == v || *end || !(x > 0) || x > 64)
                st = nmf_error(NMF_ERR_INVALID_ARG, "--mlp-ratio '%s': expected a positive number", v);
            else
                o->mlp_ratio = (float)x;
        }
        if (st) return st;
    }
    return NMF_OK;
}

int cli_has_suffix(const char *path, const char *suffix) {
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && !strcmp(path + n - k, suffix);
}

cli_file_kind cli_file_kind_of(const char *path) {
    struct stat sb;
    if (cli_has_suffix(path, ".nmf")) return CLI_FILE_NMF;
    if (cli_has_suffix(path, ".safetensors")) return CLI_FILE_SAFETENSORS;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return CLI_FILE_DIR;
    return CLI_FILE_OTHER;
}

nmf_status cli_load_model(const char *path, const char *model, const cli_config_flags *flags,
                          nmf_model_config *config, nmf_tensor_set *tensors) {
    nmf_tensors_init(tensors);
    nmf_config_overrides o;
    nmf_status st = cli_config_overrides(flags, &o);
    if (st) return st;
    return nmf_load_model_with(path, model, NULL, &o, config, tensors);
}

/* The library's progress on stderr, for steps that last over a second: on a terminal one line
 * rewritten in place (at most 5 times a second), else a line every 5 s; a last line when the
 * step ends. */
static void print_progress(const nmf_progress *p, void *user) {
    static double last; /* when the current step last printed; 0: not yet */
    (void)user;
    const int end = p->done >= p->total, tty = isatty(STDERR_FILENO);
    if (!end && (p->seconds < 1.0 || p->seconds - last < (tty ? 0.2 : 5.0))) return;
    if (end && last == 0 && p->seconds < 1.0) return; /* a short step: nothing to say */
    const double rate = p->seconds > 0 ? (double)p->done / p->seconds : 0;
    const double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
    fprintf(stderr, "%s%s %s: %5.1f%% of %.1f MB, %.1f MB/s, %s %.0f s%s%s%s", tty ? "\r" : "",
            p->step, p->what, p->total ? 100.0 * (double)p->done / (double)p->total : 100.0,
            (double)p->total / 1e6, rate / 1e6, end ? "took" : "ETA", end ? p->seconds : eta,
            p->item && !end ? " (" : "", p->item && !end ? p->item : "", p->item && !end ? ")" : "");
    fputs(tty && !end ? "\033[K" : tty ? "\033[K\n" : "\n", stderr);
    last = end ? 0 : p->seconds;
}

void cli_progress(int quiet) { nmf_set_progress(quiet ? NULL : print_progress, NULL); }
