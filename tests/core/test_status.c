/* Status names and error details. */
#include "test.h"

int main(void) {
    for (int s = 0; s < NMF_STATUS_COUNT; s++) CHECK(strlen(nmf_strerror((nmf_status)s)) > 0);
    CHECK(!strcmp(nmf_strerror(NMF_STATUS_COUNT), "unknown status"));
    CHECK(nmf_error(NMF_ERR_FORMAT, "bad %s", "magic") == NMF_ERR_FORMAT);
    CHECK(!strcmp(nmf_last_error(), "bad magic"));
    CHECK(nmf_error_context(NMF_ERR_FORMAT, "%s", "x.nmf") == NMF_ERR_FORMAT);
    CHECK(!strcmp(nmf_last_error(), "x.nmf: bad magic"));
    char long_name[2000];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    nmf_error_context(NMF_ERR_IO, "%s", long_name); /* cut to fit, still terminated */
    CHECK(strlen(nmf_last_error()) < 512 && nmf_last_error()[0] == 'a');
    nmf_clear_error();
    nmf_error_context(NMF_ERR_IO, "ctx"); /* no detail: no dangling ": " */
    CHECK(!strcmp(nmf_last_error(), "ctx"));
    /* the current detail as an argument (callers wrap a callee's detail this way) */
    nmf_error(NMF_ERR_FORMAT, "inner detail");
    nmf_error(NMF_ERR_FORMAT, "outer: %s (%s)", nmf_last_error(), "more");
    CHECK(!strcmp(nmf_last_error(), "outer: inner detail (more)"));
    nmf_error_context(NMF_ERR_FORMAT, "ctx %s", nmf_last_error());
    CHECK(!strcmp(nmf_last_error(), "ctx outer: inner detail (more): outer: inner detail (more)"));
    void *p = nmf_alloc((size_t)1 << 62, 16);
    CHECK(p == NULL); /* overflow */
    p = nmf_alloc(3, 5);
    CHECK(p != NULL && ((uintptr_t)p & 63) == 0);
    nmf_free(p);
    CHECK(nmf_active_isa() <= nmf_cpu_best_isa());
    return test_finish("core_status");
}
