/* Data-parallel training across processes (MPI).
 *
 * `mpirun -np K nmformer train ...` runs K copies of the trainer ("ranks"); nmf_train_run splits
 * every global batch over them and averages the gradients with one all-reduce per step
 * (docs/IDP.md, "Data-parallel training"). MPI is initialised only when the process was started
 * by an MPI launcher (mpirun / mpiexec / srun): a plain run is one rank and makes no MPI call at
 * all, whether or not the library was built with MPI.
 *
 * The state is per process, as MPI's own is. A program that initialised MPI itself keeps it: the
 * library then uses MPI_COMM_WORLD (duplicated) and leaves MPI_Finalize to the program. */
#ifndef NMFORMER_DIST_H
#define NMFORMER_DIST_H

#include <stddef.h>

#include "nmformer/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the library was built with MPI (CMake option NMF_WITH_MPI, FindMPI). */
NMF_API int nmf_dist_built_with_mpi(void);
/* The MPI library in one line ("Open MPI v4.1.4"), or "no" without MPI; returns buf. */
NMF_API const char *nmf_dist_describe(char *buf, size_t size);

/* Joins the job when started by an MPI launcher (MPI_Init_thread, funneled: only the calling
 * thread talks to MPI); otherwise, or without MPI, this process is rank 0 of 1. Idempotent.
 * Errors of the MPI library are returned (MPI_ERRORS_RETURN), never abort the process. */
NMF_API nmf_status nmf_dist_init(void);
/* MPI_Finalize if nmf_dist_init called MPI_Init; back to one rank. */
NMF_API void nmf_dist_finalize(void);
NMF_API int nmf_dist_rank(void);
NMF_API int nmf_dist_size(void);
/* With more than one rank: ends every rank of the job (MPI_Abort) with this exit code, because
 * the others would otherwise wait forever in the next collective. With one rank: returns. */
NMF_API void nmf_dist_abort(int code);

#ifdef __cplusplus
}
#endif
#endif
