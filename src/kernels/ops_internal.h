/* Private: the ISA variants behind include/nmformer/ops.h, chosen at run time by the dispatchers
 * in attention.c and act.c. Each *_avx512 / *_avx2 function lives in a file of that suffix
 * (compiled with that ISA's flags only) and is called only when nmf_active_isa() allows it. */
#ifndef NMF_KERNELS_OPS_INTERNAL_H
#define NMF_KERNELS_OPS_INTERNAL_H

#include "nmformer/ops.h"

/* The scalar form's "broadcast" for polynomial chains written once for every lane type
 * (gelu_q8.h NMF_GELU_Q8_POLY, attention_q8.h NMF_Q8_P255_POLY). */
#define NMF_SCALAR_SET1(x) (x)

/* Tiling of the fused attention kernels; the work size formula (attention.c) covers all ISAs. */
#define NMF_ATT_QB 6  /* queries per block: 6 rows x 4 vectors of scores fit in 24 zmm */
#define NMF_ATT_KT 64 /* keys per tile */
/* AVX-512: keys per softmax chunk (one max, one rescale per chunk; its QK tiles stay KT) */
#define NMF_ATT_CHUNK 512

/* Tile t of a chunk of kvecs key vectors (16 keys each, the first at key c0) dealt evenly over
 * `tiles` tiles: 197 keys (13 vectors) run as 4 + 3 + 3 + 3, not 4 + 4 + 4 + 1, whose
 * one-vector tile leaves too few independent sums for the multiply-add latency. Fills limit[r]
 * (row r's last visible key - the tile's first key: larger keys are masked) and says whether no
 * key of the tile is masked for any row (the AVX-512 kernels, f32 and int8). */
typedef struct {
    size_t v0; /* the tile's first vector in the chunk */
    int nv;    /* its vectors */
    int full;  /* no key masked */
} nmf_att_tile;
static inline nmf_att_tile nmf_att_tile_of(size_t kvecs, size_t tiles, size_t t, size_t c0,
                                           const size_t last[NMF_ATT_QB], long limit[NMF_ATT_QB]) {
    nmf_att_tile tile;
    tile.v0 = kvecs * t / tiles;
    tile.nv = (int)(kvecs * (t + 1) / tiles - tile.v0);
    long minlim = limit[0] = (long)last[0] - (long)(c0 + 16 * tile.v0);
    for (int r = 1; r < NMF_ATT_QB; r++) {
        limit[r] = (long)last[r] - (long)(c0 + 16 * tile.v0);
        minlim = limit[r] < minlim ? limit[r] : minlim;
    }
    tile.full = minlim >= 16 * tile.nv - 1;
    return tile;
}

/* Whether the CPU (and OS) run AVX-512 with VNNI and VBMI: the int8 kernels of spmm_q8_avx512.c
 * (src/core/cpu.c; a feature beyond the nmf_isa levels, asked where those kernels are planned). */
int nmf_cpu_has_vnni512(void);

void nmf_gelu_avx512(float *y, const float *x, size_t n);
void nmf_gelu_avx2(float *y, const float *x, size_t n);
void nmf_gelu_tanh_avx512(float *y, const float *x, size_t n);
void nmf_gelu_tanh_avx2(float *y, const float *x, size_t n);
void nmf_silu_avx512(float *y, const float *x, size_t n);
void nmf_silu_avx2(float *y, const float *x, size_t n);

/* LayerNorm of `rows` rows (rows, C) -> (rows, C), each row on its own; y may == x. With a
 * residual r (else NULL): sum = x + r is stored first and normalised (the residual stream's add
 * fused into the norm that follows it; sum may == x). */
typedef void (*nmf_layernorm_rows_fn)(float *y, float *sum, const float *x, const float *r,
                                      const float *w, const float *b, size_t rows, size_t C,
                                      float eps);
void nmf_layernorm_rows_ref(float *y, float *sum, const float *x, const float *r, const float *w,
                            const float *b, size_t rows, size_t C, float eps);
void nmf_layernorm_rows_avx512(float *y, float *sum, const float *x, const float *r,
                               const float *w, const float *b, size_t rows, size_t C, float eps);
void nmf_layernorm_rows_avx2(float *y, float *sum, const float *x, const float *r, const float *w,
                             const float *b, size_t rows, size_t C, float eps);

/* NMF_OK, or why an attention shape is unusable (attention.c). */
nmf_status nmf_attention_check_shape(const nmf_attention_shape *s);
/* One head; s checked and work sized (nmf_attention_work_floats) by the caller. */
void nmf_attention_avx512(float *out, const float *q, const float *k, const float *v,
                          const nmf_attention_shape *s, float *work);
void nmf_attention_avx2(float *out, const float *q, const float *k, const float *v,
                        const nmf_attention_shape *s, float *work);

/* Rounds n up to a multiple of m. */
static inline size_t nmf_round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

#endif
