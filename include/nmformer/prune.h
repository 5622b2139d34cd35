/* One-shot N:M pruning with calibration: magnitude, Wanda and SparseGPT (docs/IDP.md).
 *
 * A weight W is seen as its (out, in) view whatever its storage (desc.h: GPT-2's Conv1D is
 * [in, out]); groups of M run along the input dimension. X (tokens, in) is the input of that
 * linear over every calibration token, taken by the observer of the one forward
 * (nmf_vit_forward_observed / nmf_lm_forward_observed) from the op that feeds the linear (the
 * op lists of desc.h name it).
 *
 *   magnitude  keep per group the N largest |W_ij|                           (no calibration)
 *   Wanda      keep per group the N largest S_ij = |W_ij| * ||X_j||_2        (Sun et al. 2023)
 *   SparseGPT  block by block in model order, each block's inputs from the model whose earlier
 *              blocks are already pruned: H = X^T X + damp * mean(diag) * I, U = chol(H^-1)
 *              (upper); columns left to right in blocks with lazy batch updates; at the first
 *              column of each group of M the N largest w^2 / U_jj^2 per row are kept; every
 *              pruned weight's error is spread over the later columns (Frantar & Alistarh 2023). */
#ifndef NMFORMER_PRUNE_H
#define NMFORMER_PRUNE_H

#include "nmformer/io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    NMF_PRUNE_MAGNITUDE = 0,
    NMF_PRUNE_WANDA,
    NMF_PRUNE_SPARSEGPT,
    NMF_PRUNE_METHOD_COUNT
} nmf_prune_method;
NMF_API const char *nmf_prune_method_name(nmf_prune_method m); /* "magnitude", "wanda", "sparsegpt" */
NMF_API nmf_status nmf_prune_method_parse(const char *s, nmf_prune_method *out);

/* ---- calibration data ------------------------------------------------------------------ */
typedef struct {
    size_t count;      /* samples: images or sequences */
    size_t seq_len;    /* token families: T; 0 for images */
    size_t sample_len; /* values per sample: C*S*S (ViT) or T */
    float *images;     /* ViT (count, C, S, S), normalised as nmf_vit_forward takes them; or NULL */
    int64_t *ids;      /* token families (count, T), every id in [0, vocab); or NULL */
} nmf_calib;

/* Calibration samples for model c from a .npy file, the first max_samples of it (0: all):
 * ViT: float32 (B, in_chans, img_size, img_size), finite; token families: int32/int64 (B, T),
 * 1 <= T <= max_position_embeddings, ids in [0, vocab_size). Anything else (another dtype or
 * shape, NaN, no sample, an id out of range) is an error whose detail says what and where. */
NMF_API nmf_status nmf_calib_load(nmf_calib *out, const nmf_model_config *c, const char *path,
                                  size_t max_samples);
/* The default set for the built-in data: the first `samples` images of the Fashion-MNIST train
 * split (data_dir as nmf_dataset_load), normalised with c's mean and std. The model must take
 * 1 x 28 x 28 images (NMF_ERR_INVALID_ARG otherwise: token models need a file). */
NMF_API nmf_status nmf_calib_fashion_mnist(nmf_calib *out, const nmf_model_config *c,
                                           const char *data_dir, size_t samples);
/* The default set for a byte-level token model (vocabulary 256, e.g. `train --config lm`):
 * `samples` windows of seq_len bytes (0: the model's context, max_position_embeddings) of the
 * train split of the text corpus at corpus (nmf_corpus_load; NULL: NMF_FORTUNES_DIR), spread
 * evenly over it (fewer when the split holds fewer). Deterministic: the same corpus gives the
 * same windows. Another vocabulary, a window longer than the context, a corpus that cannot be
 * read or whose train split is shorter than one window: an error that says which. */
NMF_API nmf_status nmf_calib_corpus(nmf_calib *out, const nmf_model_config *c, const char *corpus,
                                    size_t samples, size_t seq_len);
/* The default set of model c by its kind: token models nmf_calib_corpus(data = the corpus),
 * images nmf_calib_fashion_mnist(data = the IDX directory; seq_len must be 0). */
NMF_API nmf_status nmf_calib_default(nmf_calib *out, const nmf_model_config *c, const char *data,
                                     size_t samples, size_t seq_len);
NMF_API void nmf_calib_free(nmf_calib *cal);

/* ---- one layer ------------------------------------------------------------------------- */
/* scores (rows, cols) = |w| * sqrt(sumsq) per column, in float: sumsq[j] = sum over the
 * calibration tokens of x_j^2, accumulated in double in token order (so that a reference which
 * adds in the same order agrees bit for bit). */
NMF_API void nmf_wanda_scores(float *scores, const float *w, const double *sumsq, size_t rows,
                              size_t cols);
/* Wanda on one (out, in) weight: mask = N largest scores per group (ties: the lower index, as
 * nmf_nm_mask), w zeroed where the mask drops it. mask may be NULL. */
NMF_API nmf_status nmf_wanda_prune(float *w, uint8_t *mask, const double *sumsq, size_t rows,
                                   size_t cols, nmf_pattern p);
/* SparseGPT on one (out, in) weight in place, from xtx = X^T X (cols x cols, upper triangle
 * read; not modified): damp is lambda as a fraction of mean(diag H) (0.01 in the paper),
 * block_cols the lazy-update width (rounded down to a multiple of M; 128 in the paper). Columns
 * whose diag(H) is 0 (inputs never seen) are zeroed. mask (may be NULL) receives the kept set.
 * A Hessian that damping leaves singular is NMF_ERR_NUMERIC. */
NMF_API nmf_status nmf_sparsegpt_prune(float *w, uint8_t *mask, const double *xtx, size_t rows,
                                       size_t cols, nmf_pattern p, double damp, size_t block_cols);

/* ---- a whole model ---------------------------------------------------------------------- */
typedef struct {
    nmf_prune_method method;
    double damp;       /* SparseGPT dampening (fraction of mean diag H); default 0.01 */
    size_t block_cols; /* SparseGPT lazy-update block; default 128 */
    size_t batch;      /* calibration samples per forward; 0: chosen from the model's sizes */
} nmf_prune_options;
NMF_API void nmf_prune_options_default(nmf_prune_options *o);

typedef struct {
    double seconds;  /* calibration and pruning, wall clock, all patterns */
    size_t samples;  /* calibration samples used */
    size_t tokens;   /* rows each linear saw per forward pass (samples x tokens per sample) */
    size_t forwards; /* passes over the calibration set (Wanda: 1; SparseGPT: blocks x patterns) */
} nmf_prune_stats;

/* out[k] (initialised here) = dense pruned to patterns[k] by o->method (NULL: magnitude), each
 * N:M-eligible weight held packed as nmf_model_prune holds it, everything else copied. Wanda and
 * SparseGPT need cal (samples of the model's input kind); Wanda gathers its norms in one pass
 * shared by every pattern. stats may be NULL. On failure no out[k] is left allocated. */
NMF_API nmf_status nmf_prune_oneshot(const nmf_model_config *c, const nmf_tensor_set *dense,
                                     const nmf_pattern *patterns, size_t count,
                                     const nmf_prune_options *o, const nmf_calib *cal,
                                     nmf_tensor_set *out, nmf_prune_stats *stats);
/* nmf_family_prune (io.h) with the candidates pruned by nmf_prune_oneshot(o, cal). */
NMF_API nmf_status nmf_family_prune_oneshot(nmf_family *fam, const nmf_model_config *cfg,
                                            const nmf_tensor_set *src, const nmf_pattern *patterns,
                                            size_t count, int with_dense,
                                            const nmf_prune_options *o, const nmf_calib *cal,
                                            nmf_dtype *default_dtype, nmf_prune_stats *stats);

/* ---- a family pruned tensor by tensor (src/model/family_stream.c, src/prune/stream.c) ---- */
/* Gives the calibration samples of a streamed prune once the source's config is known (cal is
 * then the library's, freed with nmf_calib_free): e.g. nmf_calib_load or nmf_calib_default. */
typedef nmf_status (*nmf_calib_loader)(nmf_calib *cal, const nmf_model_config *c, void *user);
/* nmf_family_prune_file (add 0; io.h) or nmf_family_extend_file (add 1: out is the family to
 * extend, with_dense is ignored) pruning by o->method (o NULL: magnitude, as they do). Wanda and
 * SparseGPT call load(cal, config, user) once the source's config is known, before any tensor is
 * read (a failure is returned as it is), then run block by block: the calibration activations
 * (samples x tokens x width, f32; SparseGPT: one set per pattern) are kept, the source's tensors
 * read one block at a time, each block's linears calibrated, pruned for every pattern and written
 * before the next block is read. The candidates equal nmf_family_prune_oneshot's bit for bit
 * (payloads ordered otherwise). Memory: the embeddings, norms and biases in f32 (never the head),
 * one block's weights and their pruned forms, the activations, SparseGPT's X^T X of one block;
 * never the model. Atomic as nmf_family_prune_file. stats (may be NULL): as nmf_prune_oneshot's,
 * forwards counting passes of the whole set through every block (Wanda 1; SparseGPT 2 per
 * pattern: each block calibrated dense, then run pruned). */
NMF_API nmf_status nmf_family_prune_file_oneshot(const char *in, const char *model,
                                                 const nmf_config_overrides *overrides, const char *out,
                                                 const nmf_pattern *patterns, size_t count,
                                                 int with_dense, int add, const nmf_prune_options *o,
                                                 nmf_calib_loader load, void *user, nmf_dtype dtype,
                                                 nmf_family *written, nmf_dtype *dtype_used,
                                                 nmf_prune_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
