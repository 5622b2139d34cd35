/* Private to src/prune: where each N:M linear's input comes from, and the statistics the
 * calibration forward gathers there. */
#ifndef NMF_PRUNE_INTERNAL_H
#define NMF_PRUNE_INTERNAL_H

#include "core/progress.h"
#include "io/model_stream.h"
#include "model/prune_internal.h"
#include "nmformer/desc.h"
#include "nmformer/model.h"
#include "nmformer/prune.h"

/* U with H^-1 = U^T U (upper, n x n) in place of H: the upper triangle of h is read as H and
 * holds U on return (the strict lower triangle is neither read nor written). */
nmf_status nmf_hinv_chol_upper(double *h, size_t n);

/* SparseGPT in two steps, so that the linears reading one tap (q, k, v; gate, up) share one
 * factor, made in the tap's own X^T X buffer: factor turns xtx (cols x cols, upper triangle) into
 * U = chol(H^-1) upper in place, H = X^T X with dead inputs (diag 0) given diag 1 and damp *
 * mean(diag) added; dead[j] (cols) records those inputs. prune_factored is nmf_sparsegpt_prune
 * from that U: bit for bit what nmf_sparsegpt_prune gives from the same X^T X. */
nmf_status nmf_sparsegpt_factor(double *xtx, uint8_t *dead, size_t cols, double damp);
nmf_status nmf_sparsegpt_prune_factored(float *w, uint8_t *mask, const double *u, const uint8_t *dead,
                                        size_t rows, size_t cols, nmf_pattern p, size_t block_cols);

/* sumsq[j] += x_ij^2 over the rows of x (rows, cols), row by row, in double. */
void nmf_acc_sumsq(double *sumsq, const float *x, size_t rows, size_t cols);
/* xtx (cols, cols) += x^T x, upper triangle. */
nmf_status nmf_acc_xtx(double *xtx, const float *x, size_t rows, size_t cols);

/* A tap: the output of one op of the forward that is the input of one or more N:M linears
 * (ViT norm1 feeds qkv; LLaMA's post_attention_layernorm feeds gate and up). */
typedef struct {
    int op, block;  /* the producing op (desc.h ids; block -1 for the stem) */
    size_t cols;    /* its width = the linears' input dimension */
    double *sumsq;  /* Wanda: (cols) */
    double *xtx;    /* SparseGPT: (cols, cols); U in its place once factored */
    uint8_t *dead;  /* SparseGPT: (cols), set when xtx has been factored (nmf_sparsegpt_factor) */
    size_t rows;    /* rows seen */
} nmf_prune_tap;

typedef struct {
    const nmf_param *param; /* the weight's row of the plan's description */
    int block;
    size_t tap;
} nmf_prune_linear;

/* Every N:M-eligible linear of a model in forward order, each with its tap, from the op lists. */
typedef struct {
    nmf_model_desc desc;
    nmf_prune_linear *linears;
    size_t nlinears;
    nmf_prune_tap *taps;
    size_t ntaps;
    int layers;
    int *slot;            /* (layers + 1) x NMF_OP_ID_MAX: tap index of (block + 1, op), -1 none */
    nmf_status error;     /* the first failure inside the observer */
} nmf_prune_plan;

/* SparseGPT on one linear (rows, cols) reading tap t, whose X^T X is complete: the first linear
 * of the tap factors it in place (nmf_sparsegpt_factor, o->damp) and the others reuse the factor;
 * a failed factor drops the tap's buffers. */
nmf_status nmf_sparsegpt_tap_prune(nmf_prune_tap *t, float *w, uint8_t *mask, size_t rows, size_t cols,
                                   nmf_pattern p, const nmf_prune_options *o);
/* Frees a tap's X^T X (or its factor); the next gathering allocates a new one. */
void nmf_prune_plan_drop_tap(nmf_prune_tap *t);

nmf_status nmf_prune_plan_build(nmf_prune_plan *pl, const nmf_model_config *c);
void nmf_prune_plan_free(nmf_prune_plan *pl);
/* The linear whose tensor is named name; NULL when none. */
const nmf_prune_linear *nmf_prune_plan_find(const nmf_prune_plan *pl, const char *name);
/* The observer: adds every watched op's output into its tap's statistics (those allocated). */
void nmf_prune_plan_observe(const nmf_op_event *e, void *ctx);

/* The calibration set through the one forward of a model built from tensors (dense), obs watching,
 * batch samples per pass (0: chosen from the sizes). */
nmf_status nmf_calib_forward(const nmf_model_config *c, const nmf_tensor_set *tensors,
                             const nmf_calib *cal, size_t batch, nmf_observer obs, void *ctx);

/* Wanda's decision of one weight (nmf_prune_layer_fn) from the norms of its tap in pl. */
typedef struct {
    const nmf_prune_plan *pl;
    nmf_pattern p;
} nmf_wanda_ctx;
nmf_status nmf_prune_wanda_layer(void *ctx, const nmf_param *p, float *w, uint8_t *mask);

/* Samples per calibration pass: batch, or when 0 one chosen from the model's sizes. */
size_t nmf_calib_batch(const nmf_model_config *c, const nmf_calib *cal, size_t batch);

/* ---- the calibrated prune of a streamed family (stream.c; family_stream.c drives it) ---- */
typedef struct {
    nmf_family_writer *w;      /* open, planned as nmf_family_prune_file plans */
    const nmf_family *plan;
    const nmf_model_stream *src;
    const nmf_model_config *cfg;
    const nmf_model_desc *d;   /* cfg's */
    int with_dense;            /* the writer's model `dense` is the source's dense copy */
    size_t dense, first;       /* writer models of the dense copy and of patterns[0] */
    nmf_progress_step *step;   /* advanced by each tensor's stored bytes */
} nmf_prune_sink;
/* Every tensor of s->src to the writer: the dense copy and, per pattern, the tensors pruning does
 * not touch as they are and each N:M-eligible weight pruned by o->method (wanda or sparsegpt) on
 * the calibration set cal, block by block: the activations of cal are kept, one block's weights
 * loaded at a time. The candidates equal nmf_prune_oneshot's bit for bit. */
nmf_status nmf_prune_streamed(const nmf_prune_sink *s, const nmf_pattern *patterns, size_t count,
                              const nmf_prune_options *o, const nmf_calib *cal, nmf_prune_stats *stats);

#endif
