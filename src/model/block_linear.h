/* A model's block linear built from its tensor: the one path by which every model (token models
 * in lm.c, the ViT in vit.c) turns a weight as read into the layer that runs it, so that a weight
 * stored 16-bit stays 16-bit in whichever model holds it. */
#ifndef NMF_MODEL_BLOCK_LINEAR_H
#define NMF_MODEL_BLOCK_LINEAR_H

#include "nmformer/desc.h"
#include "nmformer/kernels.h"
#include "nmformer/tensor.h"

/* NMF_ERR_NUMERIC naming t when a 16-bit value of t is an infinity or a NaN. */
nmf_status nmf_block_check_finite16(const nmf_tensor *t);
/* 1 when the set was read keeping 16-bit values (nmf_load_model_keep16: a tensor holds data16). */
int nmf_block_set_kept16(const nmf_tensor_set *s);
/* *lin from t, the tensor of parameter p (kind k):
 * - N:M (t->nm, the (out, in) view): checked (nmf_nm_validate, finite kept values); when kept16
 *   and stored BF16, a compact bf16 N:M layer (nmf_linear_create_nm_bf16: its values are bf16
 *   already, memory ~ the stored bytes), else an f32 one;
 * - dense 16-bit (t->data16): a dense 16-bit layer (nmf_linear_create_dense16), taking t's values
 *   when take (t is the caller's to give up) and no transposition is needed;
 * - dense f32: a dense layer.
 * A weight stored [in, out] (k->in_axis == 0, GPT-2's Conv1D) is transposed once to (out, in);
 * 16-bit values are moved, never rounded. */
nmf_status nmf_block_linear_from_tensor(nmf_linear **lin, const nmf_param *p, const nmf_param_kind *k,
                                        nmf_tensor *t, int take, int kept16);

#endif
