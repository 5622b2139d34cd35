/* Address-space budgets for tests that prove a reader or model stays within memory: the process's
 * current VmSize and an RLIMIT_AS of that plus a budget (set in a forked child, which then runs
 * the step under test). Shared by the mapped-family and streaming tests. */
#ifndef NMF_TESTS_VM_BUDGET_H
#define NMF_TESTS_VM_BUDGET_H

#include <stdio.h>
#include <sys/resource.h>

/* VmSize of this process, bytes (0 if /proc does not say). */
static inline size_t test_vm_size(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %llu kB", &kib) == 1) break;
    if (f) fclose(f);
    return (size_t)kib * 1024;
}

/* RLIMIT_AS = what the process maps now + budget bytes; 0 on success. */
static inline int test_limit_address_space(size_t budget) {
    struct rlimit lim;
    lim.rlim_cur = lim.rlim_max = (rlim_t)(test_vm_size() + budget);
    return setrlimit(RLIMIT_AS, &lim);
}

#endif
