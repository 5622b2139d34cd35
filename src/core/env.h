/* The readers of the NMF_* environment variables, one per variable, each next to what it
 * configures; nmf_env_check (env.c) runs them all. Each returns NMF_OK with the "unset" value
 * when the variable is unset or empty, the parsed value when it is valid, and
 * NMF_ERR_INVALID_ARG with a one-line detail ("NMF_THREADS='abc': ...") otherwise. Not public API. */
#ifndef NMF_CORE_ENV_H
#define NMF_CORE_ENV_H

#include "nmformer/core.h"

nmf_status nmf_env_threads(int *threads);     /* core/threads.c; unset: 0 (all cores) */
nmf_status nmf_env_isa(int *isa);             /* core/cpu.c; unset: -1 (the best the CPU has) */
nmf_status nmf_env_gemm(int *backend);        /* kernels/gemm.c; unset: -1 (by preference) */
nmf_status nmf_env_spmm(int *choice);         /* kernels/spmm_plan.c; unset: 0 (auto) */
nmf_status nmf_env_data_dir(const char **dir); /* train/dataset.c; unset: NULL */

#endif
