/* Internals of data-parallel training: the transport between ranks (dist_mpi.c with MPI,
 * dist_local.c without: one rank) and what the trainer builds on it (dist.c).
 *
 * The transport calls are collective: every rank of the job makes the same calls in the same
 * order. With one rank they are no-ops (send/recv are never called then). */
#ifndef NMF_TRAIN_DIST_H
#define NMF_TRAIN_DIST_H

#include <stdint.h>

#include "nmformer/dist.h"

/* ---- transport ---------------------------------------------------------------------------- */
/* buf[0..n) = element-wise sum over ranks, in place, in whatever order the MPI library picks
 * (the fast path; results then depend on the number of ranks by float rounding). */
nmf_status nmf_dist_allreduce_f32(float *buf, size_t n);
/* Exact integer sums (counts). */
nmf_status nmf_dist_allreduce_i64(long long *buf, int n);
/* Point to point, for reductions in a fixed order. */
nmf_status nmf_dist_send_f32(const float *buf, size_t n, int to);
nmf_status nmf_dist_recv_f32(float *buf, size_t n, int from);
nmf_status nmf_dist_bcast(void *buf, size_t bytes, int root);
/* all[r] = v of rank r (all has nmf_dist_size() entries). */
nmf_status nmf_dist_allgather_u64(uint64_t v, uint64_t *all);

/* ---- built on the transport (dist.c) ------------------------------------------------------ */
/* Started by an MPI launcher? Open MPI's mpirun, MPICH's Hydra and Slurm's srun (PMI/PMIx) say so
 * in the environment; *size (may be NULL) gets the job size they announce, 0 if none. A plain run
 * must not initialise MPI: a singleton MPI_Init forks a helper daemon and, as root, Open MPI
 * refuses to start at all. */
int nmf_dist_launched(int *size);

/* Part i of n items split into `parts` contiguous ragged parts: the first n % parts parts get one
 * item more. */
typedef struct {
    size_t begin, count;
} nmf_dist_part;
nmf_dist_part nmf_dist_split(size_t n, int parts, int i);

/* Deterministic sum: acc[0..n) = (((0 + x_0) + x_1) + ...) + x_{S-1} element-wise, where the
 * terms x_j are held by the ranks in order (rank 0 the first ones, each rank a contiguous run,
 * `mine` of them here). The partial sum travels rank 0 -> 1 -> ... -> K-1 and the total is then
 * broadcast, so the rounding is the same whatever the number of ranks. */
nmf_status nmf_dist_ordered_sum(float *acc, float *const *mine, int nmine, size_t n);

/* Every rank passes a hash of state that must be equal everywhere (weights, masks); a mismatch
 * is an NMF_ERR_CHECKSUM error naming the first rank that differs from rank 0. */
nmf_status nmf_dist_check_same(uint64_t hash, const char *what, long long step);

/* Time spent in (and bytes sent through) the transport since the last reset: the communication
 * share of a training step. */
typedef struct {
    double seconds;
    unsigned long long bytes;
} nmf_dist_stats;
void nmf_dist_stats_reset(void);
nmf_dist_stats nmf_dist_stats_get(void);
/* for the transports: one call that started at t0 and moved `bytes` */
void nmf_dist_account(double t0, size_t bytes);

#endif
