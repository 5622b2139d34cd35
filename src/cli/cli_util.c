/* Shared CLI helpers: config options, file kinds, model loading, sizes. */
#include "cli/cli_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/model_cli.h"
#include "nmformer/nm.h"

int cli_config_flags_any(const cli_config_flags *f) {
    return f && (f->img_size || f->patch || f->in_chans || f->dim || f->depth || f->heads ||
                 f->mlp_ratio || f->classes);
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
    if (!f) return NMF_OK;
    const struct {
        const char *flag, *value;
        int *field;
    } ints[] = {{"--img-size", f->img_size, &o->img_size}, {"--patch", f->patch, &o->patch},
                {"--in-chans", f->in_chans, &o->in_chans}, {"--dim", f->dim, &o->dim},
                {"--depth", f->depth, &o->depth},          {"--heads", f->heads, &o->heads},
                {"--classes", f->classes, &o->num_classes}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        nmf_status st = ints[i].value ? parse_int(ints[i].flag, ints[i].value, ints[i].field) : NMF_OK;
        if (st) return st;
    }
    if (f->mlp_ratio) {
        char *end;
        errno = 0;
        double x = strtod(f->mlp_ratio, &end);
        if (errno || end == f->mlp_ratio || *end || !(x > 0) || x > 64)
            return nmf_error(NMF_ERR_INVALID_ARG, "--mlp-ratio '%s': expected a positive number",
                             f->mlp_ratio);
        o->mlp_ratio = (float)x;
    }
    return NMF_OK;
}

int cli_file_kind(const char *cmd, const char *path, nmf_file_kind *kind) {
    nmf_status st = nmf_file_kind_detect(path, kind);
    return st ? cli_fail(cmd, "input", st) : 0;
}

static int has_suffix(const char *path, const char *suffix) {
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && !strcmp(path + n - k, suffix);
}

nmf_file_kind cli_output_kind(const char *path) {
    if (has_suffix(path, ".nmf")) return NMF_FILE_NMF;
    if (has_suffix(path, ".safetensors")) return NMF_FILE_SAFETENSORS;
    return NMF_FILE_HF_FOLDER;
}

nmf_status cli_load_model(const char *path, const char *model, const cli_config_flags *flags,
                          nmf_model_config *config, nmf_tensor_set *tensors) {
    return cli_load_model_ex(path, model, flags, 0, config, tensors);
}

nmf_status cli_load_model_ex(const char *path, const char *model, const cli_config_flags *flags,
                             int keep16, nmf_model_config *config, nmf_tensor_set *tensors) {
    nmf_tensors_init(tensors);
    nmf_config_overrides o;
    nmf_status st = cli_config_overrides(flags, &o);
    if (st) return st;
    return keep16 ? nmf_load_model_keep16(path, model, NULL, &o, config, tensors)
                  : nmf_load_model_with(path, model, NULL, &o, config, tensors);
}

const char *cli_failed_path(const char *in, const char *out) {
    const char *detail = nmf_last_error();
    size_t n = strlen(out);
    return detail && !strncmp(detail, out, n) && detail[n] == ':' ? out : in;
}

uint64_t cli_path_bytes(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    if (!S_ISDIR(sb.st_mode)) return (uint64_t)sb.st_size;
    uint64_t total = 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    char file[4096];
    for (struct dirent *e; (e = readdir(d));) {
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        if (stat(file, &sb) == 0 && S_ISREG(sb.st_mode)) total += (uint64_t)sb.st_size;
    }
    closedir(d);
    return total;
}

nmf_status cli_parse_dtype(const char *value, void *dest) {
    return nmf_dtype_parse(value, dest);
}

const char *cli_shape_names(char *buf, size_t cap) {
    buf[0] = '\0';
    for (size_t k = 0, at = 0; nmf_model_shape_name(k) && at < cap; k++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", k ? ", " : "", nmf_model_shape_name(k));
    return buf;
}

nmf_status cli_parse_precision(const char *value, void *dest) {
    return nmf_precision_parse(value, dest);
}

/* transformers' convert_file_size_to_int: a byte count, or a number with a unit, decimal (KB, MB,
 * GB, TB: powers of 1000, as "5GB") or binary (KiB, MiB, GiB, TiB), case-insensitive. */
nmf_status cli_parse_size(const char *value, void *dest) {
    static const struct {
        const char *unit;
        double scale;
    } units[] = {{"", 1},       {"b", 1},          {"kb", 1e3},       {"mb", 1e6},
                 {"gb", 1e9},   {"tb", 1e12},      {"kib", 1024.0},   {"mib", 1048576.0},
                 {"gib", 1073741824.0}, {"tib", 1099511627776.0}};
    char *end = NULL;
    errno = 0;
    const double v = strtod(value, &end);
    if (end == value || errno || !(v > 0))
        return nmf_error(NMF_ERR_INVALID_ARG, "'%s' is not a size (e.g. 5GB, 500MB, 2GiB)", value);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcasecmp(end, units[i].unit)) {
            const double bytes = v * units[i].scale;
            if (bytes < 1 || bytes > 1e18) break;
            *(uint64_t *)dest = (uint64_t)bytes;
            return NMF_OK;
        }
    return nmf_error(NMF_ERR_INVALID_ARG, "'%s' is not a size (e.g. 5GB, 500MB, 2GiB)", value);
}

/* What the summary says of one candidate: its name, and its pattern when it is named N:M. */
static int candidate_pattern(const char *name, nmf_pattern *p) {
    int ok = strcmp(name, "dense") && nmf_pattern_parse(name, p) == NMF_OK;
    nmf_clear_error(); /* a name that is no pattern is not a failure */
    return ok;
}

void cli_print_summary(const char *cmd, const char *in, const char *out, const nmf_family *fam,
                       const char *single, nmf_dtype dtype, int json) {
    nmf_file_kind ik = NMF_FILE_UNKNOWN, ok = cli_output_kind(out);
    if (nmf_file_kind_detect(in, &ik) != NMF_OK) nmf_clear_error(); /* read a moment ago */
    const uint64_t ib = cli_path_bytes(in), ob = cli_path_bytes(out);
    const size_t count = fam ? fam->count : 1;
    const int packed = ok == NMF_FILE_NMF; /* only an .nmf stores index codes */
    if (json) {
        printf("{\"command\": ");
        model_cli_json_string(stdout, cmd);
        printf(", \"input\": ");
        model_cli_json_string(stdout, in);
        printf(", \"input_kind\": \"%s\", \"input_bytes\": %llu, \"output\": ", nmf_file_kind_name(ik),
               (unsigned long long)ib);
        model_cli_json_string(stdout, out);
        printf(", \"output_kind\": \"%s\", \"output_bytes\": %llu, \"dtype\": \"%s\", \"candidates\": [",
               nmf_file_kind_name(ok), (unsigned long long)ob, nmf_dtype_name(dtype));
    } else {
        printf("%s: %s (%s, %llu bytes) -> %s (%s, %llu bytes, %.3fx): ", cmd, in,
               nmf_file_kind_name(ik), (unsigned long long)ib, out, nmf_file_kind_name(ok),
               (unsigned long long)ob, ib ? (double)ob / (double)ib : 0.0);
    }
    for (size_t i = 0; i < count; i++) {
        const char *name = fam ? fam->models[i].name : single;
        nmf_pattern p;
        const int nm = candidate_pattern(name, &p);
        if (json) {
            printf("%s{\"name\": ", i ? ", " : "");
            model_cli_json_string(stdout, name);
            if (nm && packed) printf(", \"pattern\": \"%d:%d\", \"bits_per_group\": %d}", p.n, p.m, nmf_nm_code_bits(p));
            else if (nm) printf(", \"pattern\": \"%d:%d\", \"bits_per_group\": null}", p.n, p.m);
            else printf(", \"pattern\": null, \"bits_per_group\": null}");
        } else {
            printf("%s%s", i ? ", " : "", name);
            if (nm && packed) printf(" (%d bits/group)", nmf_nm_code_bits(p));
            else if (nm) printf(" (stored dense)");
        }
    }
    if (json) printf("]}\n");
    else printf("; %s\n", nmf_dtype_name(dtype));
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
