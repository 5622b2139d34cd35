/* The engine: one API for N:M-sparse x dense and dense x dense products.
 *
 * Activations are token-major, as in PyTorch: x is [tokens][in], y is [tokens][out].
 * A linear layer holds W [out][in] either dense (products go through nmf_gemm's backend) or N:M
 * (products go through our kernels, in the layout they want, built once by nmf_linear_create_nm).
 * Every kernel has a scalar reference; the ISA is chosen at run time (nmf_active_isa()). */
#ifndef NMFORMER_KERNELS_H
#define NMFORMER_KERNELS_H

#include "nmformer/nm.h"
#include "nmformer/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { NMF_ACT_NONE = 0, NMF_ACT_GELU, NMF_ACT_COUNT } nmf_activation;

typedef struct nmf_linear nmf_linear; /* opaque */

/* Dense W [out][in] (copied). */
NMF_API nmf_status nmf_linear_create_dense(nmf_linear **lin, const float *w, size_t out, size_t in);
/* A dense layer in int8 (nmf_linear_set_precision's numbers) made straight from W (out, in),
 * which is only read: peak memory is the int8 layout, not an f32 copy as well (a model's large
 * heads: GPT-2's tied 50257 x 768 is 154 MB of f32). Errors as nmf_linear_set_precision's. */
NMF_API nmf_status nmf_linear_create_dense_int8(nmf_linear **lin, const float *w, size_t out,
                                                size_t in);
/* Dense W [out][in] kept in its 16-bit storage dtype (NMF_DTYPE_BF16 or NMF_DTYPE_F16; the
 * values are copied as they are, never rounded): products widen them to f32 inside the kernels
 * (one token: in registers; many: a block of rows at a time into a scratch planned here, then
 * the dense backend), f32 accumulation. Precision NMF_PREC_BF16 for bf16 (F16 reports bf16 too:
 * the 16-bit path). Inference only: the backward product is NMF_ERR_UNSUPPORTED. */
NMF_API nmf_status nmf_linear_create_dense16(nmf_linear **lin, const uint16_t *w, nmf_dtype dtype,
                                             size_t out, size_t in);
/* The same, taking *w (allocated with nmf_alloc, e.g. a tensor's data16) instead of copying it:
 * on success *w is NULL and the layer frees it; on failure *w is the caller's still. */
NMF_API nmf_status nmf_linear_create_dense16_take(nmf_linear **lin, uint16_t **w, nmf_dtype dtype,
                                                  size_t out, size_t in);
/* The same, reading w in place (a file mapping: the model's weights used where they are stored)
 * and never freeing it: w must stay valid, unchanged, for the layer's life. */
NMF_API nmf_status nmf_linear_create_dense16_borrow(nmf_linear **lin, const uint16_t *w, nmf_dtype dtype,
                                                    size_t out, size_t in);
/* The 16-bit values [out][in] of a dense 16-bit layer and their dtype (for the rows an embedding
 * lookup reads from a weight it shares with a tied head); NULL for any other layer. */
NMF_API const uint16_t *nmf_linear_weights16(const nmf_linear *lin, nmf_dtype *dtype);
/* N:M W, repacked into the kernels' layout (the nmf_nm_matrix is not kept). */
NMF_API nmf_status nmf_linear_create_nm(nmf_linear **lin, const nmf_nm_matrix *w);
NMF_API void nmf_linear_free(nmf_linear *lin);
NMF_API size_t nmf_linear_out(const nmf_linear *lin);
NMF_API size_t nmf_linear_in(const nmf_linear *lin);
/* {0,0} for dense. */
NMF_API nmf_pattern nmf_linear_pattern(const nmf_linear *lin);
/* Bytes of weight data the kernels read per product (values + position metadata), as stored:
 * what a 1-token product reads. (Multi-token AVX-512 products may also read u32 positions, a
 * per-layer cache built on first use, not counted here.) */
NMF_API size_t nmf_linear_weight_bytes(const nmf_linear *lin);

/* What runs this layer's product of `tokens` tokens now: the dense backend's name
 * ("onednn", "openblas") for dense f32; for dense 16-bit "avx2-bf16"/"scalar-bf16" (or -f16)
 * for the in-register kernel, "widen-bf16+<backend>" when a block is widened for the backend;
 * int8 layers (dense or N:M) "avx512-int8", "avx512-dense-int8" (AVX-512 VNNI + VBMI),
 * "avx2-int8", "avx2-dense-int8", "scalar-int8"; else the N:M
 * kernel of the active ISA ("avx512", "avx512-tv" for the token-vectorised one, "avx2",
 * "scalar"). */
NMF_API const char *nmf_linear_kernel_name(const nmf_linear *lin, size_t tokens);

/* The arithmetic of a layer's forward products, a property of the prepared layer (set once,
 * after creation, from f32):
 * - NMF_PREC_F32: f32 weights, f32 FMA.
 * - NMF_PREC_BF16: weights rounded to bf16 (round to nearest even) and kept as bf16 where the
 *   product is memory-bound (the N:M panel layout that 1-token products read: 2.5 bytes per
 *   kept weight for M <= 16, 3 for M = 32, instead of 5), widened to f32 in registers; f32
 *   accumulation.
 * - NMF_PREC_INT8: symmetric int8 weights with one scale per output channel, activations
 *   quantised to int8 per token on each product (dynamic, symmetric), exact int32 sums, then
 *   y = fma(float(sum), s_x[t] * s_w[o], bias[o]) and the activation (spmm_q8.h). N:M and
 *   dense layers alike (the same numbers on every ISA; AVX-512 kernels need VNNI + VBMI).
 * The backward product (training) is f32 or bf16 only. */
typedef enum { NMF_PREC_F32 = 0, NMF_PREC_BF16, NMF_PREC_INT8, NMF_PREC_COUNT } nmf_precision;
NMF_API const char *nmf_precision_name(nmf_precision p); /* "f32", "bf16", "int8" */
/* "f32" | "bf16" | "int8" -> *p; anything else NMF_ERR_INVALID_ARG. */
NMF_API nmf_status nmf_precision_parse(const char *s, nmf_precision *p);
/* Converts an f32 layer to p (f32 to f32 is a no-op; a layer already converted cannot change
 * again: NMF_ERR_INVALID_ARG). Dense layers: bf16 (the f32 weights rounded to bf16 and
 * replaced by them, as nmf_linear_create_dense16 holds them) or int8 (the f32 weights replaced by
 * the int8 layout). An int8 row whose kept weights (a dense row: its columns) could overflow the
 * int32 sums (more than 66311) is NMF_ERR_UNSUPPORTED; a non-finite weight NMF_ERR_NUMERIC. */
NMF_API nmf_status nmf_linear_set_precision(nmf_linear *lin, nmf_precision p);
NMF_API nmf_precision nmf_linear_precision(const nmf_linear *lin);
/* A bf16 N:M layer kept for inference in the fewest bytes: the f32 copy of its values and the
 * token-vectorised layout built from it are freed, leaving what the bf16 panel kernels read: 3
 * bytes per kept weight (bf16 value, u8 position), 2.5 for M <= 16 (positions as nibbles); products of every token count then run
 * those kernels (slower than the token-vectorised one at many tokens on AVX2), and backward
 * products are refused. What a model loaded for generation wants: memory ~ the stored
 * weights. NMF_ERR_INVALID_ARG unless the layer is N:M and bf16; idempotent. */
NMF_API nmf_status nmf_linear_compact(nmf_linear *lin);
/* nmf_linear_create_nm, nmf_linear_set_precision(BF16) and nmf_linear_compact in one step, without
 * ever building the f32 layouts a compact layer drops (what a model loaded to generate wants). */
NMF_API nmf_status nmf_linear_create_nm_bf16(nmf_linear **lin, const nmf_nm_matrix *a);

/* y[t][o] = act( sum_i x[t][i] * W[o][i] + bias[o] )      bias may be NULL
 * y (tokens, out), x (tokens, in). Threaded with nmf_get_threads(). An int8 layer given a
 * non-finite input returns NMF_ERR_NUMERIC; y is then unspecified (some rows may be written).
 * An int8 layer's GELU is a polynomial within 2.5e-5 max(1, |x|) of the erf GELU (its output
 * feeds the next int8 product's 8-bit rounding; src/kernels/gelu_q8.h), the others' the erf
 * GELU of nmf_gelu_forward. */
NMF_API nmf_status nmf_linear_forward(float *y, const float *x, const nmf_linear *lin, const float *bias,
                              size_t tokens, nmf_activation act);
/* y = act(x) (n values, y may be x) as lin's forward applies it (above): for a caller that runs
 * a product and its activation apart (to observe both) and wants the bits of the fused call. */
NMF_API void nmf_linear_activation(float *y, const float *x, size_t n, const nmf_linear *lin,
                                   nmf_activation act);
/* An MLP: y = down( act(up(x) + up_bias) ) + down_bias, i.e. nmf_linear_forward of up into
 * hidden (tokens, up.out) and of down from it (down.in == up.out; biases may be NULL). Where
 * both layers run the token-vectorised kernel on the same token tiles, the hidden activations
 * stay in its transposed layout (no transpose out of up, none into down, one parallel region)
 * and hidden is not written; int8 layers over many tokens pass tiles of tokens through hidden's
 * first rows (which stay in cache); else it holds act(up(x) + up_bias). The same values either
 * way; hidden is scratch. */
NMF_API nmf_status nmf_linear_forward_mlp(float *y, float *hidden, const float *x,
                                          const nmf_linear *up, const float *up_bias,
                                          nmf_activation act, const nmf_linear *down,
                                          const float *down_bias, size_t tokens);
/* dx[t][i] = sum_o dy[t][o] * W[o][i]    (training: gradient w.r.t. the input)
 * dx (tokens, in), dy (tokens, out). Overwrites dx. */
NMF_API nmf_status nmf_linear_backward_input(float *dx, const float *dy, const nmf_linear *lin,
                                     size_t tokens);

/* The f32 multiply-add peak of ONE core in GFLOP/s for the active ISA (nmf_active_isa()):
 * measured once per process and ISA by a ~20-40 ms register-resident loop of independent FMAs
 * (the first call pays for it; thread-safe). Benchmarks report useful GFLOP/s against it. */
NMF_API double nmf_cpu_fma_peak_gflops(void);
/* The int8 multiply-add peak of ONE core in GOP/s (2 operations per multiply-add) for the
 * instruction the int8 layers run on at the active ISA: vpdpbusd (AVX-512 VNNI), vpmaddwd +
 * vpaddd (AVX2), plain int32 (scalar); measured as nmf_cpu_fma_peak_gflops is. Benchmarks report
 * int8 products' useful GOP/s against it. */
NMF_API double nmf_cpu_int8_peak_gops(void);

/* Dense products run on one of these libraries ("backends"), chosen once per process:
 * NMF_GEMM=openblas|onednn forces one; otherwise oneDNN when built in (it picks its kernels by CPU
 * features), else OpenBLAS. Each runs single-threaded under our own OpenMP threads, so nothing
 * oversubscribes the cores. */
typedef enum { NMF_GEMM_OPENBLAS = 0, NMF_GEMM_ONEDNN, NMF_GEMM_BACKEND_COUNT } nmf_gemm_backend;
NMF_API nmf_gemm_backend nmf_gemm_backend_active(void);
NMF_API const char *nmf_gemm_backend_name(nmf_gemm_backend b);        /* "openblas", "onednn" */
NMF_API int nmf_gemm_backend_available(nmf_gemm_backend b);           /* built in */
/* One line: library, version and the kernel it runs on this CPU, e.g. "oneDNN 2.6.3, avx2
 * kernels" or "OpenBLAS 0.3.21, core Zen". Written into buf; returns buf. */
NMF_API const char *nmf_gemm_backend_describe(nmf_gemm_backend b, char *buf, size_t cap);
/* 1 when that backend runs a generic kernel far below what this CPU can do (OpenBLAS on a CPU
 * it does not know by model number falls back to its SSE "Prescott" kernel). */
NMF_API int nmf_gemm_backend_generic(nmf_gemm_backend b);
/* Decides the backend now (nmf_gemm does it on its first call). */
NMF_API void nmf_blas_init(void);

/* Dense x dense, row-major: C = alpha * op(A) op(B) + beta * C, op(X) = X or X^T.
 * op(A) is [M][K], op(B) is [K][N], C is [M][N]. Threaded with nmf_get_threads() (slabs of C;
 * one thread inside a parallel region); one-row products run as matrix-vector products. */
NMF_API void nmf_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
              size_t ldc);
/* The same on a given backend (benchmarks, tests); an unavailable one means the active one. */
NMF_API void nmf_gemm_with(nmf_gemm_backend backend, int trans_a, int trans_b, size_t M, size_t N,
                   size_t K, float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                   float beta, float *C, size_t ldc);

#ifdef __cplusplus
}
#endif
#endif
