#include "nmformer/core.h"

#include <omp.h>
#include <stdlib.h>

static int thread_count = 0; /* 0: not yet decided */

void nmf_set_threads(int n) {
    if (n < 1) n = 1;
    thread_count = n;
    omp_set_num_threads(n);
}

int nmf_get_threads(void) {
    if (thread_count == 0) {
        const char *env = getenv("NMF_THREADS");
        int n = env ? atoi(env) : 0;
        if (n < 1) n = omp_get_num_procs();
        nmf_set_threads(n);
    }
    return thread_count;
}
