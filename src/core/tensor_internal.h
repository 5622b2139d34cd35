/* Tensor-set helpers for the library's own use (src/core/tensor.c). Not public API. */
#ifndef NMF_CORE_TENSOR_INTERNAL_H
#define NMF_CORE_TENSOR_INTERNAL_H

#include "nmformer/tensor.h"

/* A tensor entry that holds no values: what a streamed read or write knows before the values
 * arrive (name, shape, stored dtype; with pattern.n != 0 an N:M header: t->nm with rows, cols,
 * groups and pattern of the (out, in) view and no values or positions, nm_transposed for an
 * [in, out] weight). Enough for nmf_model_desc_check and the .nmf writer's plan; never for
 * nmf_tensor_dense. Freed by nmf_tensors_free like any other. */
nmf_status nmf_tensors_add_header(nmf_tensor_set *s, const char *name, int ndim, const int64_t *shape,
                                  nmf_pattern pattern, int transposed, nmf_dtype stored,
                                  nmf_tensor **out);

#endif
