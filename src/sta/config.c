/* STA configuration: defaults, INI parser, validation, and the resolved echo.
 *
 * Keys carry their unit in the name (freq_mhz, dram_gbps, weight_buf_kib, ...). Every key is
 * declared once in the table below with its type and range; the parser and the echo both walk the
 * table, so a key cannot be parsed but not reported (or the other way round). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/io.h"
#include "nmformer/sta.h"
#include "sta/sta_internal.h"

static const char *const fetch_names[] = {"window", "banked"};
static const char *const index_names[] = {"bitmap", "rank"};
static const char *const scale_names[] = {"tensor", "channel"};
_Static_assert(sizeof fetch_names / sizeof fetch_names[0] == NMF_STA_FETCH_COUNT, "fetch names");
_Static_assert(sizeof index_names / sizeof index_names[0] == NMF_STA_INDEX_COUNT, "index names");
_Static_assert(sizeof scale_names / sizeof scale_names[0] == NMF_STA_SCALE_COUNT, "scale names");

const char *nmf_sta_fetch_name(nmf_sta_fetch f) {
    return (unsigned)f < NMF_STA_FETCH_COUNT ? fetch_names[f] : "?";
}
const char *nmf_sta_index_name(nmf_sta_index f) {
    return (unsigned)f < NMF_STA_INDEX_COUNT ? index_names[f] : "?";
}
const char *nmf_sta_scale_name(nmf_sta_scale s) {
    return (unsigned)s < NMF_STA_SCALE_COUNT ? scale_names[s] : "?";
}

void nmf_sta_config_default(nmf_sta_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "default-mid");
    c->freq_mhz = 200.0;
    c->dpus = 256;
    c->lanes_per_dpu = 16;
    c->max_m = 16;
    c->mult_latency = 2;
    c->act_banks = 256;
    c->fetch = NMF_STA_FETCH_WINDOW;
    c->softmax_lanes = 64;
    c->softmax_latency = 12;
    c->vector_lanes = 64;
    c->vector_latency = 8;
    c->weight_buf_kib = 512;
    c->act_buf_kib = 2048;
    c->out_buf_kib = 512;
    c->score_buf_kib = 256;
    c->double_buffer = 1;
    c->dram_gbps = 19.2; /* one DDR4-2400 x64 channel */
    c->dram_latency_ns = 100.0;
    c->dram_burst_bytes = 64;
    c->data_bits = 8;
    c->acc_bits = 32;
    c->weight_scale = NMF_STA_SCALE_CHANNEL;
    c->index = NMF_STA_INDEX_BITMAP;
    snprintf(c->device, sizeof c->device, "xcvu9p");
}

typedef enum { K_INT, K_DOUBLE, K_STRING, K_ENUM } key_type;

typedef struct {
    const char *section, *key;
    key_type type;
    size_t offset;
    double lo, hi;              /* range for numbers */
    const char *const *names;   /* enum names */
    int name_count;
    const char *help;
} key_def;

#define OFF(f) offsetof(nmf_sta_config, f)
static const key_def keys[] = {
    {"design", "name", K_STRING, OFF(name), 0, 0, NULL, 0, "design name"},
    {"engine", "freq_mhz", K_DOUBLE, OFF(freq_mhz), 1, 5000, NULL, 0, "clock, MHz"},
    {"engine", "dpus", K_INT, OFF(dpus), 1, 65536, NULL, 0, "dot-product units"},
    {"engine", "lanes_per_dpu", K_INT, OFF(lanes_per_dpu), 1, 1024, NULL, 0, "multipliers per DPU"},
    {"engine", "max_m", K_INT, OFF(max_m), 2, NMF_NM_MAX_M, NULL, 0, "widest N:M group (M:1 muxes)"},
    {"engine", "mult_latency", K_INT, OFF(mult_latency), 0, 16, NULL, 0, "multiplier stages"},
    {"engine", "act_banks", K_INT, OFF(act_banks), 1, 65536, NULL, 0, "activation buffer banks"},
    {"engine", "fetch", K_ENUM, OFF(fetch), 0, 0, fetch_names, NMF_STA_FETCH_COUNT, "window|banked"},
    {"softmax", "lanes", K_INT, OFF(softmax_lanes), 1, 4096, NULL, 0, "elements per cycle"},
    {"softmax", "latency", K_INT, OFF(softmax_latency), 0, 256, NULL, 0, "pipeline depth"},
    {"vector", "lanes", K_INT, OFF(vector_lanes), 1, 4096, NULL, 0, "elements per cycle"},
    {"vector", "latency", K_INT, OFF(vector_latency), 0, 256, NULL, 0, "pipeline depth"},
    {"memory", "weight_buf_kib", K_INT, OFF(weight_buf_kib), 1, 1 << 20, NULL, 0, "KiB"},
    {"memory", "act_buf_kib", K_INT, OFF(act_buf_kib), 1, 1 << 20, NULL, 0, "KiB"},
    {"memory", "out_buf_kib", K_INT, OFF(out_buf_kib), 1, 1 << 20, NULL, 0, "KiB"},
    {"memory", "score_buf_kib", K_INT, OFF(score_buf_kib), 1, 1 << 20, NULL, 0, "KiB"},
    {"memory", "double_buffer", K_INT, OFF(double_buffer), 0, 1, NULL, 0, "0|1"},
    {"dram", "dram_gbps", K_DOUBLE, OFF(dram_gbps), 0.001, 100000, NULL, 0, "GB/s (1e9 B/s)"},
    {"dram", "dram_latency_ns", K_DOUBLE, OFF(dram_latency_ns), 0, 1e6, NULL, 0, "ns per request"},
    {"dram", "dram_burst_bytes", K_INT, OFF(dram_burst_bytes), 1, 65536, NULL, 0, "bytes"},
    {"numeric", "data_bits", K_INT, OFF(data_bits), 8, 16, NULL, 0, "8|16"},
    {"numeric", "acc_bits", K_INT, OFF(acc_bits), 17, 48, NULL, 0, "accumulator bits"},
    {"numeric", "weight_scale", K_ENUM, OFF(weight_scale), 0, 0, scale_names, NMF_STA_SCALE_COUNT,
     "tensor|channel"},
    {"numeric", "index", K_ENUM, OFF(index), 0, 0, index_names, NMF_STA_INDEX_COUNT, "bitmap|rank"},
    {"fpga", "device", K_STRING, OFF(device), 0, 0, NULL, 0, "FPGA part"},
};
#undef OFF

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static nmf_status set_key(nmf_sta_config *c, const key_def *k, const char *val, const char *where) {
    char *base = (char *)c;
    if (k->type == K_STRING) {
        size_t cap = k->offset == offsetof(nmf_sta_config, name) ? sizeof c->name : sizeof c->device;
        if (!*val || strlen(val) >= cap)
            return nmf_error(NMF_ERR_INVALID_ARG, "%s: %s.%s: must be 1..%zu characters", where,
                             k->section, k->key, cap - 1);
        for (const char *p = val; *p; p++)
            if (!isprint((unsigned char)*p) || *p == '"' || *p == '\\')
                return nmf_error(NMF_ERR_INVALID_ARG, "%s: %s.%s: bad character in '%s'", where,
                                 k->section, k->key, val);
        memcpy(base + k->offset, val, strlen(val) + 1);
        return NMF_OK;
    }
    if (k->type == K_ENUM) {
        for (int i = 0; i < k->name_count; i++)
            if (!strcmp(val, k->names[i])) {
                memcpy(base + k->offset, &i, sizeof i);
                return NMF_OK;
            }
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: %s.%s: '%s' is not one of %s", where,
                         k->section, k->key, val, k->help);
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(val, &end);
    if (!*val || *end || errno || !isfinite(v))
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: %s.%s: '%s' is not a number", where,
                         k->section, k->key, val);
    if (k->type == K_INT && v != floor(v))
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: %s.%s: '%s' must be an integer", where,
                         k->section, k->key, val);
    if (v < k->lo || v > k->hi)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: %s.%s: %s out of range [%g, %g] (%s)", where,
                         k->section, k->key, val, k->lo, k->hi, k->help);
    if (k->type == K_INT) {
        int iv = (int)v;
        memcpy(base + k->offset, &iv, sizeof iv);
    } else {
        memcpy(base + k->offset, &v, sizeof v);
    }
    return NMF_OK;
}

nmf_status nmf_sta_config_parse(const char *text, const char *origin, nmf_sta_config *c) {
    if (!text || !c) return nmf_error(NMF_ERR_INVALID_ARG, "sta config: NULL argument");
    if (!origin) origin = "config";
    char section[32] = "";
    int lineno = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        char line[512];
        if (len >= sizeof line)
            return nmf_error(NMF_ERR_INVALID_ARG, "%s:%d: line too long", origin, lineno);
        memcpy(line, p, len);
        line[len] = 0;
        p = nl ? nl + 1 : p + len;
        for (char *q = line; *q; q++)
            if (*q == '#' || *q == ';') {
                *q = 0;
                break;
            }
        char *s = trim(line);
        if (!*s) continue;
        char where[320];
        snprintf(where, sizeof where, "%s:%d", origin, lineno);
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e || e[1] || e - s - 1 <= 0 || e - s - 1 >= (long)sizeof section)
                return nmf_error(NMF_ERR_INVALID_ARG, "%s: malformed section header '%s'", where, s);
            *e = 0;
            snprintf(section, sizeof section, "%s", trim(s + 1));
            int known = 0;
            for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                if (!strcmp(keys[i].section, section)) known = 1;
            if (!known)
                return nmf_error(NMF_ERR_INVALID_ARG, "%s: unknown section [%s]", where, section);
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) return nmf_error(NMF_ERR_INVALID_ARG, "%s: expected 'key = value': '%s'", where, s);
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        if (!*section)
            return nmf_error(NMF_ERR_INVALID_ARG, "%s: key '%s' outside any [section]", where, key);
        const key_def *k = NULL;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (!strcmp(keys[i].section, section) && !strcmp(keys[i].key, key)) k = &keys[i];
        if (!k) return nmf_error(NMF_ERR_INVALID_ARG, "%s: unknown key %s.%s", where, section, key);
        nmf_status st = set_key(c, k, val, where);
        if (st) return st;
    }
    nmf_status st = nmf_sta_config_validate(c);
    if (st) {
        return nmf_error_context(st, "%s", origin);
    }
    return NMF_OK;
}

nmf_status nmf_sta_config_load(const char *path, nmf_sta_config *c) {
    uint8_t *data = NULL;
    size_t size = 0;
    nmf_status st = nmf_read_file(path, 1 << 20, &data, &size);
    if (st) return st;
    char *text = malloc(size + 1);
    if (!text) {
        free(data);
        return nmf_error(NMF_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(text, data, size);
    text[size] = 0;
    free(data);
    if (strlen(text) != size) {
        free(text);
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: NUL byte in INI file", path);
    }
    st = nmf_sta_config_parse(text, path, c);
    free(text);
    return st;
}

/* Smallest weight tile: one step of every DPU (L kept values per row, worst-case metadata of
 * max_m bits per kept value when N = 1, and 8 bytes of bias + requant per row). */
uint64_t sta_min_weight_tile(const nmf_sta_config *c) {
    uint64_t L = (uint64_t)c->lanes_per_dpu, db = (uint64_t)(c->data_bits / 8);
    uint64_t meta = (L * (uint64_t)c->max_m + 7) / 8;
    return (uint64_t)c->dpus * (L * db + meta + 8);
}

nmf_status nmf_sta_config_validate(const nmf_sta_config *c) {
    if (!c) return nmf_error(NMF_ERR_INVALID_ARG, "sta config: NULL");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const key_def *k = &keys[i];
        if (k->type != K_INT && k->type != K_DOUBLE) continue;
        double v;
        if (k->type == K_INT) {
            int iv;
            memcpy(&iv, (const char *)c + k->offset, sizeof iv);
            v = iv;
        } else {
            memcpy(&v, (const char *)c + k->offset, sizeof v);
        }
        if (!(v >= k->lo && v <= k->hi))
            return nmf_error(NMF_ERR_INVALID_ARG, "%s.%s: %g out of range [%g, %g] (%s)",
                             k->section, k->key, v, k->lo, k->hi, k->help);
    }
    if ((unsigned)c->fetch >= NMF_STA_FETCH_COUNT || (unsigned)c->index >= NMF_STA_INDEX_COUNT ||
        (unsigned)c->weight_scale >= NMF_STA_SCALE_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "sta config: enum out of range");
    if (c->data_bits != 8 && c->data_bits != 16)
        return nmf_error(NMF_ERR_INVALID_ARG, "numeric.data_bits: %d, must be 8 or 16",
                         c->data_bits);
    if (c->acc_bits < 2 * c->data_bits + 1)
        return nmf_error(NMF_ERR_INVALID_ARG,
                         "numeric.acc_bits: %d cannot hold one %d x %d-bit product (need >= %d)",
                         c->acc_bits, c->data_bits, c->data_bits, 2 * c->data_bits + 1);
    if (!nmf_sta_device_find(c->device))
        return nmf_error(NMF_ERR_INVALID_ARG, "fpga.device: unknown device '%s'", c->device);
    uint64_t slots = c->double_buffer ? 2 : 1;
    uint64_t wt = sta_min_weight_tile(c) * slots;
    if ((uint64_t)c->weight_buf_kib * 1024 < wt)
        return nmf_error(NMF_ERR_INVALID_ARG,
                         "memory.weight_buf_kib: %d KiB cannot hold one weight tile (%d DPUs x %d "
                         "lanes x %d bits + positions + bias, x%d buffers = %llu bytes)",
                         c->weight_buf_kib, c->dpus, c->lanes_per_dpu, c->data_bits, (int)slots,
                         (unsigned long long)wt);
    uint64_t acc_bytes = (uint64_t)sta_acc_bytes(c);
    uint64_t ot = (uint64_t)c->dpus * acc_bytes * slots;
    if ((uint64_t)c->out_buf_kib * 1024 < ot)
        return nmf_error(NMF_ERR_INVALID_ARG,
                         "memory.out_buf_kib: %d KiB cannot hold one output tile (%d DPUs x %llu-"
                         "byte accumulators x%d buffers = %llu bytes)",
                         c->out_buf_kib, c->dpus, (unsigned long long)acc_bytes, (int)slots,
                         (unsigned long long)ot);
    /* half of the activation buffer streams tiles (the other half keeps resident tensors) */
    uint64_t win = (uint64_t)c->lanes_per_dpu * (uint64_t)c->max_m * (uint64_t)(c->data_bits / 8);
    if ((uint64_t)c->act_buf_kib * 1024 / 2 < win * slots)
        return nmf_error(NMF_ERR_INVALID_ARG,
                         "memory.act_buf_kib: %d KiB cannot hold one activation window in its "
                         "streaming half (%d lanes x max_m %d x %d bits x%d buffers)",
                         c->act_buf_kib, c->lanes_per_dpu, c->max_m, c->data_bits, (int)slots);
    return NMF_OK;
}

char *nmf_sta_config_to_ini(const nmf_sta_config *c) {
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    const char *section = "";
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const key_def *k = &keys[i];
        char line[256];
        int n = 0;
        if (strcmp(section, k->section)) {
            n += snprintf(line + n, sizeof line - n, "%s[%s]\n", *section ? "\n" : "", k->section);
            section = k->section;
        }
        const char *base = (const char *)c + k->offset;
        if (k->type == K_STRING) {
            n += snprintf(line + n, sizeof line - n, "%s = %s\n", k->key, base);
        } else if (k->type == K_ENUM) {
            int v;
            memcpy(&v, base, sizeof v);
            n += snprintf(line + n, sizeof line - n, "%s = %s\n", k->key,
                          (v >= 0 && v < k->name_count) ? k->names[v] : "?");
        } else if (k->type == K_INT) {
            int v;
            memcpy(&v, base, sizeof v);
            n += snprintf(line + n, sizeof line - n, "%s = %d\n", k->key, v);
        } else {
            double v;
            memcpy(&v, base, sizeof v);
            n += snprintf(line + n, sizeof line - n, "%s = %.15g\n", k->key, v);
        }
        if (len + (size_t)n + 1 > cap) {
            cap *= 2;
            char *t = realloc(out, cap);
            if (!t) {
                free(out);
                return NULL;
            }
            out = t;
        }
        memcpy(out + len, line, (size_t)n);
        len += (size_t)n;
    }
    out[len] = 0;
    return out;
}

/* For the JSON echo: walk the key table. */
size_t sta_config_key_count(void) { return sizeof keys / sizeof keys[0]; }
void sta_config_key(const nmf_sta_config *c, size_t i, const char **section, const char **key,
                    int *is_string, double *num, const char **str) {
    const key_def *k = &keys[i];
    const char *base = (const char *)c + k->offset;
    *section = k->section;
    *key = k->key;
    *is_string = k->type == K_STRING || k->type == K_ENUM;
    *num = 0;
    *str = NULL;
    if (k->type == K_STRING) {
        *str = base;
    } else if (k->type == K_ENUM) {
        int v;
        memcpy(&v, base, sizeof v);
        *str = (v >= 0 && v < k->name_count) ? k->names[v] : "?";
    } else if (k->type == K_INT) {
        int v;
        memcpy(&v, base, sizeof v);
        *num = v;
    } else {
        memcpy(num, base, sizeof *num);
    }
}
