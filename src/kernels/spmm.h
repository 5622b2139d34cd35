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
    /* Token-vectorised layout (spmm_tv_avx512.c), built on the first product that uses it
     * (linear.c). Rows in blocks of NMF_TV_ROWS (padding rows: value 0, offset 0); for block
     * rb and kept index j (= g*n + k, ascending groups) of its rows r:
     *   tv_val[(rb*K + j)*4 + r]  f32  value          (K = groups * n kept indices per row)
     *   tv_off[(rb*K + j)*4 + r]  u32  byte offset of its input column in xT[in][NMF_TV_TOKENS]
     * so the inner loop adds the offset to xT and loads, with no index arithmetic. A padding
     * column has value 0, offset 0. NULL until built. */
    const float *tv_val;
    const uint32_t *tv_off;
    /* The panel layout's positions widened to u32 (idx32[i] = idx[i]), for the AVX-512 panel
     * kernel at nmf_spmm_use_wide() token counts: it loads them with a plain zmm load instead
     * of widening u8 -> u32 (a 512-bit shuffle) per slot and token block. Built once by
     * linear.c on the first product that uses it (1-token products keep reading the u8 form,
     * where bytes matter); NULL until then. */
    const uint32_t *idx32;
} nmf_spmm_weights;

#define NMF_TV_ROWS 4    /* rows per block of the token-vectorised kernel */
#define NMF_TV_TOKENS 64 /* tokens per tile (4 zmm); xT rows are this many floats apart */

/* Forward on output panels [p0, p1) for all tokens:
 *   y[t][o] = act(sum_i x[t][i] W[o][i] + bias[o])     y (tokens, out), x (tokens, in)
 * Row t of x starts at x + t*ldx; when x_slack >= NMF_SPMM_X_SLACK, NMF_SPMM_X_SLACK floats
 * past column in-1 of every row may be read (their values never matter), so kernels load whole
 * groups without masks. bias may be NULL. Single-threaded; the caller splits panels. */
#define NMF_SPMM_X_SLACK 32
typedef void (*nmf_spmm_forward_fn)(float *y, const float *x, size_t ldx, size_t x_slack,
                                    const nmf_spmm_weights *w, const float *bias,
                                    size_t tokens, nmf_activation act, size_t p0, size_t p1);
/* Backward w.r.t. the input on tokens [t0, t1): dx[t][i] = sum_o dy[t][o] W[o][i] (overwrites).
 * work: NMF_SPMM_BWD_WORK(out) floats, 64-byte aligned, private to the caller's thread. */
typedef void (*nmf_spmm_backward_fn)(float *dx, const float *dy, const nmf_spmm_weights *w,
                                     size_t t0, size_t t1, float *work);
#define NMF_SPMM_BWD_TOKENS 16 /* tokens per transposed tile of the backward kernels */
#define NMF_SPMM_BWD_WORK(out) ((out) * NMF_SPMM_BWD_TOKENS)

typedef struct {
    const char *name;
    nmf_spmm_forward_fn forward;
    nmf_spmm_backward_fn backward_input;
} nmf_spmm_kernels;

/* dispatch.c: the kernels for an ISA (the one table, indexed by nmf_isa). */
const nmf_spmm_kernels *nmf_spmm_kernels_for(nmf_isa isa);

/* Portable C on the panel layout (NMF_ISA=scalar). spmm_scalar.c */
void nmf_spmm_forward_scalar(float *y, const float *x, size_t ldx, size_t x_slack,
                           const nmf_spmm_weights *w, const float *bias, size_t tokens,
                           nmf_activation act, size_t p0, size_t p1);
void nmf_spmm_backward_scalar(float *dx, const float *dy, const nmf_spmm_weights *w, size_t t0,
                              size_t t1, float *work);
/* spmm_avx2.c, spmm_avx512.c: call only when nmf_cpu_best_isa() allows. */
void nmf_spmm_forward_avx2(float *y, const float *x, size_t ldx, size_t x_slack,
                           const nmf_spmm_weights *w, const float *bias, size_t tokens,
                           nmf_activation act, size_t p0, size_t p1);
void nmf_spmm_backward_avx2(float *dx, const float *dy, const nmf_spmm_weights *w, size_t t0,
                            size_t t1, float *work);
void nmf_spmm_forward_avx512(float *y, const float *x, size_t ldx, size_t x_slack,
                           const nmf_spmm_weights *w, const float *bias, size_t tokens,
                           nmf_activation act, size_t p0, size_t p1);
/* Tests: bytes of weights per block of panels in the AVX-512 forward (0: the default, 2 MiB),
 * so that small shapes cross block boundaries. Not thread-safe; call before products.
 * (dispatch.c: kept out of the ISA files, which may only run on CPUs that have the ISA.) */
void nmf_spmm_avx512_set_panel_block(size_t bytes);
extern size_t nmf_spmm_panel_block;
/* Stored u32 positions (w->idx32) in the AVX-512 panel kernel: NMF_SPMM_WIDE_AUTO uses them
 * from NMF_SPMM_WIDE_MIN_TOKENS tokens, NMF_SPMM_WIDE_ON whenever tokens > 1 (tests),
 * NMF_SPMM_WIDE_OFF never (the tiles widen the u8 positions, as when idx32 cannot be had).
 * A plain global: set it only while no product runs. */
typedef enum { NMF_SPMM_WIDE_AUTO = 0, NMF_SPMM_WIDE_ON, NMF_SPMM_WIDE_OFF, NMF_SPMM_WIDE_COUNT } nmf_spmm_wide_mode;
extern nmf_spmm_wide_mode nmf_spmm_wide_positions;
#define NMF_SPMM_WIDE_MIN_TOKENS 12 /* measured, docs/PERFORMANCE.md */
/* Whether the AVX-512 panel kernel should read u32 positions for this many tokens. */
int nmf_spmm_use_wide(size_t tokens);
void nmf_spmm_backward_avx512(float *dx, const float *dy, const nmf_spmm_weights *w, size_t t0,
                              size_t t1, float *work);

/* Token-vectorised AVX-512 forward (spmm_tv_avx512.c), same contract as the forward above;
 * needs w->tv_val / w->tv_off. Call only when nmf_cpu_best_isa() allows AVX-512. */
void nmf_spmm_forward_tv_avx512(float *y, const float *x, size_t ldx, size_t x_slack,
                                const nmf_spmm_weights *w, const float *bias, size_t tokens,
                                nmf_activation act, size_t p0, size_t p1);
/* The same in two steps, so that threads share one transposed x: xT[tile][in16][64] (in16 = in
 * rounded up to 16; nmf_spmm_tv_xt_floats floats, 64-byte aligned) is written for token tiles
 * [tile0, tile1), then the product reads it. */
static inline size_t nmf_spmm_tv_tiles(size_t tokens) {
    return (tokens + NMF_TV_TOKENS - 1) / NMF_TV_TOKENS;
}
/* Floats of xT for a product (0 if the size overflows). */
static inline size_t nmf_spmm_tv_xt_floats(size_t in, size_t tokens) {
    const size_t tile = (in + 15) / 16 * 16 * NMF_TV_TOKENS, tiles = nmf_spmm_tv_tiles(tokens);
    return in < SIZE_MAX / 2 / NMF_TV_TOKENS && tiles <= SIZE_MAX / sizeof(float) / tile
               ? tiles * tile : 0;
}
void nmf_spmm_tv_transpose_avx512(float *xT, const float *x, size_t ldx, size_t in,
                                  size_t tokens, size_t tile0, size_t tile1);
void nmf_spmm_forward_tv_xt_avx512(float *y, const float *xT, const nmf_spmm_weights *w,
                                   const float *bias, size_t tokens, nmf_activation act,
                                   size_t p0, size_t p1);
/* Threads of a panel-layout forward (linear.c) split the TOKENS, in blocks of
 * NMF_SPMM_SPLIT_TOKENS, when the layer's panel layout is at most this many bytes and every
 * thread gets two blocks; otherwise they split the output panels. (Measured, docs/PERFORMANCE.md:
 * with small weights every thread can read all of them from cache, and then splitting tokens
 * halves each thread's packing of x and y traffic: 768x768 1:16 at 512 tokens 2.1x faster on two
 * threads; with large weights splitting panels keeps each thread's share of them in its cache.)
 * A plain global for tests (0: never split tokens); set it only while no product runs. */
extern size_t nmf_spmm_token_split_bytes;
#define NMF_SPMM_TOKEN_SPLIT_BYTES_DEFAULT ((size_t)2 << 20)
#define NMF_SPMM_SPLIT_TOKENS 12 /* a multiple of every kernel's token block (12, 4) */
/* Its default input block (columns, whole groups) for group size m. */
size_t nmf_spmm_tv_in_block_default(size_t m);
/* dispatch.c. Input block of the tv kernel in columns (0: default); for tests and tuning.
 * This and nmf_spmm_tv are plain globals: set them only while no product runs. */
extern size_t nmf_spmm_tv_in_block;
/* Which AVX-512 forward runs (tests/benchmarks): NMF_SPMM_TV_AUTO (nmf_spmm_use_tv decides),
 * NMF_SPMM_TV_ON (token-vectorised whenever tokens > 1), NMF_SPMM_TV_OFF (panel kernel only). */
typedef enum { NMF_SPMM_TV_AUTO = 0, NMF_SPMM_TV_ON, NMF_SPMM_TV_OFF, NMF_SPMM_TV_COUNT } nmf_spmm_tv_mode;
extern nmf_spmm_tv_mode nmf_spmm_tv;
/* Whether the token-vectorised kernel should run a product (AVX-512 active; the rule is from
 * measurements, docs/PERFORMANCE.md). */
int nmf_spmm_use_tv(const nmf_spmm_weights *w, size_t tokens);

/* ---- Scalar reference on the canonical packed matrix (spmm_ref.c), kept forever ---------- */
/* y[t][o] = act(sum_{g,k} x[t][g*M + pos] * value + bias[o]), accumulated in double;
 * act GELU uses erf from libm. */
void nmf_spmm_ref_forward(float *y, const float *x, const nmf_nm_matrix *w, const float *bias,
                          size_t tokens, nmf_activation act);
/* dx[t][i] = sum_o dy[t][o] W[o][i], accumulated in double (overwrites dx). */
void nmf_spmm_ref_backward_input(float *dx, const float *dy, const nmf_nm_matrix *w,
                                 size_t tokens);

/* The panel layout of an N:M linear (NULL for a dense one); for tests of the kernels. */
const nmf_spmm_weights *nmf_linear_spmm_weights(const nmf_linear *lin);

/* The same with the token-vectorised layout built (NULL if dense or out of memory). */
const nmf_spmm_weights *nmf_linear_spmm_weights_tv(const nmf_linear *lin);

/* The panel layout's bytes for a pattern/shape (what nmf_linear_weight_bytes reports): 5 per
 * kept weight, what a 1-token product reads. The caches built on first use (idx32, the tv
 * layout, the transpose) are not counted. */
size_t nmf_spmm_layout_bytes(size_t out, size_t groups, int n);

#endif
