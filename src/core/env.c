/* nmf_env_check: every NMF_* variable the library reads, checked by its own reader (env.h). */
#include "core/env.h"

nmf_status nmf_env_check(void) {
    int n;
    const char *dir;
    nmf_status st;
    if ((st = nmf_env_threads(&n)) || (st = nmf_env_isa(&n)) || (st = nmf_env_gemm(&n)) ||
        (st = nmf_env_spmm(&n)) || (st = nmf_env_data_dir(&dir)))
        return st;
    return NMF_OK;
}
