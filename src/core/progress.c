/* Progress of long steps: the library reports, the caller (the CLI) decides what to print. */
#include "core/progress.h"

static nmf_progress_fn handler;
static void *handler_user;

void nmf_set_progress(nmf_progress_fn fn, void *user) {
    handler = fn;
    handler_user = user;
}

void nmf_progress_begin(nmf_progress_step *s, const char *step, const char *what, uint64_t total) {
    *s = (nmf_progress_step){step, what, total, 0, handler ? nmf_now() : 0};
}

void nmf_progress_advance(nmf_progress_step *s, const char *item, uint64_t amount) {
    s->done += amount;
    if (!handler) return;
    const nmf_progress p = {s->step, s->what, item, s->done, s->total, nmf_now() - s->start};
    handler(&p, handler_user);
}
