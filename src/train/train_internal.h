/* Internals of the trainable model shared by the files of src/train. One struct trains both
 * families that share the pre-norm block (model/vit_block.c): the ViT (classifier on the class
 * token) and the GPT-2 decoder (tied LM head on every token, lm_train.c). The parameter buffer
 * follows the model description (one tensor per kind, stacked over the blocks), except that
 * every linear weight is held as its (out, in) view: GPT-2's Conv1D [in, out] tensors are
 * transposed on import and export, so masks, N:M kernels and the block passes are the ViT's. */
#ifndef NMF_TRAIN_INTERNAL_H
#define NMF_TRAIN_INTERNAL_H

#include "model/vit_block.h"
#include "nmformer/kernels.h"
#include "nmformer/train.h"
#include "train/text_windows.h"

/* Activation buffers (llm.c's ActivationTensors). Per-layer ones hold L copies. */
enum {
    /* ViT shapes; the LM's tail (LNF .. LOSSES, DLOGITS, DLNF) has B*T rows of vocab logits,
     * and it has no PATCHES, PE, CLSX, DCLSX, DPE */
    ACT_PATCHES = 0, /* (B*NP, CPP) */
    ACT_PE,          /* (B*NP, D) */
    ACT_ENCODED,     /* (B, T, D) */
    ACT_LN1,         /* (L, B, T, D) */
    ACT_LN1_MEAN,    /* (L, B, T) */
    ACT_LN1_RSTD,    /* (L, B, T) */
    ACT_QKV,         /* (L, B, T, 3D) */
    ACT_ATT,         /* (L, B, NH, T, T) */
    ACT_ATTY,        /* (L, B, T, D) */
    ACT_RES2,        /* (L, B, T, D) */
    ACT_LN2,         /* (L, B, T, D) */
    ACT_LN2_MEAN,    /* (L, B, T) */
    ACT_LN2_RSTD,    /* (L, B, T) */
    ACT_FCH,         /* (L, B, T, H) */
    ACT_FCH_GELU,    /* (L, B, T, H) */
    ACT_FCH_CDF,     /* (L, B, T, H) Phi(fch), for the GELU backward */
    ACT_RES3,        /* (L, B, T, D) */
    ACT_TMP,         /* (B, T, D) linear outputs added straight into the residual */
    ACT_CLSX,        /* (B, D) */
    ACT_LNF,         /* (B, D) */
    ACT_LNF_MEAN,    /* (B) */
    ACT_LNF_RSTD,    /* (B) */
    ACT_LOGITS,      /* (B, K) */
    ACT_PROBS,       /* (B, K) */
    ACT_LOSSES,      /* (B) */
    ACT_DLOGITS,     /* gradients: one layer's worth, reused */
    ACT_DLNF,
    ACT_DCLSX,
    ACT_DRES,
    ACT_DFCHG,
    ACT_DFCH,
    ACT_DLN2,
    ACT_DATTY,
    ACT_DQKV,
    ACT_DLN1,
    ACT_DPE,
    ACT_COUNT
};

/* The gradient buffer has room for two more floats after the parameters' gradients: a step's
 * loss and correct count travel in the same all-reduce as the gradients (one message a step). */
#define NMF_GRAD_TAIL 2

struct nmf_vit_train {
    nmf_model_config cfg;
    nmf_model_desc desc; /* the parameter table: names, shapes, roles, the buffer layout */
    int lm;              /* GPT-2 decoder (else ViT) */
    int L;               /* blocks */
    nmf_block_shape shape;
    /* the model's kind for each of the shared block's (nmf_vit_param block kinds; -1 others) */
    int blk_kind[NMF_VP_COUNT];
    int max_batch;
    size_t sizes[NMF_DESC_MAX_KINDS], offsets[NMF_DESC_MAX_KINDS], num_params;
    float *param_mem, *grad_mem, *m_mem, *v_mem; /* grad_mem: num_params + NMF_GRAD_TAIL */
    /* the loss of a forward is the mean over this many examples (0: the batch); data-parallel
     * ranks set the global batch, so that their gradients add up to the global mean's */
    int loss_denom;
    nmf_vit_params params, grads; /* ViT views (all NULL for the LM) */
    /* N:M: pattern {0,0} when dense; masks and masked copies of the prunable tensors, stacked in
     * kind order (offsets mask_offsets[p]); fw = the weights the passes use (masked or not), one
     * pointer per kind (fw.vit: the ViT's names for them) */
    nmf_pattern pattern;
    size_t mask_offsets[NMF_DESC_MAX_KINDS], mask_total;
    uint8_t *mask_mem;
    float *masked_mem;
    int masked_stale; /* masked_mem must be recomputed before use (sync_masked) */
    union {
        nmf_vit_params vit;
        float *k[NMF_DESC_MAX_KINDS];
    } fw;
    /* N:M kernels for the masked linears (forward and dx = dy W), rebuilt lazily from the masked
     * weights whenever they changed (lin_dirty). lin[q][l] is NULL when not in use. */
    int use_nm_kernels, lin_dirty;
    nmf_linear **lin[NMF_DESC_MAX_KINDS];
    /* activations of the last forward */
    float *act_mem, *act[ACT_COUNT];
    size_t act_sizes[ACT_COUNT];
    int B, has_labels;
    int *labels; /* ViT (B) classes; LM (B*T) next tokens */
    int *ids;    /* LM: the input tokens of the last forward (B*T), for the embedding backward */
    float *scratch; /* attention: nscratch per-thread slices */
    int nscratch;
};

/* ---- IDP run state (trainer.c), saved whole in checkpoints (checkpoint.c) ---- */
typedef struct {
    char name[32];
    nmf_pattern pattern;      /* {0,0}: dense */
    float *params;            /* num_params */
    uint8_t *mask;            /* mask_total bytes (unused when dense) */
    double heldout_acc;
    int best_step;
    long long steps;
} nmf_run_candidate;

typedef struct {
    uint64_t fingerprint;     /* hash of everything that shapes the trajectory */
    int stage;                /* current stage */
    int step;                 /* next step to run within the stage */
    int stage_started;        /* 0: the stage's initialisation has not run yet */
    long long global_step;    /* steps run so far, all stages (drives data order + RNG) */
    double elapsed_s;         /* wall time of previous runs */
    double best_acc;          /* current stage: best held-out accuracy so far (-1: none) */
    int best_step;
    float *best_params;
    uint8_t *best_mask;
    int ncand;                /* completed candidates (== stage: one per finished stage) */
    int num_stages;           /* stages of the plan: cand[0 .. num_stages) have buffers */
    nmf_run_candidate cand[NMF_TRAIN_MAX_PATTERNS + 1];
} nmf_run_state;

/* ---- the passes shared by both families (vit_train.c), used by lm_train.c ---- */
/* Runs the blocks from enc (B*T, D), saving activations; *out: the last block's output. Syncs the
 * masked weights and N:M linears first. */
nmf_status nmf_train_blocks_forward(nmf_vit_train *m, int B, const float *enc, const float **out);
/* Backward through the blocks: dres (B*T, D) holds dL/d(last block output) and ends as
 * dL/d(enc); block gradients accumulate into the gradient buffer (zeroed by the caller). */
nmf_status nmf_train_blocks_backward(nmf_vit_train *m, int B, float *dres);
/* The LM's forward and backward (lm_train.c); nmf_vit_train_backward dispatches here. */
nmf_status nmf_lm_train_backward(nmf_vit_train *m);
/* Correct argmax predictions of rows (R, K) of logits against labels. */
int nmf_train_count_argmax(const float *logits, const int *labels, int R, int K);

/* ---- the LM's data (lm_data.c) ---- */
/* ids, targets (B, T): B windows of text (len > T bytes) at random offsets of stream (seed, g) */
void nmf_lm_sample_batch(int *ids, int *targets, const uint8_t *text, size_t len, int B, int T,
                         uint64_t seed, long long g);
/* Mean loss (nats per token) and next-token accuracy over n evaluation windows, split over the
 * ranks (every rank gets the same figures). */
nmf_status nmf_lm_eval_split(nmf_vit_train *m, const uint8_t *text, size_t len, size_t n,
                             double *loss, double *acc);

/* The pattern and masks of a pruned candidate's packed N:M tensors (every prunable weight of s
 * N:M with one pattern; the weights themselves come from nmf_vit_train_import): the model is set
 * to that pattern with exactly those masks. s without N:M tensors leaves the model dense
 * (*pattern {0,0}). pattern may be NULL. */
nmf_status nmf_vit_train_import_masks(nmf_vit_train *m, const nmf_tensor_set *s,
                                      nmf_pattern *pattern);

/* Writes model (params, m, v, pattern, masks) + run state atomically to path. */
/* nmf_vit_train_set_pattern without computing masks: for callers that load masks next (then
 * nmf_vit_train_refresh_masked) or only validate the pattern against the model. */
nmf_status nmf_vit_train_use_pattern(nmf_vit_train *m, nmf_pattern p);

/* nmf_vit_train_evaluate's work: correct predictions (and the summed loss, may be NULL) over
 * examples idx[0..count) (or 0..count when idx is NULL), in batches of max_batch. */
nmf_status nmf_vit_train_count_correct(nmf_vit_train *m, const nmf_dataset *ds, const size_t *idx,
                                       size_t count, long long *right, double *loss_sum);

nmf_status nmf_checkpoint_save(const char *path, nmf_vit_train *m, const nmf_run_state *rs);
/* Reads a checkpoint back (rank 0 reads the file and sends its bytes to the other ranks);
 * refuses one whose fingerprint or sizes differ, or whose position does
 * not fit the plan (rs->num_stages). rs buffers must be allocated already (best_params/best_mask
 * and cand[i] for i < rs->num_stages). */
nmf_status nmf_checkpoint_load(const char *path, nmf_vit_train *m, nmf_run_state *rs);

#endif
