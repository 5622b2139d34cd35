/* Private: int8 N:M products (nmf_linear at NMF_PREC_INT8, include/nmformer/kernels.h).
 *
 * Numerics (one definition, used by the kernels and the reference alike):
 *   weights   per output channel o: s_w[o] = amax_o / 127, q_w = clamp(rne(w * (127 / amax_o)))
 *   inputs    per token t (dynamic): s_x[t] = amax_t / 127, q_x likewise, in [-127, 127]
 *   product   acc[t][o] = sum_j q_x[t][col_j] * q_w[o][j]          exact, int32
 *   output    y[t][o] = act(fmaf((float)acc, s_x[t] * s_w[o], bias[o]))
 *   act       GELU: gelu_q8.h's polynomial (|error| <= 2.5e-5 max(1, |x|), no division), the
 *             same bits in every kernel; the reference nmf_q8_ref_forward uses erf
 * (rne: round to nearest even; an amax of 0, or so small that 127 / amax overflows, quantises
 * the row to zeros with scale 0). The int32 sums cannot overflow: |q_x + 128| <= 255, |q_w| <=
 * 127, and a row has at most NMF_Q8_MAX_KEPT kept weights (checked when the layer is made).
 *
 * Layout ("windows", one builder for every ISA, parameterised by a geometry {R, V, K}): output
 * rows in blocks of R (one vector of int32 sums, lane = row), input columns in windows of V
 * bytes, S steps per window (S = the layer's largest ceil(kept of a row in a window / K)), K
 * slots of a row per step. For row block rb, window v, step s, row r, slot h:
 *   q  [((rb*W + v)*S + s)*R*K + K*r + h]  s8  weight (0 in a padding slot)
 *   pos[ same ]                            u8  its column - V v (0 in a padding slot)
 * A row's kept weights of a window fill its slots in column order; a dense layer keeps every
 * column, so slot h of step s holds column V v + K s + h and pos is not stored (NULL).
 * - AVX2 {8, 16, 2}: step s of 8 rows is one vpshufb (picks, per int16 lane, activation byte
 *   pos with a zero high byte; the window broadcast to both 128-bit lanes), one vpmaddwd with
 *   the 16 sign-extended weights (row r's two products summed into its int32 lane: int16 x
 *   int16, no saturation, unlike vpmaddubsw's int16 pair sums) and one add: 16 multiply-adds.
 *   Patterns with M dividing 16 fill every slot (1:4, 2:4: 4 resp. 8 kept per window; 1:8,
 *   2:8, 4:8: 2, 4, 8); 1:16 uses half the slots, 3:32 about 3/8.
 * - AVX2 dense, the same layout {8, 16, 2} (step c of a block: columns 2c, 2c + 1 of its 8
 *   rows): activations stored int16 q_x, so a token's 2 columns are one broadcast int32 and a
 *   step of 8 rows is one vpmaddwd and one add per token (no shuffle).
 * - AVX-512 VNNI + VBMI {16, 64, 4} (N:M): step s of 16 rows is one vpermb (picks each row's 4
 *   activation bytes from the token's 64-byte window; the control is the positions, the same
 *   for every token) and one vpdpbusd (u8 x s8, 4 products summed exactly into the row's int32
 *   lane): 64 multiply-adds. M dividing 64 with 4 | kept per window fills every slot (2:4,
 *   1:4, 4:8, 2:8, 1:8, 2:16, 1:16: 32, 16, 32, 16, 8, 8, 4 per window); 3:32 uses 6 of 8.
 * - AVX-512 VNNI dense {16, 4, 4}: a window is 4 columns, one step, no positions: one
 *   vpdpbusd per 16 rows x 4 columns with the token's 4 bytes broadcast.
 * 2 bytes per slot (1 for dense layers).
 * Activations are stored u8 = q_x + 128 (vpshufb zero-extends bytes; vpdpbusd takes u8), so
 * the kernels sum (q_x + 128) q_w and subtract 128 sum_j q_w[o][j] (off[o]) before the
 * epilogue; the AVX2 dense kernel's are int16 q_x (nmf_q8_kernel.xbytes = 2), whose sums need
 * no offset (the same integer: acc - off). */
#ifndef NMF_KERNELS_SPMM_Q8_H
#define NMF_KERNELS_SPMM_Q8_H

#include <math.h>
#include <stdint.h>

#include "kernels/spmm.h"

#define NMF_Q8_MAX_KEPT ((size_t)INT32_MAX / (255 * 127)) /* kept weights per row: 66311 */
#define NMF_Q8_MAX_ROWS 16 /* the largest R of a geometry */

/* The shape of a window layout: R rows per block, windows of V input columns, K slots of a row
 * per step (a step = R * K bytes, one vector). */
typedef struct {
    size_t rows, win, slots;
} nmf_q8_geometry;

typedef struct {
    size_t out, in;
    nmf_q8_geometry g;
    size_t rowblocks; /* ceil(out / R) */
    size_t windows;   /* W = ceil(in / V) */
    size_t steps;     /* S */
    const int8_t *q;  /* [rowblocks][W][S][R * K] */
    const uint8_t *pos; /* the same shape, or NULL (dense: position of step s, slot h = K s + h) */
    const float *scale; /* s_w [rowblocks * R] (0 past out) */
    const int32_t *off; /* 128 * sum_j q_w[o][j] [rowblocks * R] */
} nmf_q8_weights;

/* rne(v) clamped to [-127, 127], for finite v with |v| < 2^22 (adding and subtracting 1.5 * 2^23
 * rounds to an integer in the current mode, nearest even by default: vcvtps2dq does the same). */
static inline int32_t nmf_q8_round(float v) {
    v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
    return (int32_t)((v + 12582912.0f) - 12582912.0f);
}
/* The scale of values with largest magnitude amax: *inv = 127 / amax, or 0 (and scale 0) when
 * amax is 0 or 127 / amax is not finite. */
static inline float nmf_q8_scale(float amax, float *inv) {
    const float i = 127.0f / amax;
    if (!(amax > 0.0f) || !isfinite(i)) {
        *inv = 0.0f;
        return 0.0f;
    }
    *inv = i;
    return amax / 127.0f;
}
/* The largest magnitude of x[i0..in) folded into *amax, and whether one of them is a NaN (a NaN
 * never wins the comparison: flagged on its own), folded into *nan: the scan of the portable
 * quantiser, and the tail of the SIMD ones past their vector body. */
static inline void nmf_q8_amax(const float *x, size_t i0, size_t in, float *amax, int *nan) {
    float m = *amax;
    int n = *nan;
    for (size_t i = i0; i < in; i++) {
        const float a = fabsf(x[i]);
        m = a > m ? a : m;
        n |= a != a;
    }
    *amax = m;
    *nan = n;
}
/* The epilogue before the activation (fmaf: one rounding, as vfmadd). */
static inline float nmf_q8_out(int32_t acc, float sx, float sw, float b) {
    return fmaf((float)acc, sx * sw, b);
}

/* Quantises tokens [t0, t1) of x (rows ldx apart, `in` columns) into xq (rows ldq >= in bytes
 * apart: q_x + 128, columns in..ldq-1 set to 128) and sx. Returns the number of tokens with a
 * non-finite value (their rows are left zero). spmm_q8_quant.c */
size_t nmf_q8_quantize_tokens(uint8_t *xq, size_t ldq, float *sx, const float *x, size_t ldx,
                              size_t in, size_t t0, size_t t1);
/* The same, AVX2 (spmm_q8_avx2.c; the same bytes). */
size_t nmf_q8_quantize_tokens_avx2(uint8_t *xq, size_t ldq, float *sx, const float *x,
                                   size_t ldx, size_t in, size_t t0, size_t t1);
/* The same values as int16 q_x, no + 128 (rows ldq bytes apart, ldq / 2 values; padding 0, a
 * bad token's row 0): the AVX2 dense kernel's activations (spmm_q8_avx2.c). */
size_t nmf_q8_quantize_tokens16_avx2(uint8_t *xq, size_t ldq, float *sx, const float *x,
                                     size_t ldx, size_t in, size_t t0, size_t t1);
/* The same, AVX-512 (spmm_q8_avx512.c; the same bytes). */
size_t nmf_q8_quantize_tokens_avx512(uint8_t *xq, size_t ldq, float *sx, const float *x,
                                     size_t ldx, size_t in, size_t t0, size_t t1);
/* Builds the window layout of geometry g (one allocation, *storage: nmf_free) from an f32 panel
 * layout (N:M: its kept weights) or from a dense weight (every column), W [out][in] or, when
 * transposed, W^T [in][out]. spmm_q8_layout.c */
nmf_status nmf_q8_build_nm(nmf_q8_weights *q, void **storage, const nmf_spmm_weights *w,
                           nmf_q8_geometry g);
nmf_status nmf_q8_build_dense(nmf_q8_weights *q, void **storage, const float *w, int transposed,
                              size_t out, size_t in, nmf_q8_geometry g);
/* Bytes the window layout reads per product (what a 1-token product streams). */
size_t nmf_q8_layout_bytes(const nmf_q8_weights *q);

/* Forward on row blocks [rb0, rb1) for all tokens, from quantised inputs (xq rows ldq bytes
 * apart, ldq a multiple of V >= V W activations of the kernel's xbytes each, as its quantiser
 * wrote them): y[t][o] as above, y (tokens, out). Single-threaded. */
typedef void (*nmf_q8_forward_fn)(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                                  size_t tokens, const nmf_q8_weights *w, const float *bias,
                                  nmf_activation act, size_t rb0, size_t rb1);
typedef size_t (*nmf_q8_quantize_fn)(uint8_t *xq, size_t ldq, float *sx, const float *x,
                                     size_t ldx, size_t in, size_t t0, size_t t1);
/* Any geometry (the reference of the kernels below: the same integers and GELU). */
void nmf_q8_forward_scalar(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                           size_t tokens, const nmf_q8_weights *w, const float *bias,
                           nmf_activation act, size_t rb0, size_t rb1);
/* spmm_q8_avx2.c, geometry NMF_Q8_GEOM_AVX2: call only when nmf_cpu_best_isa() allows. */
void nmf_q8_forward_avx2(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                         size_t tokens, const nmf_q8_weights *w, const float *bias,
                         nmf_activation act, size_t rb0, size_t rb1);
#define NMF_Q8_TOKENS 6 /* AVX2: tokens per block (6 sums + 6 windows + 3 in 16 ymm) */
/* spmm_q8_avx2.c, dense layers on geometry NMF_Q8_GEOM_AVX2 (positions implied), activations
 * from nmf_q8_quantize_tokens16_avx2 (xq: int16 q_x, ldq in bytes). */
void nmf_q8_forward_dense_avx2(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                               size_t tokens, const nmf_q8_weights *w, const float *bias,
                               nmf_activation act, size_t rb0, size_t rb1);
/* spmm_q8_avx512.c, geometries NMF_Q8_GEOM_AVX512 (N:M) and NMF_Q8_GEOM_DENSE512: call only
 * when nmf_cpu_has_vnni512() (AVX-512 F/BW/VL + VNNI + VBMI). */
void nmf_q8_forward_avx512(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                           size_t tokens, const nmf_q8_weights *w, const float *bias,
                           nmf_activation act, size_t rb0, size_t rb1);
void nmf_q8_forward_dense_avx512(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                                 size_t tokens, const nmf_q8_weights *w, const float *bias,
                                 nmf_activation act, size_t rb0, size_t rb1);
#define NMF_Q8_GEOM_AVX2 ((nmf_q8_geometry){8, 16, 2}) /* the scalar kernel runs it too */
#define NMF_Q8_GEOM_AVX512 ((nmf_q8_geometry){16, 64, 4})
#define NMF_Q8_GEOM_DENSE512 ((nmf_q8_geometry){16, 4, 4})

/* What an int8 layer runs, planned once when it is made (spmm_q8_layout.c): the geometry of its
 * layout, the quantiser and the kernel, for the active ISA (AVX-512 only where the CPU has VNNI
 * and VBMI; else AVX2; NMF_ISA=avx2|scalar forces those). */
typedef struct {
    const char *name; /* "avx512-int8", "avx512-dense-int8", "avx2-int8", "avx2-dense-int8",
                       * "scalar-int8" */
    nmf_q8_geometry g;
    size_t xbytes; /* bytes per quantised activation: 1 (u8 q + 128), 2 (int16 q); a row of xq
                    * holds windows * g.win of them */
    nmf_q8_quantize_fn quantize;
    nmf_q8_forward_fn forward;
} nmf_q8_kernel;
const nmf_q8_kernel *nmf_q8_kernel_for(nmf_isa isa, int dense);
/* The instructions int8 layers and attention run on at an ISA (the choice behind
 * nmf_q8_kernel_for, the int8 attention and the int8 peak probe): AVX-512 VNNI + VBMI where the
 * CPU has them, else AVX2 from AVX2 up (an AVX-512 CPU without them too), else portable C. */
typedef enum { NMF_Q8_SCALAR, NMF_Q8_AVX2, NMF_Q8_VNNI512, NMF_Q8_KINDS } nmf_q8_kind;
nmf_q8_kind nmf_q8_kind_for(nmf_isa isa);

/* Reference on the canonical matrix (spmm_ref.c): quantises w's rows and x's tokens with the
 * functions above and sums in int64 in the plain order; GELU with erf from libm. */
void nmf_q8_ref_forward(float *y, const float *x, const nmf_nm_matrix *w, const float *bias,
                        size_t tokens, nmf_activation act);

#endif
