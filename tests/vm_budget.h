/* Address-space budgets for tests that prove a reader or model stays within memory: the process's
 * current VmSize and an RLIMIT_AS of that plus a budget (set in a forked child, which then runs
 * the step under test). Shared by the mapped-family and streaming tests. */
#ifndef NMF_TESTS_VM_BUDGET_H
#define NMF_TESTS_VM_BUDGET_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nmformer/io.h"
#include "test.h"

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

/* With NMF_TEST_VERBOSE: what a budget child mapped and held (VmPeak, VmSize, VmHWM), after
 * `what`. */
static inline void test_report_vm(const char *what) {
    if (getenv("NMF_TEST_VERBOSE"))
        fprintf(stderr, "%s: VmPeak %zu kB, VmSize %zu kB, VmHWM %zu kB\n", what,
                test_status_kb("VmPeak"), test_status_kb("VmSize"), test_status_kb("VmHWM"));
}

/* child(ctx) in a forked process, its exit status (-1: it did not exit). Call it before this
 * process runs any OpenMP region: a fork keeps only the calling thread. */
static inline int test_in_child(int (*child)(void *), void *ctx) {
    fflush(NULL);
    const pid_t pid = fork();
    if (pid == 0) _exit(child(ctx));
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* A budget test's folder, /tmp/nmf_<tag>_XXXXXX (on disk, not tmpfs: the files must not sit in
 * memory), with the source model s written there as f32 big.safetensors; test_budget_path
 * names the other files in it. */
typedef struct {
    char dir[64], src[128];
} test_budget_files;
static inline void test_budget_files_make(test_budget_files *f, const char *tag,
                                          const nmf_tensor_set *s) {
    snprintf(f->dir, sizeof f->dir, "/tmp/nmf_%s_XXXXXX", tag);
    CHECK(mkdtemp(f->dir) != NULL);
    snprintf(f->src, sizeof f->src, "%s/big.safetensors", f->dir);
    CHECK_OK(nmf_safetensors_write(f->src, s, NMF_DTYPE_F32));
}
static inline void test_budget_path(char *buf, size_t cap, const test_budget_files *f,
                                    const char *name) {
    snprintf(buf, cap, "%s/%s", f->dir, name);
}
/* Removes the source and the folder (the test removes its own files first). */
static inline void test_budget_files_remove(const test_budget_files *f) {
    unlink(f->src);
    rmdir(f->dir);
}

#endif
