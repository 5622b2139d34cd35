#include <stdio.h>
#include <stdlib.h>

#include "nmformer/nm.h"

int nmf_pattern_valid(nmf_pattern p) {
    return p.n >= 1 && p.m <= NMF_NM_MAX_M && p.n < p.m;
}

static int parse_int(const char *s, const char **end, int *out) {
    long v = 0;
    const char *q = s;
    if (*q < '0' || *q > '9') return 0;
    while (*q >= '0' && *q <= '9') {
        v = v * 10 + (*q - '0');
        if (v > 1000) return 0;
        q++;
    }
    *end = q;
    *out = (int)v;
    return 1;
}

nmf_status nmf_pattern_parse(const char *text, nmf_pattern *out) {
    const char *q;
    nmf_pattern p;
    if (!text || !parse_int(text, &q, &p.n) || *q != ':' || !parse_int(q + 1, &q, &p.m) || *q)
        return nmf_error(NMF_ERR_INVALID_ARG, "pattern '%s' is not of the form N:M",
                         text ? text : "(null)");
    if (!nmf_pattern_valid(p))
        return nmf_error(NMF_ERR_INVALID_ARG, "pattern %d:%d out of range (need 1 <= N < M <= %d)",
                         p.n, p.m, NMF_NM_MAX_M);
    *out = p;
    return NMF_OK;
}

void nmf_pattern_format(nmf_pattern p, char *buf, size_t size) {
    if (p.n == 0 && p.m == 0)
        snprintf(buf, size, "dense");
    else
        snprintf(buf, size, "%d:%d", p.n, p.m);
}

nmf_status nmf_nm_groups(size_t cols, nmf_pattern p, int pad, size_t *groups) {
    if (!nmf_pattern_valid(p))
        return nmf_error(NMF_ERR_INVALID_ARG, "invalid N:M pattern %d:%d", p.n, p.m);
    size_t m = (size_t)p.m;
    if (cols % m != 0 && !pad)
        return nmf_error(NMF_ERR_SHAPE,
                         "input dimension %zu is not a multiple of M=%d (zero padding not requested)",
                         cols, p.m);
    *groups = cols / m + (cols % m != 0); /* not (cols + m - 1) / m: that can wrap */
    return NMF_OK;
}
