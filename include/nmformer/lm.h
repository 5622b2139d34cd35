/* Token models: BERT encoders, GPT-2 and LLaMA decoders, with Hugging Face semantics
 * (docs/HF.md lists what each family computes). A model is built from its config (arch
 * "bert", "gpt2", "llama": config.h) and a tensor set in HF names (desc.h's tables); block
 * linears held N:M run on the N:M kernels, dense ones on the dense backend; GPT-2's Conv1D
 * weights ([in, out]) are transposed once at create time.
 *
 * Token ids are int64 (B, T); an id outside [0, vocab) is NMF_ERR_INVALID_ARG naming the
 * sequence and position. Outputs are float32, by the model's head (config hf.head):
 *   NMF_HF_HEAD_LM          logits (B, T, vocab)
 *   NMF_HF_HEAD_CLASSIFIER  logits (B, num_labels) (BERT: classifier(tanh(pooler(x[:, 0]))))
 *   NMF_HF_HEAD_NONE        last hidden state (B, T, hidden)
 * Threaded with nmf_get_threads(). Not re-entrant on one model (activations are reused). */
#ifndef NMFORMER_LM_H
#define NMFORMER_LM_H

#include "nmformer/config.h"
#include "nmformer/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nmf_lm nmf_lm; /* opaque */

/* c: a token family's validated config; tensors checked against its table (nmf_model_desc_check),
 * values copied (the set is not referenced afterwards). */
NMF_API nmf_status nmf_lm_create(nmf_lm **out, const nmf_model_config *c, const nmf_tensor_set *tensors);
/* nmf_lm_create from a set the caller gives up: each tensor is removed from it (freed) as soon as
 * the model holds its own copy, so that building peaks near one copy of the weights, not two.
 * The set is left with what the model does not use; the caller still frees it. Dense tensors
 * held 16-bit (nmf_load_model_keep16) stay 16-bit in the model: block linears, the word
 * embedding (rows widened as looked up) and the LM head (nmf_linear_create_dense16). */
NMF_API nmf_status nmf_lm_create_from(nmf_lm **out, const nmf_model_config *c, nmf_tensor_set *tensors);
/* Random weights by role (nmf_param_role_init), block linears pruned to pattern by magnitude and
 * held N:M when pattern.n != 0. Deterministic in seed. For benchmarks at real sizes. */
NMF_API nmf_status nmf_lm_create_random(nmf_lm **out, const nmf_model_config *c, nmf_pattern pattern,
                                        uint64_t seed);
/* An HF folder, a .nmf candidate or a .safetensors with nmformer.config, weights as stored:
 * BF16/F16 ones stay 16-bit in memory (bf16 N:M linears compact: nmf_linear_create_nm_bf16), F32
 * ones are f32. A folder or safetensors file is nmf_load_model_keep16 + nmf_lm_create_from; a
 * family candidate's N:M tensors are each read only when its layer is built, and its dense
 * 16-bit weights (embedding, head, dense linears) are used in place from the mapped file (their
 * CRC checked at load; the model keeps the mapping), so that memory stays near the candidate's
 * stored bytes, much of it file-backed. A ViT file is NMF_ERR_UNSUPPORTED (nmf_vit_load). */
NMF_API nmf_status nmf_lm_load(nmf_lm **out, const char *path, const char *name);
/* nmf_lm_load with the caller's config values (as nmf_load_model_with: they must agree with the
 * file's; a token model's ViT flags are an error naming them; may be NULL) and the precision the
 * block linears compute in: NMF_PREC_COUNT = weights as stored (nmf_lm_load); NMF_PREC_F32 every
 * weight widened to f32 at load; bf16 or int8 that f32 load with each block linear converted as it
 * is built (nmf_lm_set_precision's numbers). A family candidate is read layer by layer either way. */
NMF_API nmf_status nmf_lm_load_with(nmf_lm **out, const char *path, const char *name,
                                    const nmf_config_overrides *overrides, nmf_precision prec);
NMF_API void nmf_lm_free(nmf_lm *m);
NMF_API const nmf_model_config *nmf_lm_get_config(const nmf_lm *m);
/* Floats of nmf_lm_forward's output for B sequences of T tokens. */
NMF_API size_t nmf_lm_output_floats(const nmf_lm *m, size_t B, size_t T);
/* Bytes of parameters a forward reads (dense buffer + every linear's weight bytes). */
NMF_API size_t nmf_lm_weight_bytes(const nmf_lm *m);
/* The arithmetic of every block linear (nmf_linear_set_precision, as nmf_vit_set_precision):
 * f32, bf16 (weights rounded to bf16, f32 sums) or int8 (dense or N:M block linears). Set once,
 * on a model built in f32 (nmf_load_model + nmf_lm_create_from); one loaded keeping 16-bit
 * weights (nmf_lm_load) is bf16 already and cannot change. Embeddings and norms keep theirs; an
 * int8 decoder's f32 LM head (or tied embedding) computes the logits in int8 too, as a dense
 * int8 layer beside the f32 weight (GPT-2: a quarter of the 154 MB a token's logits read). An int8
 * model's attention runs in int8 too (nmf_attention_forward_q8) in calls of 16 queries or more
 * (prefill, BERT, evaluation windows); one-token decode steps keep the f32 kernel, which is
 * faster there. */
NMF_API nmf_status nmf_lm_set_precision(nmf_lm *m, nmf_precision p);

/* Optional inputs of a forward (NULL members: defaults). */
typedef struct {
    const int64_t *token_type_ids; /* BERT (B, T), ids in [0, type_vocab); NULL: zeros */
    const int64_t *attention_mask; /* BERT (B, T), 1 = token, 0 = padding (HF's additive
                                    * (1 - mask) * finfo.min on the scores); NULL: all ones */
    float *pooler_output;          /* BERT with a pooler: also write tanh(pooler(x[:, 0])) (B, D) */
} nmf_lm_inputs;

/* out = the model's output (see above) for ids (B, T), T <= max_position_embeddings. */
NMF_API nmf_status nmf_lm_forward(nmf_lm *m, float *out, const int64_t *ids, size_t B, size_t T,
                                  const nmf_lm_inputs *in);
/* The same with obs called after every op (the op list of nmf_model_stem_ops, nmf_model_block_ops
 * per block, nmf_model_tail_ops: desc.h; ids nmf_lm_op), so that
 * calibration and pruning statistics come from this one forward. */
NMF_API nmf_status nmf_lm_forward_observed(nmf_lm *m, float *out, const int64_t *ids, size_t B,
                                           size_t T, const nmf_lm_inputs *in, nmf_observer obs,
                                           void *ctx);

/* ---- decoding with a key/value cache (GPT-2, LLaMA) ---------------------------------------
 * The cache holds, per layer, the keys and values of every token seen so far for B sequences,
 * up to max_tokens positions (<= max_position_embeddings): 2 * layers * B * max_tokens *
 * kv_heads * head_dim floats (nmf_kv_cache_bytes). */
typedef struct nmf_kv_cache nmf_kv_cache;
NMF_API size_t nmf_kv_cache_bytes(const nmf_lm *m, size_t B, size_t max_tokens);
NMF_API nmf_status nmf_kv_cache_create(nmf_kv_cache **out, const nmf_lm *m, size_t B, size_t max_tokens);
NMF_API void nmf_kv_cache_free(nmf_kv_cache *cache);
NMF_API size_t nmf_kv_cache_length(const nmf_kv_cache *cache); /* positions filled */
NMF_API void nmf_kv_cache_reset(nmf_kv_cache *cache);
/* Runs T new tokens per sequence (ids (B, T)) after the cached ones (positions length ..
 * length + T - 1), appends their keys/values, and writes logits (B, T, vocab), or only the last
 * token's (B, vocab) when last_only. A cache without room for T more is NMF_ERR_INVALID_ARG. */
NMF_API nmf_status nmf_lm_forward_cached(nmf_lm *m, nmf_kv_cache *cache, float *out, const int64_t *ids,
                                         size_t T, int last_only);

typedef struct {
    float temperature; /* 0: greedy (argmax, lowest id on ties) */
    int top_k;         /* 0: the whole vocabulary */
    uint64_t seed;     /* sampling RNG (core/rng.h) */
} nmf_sampling;
typedef struct {
    double prefill_seconds, decode_seconds; /* the prompt's forward; the G - 1 one-token steps */
    size_t decode_tokens;                   /* B * (G - 1) */
} nmf_generate_stats;
/* out (B, T + G) = prompt (B, T) followed by G new tokens each, chosen from the last position's
 * logits by s (NULL: greedy); one prefill of the prompt, then one cached step per token.
 * max_tokens bounds the cache (0: T + G); T + G beyond it or beyond max_position_embeddings is
 * NMF_ERR_INVALID_ARG. stats may be NULL. */
NMF_API nmf_status nmf_lm_generate(nmf_lm *m, int64_t *out, const int64_t *prompt, size_t B, size_t T,
                                   size_t G, const nmf_sampling *s, size_t max_tokens,
                                   nmf_generate_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
