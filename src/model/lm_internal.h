/* Private layout of nmf_lm (token models: BERT, GPT-2, LLaMA) and of its key/value cache.
 * Parameters: one NMF_LAYOUT_DENSE buffer laid out by the model description (embeddings, norms,
 * biases, pooler, heads) + one nmf_linear per N:M-eligible weight and block. */
#ifndef NMF_MODEL_LM_INTERNAL_H
#define NMF_MODEL_LM_INTERNAL_H

#include "model/block_linear.h"
#include "nmformer/desc.h"
#include "nmformer/kernels.h"
#include "nmformer/lm.h"

/* Which of the family's parameter kinds plays each part of the shared forward (-1: absent). */
typedef struct {
    int encoder;  /* post-LN BERT block (else the pre-norm decoder block) */
    int rms;      /* RMSNorm (else LayerNorm with bias) */
    int rope;     /* rotary position embedding on q and k */
    int gated;    /* SwiGLU MLP: down(act(gate) * up) */
    int word, pos, type, emb_ln_w, emb_ln_b;          /* stem */
    int n1_w, n1_b, n2_w, n2_b;                       /* block norms (BERT: after attn / MLP) */
    int qkv_w, qkv_b;                                 /* fused (GPT-2 c_attn) */
    int q_w, q_b, k_w, k_b, v_w, v_b;                 /* separate */
    int o_w, o_b, fc1_w, fc1_b, up_w, up_b, fc2_w, fc2_b;
    int nf_w, nf_b, pool_w, pool_b, cls_w, cls_b, head_w; /* tail (head_w -1: tied to word) */
} nmf_lm_kinds;

/* Activations for up to `rows` tokens (B*T) of up to `batch` sequences; attention scratch for
 * up to `tk` keys per thread. Every buffer is (rows, cols) row-major. */
typedef struct {
    size_t rows, batch, tk;
    int threads;
    float *storage;
    size_t floats;
    float *x;        // (BT, D) residual stream
    float *ln;       // (BT, D) norm outputs
    float *q;        // (BT, Q) Q = heads*hd; GPT-2: the fused (BT, 3D)
    float *k, *v;    // (BT, KVW) KVW = kv_heads*hd
    float *att;      // (BT, Q) attention output
    float *hid, *up; // (BT, I) MLP hidden (gate), up projection
    float *tmp;      // (BT, D) linear outputs before a residual add
    float *kv;       // (2, B, KV, T, hd): one layer's keys and values when nothing is cached
    float *rope;     // (T, hd): cos | sin of each position's angles (hd/2 each)
    float *sel;      // (B, D) rows picked from x (BERT's first token, a decoder's last)
    float *sel2;     // (B, D)
    float *work;     // attention scratch, work_per floats per thread
    size_t work_per;
} nmf_lm_arena;

struct nmf_lm {
    nmf_model_config config;
    nmf_model_desc desc;   /* the parameter table; param_buf is its NMF_LAYOUT_DENSE */
    nmf_lm_kinds k;
    size_t D, I, heads, kv_heads, hd, V, P, L, labels, Q, KVW;
    float eps;
    float *param_buf;      /* desc's NMF_LAYOUT_DENSE, less the kinds held 16-bit below */
    nmf_linear **lin;      /* [L][kind_count]: the block linears by kind */
    /* Held in their stored 16-bit dtype when the file stores them so (else NULL, and they are in
     * param_buf): the word embedding (V, D), whose looked-up rows are widened, and the LM head
     * (V, D); a tied head is the embedding's layer itself (freed once). */
    nmf_linear *embed16, *head16;
    nmf_linear *head8;     /* int8 decoders whose head is f32: it as a dense int8 layer (lm.c
                            * set_head_precision), else NULL */
    nmf_block_maps maps;   /* the file mappings 16-bit weights used in place point into */
    nmf_lm_arena arena;
};

struct nmf_kv_cache {
    const nmf_lm *m;
    size_t B, cap, len;    /* sequences, positions it holds, positions filled */
    float *data;           /* (L, 2, B, KV, cap, hd) */
};

/* Kind k's tensor of block `block` (-1: per model) in the dense buffer; NULL when the model has
 * no such tensor or it is a linear's. */
float *nmf_lm_param(const nmf_lm *m, int kind, int block);
static inline const nmf_linear *nmf_lm_linear(const nmf_lm *m, int kind, int block) {
    return kind < 0 ? NULL : m->lin[(size_t)block * (size_t)m->desc.kind_count + (size_t)kind];
}

/* Where one call's attention reads and writes keys/values: per layer l, K at
 * base + l * layer_stride, V at + half; each (B, KV, cap, hd); positions [past, past + T) are
 * written. `valid` (BERT's mask, (B, T)) or NULL. */
typedef struct {
    float *base;
    size_t layer_stride, cap, past;
    const int64_t *mask;
} nmf_lm_kv;

typedef struct {
    nmf_observer fn;
    void *ctx;
} nmf_lm_observer;

/* The whole forward over B sequences of T new tokens (decoders: after kv->past cached ones).
 * out as nmf_lm_forward, or (B, vocab) of the last tokens when last_only. */
nmf_status nmf_lm_run(nmf_lm *m, float *out, const int64_t *ids, size_t B, size_t T,
                      const nmf_lm_inputs *in, const nmf_lm_kv *kv, int last_only,
                      const nmf_lm_observer *o);
/* Sizes the arena for B sequences of T tokens and attention over up to tk keys. */
nmf_status nmf_lm_arena_ensure(nmf_lm *m, size_t B, size_t T, size_t tk);

#endif
