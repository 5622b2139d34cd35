/* The upper Cholesky factor of an inverse Hessian, U with H^-1 = U^T U, as SparseGPT wants it
 * (torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)), in two
 * triangular passes instead of three and without forming H^-1:
 *
 *   H = R R^T with R upper ("reverse" Cholesky: the usual one run from the last index down)
 *   H^-1 = R^-T R^-1 = (R^-1)^T (R^-1)  =>  U = R^-1, upper with a positive diagonal, so it is
 *   the Cholesky factor (which is unique).
 *
 * Double precision throughout: the caller rounds U to float for the column sweep. */
#include <math.h>
#include <string.h>

#include "prune/prune_internal.h"

nmf_status nmf_hinv_chol_upper(double *h, double *u, size_t n) {
    /* R overwrites the upper triangle of h, columns from the last one down:
     *   R_jj = sqrt(H_jj - sum_{k>j} R_jk^2)
     *   R_ij = (H_ij - sum_{k>j} R_ik R_jk) / R_jj        (i < j)                             */
    for (size_t jj = n; jj-- > 0;) {
        double *rj = h + jj * n;
        double d = rj[jj];
        for (size_t k = jj + 1; k < n; k++) d -= rj[k] * rj[k];
        if (!(d > 0.0) || !isfinite(d))
            return nmf_error(NMF_ERR_NUMERIC, "Hessian is not positive definite (pivot %zu of %zu is "
                             "%g); raise the dampening", n - jj, n, d);
        const double rjj = sqrt(d);
        rj[jj] = rjj;
        for (size_t i = 0; i < jj; i++) {
            double *ri = h + i * n;
            double s = ri[jj];
            for (size_t k = jj + 1; k < n; k++) s -= ri[k] * rj[k];
            ri[jj] = s / rjj;
        }
    }
    /* U = R^-1 row by row from the bottom: row i of R U = e_i gives
     *   U_i = (e_i - sum_{k>i} R_ik U_k) / R_ii      (U_k zero left of k)                       */
    memset(u, 0, n * n * sizeof(double));
    for (size_t i = n; i-- > 0;) {
        const double *ri = h + i * n;
        double *ui = u + i * n;
        ui[i] = 1.0;
        for (size_t k = i + 1; k < n; k++) {
            const double a = ri[k];
            const double *uk = u + k * n;
            for (size_t j = k; j < n; j++) ui[j] -= a * uk[j];
        }
        for (size_t j = i; j < n; j++) ui[j] /= ri[i];
    }
    return NMF_OK;
}
