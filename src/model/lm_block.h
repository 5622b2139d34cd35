/* The token families' forward pieces (lm_block.c), run on the model's arena by lm_forward.c. */
#ifndef NMF_MODEL_LM_BLOCK_H
#define NMF_MODEL_LM_BLOCK_H

#include "model/lm_internal.h"

/* Calls o->fn, if any, with op `op` of block `block` (-1: stem / tail), named by the op list. */
void nmf_lm_observe(const nmf_lm *m, const nmf_lm_observer *o, nmf_lm_op op, int block,
                    const float *data, size_t rows, size_t cols);
/* arena x (BT, D) = the embeddings of ids (B, T) at positions past .. (ids checked by the caller) */
void nmf_lm_embed(const nmf_lm *m, const int64_t *ids, const int64_t *types, size_t B, size_t T,
                  size_t past, const nmf_lm_observer *o);
/* The RoPE table of positions past .. past + T - 1 (LLaMA; nothing otherwise). */
void nmf_lm_rope_prepare(const nmf_lm *m, size_t past, size_t T);
/* Block l on arena x (BT, D), in place; keys and values go to kv. */
nmf_status nmf_lm_block_forward(const nmf_lm *m, int l, size_t B, size_t T, const nmf_lm_kv *kv,
                                const nmf_lm_observer *o);
/* The head on arena x: out as nmf_lm_forward (last_only: decoders' (B, vocab) of the last
 * tokens); pooler_output (B, D) also written when given and the model has a pooler. */
nmf_status nmf_lm_tail(const nmf_lm *m, float *out, size_t B, size_t T, int last_only,
                       float *pooler_output, const nmf_lm_observer *o);
/* y (N, out) = x (N, in) W^T + b, W a dense (out, in) head weight */
void nmf_lm_dense(float *y, const float *x, const float *W, const float *b, size_t N, size_t in,
                  size_t out);

#endif
