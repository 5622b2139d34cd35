/* Address-space budgets for tests that prove a reader or model stays within memory: the process's
 * current VmSize and an RLIMIT_AS of that plus a budget (set in a forked child, which then runs
 * the step under test). Shared by the mapped-family and streaming tests. */
#ifndef NMF_TESTS_VM_BUDGET_H
#define NMF_TESTS_VM_BUDGET_H

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "nmformer/io.h"

/* A field of /proc/self/status ("VmSize", "VmHWM", "RssAnon", ...) in kB; 0 if absent. */
static inline size_t test_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    const size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') {
            sscanf(line + n + 1, "%llu", &kb);
            break;
        }
    if (f) fclose(f);
    return (size_t)kb;
}

/* VmSize of this process, bytes (0 if /proc does not say). */
static inline size_t test_vm_size(void) { return test_status_kb("VmSize") * 1024; }

/* RLIMIT_AS = what the process maps now + budget bytes; 0 on success. */
static inline int test_limit_address_space(size_t budget) {
    struct rlimit lim;
    lim.rlim_cur = lim.rlim_max = (rlim_t)(test_vm_size() + budget);
    return setrlimit(RLIMIT_AS, &lim);
}

/* Whether loading the model at path whole is refused for want of memory (under a budget that
 * a streamed step just kept within); says what happened otherwise. */
static inline int test_whole_model_refused(const char *path) {
    nmf_model_config c;
    nmf_tensor_set s;
    const nmf_status st = nmf_load_model(path, NULL, NULL, &c, &s);
    if (st == NMF_OK) nmf_tensors_free(&s);
    if (st == NMF_ERR_NOMEM) return 1;
    fprintf(stderr, "whole model under the budget: %s (%s)\n", nmf_strerror(st), nmf_last_error());
    return 0;
}

#endif
