/* Training: the timm ViT with backward passes (llm.c style), AdamW, SR-STE dynamic N:M pruning
 * and IDP (sparsity inheritance) producing a family of N:M candidates.
 *
 * Layout (as llm.c's train_gpt2.c): all parameters live in one buffer, described by a struct of
 * pointers (nmf_vit_params over the model description's NMF_LAYOUT_ALL, nmformer/desc.h);
 * gradients and the AdamW moments m, v are three more buffers with the same layout. Block
 * tensors are stacked over layers, e.g. qkvw is (L, 3D, D). */
#ifndef NMFORMER_TRAIN_H
#define NMFORMER_TRAIN_H

#include "nmformer/config.h"
#include "nmformer/data.h"
#include "nmformer/desc.h"
#include "nmformer/io.h"
#include "nmformer/nm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the trainable model ---------------------------------------------------------------- */
/* A ViT, or a GPT-2 decoder language model (config arch "gpt2": GPT2LMHeadModel with the head
 * tied to wte, gelu_new or gelu): both share the pre-norm block, the N:M masks, the optimizer
 * and import / export; the LM's examples are sequences of T = n_positions tokens
 * (nmf_lm_train_forward). */
typedef struct nmf_vit_train nmf_vit_train; /* opaque */

/* Allocates params/grads/m/v and activations for batches of up to max_batch examples.
 * Parameters start at zero: call nmf_vit_train_init or nmf_vit_train_import. */
NMF_API nmf_status nmf_vit_train_create(nmf_vit_train **out, const nmf_model_config *cfg, int max_batch);
NMF_API void nmf_vit_train_free(nmf_vit_train *m);
NMF_API const nmf_model_config *nmf_vit_train_config(const nmf_vit_train *m);
NMF_API size_t nmf_vit_train_num_params(const nmf_vit_train *m);
NMF_API size_t nmf_vit_train_param_size(const nmf_vit_train *m, nmf_vit_param p);
/* Pointers into the four buffers (same layout), and the flat buffers themselves. */
NMF_API nmf_vit_params *nmf_vit_train_params(nmf_vit_train *m);
NMF_API nmf_vit_params *nmf_vit_train_grads(nmf_vit_train *m);
NMF_API float *nmf_vit_train_param_mem(nmf_vit_train *m);
NMF_API float *nmf_vit_train_grad_mem(nmf_vit_train *m);
NMF_API float *nmf_vit_train_m_mem(nmf_vit_train *m);
NMF_API float *nmf_vit_train_v_mem(nmf_vit_train *m);
/* Pointer to tensor p (of layer `layer` for block tensors) in the parameter buffer. */
NMF_API float *nmf_vit_train_param_ptr(nmf_vit_train *m, nmf_vit_param p, int layer);

/* The weights `train --init PATH [--init-model NAME]` starts from: candidate `name` of a family
 * (NULL: its dense model), or a file's only model (nmf_load_model; fallback is the config for a
 * safetensors file without one). */
NMF_API nmf_status nmf_train_load_init(const char *path, const char *name,
                                       const nmf_model_config *fallback, nmf_model_config *config,
                                       nmf_tensor_set *tensors);

/* timm-style init from a seed, by role (nmf_param_role_init): weights and pos_embed
 * trunc_normal(std 0.02), cls_token trunc_normal(std 1e-6), biases 0, LayerNorm (1, 0). */
NMF_API void nmf_vit_train_init(nmf_vit_train *m, uint64_t seed);

/* ---- N:M state: the pattern of the prunable linears, their masks and masked copies ------- */
/* {0,0} = dense. Setting a pattern recomputes the masks from the current weights. */
NMF_API nmf_status nmf_vit_train_set_pattern(nmf_vit_train *m, nmf_pattern p);
NMF_API nmf_pattern nmf_vit_train_pattern(const nmf_vit_train *m);
/* SR-STE / ASP: mask = topN(|W|) per group of M along the input dimension, per prunable
 * linear; also refreshes the masked copies. */
NMF_API nmf_status nmf_vit_train_update_masks(nmf_vit_train *m);
/* W*mask is stale after the weights or masks changed: recomputed before its next use (forward,
 * export), once however often this is called (an optimizer step followed by new masks computes
 * it once, not twice). */
NMF_API void nmf_vit_train_refresh_masked(nmf_vit_train *m);
/* With a pattern set, run the masked linears' forward and input gradient through the N:M
 * kernels (nmf_linear_*; default on) instead of dense BLAS on W*mask. Same math, fewer FLOPs. */
NMF_API void nmf_vit_train_use_nm_kernels(nmf_vit_train *m, int on);
/* Mask of prunable tensor p in layer `layer` ((rows, cols) bytes, 1 = kept); NULL when dense. */
NMF_API uint8_t *nmf_vit_train_mask(nmf_vit_train *m, nmf_vit_param p, int layer);
/* Sets every mask from caller data (same layout as nmf_vit_train_mask), e.g. a fixed mask. */
NMF_API size_t nmf_vit_train_mask_bytes(const nmf_vit_train *m);
NMF_API uint8_t *nmf_vit_train_mask_mem(nmf_vit_train *m);

/* ---- forward / backward ------------------------------------------------------------------ */
/* x (B, C, H, W) normalised images; labels (B) or NULL. Computes logits (and, with labels, the
 * mean cross-entropy into *loss and the number of correct argmax predictions into *correct;
 * either pointer may be NULL). B <= max_batch. */
NMF_API nmf_status nmf_vit_train_forward(nmf_vit_train *m, const float *x, const int *labels, int B,
                                 float *loss, int *correct);
/* 1 for a language model (GPT-2 config), 0 for a ViT. */
NMF_API int nmf_vit_train_is_lm(const nmf_vit_train *m);
/* Tokens per example (the LM's sequence length, n_positions; the ViT's patches + class token). */
NMF_API int nmf_vit_train_seq_len(const nmf_vit_train *m);
/* The LM's forward: ids (B, T) token ids, targets (B, T) the next token of each position, or
 * NULL (logits only). *loss: mean cross-entropy over the B*T tokens (nats per token); *correct:
 * tokens whose argmax is the target. Logits of every token, (B*T, vocab). */
NMF_API nmf_status nmf_lm_train_forward(nmf_vit_train *m, const int *ids, const int *targets,
                                        int B, float *loss, int *correct);
/* Logits of the last forward, (B, K); the LM's (B*T, vocab). */
NMF_API const float *nmf_vit_train_logits(const nmf_vit_train *m);
/* Gradients of the mean loss of the last forward (with labels / targets) into the grad buffer
 * (overwritten, not accumulated). For masked linears the weight gradient is the straight-
 * through one, dL/d(W*mask). */
NMF_API nmf_status nmf_vit_train_backward(nmf_vit_train *m);
/* SR-STE term: grad += lambda * (1 - mask) * W on the prunable weights (no-op when dense). */
NMF_API void nmf_vit_train_srste_decay(nmf_vit_train *m, float lambda);
/* ASP: grad *= mask on the prunable weights, so pruned weights stay where they are. */
NMF_API void nmf_vit_train_mask_grads(nmf_vit_train *m);

/* ---- optimizer ---------------------------------------------------------------------------- */
typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    float grad_clip; /* max global L2 norm; <= 0: no clipping */
} nmf_adamw_config;

/* Clips (global norm, as torch.nn.utils.clip_grad_norm_: coef = clip / (norm + 1e-6)), then one
 * AdamW step (decoupled weight decay, bias correction with step t >= 1) on every parameter;
 * weight decay only where nmf_vit_param_decays. Returns the gradient norm before clipping. */
NMF_API float nmf_vit_train_adamw_step(nmf_vit_train *m, const nmf_adamw_config *c, int t);
/* Zeroes m and v (new stage). */
NMF_API void nmf_vit_train_reset_optimizer(nmf_vit_train *m);

/* Linear warm-up from 0 over `warmup` steps, then cosine from lr_max down to lr_min at `total`.
 * step counts from 0. */
NMF_API float nmf_lr_cosine(int step, int total, int warmup, float lr_max, float lr_min);

/* ---- tensors in and out (timm names) ------------------------------------------------------ */
/* Copies every tensor of s (dense or nm) into the parameter buffer; shapes must match. */
NMF_API nmf_status nmf_vit_train_import(nmf_vit_train *m, const nmf_tensor_set *s);
/* Writes the model as a tensor set in timm names; with pack_nm != 0 and a pattern set, prunable
 * weights are stored as N:M tensors of W*mask (nmf_nm_pack_masked), else dense (masked). Adds
 * the config metadata. */
NMF_API nmf_status nmf_vit_train_export(nmf_vit_train *m, int pack_nm, nmf_tensor_set *out);

/* Accuracy over examples idx[0..count) (or the first count when idx NULL) of ds, batched. */
NMF_API nmf_status nmf_vit_train_evaluate(nmf_vit_train *m, const nmf_dataset *ds, const size_t *idx,
                                  size_t count, double *accuracy, double *mean_loss);

/* ---- a language model's perplexity on a text corpus ------------------------------------------ */
typedef struct {
    double loss;          /* mean cross-entropy, nats per byte */
    double accuracy;      /* next-byte accuracy */
    double perplexity;    /* exp(loss) */
    double bits_per_byte; /* loss / ln 2 */
    size_t windows, tokens;
    nmf_pattern pattern;  /* the weights' N:M pattern ({0,0}: dense) */
} nmf_lm_eval_result;
/* A byte-level GPT-2's weights (any candidate; N:M tensors are evaluated with their own masks,
 * as the trainer holds them) on one split of a corpus: nmf_lm_eval_windows(len, T, limit) windows
 * of T = n_positions bytes spread evenly over the split (limit 0: every window), `batch` windows
 * a forward. It is the trainer's evaluation: `train`'s test figures are (test split, limit
 * --test-limit, batch --batch) and its held-out ones (valid split, --holdout), and the same
 * weights give the same figures. A split shorter than one window is an error. */
NMF_API nmf_status nmf_lm_evaluate(const nmf_model_config *c, const nmf_tensor_set *weights,
                                   const nmf_corpus *corpus, nmf_text_split split, size_t limit,
                                   int batch, nmf_lm_eval_result *r);
/* The same windows scored by the inference engine, as m computes (nmf_lm_set_precision: bf16 or
 * int8 block linears, what `eval --precision` reports): forwards of up to `batch` windows (fewer
 * when their logits would pass ~256 MiB), the loss summed in double. At f32 it agrees with
 * nmf_lm_evaluate to float rounding. One process (no data-parallel split); r->pattern is left
 * {0, 0} (the caller knows the weights). */
typedef struct nmf_lm nmf_lm;
NMF_API nmf_status nmf_lm_evaluate_model(nmf_lm *m, const nmf_corpus *corpus, nmf_text_split split,
                                         size_t limit, int batch, nmf_lm_eval_result *r);

/* ---- IDP and the baselines ---------------------------------------------------------------- */
typedef enum {
    NMF_METHOD_IDP = 0, /* dense -> p1 -> p2 -> ..., each stage from the previous (SR-STE) */
    NMF_METHOD_SRSTE,   /* dense -> p for every p separately, SR-STE */
    NMF_METHOD_ASP,     /* dense -> p: magnitude mask fixed once, then fine-tune */
    NMF_METHOD_ONESHOT, /* dense -> p: magnitude pruning, no training */
    NMF_METHOD_COUNT
} nmf_train_method;
NMF_API const char *nmf_train_method_name(nmf_train_method m);
NMF_API nmf_status nmf_train_method_parse(const char *s, nmf_train_method *out);

#define NMF_TRAIN_MAX_PATTERNS 16

typedef struct {
    nmf_model_config model;
    nmf_train_method method;
    nmf_pattern patterns[NMF_TRAIN_MAX_PATTERNS];
    int num_patterns;
    const char *init_path; /* start from these dense weights (.nmf/.safetensors) or NULL */
    const char *init_model; /* the candidate of an init_path family to start from (NULL: dense);
                               an N:M candidate's own mask is kept by every `asp` stage of its
                               pattern (one-shot pruning + fine-tuning with the mask fixed) */
    const char *data_dir;  /* NULL: default */
    const char *corpus;    /* language models (model arch gpt2): the text corpus (nmf_corpus_load;
                              NULL: NMF_FORTUNES_DIR); the model's n_positions is the window */
    int batch;
    int dense_steps;   /* dense stage (0 with init_path: skip) */
    int stage_steps;   /* each N:M stage */
    float lr, stage_lr, lr_min_ratio;
    int warmup, stage_warmup;
    float weight_decay, beta1, beta2, eps, grad_clip;
    float srste_lambda;
    int mask_interval; /* recompute masks every k steps */
    float ramp_frac;   /* fraction of a stage spent stepping N down where the chain skips */
    int holdout;       /* last `holdout` training examples select checkpoints (LM: this many
                          windows of the corpus's valid split) */
    int eval_every;    /* held-out evaluation every k steps (and at the end of each stage) */
    int augment;       /* random shift (+-2 px, zero fill) + horizontal flip */
    uint64_t seed;
    const char *checkpoint_path; /* NULL: none */
    int checkpoint_every;
    int resume;
    int max_steps_this_run; /* for tests: stop (as if killed) after this many steps; 0 = off */
    int test_limit;         /* test accuracy on the first N test images only; 0 = all 10k */
    /* Data-parallel runs (nmformer/dist.h: every rank calls nmf_train_run with the same options;
     * each takes its share of every global batch of `batch` examples). Default: one all-reduce of
     * the gradients a step, results equal to one process's up to float rounding. deterministic:
     * the batch is cut into `shards` fixed micro-batches whose gradients are summed in shard
     * order, so any number of ranks up to `shards` gives bit-identical results. */
    int deterministic;
    int shards;        /* micro-batches per batch with deterministic (1..batch; preset 8) */
    int check_every;   /* with several ranks: check every k steps that all hold the same weights
                          and masks (preset 100) */
} nmf_train_options;

/* The pattern at `step` (0-based) of an N:M stage that goes from pattern `from` ({0,0}: dense) to
 * `target` in `steps` steps: where the chain skips N values with the same M (4:8 -> 2:8), the
 * first ramp_frac of the steps step N down one value at a time in equal parts (3:8), the rest
 * trains at the target. From dense, or with a different M, the stage starts at the target. */
NMF_API nmf_pattern nmf_idp_stage_pattern(nmf_pattern from, nmf_pattern target, int steps, int step,
                                  float ramp_frac);

/* Named configs: "demo" (default) and "full" (the ViT on Fashion-MNIST); "lm" a byte-level
 * GPT-2 on the fortunes corpus (nmf_train_lm_config(64, 4, 4, 4.0, 64)). */
NMF_API nmf_status nmf_train_options_preset(nmf_train_options *o, const char *name);
/* A byte-level GPT-2 (GPT2LMHeadModel, vocab 256, head tied to wte, gelu_new): width dim, depth
 * blocks of heads heads, MLP width mlp_ratio * dim, T = n_positions tokens a window. */
NMF_API nmf_status nmf_train_lm_config(nmf_model_config *c, int dim, int depth, int heads,
                                       float mlp_ratio, int T);

typedef struct {
    const char *stage;  /* "dense", "4:8", "3:8>2:8" while ramping */
    int stage_index, num_stages;
    int step, stage_total;        /* within the stage */
    long long global_step, global_total;
    float loss, acc, lr, grad_norm;
    double heldout_acc;           /* < 0 when not evaluated at this step; LM: exp(-held-out loss),
                                     the geometric mean probability of the right next token
                                     (1 / perplexity), the score that selects checkpoints */
    int lm;                       /* a language model: acc is next-token accuracy */
    double elapsed_s, eta_s;
    int stage_done;               /* 1 on the last report of a stage */
} nmf_train_progress;

typedef void (*nmf_train_callback)(const nmf_train_progress *p, void *user);

typedef struct {
    char name[32];
    double heldout_acc, test_acc; /* LM: held-out exp(-loss); test next-token accuracy */
    double test_loss;             /* LM: test mean nats per token (perplexity exp(test_loss),
                                     bits per byte test_loss / ln 2); ViT: 0 */
    int best_step;
    long long steps; /* training steps spent on this candidate's own stage(s) */
} nmf_train_candidate_info;

typedef struct {
    nmf_train_candidate_info cand[NMF_TRAIN_MAX_PATTERNS + 1];
    int count;
    long long total_steps;
    double seconds;
    int stopped_early; /* max_steps_this_run hit: no family written */
    int lm;            /* a language model's run (see nmf_train_candidate_info) */
    /* data parallelism, as seen by this rank */
    int ranks;
    long long steps_run;      /* training steps run by this call */
    double step_seconds;      /* their wall time (forward, backward, reduction, optimizer) */
    double comm_seconds;      /* of which: inter-rank communication (waiting included) */
    long long reduced_bytes;  /* bytes each step reduces: the fused gradient buffer */
} nmf_train_result;

/* Runs the whole method and writes the family (dense + every pattern) to out_path (atomic).
 * progress may be NULL; it is called every `report_every` steps and at the end of each stage.
 * With several ranks (nmf_dist_init) every rank makes this call with the same arguments; only
 * rank 0 writes files (family, checkpoints) and reports progress. */
NMF_API nmf_status nmf_train_run(const nmf_train_options *o, const char *out_path,
                         nmf_train_callback progress, int report_every, void *user,
                         nmf_train_result *result);

#ifdef __cplusplus
}
#endif
#endif
