/* The MPI transport (built when CMake finds MPI; else dist_local.c).
 *
 * Failure policy. Our communicator returns errors (MPI_ERRORS_RETURN): a failing call becomes an
 * nmf_status with MPI's message, the CLI prints it and calls nmf_dist_abort, which ends the whole
 * job with a non-zero status. A rank that *dies* (killed, out of memory) is handled by the
 * launcher: Open MPI's mpirun notices the dead process, says which rank died and how, and
 * terminates the others (its default policy), so no survivor waits forever in a collective. We
 * rely on that rather than on MPI_ERRORS_RETURN alone because MPI does not promise to report a
 * dead peer to the survivors (Open MPI 4.1 without ULFM blocks in the collective). Only rank 0
 * writes files, and every write is atomic (temp file + rename), so a job killed at any moment
 * leaves the last checkpoint whole. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/dist.h"

static struct {
    int initialized, owns_mpi, rank, size;
    MPI_Comm comm;
} g = {0, 0, 0, 1, MPI_COMM_NULL};

/* the largest count one MPI call gets (counts are int); bigger buffers go in pieces */
#define CHUNK ((size_t)1 << 30)

static nmf_status mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
    return nmf_error(NMF_ERR_IO, "%s failed on rank %d of %d: %s", what, g.rank, g.size, msg);
}

int nmf_dist_built_with_mpi(void) { return 1; }

const char *nmf_dist_describe(char *buf, size_t size) {
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (MPI_Get_library_version(v, &len) != MPI_SUCCESS) snprintf(v, sizeof v, "MPI");
    v[strcspn(v, ",\n")] = '\0'; /* "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4" */
    if (size) snprintf(buf, size, "%s", v);
    return buf;
}

nmf_status nmf_dist_init(void) {
    if (g.initialized) return NMF_OK;
    int flag = 0;
    MPI_Initialized(&flag);
    if (!flag && !nmf_dist_launched(NULL)) {
        g.initialized = 1; /* one rank, no MPI */
        return NMF_OK;
    }
    if (!flag) {
        int provided = 0;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Init_thread");
        g.owns_mpi = 1;
    }
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &g.comm);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(g.comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(g.comm, &g.rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(g.comm, &g.size);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI communicator setup");
    g.initialized = 1;
    return NMF_OK;
}

void nmf_dist_finalize(void) {
    if (g.comm != MPI_COMM_NULL) MPI_Comm_free(&g.comm);
    if (g.owns_mpi) MPI_Finalize();
    g.initialized = g.owns_mpi = g.rank = 0;
    g.size = 1;
    g.comm = MPI_COMM_NULL;
}

int nmf_dist_rank(void) { return g.rank; }
int nmf_dist_size(void) { return g.size; }

void nmf_dist_abort(int code) {
    if (g.size > 1) MPI_Abort(g.comm, code);
}

nmf_status nmf_dist_allreduce_f32(float *buf, size_t n) {
    if (g.size == 1) return NMF_OK;
    const double t0 = nmf_now();
    for (size_t i = 0; i < n; i += CHUNK) {
        int c = (int)(n - i < CHUNK ? n - i : CHUNK);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + i, c, MPI_FLOAT, MPI_SUM, g.comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce (gradients)");
    }
    nmf_dist_account(t0, n * sizeof(float));
    return NMF_OK;
}

nmf_status nmf_dist_allreduce_i64(long long *buf, int n) {
    if (g.size == 1) return NMF_OK;
    const double t0 = nmf_now();
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_LONG_LONG, MPI_SUM, g.comm);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce (counts)");
    nmf_dist_account(t0, (size_t)n * sizeof(long long));
    return NMF_OK;
}

nmf_status nmf_dist_send_f32(const float *buf, size_t n, int to) {
    const double t0 = nmf_now();
    for (size_t i = 0; i < n; i += CHUNK) {
        int c = (int)(n - i < CHUNK ? n - i : CHUNK);
        int rc = MPI_Send(buf + i, c, MPI_FLOAT, to, 0, g.comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Send");
    }
    nmf_dist_account(t0, n * sizeof(float));
    return NMF_OK;
}

nmf_status nmf_dist_recv_f32(float *buf, size_t n, int from) {
    const double t0 = nmf_now();
    for (size_t i = 0; i < n; i += CHUNK) {
        int c = (int)(n - i < CHUNK ? n - i : CHUNK);
        int rc = MPI_Recv(buf + i, c, MPI_FLOAT, from, 0, g.comm, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Recv");
    }
    nmf_dist_account(t0, 0); /* bytes are counted once, by the sender */
    return NMF_OK;
}

nmf_status nmf_dist_bcast(void *buf, size_t bytes, int root) {
    if (g.size == 1) return NMF_OK;
    const double t0 = nmf_now();
    for (size_t i = 0; i < bytes; i += CHUNK) {
        int c = (int)(bytes - i < CHUNK ? bytes - i : CHUNK);
        int rc = MPI_Bcast((char *)buf + i, c, MPI_BYTE, root, g.comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast");
    }
    nmf_dist_account(t0, g.rank == root ? bytes : 0);
    return NMF_OK;
}

nmf_status nmf_dist_allgather_u64(uint64_t v, uint64_t *all) {
    if (g.size == 1) {
        all[0] = v;
        return NMF_OK;
    }
    const double t0 = nmf_now();
    int rc = MPI_Allgather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, g.comm);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allgather (state check)");
    nmf_dist_account(t0, sizeof v);
    return NMF_OK;
}
