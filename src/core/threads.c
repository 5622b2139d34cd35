#include "nmformer/core.h"

#include <errno.h>
#include <omp.h>
#include <stdlib.h>

#include "core/env.h"

#define MAX_THREADS 4096

static int thread_count = 0; /* 0: not yet decided */

void nmf_set_threads(int n) {
    if (n < 1) n = 1;
    thread_count = n;
    omp_set_num_threads(n);
}

nmf_status nmf_env_threads(int *threads) {
    const char *env = getenv("NMF_THREADS");
    *threads = 0;
    if (!env || !*env) return NMF_OK;
    char *end;
    errno = 0;
    long n = strtol(env, &end, 10);
    if (errno || end == env || *end || n < 1 || n > MAX_THREADS)
        return nmf_error(NMF_ERR_INVALID_ARG, "NMF_THREADS='%s': expected a number of threads in 1..%d",
                         env, MAX_THREADS);
    *threads = (int)n;
    return NMF_OK;
}

int nmf_get_threads(void) {
    if (thread_count == 0) {
        int n;
        if (nmf_env_threads(&n) != NMF_OK || n < 1) n = omp_get_num_procs(); /* the default */
        nmf_set_threads(n);
    }
    return thread_count;
}
