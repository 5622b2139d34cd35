/* STA: a cycle-level simulator of the N:M sparse Transformer accelerator (docs/STA.md).
 *
 * Four parts:
 *   - configuration (an INI file with explicit units; validated, echoed in every report),
 *   - schedule: a model of any family (ViT, BERT, GPT-2, LLaMA; real weights or a synthetic shape)
 *     lowered from its op list (desc.h) to a list of operations; decoders in a prefill or a decode
 *     phase,
 *   - timing: every operation run through the engine / softmax unit / vector unit and the memory
 *     system tile by tile on one global clock (DRAM transfers overlap compute by double buffering),
 *   - functional mode: the fixed-point datapath of the accelerator (functional.c) and, separately,
 *     a plain-C fixed-point reference forward (fxp_ref.c) that must give bit-identical logits,
 *   - an FPGA resource estimate for a named device.
 * Everything returns nmf_status; nothing prints. */
#ifndef NMFORMER_STA_H
#define NMFORMER_STA_H

#include <stdio.h>

#include "nmformer/config.h"
#include "nmformer/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- configuration -------------------------------------------------------------------------- */

/* How the multiplexers get their activations (docs/STA.md, "operand fetch").
 *   WINDOW: the activation buffer fills a window register with every column of the groups the
 *           DPUs work on this step (ceil(window/act_banks) reads); each multiplier's M:1 mux picks
 *           from it. Timing does not depend on the positions.
 *   BANKED: no window register; the multiplexers read the buffer banks directly. A bank serves
 *           one column per cycle (broadcast to every DPU), so a step takes as many cycles as the
 *           most-loaded bank has distinct columns requested by the D rows in flight: timing
 *           depends on the model's own N:M positions (bank conflicts). */
typedef enum { NMF_STA_FETCH_WINDOW = 0, NMF_STA_FETCH_BANKED, NMF_STA_FETCH_COUNT } nmf_sta_fetch;
/* How positions are stored next to the kept values. */
typedef enum { NMF_STA_INDEX_BITMAP = 0, NMF_STA_INDEX_RANK, NMF_STA_INDEX_COUNT } nmf_sta_index;
/* Granularity of weight scales. */
typedef enum { NMF_STA_SCALE_TENSOR = 0, NMF_STA_SCALE_CHANNEL, NMF_STA_SCALE_COUNT } nmf_sta_scale;

NMF_API const char *nmf_sta_fetch_name(nmf_sta_fetch f);
NMF_API const char *nmf_sta_index_name(nmf_sta_index f);
NMF_API const char *nmf_sta_scale_name(nmf_sta_scale s);

typedef struct {
    char name[64];          /* [design] name */
    /* [engine] */
    double freq_mhz;        /* clock */
    int dpus;               /* D: dot-product units */
    int lanes_per_dpu;      /* L: multipliers per DPU */
    int max_m;              /* widest group the M:1 multiplexers serve (M <= max_m) */
    int mult_latency;       /* pipeline stages of a multiplier */
    int act_banks;          /* activation buffer banks, one data word per bank per cycle */
    nmf_sta_fetch fetch;    /* window | banked */
    /* [softmax] */
    int softmax_lanes;      /* P: elements per cycle */
    int softmax_latency;    /* pipeline depth (max, exp, sum, reciprocal, scale) */
    /* [vector] */
    int vector_lanes;       /* elements per cycle for LayerNorm, GELU, residual add */
    int vector_latency;     /* pipeline depth */
    /* [memory] */
    int weight_buf_kib;     /* packed values + positions + per-channel bias/requant */
    int act_buf_kib;        /* activations (data_bits each) */
    int out_buf_kib;        /* accumulators (acc_bits each) */
    int score_buf_kib;      /* attention scores of one head (acc_bits each) */
    int double_buffer;      /* 1: every buffer is two halves, loads overlap compute */
    /* [dram] */
    double dram_gbps;       /* sustained bandwidth, 1e9 bytes/s */
    double dram_latency_ns; /* per request */
    int dram_burst_bytes;   /* transfers are rounded up to whole bursts */
    /* [numeric] */
    int data_bits;          /* 8 or 16: weights and activations */
    int acc_bits;           /* accumulator width (>= 2*data_bits + log2(K) + 1 for every layer) */
    nmf_sta_scale weight_scale;
    nmf_sta_index index;    /* bitmap (M bits/group) | rank (ceil(log2 C(M,N)) bits/group) */
    /* [fpga] */
    char device[32];        /* a name from nmf_sta_devices() */
} nmf_sta_config;

/* A mid-size design (4096 multipliers at 200 MHz, one DDR4-2400 channel, xcvu9p). */
NMF_API void nmf_sta_config_default(nmf_sta_config *c);
/* Parses INI text over the values already in *c: "[section]", "key = value", '#'/';' comments.
 * Unknown sections/keys, malformed numbers, values out of range and designs that cannot hold one
 * tile are NMF_ERR_INVALID_ARG with a detail naming the key ("engine.dpus: ..."). */
NMF_API nmf_status nmf_sta_config_parse(const char *text, const char *origin, nmf_sta_config *c);
NMF_API nmf_status nmf_sta_config_load(const char *path, nmf_sta_config *c);
/* Ranges + "can hold one tile" checks, independent of the model. */
NMF_API nmf_status nmf_sta_config_validate(const nmf_sta_config *c);
/* Resolved configuration as INI text (malloc'd). */
NMF_API char *nmf_sta_config_to_ini(const nmf_sta_config *c);
static inline int nmf_sta_multipliers(const nmf_sta_config *c) {
    return c->dpus * c->lanes_per_dpu;
}

/* ---- schedule ----------------------------------------------------------------------------- */

typedef enum {
    NMF_STA_OP_SPARSE = 0, /* N:M weight x dense activations, multiplexers on */
    NMF_STA_OP_DENSE,      /* dense x dense (patch embed, Q K^T, A V, head), multiplexers bypassed */
    NMF_STA_OP_SOFTMAX,    /* softmax unit, fed from the score buffer */
    NMF_STA_OP_VECTOR,     /* LayerNorm, GELU, residual add */
    NMF_STA_OP_KIND_COUNT
} nmf_sta_op_kind;
NMF_API const char *nmf_sta_op_kind_name(nmf_sta_op_kind k);

typedef enum {
    NMF_STA_VEC_LAYERNORM = 0,
    NMF_STA_VEC_GELU,
    NMF_STA_VEC_ADD,
    /* token families (docs/STA.md, "token families") */
    NMF_STA_VEC_RMSNORM,   /* two passes: sum of squares, then scale */
    NMF_STA_VEC_ACT,       /* one table lookup per element: gelu_new, ReLU, SiLU, tanh */
    NMF_STA_VEC_MUL,       /* elementwise product (SwiGLU's act(gate) * up) */
    NMF_STA_VEC_ROPE,      /* rotary embedding: x cos + rotate_half(x) sin, one pass */
    NMF_STA_VEC_EMBED,     /* gathered embedding rows added (word + position (+ token type)) */
    NMF_STA_VEC_COUNT
} nmf_sta_vec_op;
NMF_API const char *nmf_sta_vec_op_name(nmf_sta_vec_op v);

/* What a schedule covers. PREFILL: every token of the input (T) through the model (ViT, BERT,
 * and a decoder's prompt, which also writes its keys and values to the cache in DRAM); DECODE
 * (GPT-2, LLaMA): one new token through the model against a cache of T positions read from DRAM
 * (attention over T + 1 keys). */
typedef enum { NMF_STA_PREFILL = 0, NMF_STA_DECODE, NMF_STA_PHASE_COUNT } nmf_sta_phase;
NMF_API const char *nmf_sta_phase_name(nmf_sta_phase p);

/* Activation tensors of one forward (residency decided per tensor, docs/STA.md). */
#define NMF_STA_MAX_OP_INPUTS 2

typedef struct {
    char name[64];
    nmf_sta_op_kind kind;
    nmf_sta_vec_op vec;     /* for NMF_STA_OP_VECTOR */
    int block;              /* block index, -1 outside blocks */
    /* Products: y[rows][cols] = x[rows][k] . W[cols][k]^T, `batch` independent times (heads).
     * Softmax / vector ops: `rows` rows of `k` elements, `batch` times. */
    int64_t rows, cols, k;
    int batch;
    nmf_pattern pattern;             /* sparse: the weight's N:M; {0,0} otherwise */
    const nmf_nm_matrix *weights;    /* sparse with real weights: positions feed the muxes */
    int weight_from_dram;            /* 1: W is a parameter (streamed); 0: W is an activation */
    int in[NMF_STA_MAX_OP_INPUTS];   /* activation tensor ids, -1 unused */
    int out;                         /* activation tensor id, -1: none (scores stay on chip) */
    int attn_group;                  /* >= 0: qk/softmax/av ops of one block run head-interleaved;
                                      * qk is Q K^T with rows queries and cols keys, in[0] = Q,
                                      * in[1] = K; av has in[1] = V */
    int model_op;                    /* the id of the model's op row this op lowers (nmf_vit_op,
                                      * nmf_lm_op: desc.h; qk/softmax/av all carry attention's);
                                      * consumers dispatch on it, never on the name */
} nmf_sta_op;

typedef struct {
    char name[64];
    int64_t elems;   /* elements (data_bits each) */
    int resident;    /* stays in the activation buffer (decided by nmf_sta_simulate) */
    int in_dram;     /* always in DRAM (the key/value cache: written by prefill, read by decode) */
} nmf_sta_tensor;

typedef struct {
    nmf_model_config vit; /* the model's config (any family; the name is historical) */
    nmf_sta_phase phase;
    int tokens;        /* T: tokens through the model (prefill), or the cached positions (decode);
                          may differ from the config's with --tokens */
    nmf_pattern pattern; /* pattern of the block linears ({0,0}: dense or mixed) */
    nmf_sta_op *ops;
    size_t op_count;
    nmf_sta_tensor *tensors;
    size_t tensor_count;
    uint64_t seed;     /* synthetic positions (banked fetch without real weights) */
} nmf_sta_schedule;

/* Any family, prefill phase (nmf_sta_schedule_build). From real weights (prunable linears held
 * as nm are sparse ops, the rest dense). tokens <= 0: the config's token count (ViT) or 128 (token
 * families; at most max_position_embeddings). The tensor set must outlive the schedule (positions
 * are borrowed). */
NMF_API nmf_status nmf_sta_schedule_model(nmf_sta_schedule *s, const nmf_model_config *vit,
                                  const nmf_tensor_set *weights, int tokens);
/* Synthetic: every block linear N:M with pattern p ({0,0}: dense), no weights. */
NMF_API nmf_status nmf_sta_schedule_synthetic(nmf_sta_schedule *s, const nmf_model_config *vit,
                                      nmf_pattern p, int tokens);
/* Any family in either phase: weights (may be NULL: synthetic, every N:M-eligible linear held p)
 * as nmf_sta_schedule_model. Token families: T = tokens (<= 0: 128), at most
 * max_position_embeddings (T + 1 in decode); the tail (final norm, LM head) runs on the last
 * position only, as generation needs; BERT's pooler and classifier on the first. DECODE is for
 * the decoders (GPT-2, LLaMA) only. */
NMF_API nmf_status nmf_sta_schedule_build(nmf_sta_schedule *s, const nmf_model_config *c,
                                          const nmf_tensor_set *weights, nmf_pattern p, int tokens,
                                          nmf_sta_phase phase);
NMF_API void nmf_sta_schedule_free(nmf_sta_schedule *s);

/* ---- timing ------------------------------------------------------------------------------ */

typedef struct {
    uint64_t start;          /* global cycle the op began (previous op ended) */
    uint64_t cycles;         /* = busy + fill + stall */
    uint64_t busy;           /* cycles the unit computed (includes fetch/conflict cycles) */
    uint64_t fill;           /* pipeline fill/drain */
    uint64_t stall;          /* cycles waiting on DRAM (loads or the final stores) */
    uint64_t conflict;       /* part of busy lost to operand fetch (bank conflicts, window) and
                                weight register reloads */
    uint64_t useful_macs;    /* multiplies by kept weights (0 for softmax/vector) */
    uint64_t elements;       /* softmax/vector: elements processed */
    uint64_t dram_read, dram_write;           /* all bytes */
    uint64_t weight_bytes, meta_bytes;        /* read: kept values; positions + bias/requant */
    uint64_t act_read_bytes, act_write_bytes; /* activations from/to DRAM */
    uint64_t tiles;
    /* peak buffer occupancy in bytes */
    uint64_t weight_buf_peak, act_buf_peak, out_buf_peak, score_buf_peak;
} nmf_sta_op_result;

typedef struct {
    uint64_t cycles, busy, fill, stall, useful_macs, dram_read, dram_write;
    double time_ms, mac_efficiency; /* useful / (multipliers * cycles) */
    uint64_t dram_lower_bound;      /* cycles to move dram_read+dram_write at full bandwidth */
    uint64_t compute_lower_bound;   /* sum over ops of busy at perfect efficiency */
} nmf_sta_total;

/* One event of the timeline (for --trace): unit 0 engine, 1 softmax, 2 vector, 3 DRAM. */
typedef struct {
    uint32_t op;
    uint8_t unit;
    uint8_t is_write;
    uint64_t begin, end;
} nmf_sta_event;

typedef struct {
    nmf_sta_op_result *ops; /* [schedule.op_count] */
    nmf_sta_total total;
    nmf_sta_event *events;  /* only when record_events */
    size_t event_count, event_cap;
} nmf_sta_result;

NMF_API nmf_status nmf_sta_simulate(const nmf_sta_config *c, nmf_sta_schedule *s, int record_events,
                            nmf_sta_result *r);
NMF_API void nmf_sta_result_free(nmf_sta_result *r);

/* Cycles to reload the DPUs' weight registers for the next step (the weight buffer is built 1/16
 * as wide as the multiplier array); a step never takes fewer cycles, so tiles of fewer than 16
 * tokens (the head) are limited by it. */
#define NMF_STA_WEIGHT_RELOAD 16

/* Pipeline depth of the engine: mux (sparse only) + multiplier + adder tree + accumulator. */
NMF_API int nmf_sta_engine_depth(const nmf_sta_config *c, int sparse);
/* Cycles of one DRAM transfer of n bytes: latency + whole bursts / bandwidth (fractional). */
NMF_API double nmf_sta_dram_cycles(const nmf_sta_config *c, uint64_t bytes);
/* Bytes of one N:M weight row chunk of `groups` groups: values and index metadata. */
NMF_API uint64_t nmf_sta_value_bytes(const nmf_sta_config *c, uint64_t weights);
NMF_API uint64_t nmf_sta_meta_bytes(const nmf_sta_config *c, nmf_pattern p, uint64_t groups);

/* ---- reports ------------------------------------------------------------------------------ */

/* Text table (one line per op + totals); JSON object {config, model, ops, total}; Chrome trace. */
NMF_API nmf_status nmf_sta_report_text(FILE *f, const nmf_sta_config *c, const nmf_sta_schedule *s,
                               const nmf_sta_result *r);
/* malloc'd JSON text; `extra` (may be NULL) is a cJSON object merged in (resources, functional).*/
NMF_API char *nmf_sta_report_json(const nmf_sta_config *c, const nmf_sta_schedule *s,
                          const nmf_sta_result *r, void *extra_cjson);
NMF_API nmf_status nmf_sta_write_trace(const char *path, const nmf_sta_config *c,
                               const nmf_sta_schedule *s, const nmf_sta_result *r);

/* ---- FPGA resources ---------------------------------------------------------------------- */

typedef struct {
    const char *name;   /* "xczu9eg" */
    const char *family; /* "Zynq UltraScale+" */
    int dsp, bram36, uram;
    int64_t lut, ff;
} nmf_sta_device;

NMF_API const nmf_sta_device *nmf_sta_devices(size_t *count);
NMF_API const nmf_sta_device *nmf_sta_device_find(const char *name);

typedef struct {
    int64_t dsp, lut, ff, bram36, uram;
    /* breakdown */
    int64_t lut_mult, lut_mux, lut_adder, lut_acc, lut_softmax, lut_vector, lut_control;
    int64_t ff_pipeline, ff_window;
    int64_t bram_weight, bram_act, bram_out, bram_score, bram_lut;
    const nmf_sta_device *device;
    int fits;                 /* every resource within the device */
    char over[96];            /* which resources exceed it, "" when it fits */
} nmf_sta_resources;

NMF_API nmf_status nmf_sta_estimate_resources(const nmf_sta_config *c, nmf_sta_resources *out);

/* ---- fixed point --------------------------------------------------------------------------- */

/* A real multiplier as mult * 2^-shift, mult in [2^14, 2^15) (Q15), 1 <= shift <= 62. */
typedef struct {
    int32_t mult;
    int32_t shift;
} nmf_fx_rq;

NMF_API int64_t nmf_fx_sat(int64_t v, int bits);                 /* clamp to signed `bits` */
NMF_API int64_t nmf_fx_shift_round(int64_t v, int shift);        /* round(v / 2^shift), half up */
NMF_API int64_t nmf_fx_div_round(int64_t a, int64_t b);          /* round(a / b), half away from 0; b>0 */
NMF_API nmf_status nmf_fx_rq_from_real(double real, nmf_fx_rq *out);
NMF_API int64_t nmf_fx_requant(int64_t acc, nmf_fx_rq rq, int bits); /* sat(round(acc*mult*2^-shift)) */
NMF_API int32_t nmf_fx_quantize(float x, float scale, int bits);  /* sat(round_half_away(x / scale)) */
NMF_API uint64_t nmf_fx_isqrt(uint64_t v);                        /* floor(sqrt(v)) */
/* 2^(-u / 2^16) in Q15 for u >= 0: 2^-floor part by shift, fraction from a 256-entry table with
 * linear interpolation (docs/STA.md). Result in [0, 32768]. */
NMF_API int32_t nmf_fx_exp2_neg(uint64_t u);
#define NMF_FX_EXP_FRAC 16   /* fraction bits of the softmax exponent argument */
#define NMF_FX_LN_FRAC 12    /* fraction bits of the normalised LayerNorm value */

/* Quantised ViT: every tensor the accelerator sees, with its scales. */
typedef struct {
    int rows, cols;          /* W [rows = out][cols = in] */
    nmf_pattern pattern;     /* {0,0}: dense */
    size_t groups;           /* sparse: groups per row (ceil(cols/M)) */
    int16_t *w;              /* dense [rows][cols] (zeros where pruned) -- the reference uses it */
    int16_t *values;         /* sparse: [rows][groups*N] kept values */
    uint8_t *pos;            /* sparse: [rows][groups*N] positions (from the model) */
    int64_t *bias;           /* [rows] in accumulator units */
    nmf_fx_rq *rq;           /* [rows] accumulator -> output scale */
    float *w_scale;          /* [rows] (all equal with per-tensor scales) */
} nmf_fx_linear;

typedef struct {
    int32_t *gamma; /* Q(LN_FRAC) */
    int64_t *beta;  /* Q(2*LN_FRAC) */
    nmf_fx_rq rq;   /* Q(2*LN_FRAC) -> output scale */
} nmf_fx_norm;

typedef struct {
    nmf_fx_norm norm1, norm2;
    nmf_fx_linear qkv, proj, fc1, fc2;
    nmf_fx_rq softmax_rq;      /* score accumulator -> Q16 log2 units (scale and log2 e folded) */
    nmf_fx_rq av_rq;           /* P V accumulator -> s_attn */
    nmf_fx_rq add1_a, add1_b;  /* residual add: x, proj -> x1 (shared shift) */
    nmf_fx_rq add2_a, add2_b;
    int16_t *gelu_lut;         /* [2^data_bits], indexed by (x + 2^(bits-1)) */
    /* activation scales */
    float s_in, s_ln1, s_qkv, s_attn, s_proj, s_x1, s_ln2, s_fc1, s_gelu, s_fc2, s_out;
} nmf_fx_block;

typedef struct {
    nmf_model_config vit;
    int data_bits, acc_bits;
    nmf_sta_scale weight_scale;
    float s_image;            /* input pixels (normalised) */
    nmf_fx_linear patch;      /* [dim][C*p*p], dense; bias per token below */
    int64_t *patch_bias;      /* [T-1][dim]: bias + pos_embed in accumulator units */
    int16_t *cls;             /* [dim]: cls + pos_embed[0] at s_x0 */
    float s_x0;
    nmf_fx_block *blocks;
    nmf_fx_norm norm;
    float s_norm;
    nmf_fx_linear head;       /* logits = head accumulator (int64) * s_norm * w_scale[o] */
    void *storage_;
} nmf_fx_model;

/* Quantises a model: weights from `weights` (nm tensors keep their positions), activation scales
 * calibrated by running the f32 forward on images [n][C][H][W] (normalised). */
NMF_API nmf_status nmf_fx_quantize_model(nmf_fx_model *q, const nmf_model_config *vit,
                                 const nmf_tensor_set *weights, const nmf_sta_config *hw,
                                 const float *calib, size_t n);
NMF_API void nmf_fx_model_free(nmf_fx_model *q);
/* Quantises normalised images into the input format. x: [n][C*H*W] -> xq. */
NMF_API void nmf_fx_quantize_input(int16_t *xq, const float *x, size_t count, const nmf_fx_model *q);

/* The plain-C fixed-point reference forward of one image: logits accumulators [num_classes]. */
NMF_API nmf_status nmf_fx_ref_forward(int64_t *logits, const int16_t *image, const nmf_fx_model *q);
/* The simulator's functional datapath (engine tiles, multiplexers fed by positions, softmax unit
 * lanes, vector unit) on the schedule of the model: logits accumulators [num_classes]. */
NMF_API nmf_status nmf_sta_functional_forward(int64_t *logits, const int16_t *image,
                                      const nmf_fx_model *q, const nmf_sta_config *hw);
/* logits[o] as real numbers. */
NMF_API void nmf_fx_logits_to_f32(float *out, const int64_t *logits, const nmf_fx_model *q);

/* The verification workflow of functional mode: quantise the model on calib (ncal images),
 * run every image of x (neval, normalised NCHW) through the functional simulator, the
 * fixed-point reference and the CPU's fixed-point mode and compare their logits bit for bit, and compare both with the f32
 * forward (nmf_vit_forward); with labels (may be NULL), top-1 accuracy of f32 and fixed point. */
typedef struct {
    size_t images, calibration_images;
    size_t mismatched;          /* images whose simulator logits differ from the reference's */
    double max_abs_logit_error; /* fixed point (as reals) vs f32, over all images and classes */
    size_t top1_agree;          /* images where fixed point and f32 pick the same class */
    size_t correct_f32, correct_fixed; /* with labels only */
    double wall_s;
    /* the CPU's fixed-point mode (nmf_fx_cpu) on the same images */
    size_t cpu_mismatched;      /* images whose CPU logits differ from the simulator's */
    double sim_s, cpu_s;        /* seconds in the simulator (one thread), in the CPU mode */
    int cpu_threads;            /* threads of the CPU mode (nmf_get_threads()) */
} nmf_sta_verify_result;
NMF_API nmf_status nmf_sta_verify(nmf_sta_verify_result *r, const nmf_sta_config *hw,
                          const nmf_model_config *vit, const nmf_tensor_set *weights,
                          const float *calib, size_t ncal, const float *x, const int *labels,
                          size_t neval);

/* ---- the fixed-point datapath on the CPU (docs/STA.md, "the CPU in the accelerator's numbers") -- */

/* A quantised ViT set up to compute, on the CPU at CPU speed, exactly the numbers of the
 * functional simulator (nmf_sta_functional_forward) for one design: the same quantised model,
 * accumulator widths and saturation, softmax unit, LayerNorm, GELU table and requantisation (the
 * per-row steps are the simulator's own functions); only the products run on SIMD integer
 * kernels, in int32 where a bound proven at create allows, else int64. Scratch for every thread
 * is planned at create (nmf_get_threads()); forward allocates nothing, and one object runs one
 * forward at a time (its scratch is its own). */
typedef struct nmf_fx_cpu nmf_fx_cpu;

/* Quantises the model as nmf_fx_quantize_model does (same quantiser, calib: normalised images
 * [ncal][C][H][W]) and sets it up for the design. Errors: a bad design (nmf_sta_config_validate),
 * a pattern its multiplexers cannot serve, accumulators that can overflow acc_bits. */
NMF_API nmf_status nmf_fx_cpu_create(nmf_fx_cpu **out, const nmf_model_config *vit,
                                     const nmf_tensor_set *weights, const nmf_sta_config *hw,
                                     const float *calib, size_t ncal);
/* The same on an already quantised model, which is borrowed (it must outlive the object). */
NMF_API nmf_status nmf_fx_cpu_create_quantized(nmf_fx_cpu **out, const nmf_fx_model *q,
                                               const nmf_sta_config *hw);
NMF_API void nmf_fx_cpu_free(nmf_fx_cpu *m);
NMF_API const nmf_fx_model *nmf_fx_cpu_model(const nmf_fx_cpu *m);
/* n quantised images [n][C*H*W] (nmf_fx_quantize_input) -> logit accumulators [n][classes],
 * bit-identical to nmf_sta_functional_forward image by image. Threads over images. */
NMF_API nmf_status nmf_fx_cpu_forward_q(nmf_fx_cpu *m, int64_t *logits, const int16_t *images, size_t n);
/* n normalised images [n][C][H][W] -> logit accumulators [n][classes] (quantised with s_image). */
NMF_API nmf_status nmf_fx_cpu_forward(nmf_fx_cpu *m, int64_t *logits, const float *images, size_t n);
/* As nmf_fx_cpu_forward, the logits as real numbers (nmf_fx_logits_to_f32). */
NMF_API nmf_status nmf_fx_cpu_forward_f32(nmf_fx_cpu *m, float *logits, const float *images, size_t n);
/* How the products accumulate ("int32", "int32 pairs -> int64", "int64") for the block linears,
 * attention scores and P V, as one line (for reports). */
NMF_API const char *nmf_fx_cpu_describe(const nmf_fx_cpu *m);

/* The calibration images of functional mode, one definition for `sim --functional` and
 * `run`/`eval --sta`: the first 256 images of the Fashion-MNIST training split (normalised with
 * the config's mean and std) when the model takes them and data_dir (NULL: $NMF_DATA_DIR or the
 * default) has them, else 16 N(0,1) images of a fixed seed. *images: nmf_alloc'd [*n][C][H][W];
 * *fmnist: 1 when they are Fashion-MNIST's (may be NULL). */
NMF_API nmf_status nmf_sta_calibration_images(float **images, size_t *n, int *fmnist,
                                              const nmf_model_config *vit, const char *data_dir);

/* f32 forward of the sta module (used for calibration and as the accuracy reference when no other
 * is given): nmf_vit_forward on these weights, images [n][C][H][W] normalised -> logits
 * [n][classes] (logits may be NULL). Optionally records the max |x| of every quantisation point
 * (internal layout) through an observer on that forward. */
NMF_API nmf_status nmf_sta_f32_forward(float *logits, const float *images, size_t n,
                               const nmf_model_config *vit, const nmf_tensor_set *weights,
                               float *absmax, size_t absmax_count);
/* Number of absmax slots nmf_sta_f32_forward records for a config. */
NMF_API size_t nmf_sta_absmax_count(const nmf_model_config *vit);

#ifdef __cplusplus
}
#endif
#endif
