/* Reporting progress from inside the library (nmf_set_progress, core.h). Not public API. */
#ifndef NMF_CORE_PROGRESS_H
#define NMF_CORE_PROGRESS_H

#include "nmformer/core.h"

typedef struct {
    const char *step, *what; /* "load", the file */
    uint64_t total, done;
    double start;
} nmf_progress_step;

/* A step of total units (bytes) begins; nothing is reported yet. */
void nmf_progress_begin(nmf_progress_step *s, const char *step, const char *what, uint64_t total);
/* amount more units done, the last on item (a tensor name): reported to the handler, if any. */
void nmf_progress_advance(nmf_progress_step *s, const char *item, uint64_t amount);

#endif
