/* The transport of a build without MPI: always one rank, so every collective is the identity.
 * (CMake compiles this file or dist_mpi.c, never both.) */
#include <stdio.h>

#include "train/dist.h"

int nmf_dist_built_with_mpi(void) { return 0; }

const char *nmf_dist_describe(char *buf, size_t size) {
    if (size) snprintf(buf, size, "no");
    return buf;
}

/* Under mpirun, a build without MPI would run K independent copies of the whole job, all
 * writing the same files: refuse instead. */
nmf_status nmf_dist_init(void) {
    int size = 0;
    if (nmf_dist_launched(&size) && size > 1)
        return nmf_error(NMF_ERR_UNSUPPORTED, "started as one of %d processes (mpirun), but this "
                         "nmformer was built without MPI (install libopenmpi-dev and rebuild)",
                         size);
    return NMF_OK;
}
void nmf_dist_finalize(void) {}
int nmf_dist_rank(void) { return 0; }
int nmf_dist_size(void) { return 1; }
void nmf_dist_abort(int code) { (void)code; }

nmf_status nmf_dist_allreduce_f32(float *buf, size_t n) {
    (void)buf, (void)n;
    return NMF_OK;
}

nmf_status nmf_dist_allreduce_i64(long long *buf, int n) {
    (void)buf, (void)n;
    return NMF_OK;
}

/* a single rank has no peer to talk to */
nmf_status nmf_dist_send_f32(const float *buf, size_t n, int to) {
    (void)buf, (void)n;
    return nmf_error(NMF_ERR_UNSUPPORTED, "send to rank %d: built without MPI", to);
}

nmf_status nmf_dist_recv_f32(float *buf, size_t n, int from) {
    (void)buf, (void)n;
    return nmf_error(NMF_ERR_UNSUPPORTED, "receive from rank %d: built without MPI", from);
}

nmf_status nmf_dist_bcast(void *buf, size_t bytes, int root) {
    (void)buf, (void)bytes, (void)root;
    return NMF_OK;
}

nmf_status nmf_dist_allgather_u64(uint64_t v, uint64_t *all) {
    all[0] = v;
    return NMF_OK;
}
