/* Private: the seam between model-level N:M packing (prune.c) and the calibrated pruning methods
 * (src/prune/): the (out, in) view of a linear weight whatever its storage, and
 * nmf_model_prune with the mask of each weight decided by a caller. */
#ifndef NMF_MODEL_PRUNE_INTERNAL_H
#define NMF_MODEL_PRUNE_INTERNAL_H

#include "nmformer/desc.h"
#include "nmformer/io.h"

/* The description row of tensor `name` when it is N:M-eligible (a block linear); else NULL. */
const nmf_param *nmf_model_nm_param(const nmf_model_desc *d, const char *name);

/* The weight's values as its (out, in) view, p->rows x p->cols (malloc'd via nmf_alloc; *out
 * NULL on failure). t may be dense or N:M. */
nmf_status nmf_linear_view(const nmf_model_desc *d, const nmf_param *p, const nmf_tensor *t,
                           float **out);
/* The inverse: writes the (out, in) view w into the dense storage of t (transposed back for a
 * weight stored [in, out]). t->data must hold p->numel values. */
void nmf_linear_view_store(const nmf_model_desc *d, const nmf_param *p, const float *w, nmf_tensor *t);

/* Decides one N:M-eligible weight: w is its (out, in) view (p->rows x p->cols), to be replaced
 * by the values to keep; mask (p->numel, zeroed) receives the kept set, at most N per group. */
typedef nmf_status (*nmf_prune_layer_fn)(void *ctx, const nmf_param *p, float *w, uint8_t *mask);
/* nmf_model_prune with fn deciding every eligible weight (fn NULL: magnitude). */
nmf_status nmf_model_prune_by(const nmf_model_config *c, const nmf_tensor_set *dense, nmf_pattern p,
                              nmf_prune_layer_fn fn, void *ctx, nmf_tensor_set *out);

/* NMF_ERR_INVALID_ARG naming both when a source's config is not a family's (as their JSON text):
 * what a family extended with more candidates requires. */
nmf_status nmf_family_same_config(const nmf_model_config *family, const nmf_model_config *source);

/* Model m's entry of the one tensor t to w, dense when the plan's entry is dense and t is N:M
 * (family_stream.c; the streamed prunes write with it). */
nmf_status nmf_family_writer_add_planned(nmf_family_writer *w, const nmf_family *plan, size_t m,
                                         const nmf_tensor *t);

#endif
