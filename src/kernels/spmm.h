/* Private: the N:M sparse x dense kernels behind nmf_linear (include/nmformer/kernels.h).
 *
 * Kernel layout ("row panels"). Output rows are taken 16 at a time (a panel, the width of one
 * zmm or two ymm); for panel b, group g and slot k (0..N-1) the 16 rows' k-th kept values are
 * contiguous, and so are their positions within the group:
 *   val[((b*G + g)*N + k)*16 + r]   f32  value of row b*16+r
 *   idx[((b*G + g)*N + k)*16 + r]   u8   its position 0..M-1 in group g
 * Rows past `out` in the last panel hold value 0 / position 0. A position that points at a
 * padding column (g*M + pos >= in) is rewritten to value 0 / position 0 at pack time, so no
 * kernel ever reads past column in-1.
 *
 * The SIMD kernels vectorise over the 16 rows of a panel: for each token they load the group's
 * M inputs x[t][g*M .. g*M+M) into one register (two for M > 16, masked at the row end) and,
 * for each slot, permute them by the slot's 16 positions (vpermps: one instruction turns the
 * positions into the 16 operands) and FMA with the 16 values. The accumulators (16 rows x a
 * block of tokens) stay in registers; values and positions are loaded once per block of
 * tokens. x stays token-major (no transposition, no packing per call); y is written as 16
 * contiguous floats per token. Bytes of weights: 5 per kept value (4 value + 1 position), the
 * same as the canonical nmf_nm_matrix; a 1-token product reads them exactly once.
 *
 * The scalar reference (spmm_ref.c) works on the canonical nmf_nm_matrix and never on this
 * layout, so the tests compare two independent code paths. */
#ifndef NMF_KERNELS_SPMM_H
#define NMF_KERNELS_SPMM_H

#include "nmformer/kernels.h"

#define NMF_SPMM_ROWS 16 /* rows per panel */

/* One kept weight of the interleaved token-vectorised layout (below). */
typedef struct {
    float val;    /* its value */
    uint32_t off; /* byte offset of its column in xT */
} nmf_tv_pair;

typedef struct {
    size_t out, in;      /* dense shape of W [out][in] */
    size_t groups;       /* groups per row: ceil(in / M) */
    int n, m;            /* pattern */
    size_t panels;       /* ceil(out / 16) */
    const float *val;    /* [panels][groups][n][16] */
    const uint8_t *idx;  /* [panels][groups][n][16] */
    /* W^T by input column (CSR of the transpose), built on the first backward product: the
     * kept weights of column i are tval[tptr[i] .. tptr[i+1]) at rows trow[...] (ascending).
     * NULL until then; the forward kernels never use it. */
    const size_t *tptr;  /* [in + 1] */
    const uint32_t *trow;
    const float *tval;
    /* Token-vectorised layout (spmm_tv_avx2.c, spmm_tv_avx512.c; shape from the layer's
     * plan), built by nmf_spmm_tv_layout. Rows in blocks of R = tv_rows (RB blocks; padding
     * rows: value 0, offset 0); the K = groups * n kept indices of a row in input blocks of
     * KB = tv_kblock (the last one shorter: len = min(KB, K - j0)), each input block holding
     * all row blocks, so that a sweep of one input block over all rows reads one contiguous
     * stream. For block rb, kept index j (= g*n + k, ascending groups) in the input block
     * starting at j0, row r:
     *   tv_pairs[j0*RB*R + (rb*len + j - j0)*R + r] = {value, byte offset of its column in
     *                                                  xT[in][TOK]}
     * (TOK = tv_tokens floats per xT row), so the inner loop adds the offset to xT and loads,
     * with no index arithmetic. A padding column has value 0, offset 0. NULL until built.
     * Value and offset side by side, not two arrays: two arrays a multiple of 4 KiB apart (as
     * they were whenever RB*R*K is a multiple of 1024) walk the same L1 sets in step, and with
     * the xT block filling most of each set they evict it: interleaved, the rows kernel alone
     * ran 1.3x faster (Zen 3, 768 rows, 2:8 and 1:8). */
    const nmf_tv_pair *tv_pairs;
    size_t tv_rows, tv_tokens, tv_kblock;
    int tv_perm; /* AVX-512 tv kernel: a kept weight's value broadcast by a vpermps from a load
                  * of 8 pairs (the layer's plan says: spmm_plan.c); the AVX2 kernel ignores it */
    /* The panel layout's positions widened to u32 (idx32[i] = idx[i]), for the AVX-512 panel
     * kernel when its params say `wide`: it loads them with a plain zmm load instead of
     * widening u8 -> u32 (a 512-bit shuffle) per slot and token block. Built when the layer is
     * planned, for plans that use it (1-token products keep reading the u8 form, where bytes
     * matter); else NULL. */
    const uint32_t *idx32;
    /* The panel layout's values rounded to bf16 (the f32 `val` then holds the same values
     * widened), rows paired: val16[s*16 + 2j + h] is row j + 8h of slot s (= (b*G + g)*n + k),
     * so that one 32-byte load holds the 16 rows as 8 u32 lanes, row j in the low half of lane
     * j and row j + 8 in the high half: on AVX2 a shift and an and make the two f32 vectors
     * (no widening shuffle, which would compete with the kernel's vpermps); on AVX-512 one
     * vpermw (or, with u8 positions, an and and a masked shift). Read instead of `val` by the
     * panel kernels of a bf16 layer whose step says bf16 (every ISA); with the positions as
     * nibbles (idx4, M <= 16) 2.5 bytes per kept weight instead of 5. The same allocation
     * holds idx4 after the values. */
    const uint16_t *val16;
    /* A compact bf16 layer with M <= 16 (nmf_linear_compact): the positions as nibbles, `idx`
     * NULL: 8 bytes per slot (idx4 + s/2), read as one little-endian 64-bit word whose bits
     * nmf_idx4_shift(r) .. + 3 hold row r's position: even rows in the low u32, odd rows in the
     * high one, so that the word broadcast to every u64 lane and shifted per u32 lane by
     * nmf_idx4_shift(lane) % 32 (one vpsrlvd) leaves row r's position in the low bits of lane r,
     * which is all a permute reads. With val16 a kept weight costs 2.5 bytes. Read by the bf16
     * panel kernels (every ISA). */
    const uint8_t *idx4;
} nmf_spmm_weights;

/* Where row r (0..15) of a slot keeps its position in the slot's 64-bit nibble word (idx4,
 * above): bit 32 (r & 1) + 4 (r >> 1). */
static inline unsigned nmf_idx4_shift(unsigned r) { return 32u * (r & 1u) + 4u * (r >> 1); }
/* Row r's position in the slot whose 8 nibble bytes start at `slot`. */
static inline unsigned nmf_idx4_get(const uint8_t *slot, unsigned r) {
    const unsigned b = nmf_idx4_shift(r);
    return (unsigned)(slot[b / 8] >> (b % 8)) & 15u;
}

/* xT rows (input columns) of the token-vectorised kernels are allocated in multiples of this
 * (the AVX-512 transpose writes 16 columns at a time, the AVX2 one 8). */
#define NMF_TV_IN_ALIGN 16

/* Per-product settings of the forward kernels, from the layer's plan (linear.c): the kernels
 * read no process-wide tuning state. Zero fields mean "the kernel's default". */
typedef struct {
    size_t panel_block; /* AVX-512 panel kernel: bytes of weights per block of panels */
    size_t token_block; /* AVX-512 panel kernel: tokens per block, 16 or 12 (0: 12) */
    int wide;           /* AVX-512 panel kernel: read the layer's u32 positions (w->idx32) */
    int bf16;           /* the panel kernels: read the bf16 values w->val16 */
} nmf_spmm_params;

/* Forward on output panels [p0, p1) for all tokens:
 *   y[t][o] = act(sum_i x[t][i] W[o][i] + bias[o])     y (tokens, out), x (tokens, in)
 * Row t of x starts at x + t*ldx; when x_slack >= NMF_SPMM_X_SLACK, NMF_SPMM_X_SLACK floats
 * past column in-1 of every row may be read (their values never matter), so kernels load whole
 * groups without masks. bias may be NULL. Single-threaded; the caller splits panels. */
#define NMF_SPMM_X_SLACK 32
typedef void (*nmf_spmm_forward_fn)(float *y, const float *x, size_t ldx, size_t x_slack,
                                    const nmf_spmm_weights *w, const float *bias,
                                    size_t tokens, nmf_activation act, size_t p0, size_t p1,
                                    const nmf_spmm_params *prm);
/* Backward w.r.t. the input on tokens [t0, t1): dx[t][i] = sum_o dy[t][o] W[o][i] (overwrites).
 * work: NMF_SPMM_BWD_WORK(out) floats, 64-byte aligned, private to the caller's thread. */
typedef void (*nmf_spmm_backward_fn)(float *dx, const float *dy, const nmf_spmm_weights *w,
                                     size_t t0, size_t t1, float *work);
#define NMF_SPMM_BWD_TOKENS 16 /* tokens per transposed tile of the backward kernels */
#define NMF_SPMM_BWD_WORK(out) ((out) * NMF_SPMM_BWD_TOKENS)

/* The token-vectorised kernels of an ISA (spmm_tv_avx2.c, spmm_tv_avx512.c: read the AVX2
 * file's header for the design), on w->tv_pairs (the interleaved tv layout, R = w->tv_rows rows
 * per block, TOK = w->tv_tokens floats per xT row, a multiple of `lanes`):
 * - transpose: xT[tiles][in16][TOK] (in16 = in rounded up to NMF_TV_IN_ALIGN, tiles =
 *   ceil(tokens / TOK), 64-byte aligned, nmf_spmm_tv_xt_floats) written for token vectors
 *   [v0, v1) (tokens lanes*v .. lanes*v + lanes-1, v < ceil(tokens / lanes): threads split
 *   them evenly whatever the tiles);
 * - forward_xt: output panels [p0, p1) from xT, in the layout's input blocks (w->tv_kblock kept
 *   indices per row; the xT columns they span should stay in L1), for chunks of `chunk` rows
 *   (rounded down to a multiple of 16: their partial sums yT[chunk][TOK] are kept in the
 *   scratch yT, nmf_spmm_tv_yt_floats, 64-byte aligned, private to the thread, across the
 *   input blocks);
 * - forward_xt_xt: the same product written, activation applied, as the next layer's xT (the
 *   xT layout of `out` columns: tile t0 / TOK, row o at o * TOK; no transpose), so that a
 *   second tv layer with the same TOK reads it as is (nmf_linear_forward_mlp). Lanes past the
 *   last token hold values of the padding (finite, never stored by the next layer), rows past
 *   `out` are not written;
 * - supports(R, TOK): whether that block shape has a microkernel for every tile height. */
typedef void (*nmf_spmm_tv_transpose_fn)(float *xT, const float *x, size_t ldx, size_t in,
                                         size_t tokens, size_t tok, size_t v0, size_t v1);
typedef void (*nmf_spmm_tv_forward_fn)(float *y, const float *xT, const nmf_spmm_weights *w,
                                       const float *bias, size_t tokens, nmf_activation act,
                                       size_t p0, size_t p1, size_t chunk, float *yT);
typedef struct {
    const char *name; /* "avx2-tv" */
    size_t lanes;     /* floats per token vector */
    int (*supports)(size_t rows, size_t tok);
    nmf_spmm_tv_transpose_fn transpose;
    nmf_spmm_tv_forward_fn forward_xt;
    nmf_spmm_tv_forward_fn forward_xt_xt;
} nmf_spmm_tv_kernels;

typedef struct {
    const char *name;
    nmf_spmm_forward_fn forward;
    nmf_spmm_backward_fn backward_input;
    const nmf_spmm_tv_kernels *tv; /* NULL: the ISA has no token-vectorised kernel */
} nmf_spmm_kernels;

/* dispatch.c: the kernels for an ISA (the one table, indexed by nmf_isa). */
const nmf_spmm_kernels *nmf_spmm_kernels_for(nmf_isa isa);

/* Portable C on the panel layout (NMF_ISA=scalar). spmm_scalar.c */
void nmf_spmm_forward_scalar(float *y, const float *x, size_t ldx, size_t x_slack,
                           const nmf_spmm_weights *w, const float *bias, size_t tokens,
                           nmf_activation act, size_t p0, size_t p1, const nmf_spmm_params *prm);
void nmf_spmm_backward_scalar(float *dx, const float *dy, const nmf_spmm_weights *w, size_t t0,
                              size_t t1, float *work);
/* spmm_avx2.c, spmm_avx512.c: call only when nmf_cpu_best_isa() allows. */
void nmf_spmm_forward_avx2(float *y, const float *x, size_t ldx, size_t x_slack,
                           const nmf_spmm_weights *w, const float *bias, size_t tokens,
                           nmf_activation act, size_t p0, size_t p1, const nmf_spmm_params *prm);
void nmf_spmm_backward_avx2(float *dx, const float *dy, const nmf_spmm_weights *w, size_t t0,
                            size_t t1, float *work);
void nmf_spmm_forward_avx512(float *y, const float *x, size_t ldx, size_t x_slack,
                           const nmf_spmm_weights *w, const float *bias, size_t tokens,
                           nmf_activation act, size_t p0, size_t p1, const nmf_spmm_params *prm);
#define NMF_SPMM_WIDE_MIN_TOKENS 12 /* AVX-512 panel: u32 positions from here (measured) */
void nmf_spmm_backward_avx512(float *dx, const float *dy, const nmf_spmm_weights *w, size_t t0,
                              size_t t1, float *work);

/* Builds the token-vectorised layout of w for R rows per block, xT rows of TOK floats and
 * input blocks of KB kept indices per row (0: one block): one allocation (*storage, nmf_free
 * it) that w->tv_pairs then points into. spmm_tv_layout.c */
nmf_status nmf_spmm_tv_layout(nmf_spmm_weights *w, size_t rows, size_t tok, size_t kb,
                              void **storage);

int nmf_spmm_tv_avx2_supports(size_t rows, size_t tok);
void nmf_spmm_tv_transpose_avx2(float *xT, const float *x, size_t ldx, size_t in, size_t tokens,
                                size_t tok, size_t v0, size_t v1);
void nmf_spmm_forward_tv_xt_avx2(float *y, const float *xT, const nmf_spmm_weights *w,
                                 const float *bias, size_t tokens, nmf_activation act,
                                 size_t p0, size_t p1, size_t chunk, float *yT);
void nmf_spmm_forward_tv_xt_xt_avx2(float *xTn, const float *xT, const nmf_spmm_weights *w,
                                    const float *bias, size_t tokens, nmf_activation act,
                                    size_t p0, size_t p1, size_t chunk, float *yT);
int nmf_spmm_tv_avx512_supports(size_t rows, size_t tok);
void nmf_spmm_tv_transpose_avx512(float *xT, const float *x, size_t ldx, size_t in,
                                  size_t tokens, size_t tok, size_t v0, size_t v1);
void nmf_spmm_forward_tv_xt_avx512(float *y, const float *xT, const nmf_spmm_weights *w,
                                   const float *bias, size_t tokens, nmf_activation act,
                                   size_t p0, size_t p1, size_t chunk, float *yT);
void nmf_spmm_forward_tv_xt_xt_avx512(float *xTn, const float *xT, const nmf_spmm_weights *w,
                                      const float *bias, size_t tokens, nmf_activation act,
                                      size_t p0, size_t p1, size_t chunk, float *yT);
/* The tv product's loop nest (spmm_tv_driver.c), for an ISA's forward_xt: rows[V] is the
 * microkernel for tiles of V token vectors of `lanes` floats (R = w->tv_rows rows per block, over
 * row blocks [rb0, rb1) and `len` kept indices of one input block: partial sums yT [R][TOK] per
 * block, initialised from the bias b when init), store writes a chunk's partial sums (rows c0..c1,
 * tokens t0..t0+tt) into y with the activation. */
typedef void (*nmf_spmm_tv_rows_fn)(float *yT, size_t tok, const float *xT, const nmf_tv_pair *wp,
                                    size_t len, size_t rb0, size_t rb1, int init, const float *b);
typedef void (*nmf_spmm_tv_store_fn)(float *y, size_t out, const float *yT, size_t tok, size_t c0,
                                     size_t c1, size_t t0, size_t tt, nmf_activation act);
void nmf_spmm_tv_drive(float *y, const float *xT, const nmf_spmm_weights *w, const float *bias,
                       size_t tokens, nmf_activation act, size_t p0, size_t p1, size_t chunk,
                       float *yT, size_t lanes, const nmf_spmm_tv_rows_fn *rows,
                       nmf_spmm_tv_store_fn store);
/* Floats of the scratch yT of a tv product (the partial sums and the chunk's bias). */
static inline size_t nmf_spmm_tv_yt_floats(size_t chunk, size_t tok) {
    return (chunk < 16 ? 16 : chunk / 16 * 16) * (tok + 1);
}
/* Floats of xT for a tv product (0 if the size overflows). */
static inline size_t nmf_spmm_tv_xt_floats(size_t in, size_t tokens, size_t tok) {
    const size_t tiles = (tokens + tok - 1) / tok;
    if (in > SIZE_MAX / 2 / 64 || tok == 0 || tok > 1024) return 0;
    const size_t in16 = (in + NMF_TV_IN_ALIGN - 1) / NMF_TV_IN_ALIGN * NMF_TV_IN_ALIGN;
    return tiles <= SIZE_MAX / sizeof(float) / 1024 / in16 ? tiles * in16 * tok : 0;
}

/* Threads of a panel-layout forward (linear.c) split the TOKENS, in blocks of
 * NMF_SPMM_SPLIT_TOKENS, when the layer's panel layout is at most the plan's token_split_bytes
 * (default below) and every thread gets two blocks; otherwise they split the output panels.
 * (Measured, docs/PERFORMANCE.md: with small weights every thread can read all of them from
 * cache, and then splitting tokens halves each thread's packing of x and y traffic: 768x768
 * 1:16 at 512 tokens 2.1x faster on two threads; with large weights splitting panels keeps
 * each thread's share of them in its cache.) */
#define NMF_SPMM_TOKEN_SPLIT_BYTES_DEFAULT ((size_t)2 << 20)
#define NMF_SPMM_SPLIT_TOKENS 12 /* a multiple of every kernel's token block (12, 4) */

/* Threads of a token-vectorised forward (linear.c) split the TOKENS, by token vectors (each
 * thread transposes its own tokens and runs every panel on them: no shared xT, no barrier;
 * an MLP chains its two layers per thread), when every thread gets at least the plan's
 * min_tokens and the layer's tv layout is at most NMF_SPMM_TV_SPLIT_BYTES or every thread gets
 * at least NMF_SPMM_TV_SPLIT_TOKENS; otherwise they split the output panels of one shared xT.
 * Measured on the Xeon (model 207, 2 threads, 2026-12-01; docs/PERFORMANCE.md): DeiT's layers
 * at 197 tokens 2:8 ran 1.1-1.4x faster split by tokens (384x384 0.117 -> 0.088 ms, 384x1536
 * 0.475 -> 0.344); BERT's 768x768 at 128 and 512 tokens 1.1-1.5x, 1:8 on 3072-wide ones
 * (2.4 MB of layout) 1.1-1.35x, 3072x768 2:8 / 2:4 at 128 tokens (4.7 / 9.4 MB) 5-8 % slower
 * than by panels, and faster again at 512 tokens. (A core reads all of the weights when split by
 * tokens, half of them by panels, but then reads the xT half written by the other core.) */
#define NMF_SPMM_TV_SPLIT_BYTES ((size_t)4 << 20)
#define NMF_SPMM_TV_SPLIT_TOKENS 256

/* ---- The layer's plan (linear.c) ---------------------------------------------------------
 * Decided when the layer is created (nmf_linear_create_nm), for the ISA active then: which
 * kernel runs a product of a given token count, the layouts it needs (built then, not on
 * first use), its settings and the thread split. nmf_linear_kernel_name() names what the plan
 * runs. The tuning below is what the plan is made from; tests and benchmarks that need one
 * particular kernel set it on the layer (nmf_linear_set_tuning), never through a global. */
typedef enum {
    NMF_SPMM_AUTO = 0,
    NMF_SPMM_ON,
    NMF_SPMM_OFF,
    NMF_SPMM_CHOICE_COUNT
} nmf_spmm_choice;
typedef struct {
    nmf_spmm_choice tv;       /* token-vectorised kernel: AUTO (measured rule), ON whenever
                               * tokens > 1, OFF (panel kernel only) */
    nmf_spmm_choice wide;     /* AVX-512 panel kernel's u32 positions: AUTO from
                               * NMF_SPMM_WIDE_MIN_TOKENS, ON whenever tokens > 1, OFF never */
    size_t panel_block;       /* AVX-512 panel: bytes of weights per block (0: 2 MiB) */
    size_t token_split_bytes; /* panel kernels: threads split tokens up to this layout size */
    nmf_spmm_choice tv_split; /* tv kernel's threads: AUTO (the rule above), ON tokens (when
                               * every thread gets a token vector), OFF output panels */
    /* The tv kernel's shape (0: the plan's rule; rows x tokens must be supported by the ISA's
     * tv kernels): rows per block, floats per xT row, input columns per block, rows per
     * chunk */
    size_t tv_rows, tv_tokens, tv_in_block, tv_chunk;
} nmf_spmm_tuning;
/* The defaults (AUTO, measured constants). */
nmf_spmm_tuning nmf_spmm_tuning_default(void);
/* Replans the layer with this tuning (building the layouts it needs). */
nmf_status nmf_linear_set_tuning(nmf_linear *lin, const nmf_spmm_tuning *t);

/* The tv kernel's layout and blocking for a layer (spmm_plan.c: measured rules per ISA). */
typedef struct {
    size_t rows, tokens; /* R rows per block, TOK floats per xT row */
    size_t kblock;       /* kept indices per row per input block */
    size_t chunk;        /* rows per chunk */
    size_t min_tokens;   /* the tv kernel runs from this many tokens (unless forced) */
    int perm;            /* w->tv_perm */
} nmf_spmm_tv_shape;

/* What runs one product: the kernel, its name (nmf_linear_kernel_name) and its settings. */
typedef enum { NMF_SPMM_STEP_PANEL = 0, NMF_SPMM_STEP_TV } nmf_spmm_step_kind;
typedef struct {
    nmf_spmm_step_kind kind;
    const char *name;
    nmf_spmm_params prm;
} nmf_spmm_step;

/* A layer's plan (spmm_plan.c) and the layouts it built (owned by it). */
typedef struct {
    nmf_isa isa;                /* nmf_active_isa() when planned */
    const nmf_spmm_kernels *k;  /* that ISA's panel kernels */
    nmf_spmm_tuning tuning;
    int tv;                     /* a tv layout was built, of this shape: */
    nmf_spmm_tv_shape tv_shape;
    void *tv_storage;
    uint32_t *idx32_storage;
} nmf_spmm_plan;
/* Plans w (its panel layout built) for the active ISA with tuning t (NULL: defaults),
 * building the layouts the plan needs into w; replaces (and frees) an earlier plan's. */
nmf_status nmf_spmm_plan_make(nmf_spmm_plan *p, nmf_spmm_weights *w, const nmf_spmm_tuning *t);
void nmf_spmm_plan_free(nmf_spmm_plan *p, nmf_spmm_weights *w);
/* The step for a product of `tokens` tokens. */
nmf_spmm_step nmf_spmm_plan_step(const nmf_spmm_plan *p, const nmf_spmm_weights *w,
                                 size_t tokens);

/* ---- Scalar reference on the canonical packed matrix (spmm_ref.c), kept forever ---------- */
/* y[t][o] = act(sum_{g,k} x[t][g*M + pos] * value + bias[o]), accumulated in double;
 * act GELU uses erf from libm. */
void nmf_spmm_ref_forward(float *y, const float *x, const nmf_nm_matrix *w, const float *bias,
                          size_t tokens, nmf_activation act);
/* dx[t][i] = sum_o dy[t][o] W[o][i], accumulated in double (overwrites dx). */
void nmf_spmm_ref_backward_input(float *dx, const float *dy, const nmf_nm_matrix *w,
                                 size_t tokens);

/* The layouts of an N:M linear (NULL for a dense one): the panel layout and those its plan
 * built; for tests of the kernels. */
const nmf_spmm_weights *nmf_linear_spmm_weights(const nmf_linear *lin);
/* What an N:M linear's plan runs for a product of `tokens` tokens (the kernel and its params);
 * for tests and benchmarks that call the kernels themselves. lin must be N:M. */
nmf_spmm_step nmf_linear_spmm_step(const nmf_linear *lin, size_t tokens);

/* The panel layout's bytes for a pattern/shape (what nmf_linear_weight_bytes reports): 5 per
 * kept weight, what a 1-token product reads. The plan's layouts (idx32, the tv layout) and the
 * backward transpose are not counted. */
size_t nmf_spmm_layout_bytes(size_t out, size_t groups, int n);

#endif
