#include "nmformer/core.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[] = {
    [NMF_OK] = "ok",
    [NMF_ERR_INVALID_ARG] = "invalid argument",
    [NMF_ERR_NOMEM] = "out of memory",
    [NMF_ERR_IO] = "I/O error",
    [NMF_ERR_FORMAT] = "malformed or corrupt file",
    [NMF_ERR_UNSUPPORTED] = "unsupported",
    [NMF_ERR_CHECKSUM] = "checksum mismatch",
    [NMF_ERR_SHAPE] = "shape mismatch",
    [NMF_ERR_NOT_FOUND] = "not found",
    [NMF_ERR_NUMERIC] = "non-finite value",
};
static_assert(sizeof(status_names) / sizeof(status_names[0]) == NMF_STATUS_COUNT,
              "status_names must name every nmf_status");

const char *nmf_strerror(nmf_status status) {
    if ((unsigned)status >= NMF_STATUS_COUNT) return "unknown status";
    return status_names[status];
}

static _Thread_local char last_error[512];

/* Formats into a local buffer first: an argument may be nmf_last_error() itself, and
 * vsnprintf's source and destination must not overlap. */
nmf_status nmf_error(nmf_status status, const char *fmt, ...) {
    char text[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(last_error, text, sizeof last_error);
    return status;
}

nmf_status nmf_error_context(nmf_status status, const char *fmt, ...) {
    char detail[sizeof last_error], text[sizeof last_error];
    memcpy(detail, last_error, sizeof detail);
    va_list ap;
    va_start(ap, fmt);
    int used = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(last_error, text, sizeof last_error);
    /* append ": <detail>", cut to fit (a detail is one line; losing its tail is acceptable) */
    size_t at = used < 0 ? 0 : (size_t)used;
    const char *parts[2] = {": ", detail};
    for (int i = 0; i < 2 && detail[0]; i++)
        for (const char *q = parts[i]; *q && at + 1 < sizeof last_error; q++) last_error[at++] = *q;
    if (at < sizeof last_error) last_error[at] = '\0';
    return status;
}

const char *nmf_last_error(void) { return last_error; }
void nmf_clear_error(void) { last_error[0] = '\0'; }
