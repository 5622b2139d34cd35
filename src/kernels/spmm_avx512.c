/* N:M x dense kernels, AVX-512 (F, BW, DQ, VL). Layout and method: spmm.h.
 *
 * Microkernel: one 16-row panel x TR tokens (TR = 16, 12, 8, 4, 2, 1) x a chunk of groups. For
 * each group the M inputs of each token are loaded once into a register (from a packed copy
 * of the x block, see the driver; the 1-token path reads x directly, masked near the row end;
 * 16 tokens reload them per slot: see tile).
 * Each slot k then costs one load of 16 values, one load of 16 positions (u32 from the
 * layer's stored w->idx32 when the params say `wide`; else u8 widened to u32 in the tile, itself
 * a 512-bit shuffle that competes with the permutes), and per token
 * one vpermps (vpermt2ps for M > 16, two tables) and one FMA. Accumulators (TR zmm) stay
 * in registers across the chunk. The chunk of groups is sized so the TR x chunk block of x
 * stays in L1 while all panels of the thread stream past it.
 *
 * bf16 layers (params.bf16: w->val16, rows paired in u32 lanes, spmm.h) run the same tiles with
 * each slot's 16 values widened in registers (bf16_rows, exact: one vpermw with nibble
 * positions, else a broadcast, an AND and a masked shift) and, for M <= 16, the positions as
 * nibbles (w->idx4, one vpsrlvd: nibble_rows): 2.5 bytes per kept weight instead of 5 (3 for
 * M = 32), for the memory-bound products of one token and of compact layers, whose f32 copy is
 * gone.
 *
 * Cost model (Zen 4, measured): an FMA paired with any other 512-bit op (permute, blend) runs
 * at ~0.73 of the FMA-only rate, so this scheme tops out near 0.73 of peak per useful FMA;
 * OpenBLAS sgemm runs at ~0.86 of peak. See docs/PERFORMANCE.md. */
#include <immintrin.h>
#include <string.h>

#include "kernels/gelu_avx512.h"
#include "kernels/ops_internal.h"
#include "kernels/spmm.h"
#include "kernels/spmm_backward.h"

/* Tokens per block: TB_MAX or 12, as the layer's plan says (params.token_block; spmm_plan.c
 * has the rule and its measurements; the tile below says what 16 tokens cost). FOR_T covers
 * 16 = 8 + 4 + 4. */
#define TB_MAX 16
#define X_TILE_FLOATS 5120 /* a token block x chunk columns kept in L1 (20 KiB) */
_Static_assert(X_TILE_FLOATS / TB_MAX >= NMF_NM_MAX_M, "a chunk holds at least one group");
/* Weights of a block of panels. Each block sees every token block (and repacks x for it):
 * 2 MiB keeps the weights in the outer caches across token blocks, so a large W is read from
 * DRAM about once per product, while x is repacked only a few times for ViT-sized layers. */
#define PANEL_BLOCK_BYTES (2u << 20)

/* Inputs of one group: LW floats from p (LW = 4, 8, 16: the power of two >= M, or 32 for two
 * registers). A narrow load is a plain xmm/ymm load (a broadcast costs a shuffle on Zen 4) and
 * splits fewer cache lines than a full zmm. Lanes past M hold other columns or zeros; no
 * position selects them. */
static inline __attribute__((always_inline)) __m512 load_lo(const float *p, const int LW) {
    if (LW == 4) return _mm512_zextps128_ps512(_mm_loadu_ps(p));
    if (LW == 8) return _mm512_zextps256_ps512(_mm256_loadu_ps(p));
    return _mm512_loadu_ps(p);
}

/* One slot's 16 bf16 values (u32 lane j: row j in the low half, row j + 8 in the high one) as
 * 16 floats in row order, exact (a bf16 is the high half of its float). PERM: one vpermw (its
 * zeroing mask clears the low halves); else a 32-byte broadcast, an AND and a masked shift (two
 * ALU ops, neither on the permute port). */
static inline __attribute__((always_inline)) __m512 bf16_rows(const uint16_t *v16, const int PERM) {
    if (PERM) {
        /* word 2r + 1 of the result = row r = word 2r (r < 8) or 2(r - 8) + 1 of the slot */
        const __m512i rows = _mm512_set_epi16(15, 0, 13, 0, 11, 0, 9, 0, 7, 0, 5, 0, 3, 0, 1, 0,
                                              14, 0, 12, 0, 10, 0, 8, 0, 6, 0, 4, 0, 2, 0, 0, 0);
        const __m512i v = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)v16));
        return _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, rows, v));
    }
    const __m512i b = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)v16));
    const __m512i hi = _mm512_and_si512(b, _mm512_set1_epi32((int)0xFFFF0000u));
    return _mm512_castsi512_ps(_mm512_mask_slli_epi32(hi, 0x00FF, b, 16));
}

/* One slot's 16 nibble positions (its 64-bit word, spmm.h idx4) as u32 lanes in row order: the
 * word in every u64 lane (a broadcast load), each u32 lane shifted to its row's nibble (one
 * vpsrlvd). Bits above the nibble are left: the permutes read only the low 4 (M <= 16). */
static inline __attribute__((always_inline)) __m512i nibble_rows(const uint8_t *idx4) {
    uint64_t word;
    memcpy(&word, idx4, sizeof word);
    return _mm512_srlv_epi32(_mm512_set1_epi64((long long)word),
                             _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28));
}

/* Slot k's values and positions from the layer's arrays as BF says (0: f32 values with u8 or,
 * WIDE, u32 positions; 1: bf16 values, u8 positions; 2: bf16 values, nibble positions). */
static inline __attribute__((always_inline)) __m512 slot_values(const void *valp, size_t s,
                                                               const int BF) {
    return BF ? bf16_rows((const uint16_t *)valp + s * NMF_SPMM_ROWS, BF == 2)
              : _mm512_load_ps((const float *)valp + s * NMF_SPMM_ROWS);
}
static inline __attribute__((always_inline)) __m512i slot_positions(const void *idxp, size_t s,
                                                                   const int BF, const int WIDE) {
    if (BF == 2) return nibble_rows((const uint8_t *)idxp + s * (NMF_SPMM_ROWS / 2));
    if (WIDE) return _mm512_load_si512((const uint32_t *)idxp + s * NMF_SPMM_ROWS);
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)((const uint8_t *)idxp + s * NMF_SPMM_ROWS)));
}

/* Masks for a group near the end of the row: lanes [0, valid) with valid = min(M, in - g*M). */
static inline __mmask16 mask_lo(size_t valid) {
    return (__mmask16)(valid >= 16 ? 0xFFFFu : (1u << valid) - 1u);
}
static inline __mmask16 mask_hi(size_t valid) {
    return (__mmask16)(valid > 16 ? (valid >= 32 ? 0xFFFFu : (1u << (valid - 16)) - 1u) : 0u);
}

/* Per-token registers are named variables, not arrays: GCC keeps arrays of vectors in memory
 * (a store per FMA) once they exceed its scalarisation limit. FOR_T(OP) expands OP(0..TR-1);
 * TR is a constant, so the tests fold away. */
#define FOR_T(OP)                                                                              \
    do {                                                                                       \
        OP(0);                                                                                 \
        if (TR > 1) OP(1);                                                                     \
        if (TR > 2) { OP(2); OP(3); }                                                          \
        if (TR > 4) { OP(4); OP(5); OP(6); OP(7); }                                            \
        if (TR > 8) { OP(8); OP(9); OP(10); OP(11); }                                          \
        if (TR > 12) { OP(12); OP(13); OP(14); OP(15); }                                       \
    } while (0)

/* TR tokens x 16 rows over the ng groups of a packed x tile (see pack_x): group g of token t
 * is at x[g*gs + t*LW] (gs = TB*LW floats a group), LW floats (two registers for LW = 32), so
 * every load is an aligned load at a constant displacement from one pointer. NC: n when the
 * pattern's n is specialised, else 0 (then n is read at run time).
 *
 * Up to 12 tokens each group's inputs are loaded once into registers (TR accumulators + TR
 * tables). 16 tokens do not fit 32 registers that way: their tables are loaded again for every
 * slot, next to its permute (MEM). The permute port bounds both (one vpermps per FMA), and the
 * loads (2 + 16 a slot) stay under it; what 16 buys is a 16-token product in one pass over the
 * weights, where 12 + 4 passed twice and the 4-token tile paid a slot's two loads per 4 FMAs. */
static inline __attribute__((always_inline)) void
tile(float *y, size_t ldy, const float *x, size_t gs, const void *valp, const void *idxp,
     size_t ng, size_t n_rt, __mmask16 rowmask, const float *bias, int first, const int TR,
     const int NC, const int LW, const int WIDE, const int BF) {
    /* positions: u8 (widened here per slot), u32 stored by the layer (WIDE), or nibbles (BF 2) */
    const size_t n = NC ? (size_t)NC : n_rt;
    size_t slot = 0;
    const int TWO = LW == 32;
    const __m512 z = _mm512_setzero_ps();
    __m512 a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z, a8 = z, a9 = z;
    const int MEM = TR > 12;
    __m512 a10 = z, a11 = z, a12 = z, a13 = z, a14 = z, a15 = z;
    __m512 l0 = z, l1 = z, l2 = z, l3 = z, l4 = z, l5 = z, l6 = z, l7 = z, l8 = z, l9 = z;
    __m512 l10 = z, l11 = z, l12 = z, l13 = z, l14 = z, l15 = z;
    __m512 h0 = z, h1 = z, h2 = z, h3 = z, h4 = z, h5 = z, h6 = z, h7 = z, h8 = z, h9 = z;
    __m512 h10 = z, h11 = z, h12 = z, h13 = z, h14 = z, h15 = z;
#define INIT(t)                                                                                \
    a##t = first ? (bias ? _mm512_maskz_loadu_ps(rowmask, bias) : z)                           \
                 : _mm512_maskz_loadu_ps(rowmask, y + (size_t)(t) * ldy)
    FOR_T(INIT);
#undef INIT
#define FMA(t)                                                                                 \
    do {                                                                                       \
        if (MEM) LOADX_AT(xk, t);                                                              \
        a##t = _mm512_fmadd_ps(wv, TWO ? _mm512_permutex2var_ps(l##t, id, h##t)                \
                                       : _mm512_permutexvar_ps(id, l##t), a##t);               \
    } while (0)
#define LOADX_AT(p, t)                                                                         \
    do {                                                                                       \
        l##t = load_lo((p) + (t) * LW, LW);                                                    \
        if (TWO) h##t = _mm512_load_ps((p) + (t) * LW + 16);                                   \
    } while (0)
#define LOADX(t)                                                                               \
    do {                                                                                       \
        if (!MEM) LOADX_AT(x, t);                                                              \
    } while (0)
    for (const float *xe = x + ng * gs; x != xe; x += gs) {
        FOR_T(LOADX);
        for (size_t k = 0; k < n; k++, slot++) {
            /* MEM: the tables loaded again for each slot (an opaque copy of the pointer keeps GCC
             * from merging the slots' loads into 16 live registers, which it then spills) */
            const float *xk = x;
            if (MEM) __asm__ volatile("" : "+r"(xk));
            const __m512 wv = slot_values(valp, slot, BF);
            const __m512i id = slot_positions(idxp, slot, BF, WIDE);
            FOR_T(FMA);
        }
    }
#undef LOADX
#undef LOADX_AT
#undef FMA
#define STORE(t) _mm512_mask_storeu_ps(y + (size_t)(t) * ldy, rowmask, a##t)
    FOR_T(STORE);
#undef STORE
    (void)h0; (void)h1; (void)h2; (void)h3; (void)h4; (void)h5; (void)h6; (void)h7; (void)h8;
    (void)h9; (void)h10; (void)h11; (void)h12; (void)h13; (void)h14; (void)h15;
}

/* One token (GEMV): four independent FMA chains (one per group of a 4-group step) to stream
 * the weights at full speed. Groups [0, gsafe) may read a whole load width of x; the steps
 * of four of them run without a bound check per group (at 1:8 a group is one slot, and the
 * checks cost as much issue bandwidth as the slot's own vector work); the rest, near the row
 * end, load x under a mask, one group at a time. */
static inline __attribute__((always_inline)) void
gemv(float *y, const float *x, const void *valp, const void *idxp, size_t G, size_t gsafe,
     size_t in, size_t m, size_t n_rt, __mmask16 rowmask, const float *bias, const int NC,
     const int LW, const int BF) {
    const size_t n = NC ? (size_t)NC : n_rt;
    size_t slot = 0;
    const int TWO = LW == 32;
    __m512 acc[4];
    for (int u = 0; u < 4; u++) acc[u] = _mm512_setzero_ps();
    if (bias) acc[0] = _mm512_maskz_loadu_ps(rowmask, bias);
    const float *xp = x;
#define GROUP(ACC, XL, XH)                                                                     \
    for (size_t k = 0; k < n; k++, slot++) {                                                   \
        const __m512 wv = slot_values(valp, slot, BF);                                         \
        const __m512i id = slot_positions(idxp, slot, BF, 0);                                 \
        const __m512 xs = TWO ? _mm512_permutex2var_ps(XL, id, XH) : _mm512_permutexvar_ps(id, XL); \
        ACC = _mm512_fmadd_ps(wv, xs, ACC);                                                    \
    }
    size_t g = 0;
    for (const size_t g4 = gsafe / 4 * 4; g < g4; g += 4, xp += 4 * m)
        for (int u = 0; u < 4; u++) {
            const float *xu = xp + (size_t)u * m;
            const __m512 xl = load_lo(xu, LW), xh = TWO ? _mm512_loadu_ps(xu + 16) : xl;
            GROUP(acc[u], xl, xh);
        }
    for (; g < G; g++, xp += m) {
        __m512 xl, xh = _mm512_setzero_ps();
        if (g < gsafe) {
            xl = load_lo(xp, LW);
            if (TWO) xh = _mm512_loadu_ps(xp + 16);
        } else {
            const size_t valid = in - g * m < m ? in - g * m : m;
            xl = _mm512_maskz_loadu_ps(mask_lo(valid), xp);
            if (TWO) xh = _mm512_maskz_loadu_ps(mask_hi(valid), xp + 16);
        }
        GROUP(acc[g % 4], xl, xh);
    }
#undef GROUP
    __m512 s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_mask_storeu_ps(y, rowmask, s);
}

typedef void (*tile_fn)(float *, size_t, const float *, size_t, const void *, const void *,
                        size_t, size_t, __mmask16, const float *, int);
typedef void (*gemv_fn)(float *, const float *, const void *, const void *, size_t, size_t,
                        size_t, size_t, size_t, __mmask16, const float *);

/* W: 0 u8 positions, 1 u32 positions (f32 values); 2 bf16 values + u8 positions; 3 bf16 values
 * + nibble positions (a variant's BF = max(W - 1, 0), WIDE = W == 1). */
#define DEF_TILE_W(TR, NC, LW, W)                                                              \
    static void tile_##TR##_##NC##_##LW##_##W(float *y, size_t ldy, const float *x, size_t gs, \
                                              const void *val, const void *idx, size_t ng,     \
                                              size_t n, __mmask16 rm, const float *b,          \
                                              int first) {                                     \
        tile(y, ldy, x, gs, val, idx, ng, n, rm, b, first, TR, NC, LW, W == 1,                 \
             W > 1 ? W - 1 : 0);                                                               \
    }
#define DEF_TILES_TR(NC, LW, W)                                                                \
    DEF_TILE_W(12, NC, LW, W) DEF_TILE_W(8, NC, LW, W) DEF_TILE_W(4, NC, LW, W)                \
    DEF_TILE_W(2, NC, LW, W) DEF_TILE_W(1, NC, LW, W)
#define DEF_GEMV(NC, LW, BF)                                                                   \
    static void gemv_##NC##_##LW##_##BF(float *y, const float *x, const void *val,             \
                                        const void *idx, size_t G, size_t gsafe, size_t in,    \
                                        size_t m, size_t n, __mmask16 rm, const float *b) {    \
        gemv(y, x, val, idx, G, gsafe, in, m, n, rm, b, NC, LW, BF);                           \
    }
/* Specialised slot counts: the common patterns have n = 1, 2, 4 (1:4 1:8 1:16, 2:4 2:8 2:16,
 * 4:8); any other n runs the same code with n read at run time (NC = 0). n = 1 runs 12-token
 * blocks (the plan's rule): no 16-token tile (its compile time is not small: 16 accumulators);
 * the driver runs a 16-token block of it as 12 + 4. */
#define DEF_LW(LW, W) DEF_TILES_TR(1, LW, W) DEF_TILES_TR(2, LW, W) DEF_TILES_TR(4, LW, W)     \
    DEF_TILES_TR(0, LW, W) DEF_TILE_W(16, 2, LW, W) DEF_TILE_W(16, 4, LW, W)                   \
    DEF_TILE_W(16, 0, LW, W)
#define DEF_LW_GEMV(LW, BF) DEF_GEMV(1, LW, BF) DEF_GEMV(2, LW, BF) DEF_GEMV(4, LW, BF)        \
    DEF_GEMV(0, LW, BF)
#define DEF_ALL_LW(W) DEF_LW(4, W) DEF_LW(8, W) DEF_LW(16, W) DEF_LW(32, W)
DEF_ALL_LW(0) DEF_ALL_LW(1) DEF_ALL_LW(2)
DEF_LW(4, 3) DEF_LW(8, 3) DEF_LW(16, 3) /* nibble positions: M <= 16 */
DEF_LW_GEMV(4, 0) DEF_LW_GEMV(8, 0) DEF_LW_GEMV(16, 0) DEF_LW_GEMV(32, 0)
DEF_LW_GEMV(4, 1) DEF_LW_GEMV(8, 1) DEF_LW_GEMV(16, 1) DEF_LW_GEMV(32, 1)
DEF_LW_GEMV(4, 2) DEF_LW_GEMV(8, 2) DEF_LW_GEMV(16, 2)

#define ROW_TILES_FROM(T16, NC, LW, W)                                                         \
    { T16, tile_12_##NC##_##LW##_##W, tile_8_##NC##_##LW##_##W, tile_4_##NC##_##LW##_##W,      \
      tile_2_##NC##_##LW##_##W, tile_1_##NC##_##LW##_##W }
#define ROW_TILES(NC, LW, W) ROW_TILES_FROM(tile_16_##NC##_##LW##_##W, NC, LW, W)
#define LW_TILES(LW, W)                                                                        \
    {ROW_TILES_FROM(NULL, 1, LW, W), ROW_TILES(2, LW, W), ROW_TILES(4, LW, W),                 \
     ROW_TILES(0, LW, W)}
#define W_TILES(W) {LW_TILES(4, W), LW_TILES(8, W), LW_TILES(16, W), LW_TILES(32, W)}
/* [positions and values: W above][load width][slot count][token block]; nibble positions have
 * no 32-wide groups (NULL) */
static const tile_fn tiles[4][4][4][6] = {
    W_TILES(0), W_TILES(1), W_TILES(2), {LW_TILES(4, 3), LW_TILES(8, 3), LW_TILES(16, 3), {{0}}}};
#define LW_GEMVS(LW, BF) {gemv_1_##LW##_##BF, gemv_2_##LW##_##BF, gemv_4_##LW##_##BF, gemv_0_##LW##_##BF}
/* [bf: 0 f32, 1 bf16 + u8 positions, 2 bf16 + nibbles][load width][slot count] */
static const gemv_fn gemvs[3][4][4] = {
    {LW_GEMVS(4, 0), LW_GEMVS(8, 0), LW_GEMVS(16, 0), LW_GEMVS(32, 0)},
    {LW_GEMVS(4, 1), LW_GEMVS(8, 1), LW_GEMVS(16, 1), LW_GEMVS(32, 1)},
    {LW_GEMVS(4, 2), LW_GEMVS(8, 2), LW_GEMVS(16, 2), {0}}};

/* Packs groups [c0, c1) of tr token rows of x (row u at x + u*ldx) group-major:
 * tile[(g - c0)*tb*lw + u*lw + j] = x[u][g*m + j] for j < m, 0 for m <= j < lw and for columns
 * past in-1 (read with masks, never touched). lw: 4, 8, 16 or 32 floats per group. */
static void pack_x(float *tile, const float *x, size_t ldx, size_t tr, size_t c0, size_t c1,
                   size_t in, size_t m, size_t lw, size_t tb) {
    const __mmask16 store_lo = (__mmask16)(lw >= 16 ? 0xFFFFu : (1u << lw) - 1u);
    /* groups before `whole` lie inside the row; with m == lw (4, 8, 16, 32: the common
     * patterns) they are plain copies of lw floats, one load and one store each (the masked
     * form below costs ~6 cycles a group, ~9 % of a 1:4 product with in = 3072) */
    size_t whole = m == lw ? in / m : c0;
    whole = whole < c0 ? c0 : whole > c1 ? c1 : whole;
    for (size_t u = 0; u < tr; u++) {
        const float *xr = x + u * ldx + c0 * m;
        float *d = tile + u * lw;
        size_t g = c0;
        if (lw == 4)
            for (; g < whole; g++, xr += 4, d += tb * 4) _mm_store_ps(d, _mm_loadu_ps(xr));
        else if (lw == 8)
            for (; g < whole; g++, xr += 8, d += tb * 8) _mm256_store_ps(d, _mm256_loadu_ps(xr));
        else
            for (; g < whole; g++, xr += lw, d += tb * lw) {
                _mm512_store_ps(d, _mm512_loadu_ps(xr));
                if (lw == 32) _mm512_store_ps(d + 16, _mm512_loadu_ps(xr + 16));
            }
        for (; g < c1; g++, xr += m, d += tb * lw) {
            const size_t valid = in - g * m < m ? in - g * m : m;
            _mm512_mask_storeu_ps(d, store_lo, _mm512_maskz_loadu_ps(mask_lo(valid), xr));
            if (lw == 32)
                _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(mask_hi(valid), xr + 16));
        }
    }
}

/* GELU on a panel's rows (mask rm) of tr tokens of y, in place, inlined: a call of the
 * elementwise kernel per token and panel (16 floats) cost more than the GELU itself (7 % of
 * DeiT-small's 1:8 forward went to nmf_gelu_avx512). */
static inline __attribute__((always_inline)) void gelu_panel(float *y, size_t ldy, size_t tr,
                                                             __mmask16 rm) {
    for (size_t u = 0; u < tr; u++, y += ldy)
        _mm512_mask_storeu_ps(y, rm, nmf_gelu16_avx512(_mm512_maskz_loadu_ps(rm, y)));
}

static int n_slot(int n) { return n == 1 ? 0 : n == 2 ? 1 : n == 4 ? 2 : 3; }

void nmf_spmm_forward_avx512(float *y, const float *x, size_t ldx, size_t x_slack,
                             const nmf_spmm_weights *w, const float *bias, size_t tokens,
                             nmf_activation act, size_t p0, size_t p1,
                             const nmf_spmm_params *prm) {
    const size_t in = w->in, out = w->out, G = w->groups, m = (size_t)w->m, n = (size_t)w->n;
    const size_t panel_slots = G * n * NMF_SPMM_ROWS;
    const int lw_slot = m <= 4 ? 0 : m <= 8 ? 1 : m <= 16 ? 2 : 3, ns = n_slot(w->n);
    /* bf16 values (the layer's plan says): 1 with u8 positions, 2 with nibbles (a compact layer) */
    const int bf = prm && prm->bf16 && w->val16 ? (w->idx4 ? 2 : 1) : 0;
    const void *vals = bf ? (const void *)w->val16 : (const void *)w->val;
    /* a slot's values (16 floats or bf16) and positions (16 bytes or 8 of nibbles), in bytes */
    const size_t val_bytes = bf ? 2 * NMF_SPMM_ROWS : 4 * NMF_SPMM_ROWS;
    const size_t idx_bytes = bf == 2 ? NMF_SPMM_ROWS / 2 : NMF_SPMM_ROWS;
    if (tokens == 1) {
        const size_t lw = (size_t)4 << lw_slot;
        size_t gsafe = x_slack >= NMF_SPMM_X_SLACK ? G : in < lw ? 0 : (in - lw) / m + 1;
        if (gsafe > G) gsafe = G;
        for (size_t b = p0; b < p1; b++) {
            const size_t r0 = b * NMF_SPMM_ROWS;
            const size_t rows = out - r0 < NMF_SPMM_ROWS ? out - r0 : NMF_SPMM_ROWS;
            const __mmask16 rm = (__mmask16)((1u << rows) - 1u);
            const size_t slot0 = b * panel_slots / NMF_SPMM_ROWS;
            const void *ip = bf == 2 ? (const void *)w->idx4 : (const void *)w->idx;
            gemvs[bf][lw_slot][ns](y + r0, x, (const char *)vals + slot0 * val_bytes,
                                   (const char *)ip + slot0 * idx_bytes, G, gsafe, in, m, n, rm,
                                   bias ? bias + r0 : NULL);
            if (act == NMF_ACT_GELU) nmf_gelu_avx512(y + r0, y + r0, rows);
        }
        return;
    }
    const size_t lw = (size_t)4 << lw_slot; /* floats per group in the packed tile */
    const size_t tb = prm && prm->token_block == TB_MAX ? TB_MAX : 12; /* tokens per block */
    size_t chunk = X_TILE_FLOATS / (tb * lw); /* groups per chunk */
    if (chunk < 1) chunk = 1;
    /* Panels are taken in blocks (PANEL_BLOCK_BYTES of weights) and each block sees every
     * token block: the weights are read from memory once per product, not once per token
     * block. */
    /* u32 positions stored by the layer (w->idx32, built with its plan) when prm->wide: the
     * u8 -> u32 widening is a 512-bit shuffle that otherwise runs once per slot and token
     * block (~8 % of the time at 128 tokens). Without them the tiles widen as they go. (The
     * block size is counted on 5 bytes per slot, as measured with a per-call wide buffer;
     * not re-measured with the stored u32 positions.) */
    const uint32_t *wide = !bf && prm && prm->wide ? w->idx32 : NULL;
    size_t pblock = (prm && prm->panel_block ? prm->panel_block : PANEL_BLOCK_BYTES) /
                    (panel_slots / NMF_SPMM_ROWS * (val_bytes + idx_bytes));
    if (pblock < 1) pblock = 1;
    /* Each tb-token x chunk block of x is packed group-major (pack_x) into an L1 tile and
     * reused by every panel of the block. */
    float tilebuf[X_TILE_FLOATS + TB_MAX * NMF_NM_MAX_M] __attribute__((aligned(64)));
    static const size_t lens[6] = {16, 12, 8, 4, 2, 1}; /* tr <= 16: 16, or 12 + ..., 8a + ... */
    const tile_fn(*tl)[6] = tiles[bf ? bf + 1 : wide != NULL][lw_slot];
    const void *positions = wide ? (const void *)wide : bf == 2 ? (const void *)w->idx4
                                                                : (const void *)w->idx;
    for (size_t pb0 = p0; pb0 < p1; pb0 += pblock) {
        const size_t pb1 = p1 - pb0 < pblock ? p1 : pb0 + pblock;
        for (size_t t0 = 0; t0 < tokens; t0 += tb) {
            const size_t tr = tokens - t0 < tb ? tokens - t0 : tb;
            for (size_t c0 = 0; c0 < G; c0 += chunk) {
                const size_t c1 = G - c0 < chunk ? G : c0 + chunk;
                pack_x(tilebuf, x + t0 * ldx, ldx, tr, c0, c1, in, m, lw, tb);
                for (size_t b = pb0; b < pb1; b++) {
                    const size_t r0 = b * NMF_SPMM_ROWS;
                    const size_t rows = out - r0 < NMF_SPMM_ROWS ? out - r0 : NMF_SPMM_ROWS;
                    const __mmask16 rm = (__mmask16)((1u << rows) - 1u);
                    const size_t slot0 = (b * panel_slots + c0 * n * NMF_SPMM_ROWS) / NMF_SPMM_ROWS;
                    const float *bb = bias ? bias + r0 : NULL;
                    const void *vp = (const char *)vals + slot0 * val_bytes;
                    const void *ip = (const char *)positions + slot0 * (wide ? 4 * NMF_SPMM_ROWS : idx_bytes);
                    size_t t = 0;
                    for (int s = 0; s < 6; s++) {
                        const size_t len = lens[s];
                        if (tr - t >= len && tl[ns][s]) { /* n = 1: no 16-token tile */
                            /* groups numbered from the chunk start */
                            tl[ns][s](y + (t0 + t) * out + r0, out, tilebuf + t * lw, tb * lw,
                                      vp, ip, c1 - c0, n, rm, bb, c0 == 0);
                            t += len;
                        }
                    }
                    if (c1 == G && act == NMF_ACT_GELU)
                        gelu_panel(y + t0 * out + r0, out, tr, rm);
                }
            }
        }
    }
}

void nmf_spmm_backward_avx512(float *dx, const float *dy, const nmf_spmm_weights *w, size_t t0,
                              size_t t1, float *work) {
    spmm_backward_impl(dx, dy, w, t0, t1, work);
}
