/* A model run one stage at a time on activations its caller holds: the block-at-a-time
 * calibration of a streamed prune (src/prune/stream.c), which keeps the calibration set's
 * activations (samples x tokens x width) and loads one block's weights at a time.
 *
 * The stem and each block run the very pieces the whole forward runs (vit_forward.c,
 * lm_forward.c: nmf_vit_embed_forward / nmf_vit_block_forward, nmf_lm_embed /
 * nmf_lm_block_forward) with the same observer events, so a block's output and every statistic
 * gathered on it equal the whole forward's, bit for bit, for the same batches.
 *
 * A staged model starts empty: its dense parameters (embeddings, norms, biases) go in tensor by
 * tensor, the block linears one block at a time; the tail (final norm, pooler, head) is never
 * held nor run. Private to the library. */
#ifndef NMF_MODEL_STAGED_H
#define NMF_MODEL_STAGED_H

#include "nmformer/lm.h"
#include "nmformer/model.h"
#include "nmformer/prune.h"

typedef struct nmf_staged nmf_staged;
nmf_status nmf_staged_create(nmf_staged **out, const nmf_model_config *c);
void nmf_staged_free(nmf_staged *s);
/* Rows per sample of the activations (ViT: tokens incl. the class token; token models: the
 * calibration set's T) and their width D. */
size_t nmf_staged_rows(const nmf_staged *s, const nmf_calib *cal);
size_t nmf_staged_width(const nmf_staged *s);
/* t, a dense parameter of the model (not a block linear; its shape already checked against the
 * config), into the model, checked finite as the loader checks it; a token model's tail (final
 * norm, pooler, heads) has no place and is skipped (the ViT's small head is held, never run). */
nmf_status nmf_staged_set_param(nmf_staged *s, const nmf_tensor *t);
/* Block l's linears built from the tensors of its N:M-eligible weights in set, as the whole
 * model builds them (block_linear.h), replacing those it held; drop frees them. */
nmf_status nmf_staged_set_block(nmf_staged *s, int l, const nmf_tensor_set *set);
void nmf_staged_drop_block(nmf_staged *s, int l);
/* x (b*rows, D) = the stem of calibration samples [i, i + b), the observer watching. */
nmf_status nmf_staged_embed(nmf_staged *s, const nmf_calib *cal, size_t i, size_t b, float *x,
                            nmf_observer obs, void *ctx);
/* y (b*rows, D) = block l of x (b*rows, D) for b samples of `rows` rows (y may be x). */
nmf_status nmf_staged_block(nmf_staged *s, int l, size_t b, size_t rows, const float *x, float *y,
                            nmf_observer obs, void *ctx);

/* The pieces of each model kind (vit.c / vit_forward.c, lm.c / lm_forward.c). */
nmf_status nmf_vit_create_shell(nmf_vit **out, const nmf_model_config *c);
nmf_status nmf_vit_set_block(nmf_vit *m, int l, const nmf_tensor_set *set);
void nmf_vit_drop_block(nmf_vit *m, int l);
nmf_status nmf_vit_stage_embed(nmf_vit *m, const float *images, size_t B, float *x, nmf_observer obs,
                               void *ctx);
nmf_status nmf_vit_stage_block(nmf_vit *m, int l, size_t B, const float *x, float *y, nmf_observer obs,
                               void *ctx);
nmf_status nmf_lm_create_shell(nmf_lm **out, const nmf_model_config *c);
nmf_status nmf_lm_set_block(nmf_lm *m, int l, const nmf_tensor_set *set);
void nmf_lm_drop_block(nmf_lm *m, int l);
nmf_status nmf_lm_stage_embed(nmf_lm *m, const int64_t *ids, size_t B, size_t T, float *x,
                              nmf_observer obs, void *ctx);
nmf_status nmf_lm_stage_block(nmf_lm *m, int l, size_t B, size_t T, const float *x, float *y,
                              nmf_observer obs, void *ctx);

#endif
