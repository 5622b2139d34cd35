/* nmf_linear: a weight W [out][in], dense (products through nmf_gemm, gemm.c) or N:M (products
 * through our kernels, in the panel layout of spmm.h, built here once, and the layouts its plan
 * needs, built with the plan when the layer is created: spmm_plan.c).
 * Threads (nmf_get_threads(), OpenMP): the token-vectorised forward splits token vectors (each
 * thread its own transposed x) when the layer's weights are small or the tokens many
 * (tv_split_tokens, spmm.h), else output panels of one shared transposed x; the panel forward
 * splits token blocks when the layer's weights are small (the plan's token_split_bytes,
 * spmm.h), else output panels; the backward one splits token blocks. */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/dense16.h"
#include "kernels/gelu_q8.h"
#include "kernels/ops_internal.h"
#include "core/scratch.h"
#include "kernels/spmm.h"
#include "kernels/spmm_q8.h"
#include "nmformer/tensor.h"

struct nmf_linear {
    size_t out, in;
    nmf_pattern pattern; /* {0,0}: dense */
    float *dense;        /* when dense f32: W [out][in], or W^T [in][out] when dense_t */
    int dense_t;         /* the dense weights are stored transposed (dense_layout_for) */
    /* dense 16-bit (dense16.h): d16.w in storage (or borrowed: storage NULL); the kernels and
     * the block size planned at create; from d16_gemm_tokens tokens on, blocks of W of up to
     * d16_block floats are widened into one scratch per thread (d16_threads of them, taken
     * under d16_lock: a concurrent caller, or one from inside a parallel region, runs the rows
     * kernel instead, which needs none) */
    nmf_dense16 d16;
    nmf_dense16_rows_fn d16_rows;
    nmf_dense16_widen_fn d16_widen;
    const char *d16_name;
    size_t d16_gemm_tokens, d16_block;
    int d16_threads;
    float *d16_scratch;  /* [d16_threads][d16_block], allocated on the first widened product
                          * (a decode after a short prompt never needs it) */
    size_t d16_scratch_floats;
    pthread_mutex_t d16_lock;
    nmf_spmm_weights w;  /* when N:M; arrays in `storage` and the plan's */
    void *storage;
    nmf_spmm_plan plan;  /* when N:M: which kernel runs what (spmm_plan.c) */
    nmf_precision prec;  /* nmf_linear_set_precision */
    nmf_q8_weights q8;   /* int8: the window layout (spmm_q8.h), in lowprec_storage */
    const nmf_q8_kernel *q8k; /* int8: its geometry, quantiser and kernel, planned at set */
    void *lowprec_storage; /* bf16: w.val16; int8: q8's arrays */
    /* W^T for the backward product (spmm_backward.h), built on its first use so that inference
     * never pays for it; the lock makes that build safe from several threads. */
    pthread_mutex_t cache_lock;
    void *transpose_storage;
};

size_t nmf_spmm_layout_bytes(size_t out, size_t groups, int n) {
    size_t panels = (out + NMF_SPMM_ROWS - 1) / NMF_SPMM_ROWS;
    return panels * NMF_SPMM_ROWS * groups * (size_t)n * (sizeof(float) + 1);
}

/* How a dense f32 layer stores its weights, for the backend that will multiply them (decided at
 * create, by measurement). oneDNN's sgemm runs x W^T faster with W^T stored row-major [in][out]
 * (no transposed operand): Xeon family 6 model 207, one thread, 197 tokens x DeiT-small's layers
 * 0.90-1.18x, 128 tokens x BERT-base's 1.03-1.23x, 16 tokens 768x768 1.7x, 4 tokens 1.5x, one
 * token (a GEMV either way) 0.96-1.2x; OpenBLAS keeps W as stored. */
static int dense_layout_for(nmf_gemm_backend b) { return b == NMF_GEMM_ONEDNN; }

/* dst [cols][rows] = src [rows][cols]^T, in 32 x 32 blocks (both sides touch whole lines). */
static void transpose_f32(float *dst, const float *src, size_t rows, size_t cols) {
    for (size_t r0 = 0; r0 < rows; r0 += 32)
        for (size_t c0 = 0; c0 < cols; c0 += 32) {
            const size_t r1 = r0 + 32 < rows ? r0 + 32 : rows, c1 = c0 + 32 < cols ? c0 + 32 : cols;
            for (size_t r = r0; r < r1; r++)
                for (size_t c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
        }
}

/* A layer of out x in with nothing in it yet (every constructor starts here; nmf_linear_free
 * takes it back as it is), or NULL when out of memory. */
static nmf_linear *linear_new(size_t out, size_t in) {
    nmf_linear *l = nmf_alloc(1, sizeof *l);
    if (!l) return NULL;
    pthread_mutex_init(&l->cache_lock, NULL);
    l->out = out;
    l->in = in;
    return l;
}

/* The arguments of a dense constructor: an output, a nonempty weight. */
static nmf_status dense_args(nmf_linear **lin, const void *w, size_t out, size_t in) {
    if (!lin) return nmf_error(NMF_ERR_INVALID_ARG, "linear: NULL output");
    *lin = NULL;
    if (!w || out == 0 || in == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "linear: dense weight %zu x %zu is empty", out, in);
    return NMF_OK;
}

nmf_status nmf_linear_create_dense(nmf_linear **lin, const float *w, size_t out, size_t in) {
    nmf_status st = dense_args(lin, w, out, in);
    if (st) return st;
    if (out > INT32_MAX || in > INT32_MAX)
        return nmf_error(NMF_ERR_UNSUPPORTED, "linear: %zu x %zu exceeds BLAS int range", out, in);
    nmf_linear *l = linear_new(out, in);
    float *d = nmf_alloc(out * in, sizeof(float)); /* nmf_alloc checks the product */
    if (!l || !d) {
        nmf_linear_free(l);
        nmf_free(d);
        return nmf_error(NMF_ERR_NOMEM, "linear: dense %zu x %zu: out of memory", out, in);
    }
    l->dense_t = dense_layout_for(nmf_gemm_backend_active());
    if (l->dense_t)
        transpose_f32(d, w, out, in);
    else
        memcpy(d, w, out * in * sizeof(float));
    l->dense = d;
    l->storage = d;
    *lin = l;
    return NMF_OK;
}

/* Tokens from which a 16-bit product widens blocks for the dense backend rather than running
 * the in-register kernel (which reads W once per pair of tokens): measured on Zen 3
 * (docs/PERFORMANCE.md, bench gemm --precision bf16). */
#define D16_GEMM_TOKENS 32
/* Floats of one thread's widened block: half of the core's L2, within [32 K, 256 K] floats.
 * Narrow blocks make the backend's products narrow: on Zen 3 (512 KiB L2) 8 K floats were
 * 1.5-2x slower than 32 K; on the Xeon of docs/PERFORMANCE.md (2 MiB L2) blocks of whole rows
 * ran 768x3072 at 128 tokens in 9.65 ms with 32 K, 6.51 with 128 K, 5.26 with 256 K (f32: 3.4),
 * and 4.2 as all rows by a block of columns (d16_widened). */
static size_t d16_block_floats(void) {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    size_t f = l2 > 0 ? (size_t)l2 / 2 / sizeof(float) : 32768;
    return f < 32768 ? 32768 : f > 262144 ? 262144 : f;
}

/* l's 16-bit kernels, block and scratch for W = w (the layer's own copy) */
static nmf_status plan_dense16(nmf_linear *l, uint16_t *w, nmf_dtype dtype) {
    size_t block = d16_block_floats(), floats;
    if (block > l->out * l->in) block = l->out * l->in; /* (then one block holds every row) */
    const int threads = nmf_get_threads();
    if (nmf_mul_overflow(block, (size_t)threads, &floats))
        return nmf_error(NMF_ERR_NOMEM, "linear: 16-bit scratch too large");
    const int avx2 = nmf_active_isa() >= NMF_ISA_AVX2;
    const int f16 = dtype == NMF_DTYPE_F16;
    l->d16 = (nmf_dense16){.w = w, .out = l->out, .in = l->in, .dtype = dtype};
    l->d16_rows = avx2 ? nmf_dense16_rows_avx2 : nmf_dense16_rows_scalar;
    l->d16_widen = avx2 ? nmf_dense16_widen_avx2 : nmf_dense16_widen_scalar;
    l->d16_name = avx2 ? (f16 ? "avx2-f16" : "avx2-bf16") : (f16 ? "scalar-f16" : "scalar-bf16");
    l->d16_block = block;
    l->d16_gemm_tokens = D16_GEMM_TOKENS;
    l->d16_threads = threads;
    l->d16_scratch_floats = floats;
    pthread_mutex_init(&l->d16_lock, NULL);
    l->prec = NMF_PREC_BF16;
    return NMF_OK;
}

/* a dense 16-bit layer holding d (owned: freed with the layer; else only read) */
static nmf_status create_dense16(nmf_linear **lin, uint16_t *d, nmf_dtype dtype, size_t out,
                                 size_t in, int owned) {
    if (dtype != NMF_DTYPE_BF16 && dtype != NMF_DTYPE_F16)
        return nmf_error(NMF_ERR_INVALID_ARG, "linear: 16-bit weights must be BF16 or F16, not %s",
                         nmf_dtype_name(dtype));
    if (out > INT32_MAX || in > INT32_MAX)
        return nmf_error(NMF_ERR_UNSUPPORTED, "linear: %zu x %zu exceeds BLAS int range", out, in);
    nmf_linear *l = linear_new(out, in);
    if (!l) return nmf_error(NMF_ERR_NOMEM, "linear: out of memory");
    nmf_status st = plan_dense16(l, d, dtype);
    if (st != NMF_OK) {
        nmf_linear_free(l);
        return st;
    }
    l->storage = owned ? d : NULL;
    *lin = l;
    return NMF_OK;
}

nmf_status nmf_linear_create_dense16(nmf_linear **lin, const uint16_t *w, nmf_dtype dtype,
                                     size_t out, size_t in) {
    nmf_status st = dense_args(lin, w, out, in);
    if (st) return st;
    uint16_t *d = nmf_alloc(out * in, sizeof(uint16_t)); /* nmf_alloc checks the product */
    if (!d) return nmf_error(NMF_ERR_NOMEM, "linear: dense %zu x %zu: out of memory", out, in);
    memcpy(d, w, out * in * sizeof(uint16_t));
    st = create_dense16(lin, d, dtype, out, in, 1);
    if (st != NMF_OK) nmf_free(d);
    return st;
}

nmf_status nmf_linear_create_dense16_take(nmf_linear **lin, uint16_t **w, nmf_dtype dtype,
                                          size_t out, size_t in) {
    nmf_status st = dense_args(lin, w ? *w : NULL, out, in);
    if (st) return st;
    st = create_dense16(lin, *w, dtype, out, in, 1);
    if (st == NMF_OK) *w = NULL;
    return st;
}

nmf_status nmf_linear_create_dense16_borrow(nmf_linear **lin, const uint16_t *w, nmf_dtype dtype,
                                            size_t out, size_t in) {
    const nmf_status st = dense_args(lin, w, out, in);
    return st ? st : create_dense16(lin, (uint16_t *)w, dtype, out, in, 0); /* only ever read */
}

const uint16_t *nmf_linear_weights16(const nmf_linear *lin, nmf_dtype *dtype) {
    if (!lin || !lin->d16.w) return NULL;
    if (dtype) *dtype = lin->d16.dtype;
    return lin->d16.w;
}

/* nmf_linear_create_nm with the plan's tuning t (NULL: the default) */
static nmf_status create_nm(nmf_linear **lin, const nmf_nm_matrix *a, const nmf_spmm_tuning *t) {
    if (!lin) return nmf_error(NMF_ERR_INVALID_ARG, "linear: NULL output");
    *lin = NULL;
    if (!a || !a->values || !a->pos || a->rows == 0 || a->cols == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "linear: empty N:M matrix");
    nmf_status st = nmf_nm_validate(a);
    if (st != NMF_OK) return st;
    const size_t out = a->rows, in = a->cols, G = a->groups;
    const size_t n = (size_t)a->pattern.n, m = (size_t)a->pattern.m;
    if (out > INT32_MAX || in > INT32_MAX)
        return nmf_error(NMF_ERR_UNSUPPORTED, "linear: %zu x %zu too large", out, in);
    const size_t panels = (out + NMF_SPMM_ROWS - 1) / NMF_SPMM_ROWS;
    size_t slots, val_bytes;
    if (nmf_mul_overflow(panels * NMF_SPMM_ROWS, G, &slots) || nmf_mul_overflow(slots, n, &slots) ||
        nmf_mul_overflow(slots, sizeof(float), &val_bytes) || slots + val_bytes < slots)
        return nmf_error(NMF_ERR_NOMEM, "linear: N:M %zu x %zu too large", out, in);
    nmf_linear *l = linear_new(out, in);
    uint8_t *mem = nmf_alloc(val_bytes + slots, 1); /* values first: 64-byte aligned */
    if (!l || !mem) {
        nmf_linear_free(l);
        nmf_free(mem);
        return nmf_error(NMF_ERR_NOMEM, "linear: N:M %zu x %zu: out of memory", out, in);
    }
    float *val = (float *)mem;
    uint8_t *idx = mem + val_bytes;
    /* canonical [row][g*n + k]  ->  panel [b][g][k][r]; padding rows stay 0 (nmf_alloc zeroes) */
    const size_t row_slots = G * n;
    for (size_t o = 0; o < out; o++) {
        const size_t b = o / NMF_SPMM_ROWS, r = o % NMF_SPMM_ROWS;
        const float *sv = a->values + o * row_slots;
        const uint8_t *sp = a->pos + o * row_slots;
        for (size_t g = 0; g < G; g++)
            for (size_t k = 0; k < n; k++) {
                const size_t j = g * n + k;
                const size_t dst = ((b * G + g) * n + k) * NMF_SPMM_ROWS + r;
                if (g * m + sp[j] < in) { /* a padding column is never read: value 0 at pos 0 */
                    val[dst] = sv[j];
                    idx[dst] = sp[j];
                }
            }
    }
    l->pattern = a->pattern;
    l->w = (nmf_spmm_weights){.out = out, .in = in, .groups = G, .n = (int)n, .m = (int)m,
                              .panels = panels, .val = val, .idx = idx};
    l->storage = mem;
    st = nmf_spmm_plan_make(&l->plan, &l->w, t);
    if (st != NMF_OK) {
        nmf_linear_free(l);
        return st;
    }
    *lin = l;
    return NMF_OK;
}

nmf_status nmf_linear_create_nm(nmf_linear **lin, const nmf_nm_matrix *a) {
    return create_nm(lin, a, NULL);
}

nmf_status nmf_linear_create_nm_bf16(nmf_linear **lin, const nmf_nm_matrix *a) {
    /* a panel-only plan from the start: the layouts a compact layer drops are never built */
    nmf_spmm_tuning t = nmf_spmm_tuning_default();
    t.tv = NMF_SPMM_OFF;
    t.wide = NMF_SPMM_OFF;
    nmf_status st = create_nm(lin, a, &t);
    if (st == NMF_OK) st = nmf_linear_set_precision(*lin, NMF_PREC_BF16);
    if (st == NMF_OK) st = nmf_linear_compact(*lin);
    if (st != NMF_OK && lin) {
        nmf_linear_free(*lin);
        *lin = NULL;
    }
    return st;
}

nmf_status nmf_linear_set_tuning(nmf_linear *lin, const nmf_spmm_tuning *t) {
    if (!lin || !t || lin->pattern.n == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "linear: tuning needs an N:M layer");
    if (!lin->w.val) /* the other layouts are built from the f32 values it no longer has */
        return nmf_error(NMF_ERR_UNSUPPORTED, "linear: a compact bf16 layer runs only its bf16 "
                         "panel kernel; it takes no tuning");
    return nmf_spmm_plan_make(&lin->plan, &lin->w, t);
}

void nmf_linear_free(nmf_linear *lin) {
    if (!lin) return;
    pthread_mutex_destroy(&lin->cache_lock);
    nmf_free(lin->transpose_storage);
    if (lin->pattern.n) nmf_spmm_plan_free(&lin->plan, &lin->w);
    if (lin->d16.w) pthread_mutex_destroy(&lin->d16_lock);
    nmf_free(lin->d16_scratch);
    nmf_free(lin->storage);
    nmf_free(lin->lowprec_storage);
    nmf_free(lin);
}

size_t nmf_linear_out(const nmf_linear *lin) { return lin ? lin->out : 0; }
size_t nmf_linear_in(const nmf_linear *lin) { return lin ? lin->in : 0; }
nmf_pattern nmf_linear_pattern(const nmf_linear *lin) {
    return lin ? lin->pattern : (nmf_pattern){0, 0};
}

size_t nmf_linear_weight_bytes(const nmf_linear *lin) {
    if (!lin) return 0;
    if (lin->dense) return lin->out * lin->in * sizeof(float);
    if (lin->d16.w) return lin->out * lin->in * sizeof(uint16_t);
    if (lin->prec == NMF_PREC_INT8) return nmf_q8_layout_bytes(&lin->q8);
    if (lin->prec == NMF_PREC_BF16) /* the bf16 values and the positions a 1-token product reads:
                                     * nibbles for M <= 16, else u8 */
        return nmf_spmm_layout_bytes(lin->out, lin->w.groups, lin->w.n) / 10 * (lin->w.idx4 ? 5 : 6);
    return nmf_spmm_layout_bytes(lin->out, lin->w.groups, lin->w.n);
}

const nmf_spmm_weights *nmf_linear_spmm_weights(const nmf_linear *lin) {
    return lin && lin->pattern.n ? &lin->w : NULL;
}

nmf_spmm_step nmf_linear_spmm_step(const nmf_linear *lin, size_t tokens) {
    return nmf_spmm_plan_step(&lin->plan, &lin->w, tokens);
}

const char *nmf_linear_kernel_name(const nmf_linear *lin, size_t tokens) {
    if (!lin) return "none";
    if (lin->dense) return nmf_gemm_backend_name(nmf_gemm_backend_active());
    if (lin->d16.w) {
        if (tokens < lin->d16_gemm_tokens) return lin->d16_name;
        static const char *const widened[2][NMF_GEMM_BACKEND_COUNT] = {
            {"widen-bf16+openblas", "widen-bf16+onednn"}, {"widen-f16+openblas", "widen-f16+onednn"}};
        return widened[lin->d16.dtype == NMF_DTYPE_F16][nmf_gemm_backend_active()];
    }
    if (lin->prec == NMF_PREC_INT8) return lin->q8k->name;
    return nmf_spmm_plan_step(&lin->plan, &lin->w, tokens).name;
}

static nmf_status check_args(const void *out, const void *in, const nmf_linear *lin,
                             size_t tokens, const char *what) {
    if (!lin || (tokens && (!out || !in)))
        return nmf_error(NMF_ERR_INVALID_ARG, "linear %s: NULL argument", what);
    if (tokens > INT32_MAX)
        return nmf_error(NMF_ERR_INVALID_ARG, "linear %s: %zu tokens too many", what, tokens);
    return NMF_OK;
}

/* Threads for a product of `fmas` multiply-adds: small ones are not worth waking a team. */
static int threads_for(double fmas, size_t units) {
    int t = omp_in_parallel() ? 1 : nmf_get_threads();
    if (fmas < 65536.0) t = 1;
    if ((size_t)t > units) t = (int)units;
    return t < 1 ? 1 : t;
}

/* int8 threads split the tokens (each quantises its own and runs every row block on them, no
 * barrier) for layers of at most Q8_SPLIT_ROWS output rows whose int8 layout is at most
 * Q8_SPLIT_BYTES, else the row blocks of one shared quantised x. Measured (Xeon model 207, two
 * threads, `bench gemm --precision int8`, 128 and 197 tokens, 2:8 and 1:8): DeiT's layers
 * (384-1536 rows) 1.03-1.35x faster split by tokens, BERT's 768x768 and 768x3072 1.06-1.19x,
 * 3072x768 5-17 % slower (192 row blocks a thread sweeps for every token block of its own). */
#define Q8_SPLIT_ROWS 1536
#define Q8_SPLIT_BYTES ((size_t)2 << 20)
#define Q8_SPLIT_TOKENS 16 /* token ranges in multiples of the kernels' token blocks (8, 16) */

/* int8 (spmm_q8.h): the tokens quantised into one scratch, by tokens or by row blocks (above). */
static nmf_status forward_q8(float *y, const float *x, const nmf_linear *lin, const float *bias,
                             size_t tokens, nmf_activation act) {
    const nmf_q8_weights *q = &lin->q8;
    const size_t in = lin->in, ldq = q->windows * q->g.win * lin->q8k->xbytes; /* bytes */
    size_t bytes;
    if (nmf_mul_overflow(tokens, ldq + sizeof(float), &bytes) || bytes > SIZE_MAX - 128)
        return nmf_error(NMF_ERR_NOMEM, "linear int8: %zu tokens too many", tokens);
    /* xq [tokens][ldq] first, 64-byte aligned (AVX-512 loads a token's 64-byte window: one that
     * straddles two cache lines costs two), then sx [tokens]; every byte is written before it
     * is read (no zeroing) */
    const size_t xq_bytes = (tokens * ldq + 63) / 64 * 64;
    uint8_t *buf = nmf_scratch_take((bytes + 127) / 64 * 64); /* the thread's, not per call */
    if (!buf) return nmf_error(NMF_ERR_NOMEM, "linear int8: out of memory for %zu tokens", tokens);
    uint8_t *xq = buf;
    float *sx = (float *)(buf + xq_bytes);
    const double kept = lin->pattern.n ? (double)lin->w.groups * lin->w.n : (double)in;
    const double fmas = (double)tokens * (double)lin->out * kept;
    const int threads = threads_for(fmas, q->rowblocks);
    const nmf_q8_forward_fn forward = lin->q8k->forward;
    const size_t blocks = tokens / Q8_SPLIT_TOKENS; /* whole ones; the last range takes the rest */
    const int split = threads > 1 && blocks >= (size_t)threads && lin->out <= Q8_SPLIT_ROWS &&
                      nmf_q8_layout_bytes(q) <= Q8_SPLIT_BYTES;
    size_t bad = 0; /* one parallel region (a fork-join less): quantise, [barrier,] products */
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        size_t t0 = tokens * id / nt, t1 = tokens * (id + 1) / nt;
        if (split) {
            t0 = blocks * id / nt * Q8_SPLIT_TOKENS;
            t1 = id + 1 == nt ? tokens : blocks * (id + 1) / nt * Q8_SPLIT_TOKENS;
        }
        const size_t b = lin->q8k->quantize(xq, ldq, sx, x, in, in, t0, t1);
        if (b) {
#pragma omp atomic
            bad += b;
        }
        if (split && nt == (size_t)threads) { /* this thread's tokens, every row block (a bad token: none of them) */
            if (b == 0 && t1 > t0)
                forward(y + t0 * lin->out, xq + t0 * ldq, ldq, sx + t0, t1 - t0, q, bias, act, 0,
                        q->rowblocks);
        } else {
#pragma omp barrier
            const size_t rb0 = q->rowblocks * id / nt, rb1 = q->rowblocks * (id + 1) / nt;
            if (bad == 0 && rb1 > rb0) forward(y, xq, ldq, sx, tokens, q, bias, act, rb0, rb1);
        }
    }
    nmf_scratch_give(buf);
    return bad ? nmf_error(NMF_ERR_NUMERIC, "linear int8: %zu tokens hold non-finite inputs", bad)
               : NMF_OK;
}

/* Whether the `threads` threads of a tv product of `tokens` split the token vectors rather than
 * the output panels (the rule and its measurements: spmm.h NMF_SPMM_TV_SPLIT_BYTES). */
static int tv_split_tokens(const nmf_spmm_plan *plan, const nmf_spmm_weights *w, size_t tokens,
                           int threads) {
    if (threads < 2 || plan->tuning.tv_split == NMF_SPMM_OFF) return 0;
    const size_t vecs = (tokens + plan->k->tv->lanes - 1) / plan->k->tv->lanes;
    if (vecs < (size_t)threads) return 0; /* a thread without tokens */
    if (plan->tuning.tv_split == NMF_SPMM_ON) return 1;
    const size_t per = tokens / (size_t)threads;
    const size_t bytes = w->panels * NMF_SPMM_ROWS * w->groups * (size_t)w->n * sizeof(nmf_tv_pair);
    return per >= plan->tv_shape.min_tokens &&
           (bytes <= NMF_SPMM_TV_SPLIT_BYTES || per >= NMF_SPMM_TV_SPLIT_TOKENS);
}

/* Thread id's token vectors [v0, v1) of `vecs` when the tokens are split, and their tokens
 * [t0, t1) of `tokens`. */
typedef struct {
    size_t v0, v1, t0, t1;
} token_share;
static token_share share_of(size_t vecs, size_t lanes, size_t tokens, size_t id, size_t nt) {
    token_share sh = {vecs * id / nt, vecs * (id + 1) / nt, 0, 0};
    sh.t0 = sh.v0 * lanes;
    sh.t1 = sh.v1 * lanes < tokens ? sh.v1 * lanes : tokens;
    return sh;
}

/* Floats of one thread's transposed x when `threads` threads split the tokens (a share of at
 * most ceil(vecs / threads) vectors), and of the one shared xT otherwise; 0 on overflow. Both
 * rounded to 16 floats. */
static size_t tv_xt_floats(size_t in, size_t tokens, size_t tok, size_t lanes, int threads,
                           int split) {
    const size_t vecs = (tokens + lanes - 1) / lanes;
    const size_t most = (vecs + (size_t)threads - 1) / (size_t)threads * lanes;
    const size_t n = split && most < tokens ? most : tokens;
    return nmf_round_up(nmf_spmm_tv_xt_floats(in, n, tok), 16);
}

/* Floats of the xT scratch: `per` floats for each of `threads` threads when split, and at
 * least the `shared` ones of one xT for all tokens (what a smaller team falls back to; it is
 * never more than the shares, except by rounding); 0 on overflow. */
static size_t tv_scratch_floats(size_t shared, size_t per, int threads, int split) {
    size_t all = shared;
    if (split) {
        size_t shares;
        if (nmf_mul_overflow(per, (size_t)threads, &shares)) return 0;
        if (shares > all) all = shares;
    }
    return all <= SIZE_MAX / sizeof(float) / 2 ? all : 0;
}

/* The token-vectorised products. Split by panels: x is transposed once into xT, shared by the
 * threads (each transposes an even share of the token vectors), then each thread computes its
 * panels from it with its own partial sums yT. Split by tokens: each thread transposes its own
 * tokens into its own xT (xt_floats apart, sized for `threads` shares) and computes every panel
 * for them; a team smaller than asked for (OMP_DYNAMIC, a thread limit) shares one xT instead,
 * which fits in the same scratch (tv_scratch_floats). */
static void forward_tv_threads(float *y, float *xT, size_t xt_floats, const float *x,
                               const nmf_spmm_weights *w, const nmf_spmm_tv_kernels *tv,
                               const float *bias, size_t tokens, nmf_activation act,
                               size_t chunk, float *yT, size_t yt_floats, int threads, int split) {
    const size_t vecs = (tokens + tv->lanes - 1) / tv->lanes, tok = w->tv_tokens;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const token_share sh = share_of(vecs, tv->lanes, tokens, id, nt);
        if (split && nt == (size_t)threads) {
            float *mine = xT + id * xt_floats;
            if (sh.t1 > sh.t0) {
                tv->transpose(mine, x + sh.t0 * w->in, w->in, w->in, sh.t1 - sh.t0, tok, 0,
                              sh.v1 - sh.v0);
                tv->forward_xt(y + sh.t0 * w->out, mine, w, bias, sh.t1 - sh.t0, act, 0,
                               w->panels, chunk, yT + id * yt_floats);
            }
        } else {
            tv->transpose(xT, x, w->in, w->in, tokens, tok, sh.v0, sh.v1);
#pragma omp barrier
            const size_t p0 = w->panels * id / nt, p1 = w->panels * (id + 1) / nt;
            if (p1 > p0)
                tv->forward_xt(y, xT, w, bias, tokens, act, p0, p1, chunk, yT + id * yt_floats);
        }
    }
}

/* Dense 16-bit: below d16_gemm_tokens the rows kernel, threads splitting the output rows in
 * blocks of NMF_DENSE16_ROWS (each streams only its share of W); from there each thread widens
 * blocks of its rows into its scratch and multiplies them with the backend (single-threaded
 * inside our region, gemm.c), writing its columns of y. Bias and activation as the f32 path. */

/* Rows per widened block below which a thread takes all its rows against blocks of columns: the
 * backend's product with W^T as its operand slows down on narrow blocks of rows (768x3072 at
 * 128 tokens on the Xeon: 80-row blocks 5.3 ms, all 768 rows by 336 columns 4.2). */
#define D16_MIN_ROWS 256

/* y[:, o0..o1) = x W[o0..o1)^T, W widened into wf (d16_block floats) block by block: blocks of
 * whole rows, or groups of rows by blocks of columns whose products are summed into y (beta
 * 1). A group is all the rows up to block / 128 of them, so that a column block is at least
 * 128 wide: this branch runs only when a block is at least 32 K floats (a smaller one is the
 * whole layer, plan_dense16, whose rows then fit), so a group is at least 256 rows. */
static void d16_widened(float *y, const float *x, const nmf_linear *lin, size_t tokens, size_t o0,
                        size_t o1, float *wf) {
    const size_t out = lin->out, in = lin->in, rows = o1 - o0, block = lin->d16_block;
    const size_t full_rows = block / in;
    if (full_rows >= D16_MIN_ROWS || full_rows >= rows) {
        for (size_t r0 = o0; r0 < o1; r0 += full_rows) {
            const size_t r1 = r0 + full_rows < o1 ? r0 + full_rows : o1;
            lin->d16_widen(wf, &lin->d16, r0, r1, 0, in);
            nmf_gemm(0, 1, tokens, r1 - r0, in, 1.0f, x, in, wf, in, 0.0f, y + r0, out); // (T,in)(in,rows)
        }
        return;
    }
    const size_t group = rows < block / 128 ? rows : block / 128 / 16 * 16;
    for (size_t g0 = o0; g0 < o1; g0 += group) {
        const size_t g1 = g0 + group < o1 ? g0 + group : o1;
        const size_t cols = block / (g1 - g0) / 16 * 16; /* >= 128: (g1 - g0) * cols <= block */
        for (size_t c0 = 0; c0 < in; c0 += cols) {
            const size_t c1 = c0 + cols < in ? c0 + cols : in;
            lin->d16_widen(wf, &lin->d16, g0, g1, c0, c1);
            nmf_gemm(0, 1, tokens, g1 - g0, c1 - c0, 1.0f, x + c0, in, wf, c1 - c0,
                     c0 ? 1.0f : 0.0f, y + g0, out); // (T,cols)(cols,rows)
        }
    }
}

static void forward_d16(float *y, const float *x, nmf_linear *lin, size_t tokens) {
    const size_t out = lin->out, in = lin->in;
    const double fmas = (double)tokens * (double)out * (double)in;
    int widen = tokens >= lin->d16_gemm_tokens && !omp_in_parallel() &&
                pthread_mutex_trylock(&lin->d16_lock) == 0;
    if (widen && !lin->d16_scratch) { /* once per layer; without it the rows kernel runs */
        lin->d16_scratch = nmf_alloc(lin->d16_scratch_floats, sizeof(float));
        if (!lin->d16_scratch) {
            pthread_mutex_unlock(&lin->d16_lock);
            widen = 0;
        }
    }
    if (!widen) {
        const size_t units = (out + NMF_DENSE16_ROWS - 1) / NMF_DENSE16_ROWS;
        const int threads = threads_for(fmas, units);
#pragma omp parallel num_threads(threads) if (threads > 1)
        {
            const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
            const size_t r0 = units * id / nt * NMF_DENSE16_ROWS;
            const size_t r1e = units * (id + 1) / nt * NMF_DENSE16_ROWS, r1 = r1e < out ? r1e : out;
            if (r1 > r0) lin->d16_rows(y, out, x, in, &lin->d16, tokens, r0, r1);
        }
        return;
    }
    const size_t units = (out + 15) / 16; /* threads own whole 16-row units of W */
    int threads = threads_for(fmas, units);
    if (threads > lin->d16_threads) threads = lin->d16_threads;
    /* one thread: no parallel construct at all, so that nmf_gemm threads each block itself (a
     * team opened inside even an inactive `if (0)` region is a nested one, whose threads libgomp
     * creates anew on every product: 10x slower on the make-run ViT at 2 threads) */
    if (threads <= 1) {
        d16_widened(y, x, lin, tokens, 0, out, lin->d16_scratch);
    } else {
#pragma omp parallel num_threads(threads)
        {
            const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
            const size_t o0 = units * id / nt * 16, o1e = units * (id + 1) / nt * 16;
            const size_t o1 = o1e < out ? o1e : out;
            if (o1 > o0) d16_widened(y, x, lin, tokens, o0, o1, lin->d16_scratch + id * lin->d16_block);
        }
    }
    pthread_mutex_unlock(&lin->d16_lock);
}

static void add_bias_act(float *y, const float *bias, size_t tokens, size_t out, nmf_activation act) {
    if (bias) {
#pragma omp parallel for schedule(static) num_threads(threads_for((double)tokens * out, tokens))
        for (size_t t = 0; t < tokens; t++)
            for (size_t o = 0; o < out; o++) y[t * out + o] += bias[o];
    }
    if (act == NMF_ACT_GELU) nmf_gelu_forward(y, y, tokens * out); /* picks ISA and threads */
}

void nmf_linear_activation(float *y, const float *x, size_t n, const nmf_linear *lin,
                           nmf_activation act) {
    if (act != NMF_ACT_GELU) {
        if (y != x) memmove(y, x, n * sizeof(float));
    } else if (lin && lin->prec == NMF_PREC_INT8) {
        for (size_t i = 0; i < n; i++) y[i] = nmf_gelu_q8(x[i]); /* the kernels' bits */
    } else {
        nmf_gelu_forward(y, x, n);
    }
}

nmf_status nmf_linear_forward(float *y, const float *x, const nmf_linear *lin, const float *bias,
                              size_t tokens, nmf_activation act) {
    nmf_status st = check_args(y, x, lin, tokens, "forward");
    if (st != NMF_OK) return st;
    if ((unsigned)act >= NMF_ACT_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "linear forward: activation %d unknown", (int)act);
    if (tokens == 0) return NMF_OK;
    const size_t out = lin->out, in = lin->in;
    if (lin->prec == NMF_PREC_INT8) return forward_q8(y, x, lin, bias, tokens, act);
    if (lin->dense || lin->d16.w) {
        if (lin->dense && lin->dense_t)
            nmf_gemm(0, 0, tokens, out, in, 1.0f, x, in, lin->dense, out, 0.0f, y, out); // (T,in)(in,out)
        else if (lin->dense)
            nmf_gemm(0, 1, tokens, out, in, 1.0f, x, in, lin->dense, in, 0.0f, y, out); // (T,in)(in,out)
        else /* the scratch and its lock are the layer's planned workspace, not its weights */
            forward_d16(y, x, (nmf_linear *)lin, tokens);
        add_bias_act(y, bias, tokens, out, act);
        return NMF_OK;
    }
    const nmf_spmm_plan *plan = &lin->plan;
    const nmf_spmm_weights *w = &lin->w;
    const nmf_spmm_step step = nmf_spmm_plan_step(plan, w, tokens);
    const double fmas = (double)tokens * (double)out * (double)w->groups * (double)w->n;
    const int threads = threads_for(fmas, w->panels);
    const nmf_spmm_forward_fn forward = plan->k->forward; /* reads bf16 when step.prm says */
    /* the token-vectorised kernels: x transposed once into a scratch xT, and (AVX2) each
     * thread's partial sums yT after it, in one allocation (if it cannot be had for want of
     * memory, the panel kernel runs instead: it needs none) */
    if (step.kind == NMF_SPMM_STEP_TV) {
        const int split = tv_split_tokens(plan, w, tokens, threads);
        const size_t lanes = plan->k->tv->lanes, tok = w->tv_tokens;
        const size_t xt = tv_xt_floats(in, tokens, tok, lanes, threads, split); /* a thread's */
        const size_t xt_all = tv_scratch_floats(tv_xt_floats(in, tokens, tok, lanes, threads, 0),
                                                xt, threads, split);
        const size_t yt = nmf_round_up(nmf_spmm_tv_yt_floats(plan->tv_shape.chunk, tok), 16);
        /* the thread's scratch (allocated once, grown when a product needs more): every
         * float is written before it is read */
        const size_t floats = xt && xt_all ? xt_all + yt * (size_t)threads : 0;
        float *xT = floats && floats < SIZE_MAX / sizeof(float)
                        ? nmf_scratch_take(floats * sizeof(float)) : NULL;
        if (xT) {
            forward_tv_threads(y, xT, xt, x, w, plan->k->tv, bias, tokens, act,
                               plan->tv_shape.chunk, xT + xt_all, yt, threads, split);
            nmf_scratch_give(xT);
            return NMF_OK;
        }
    }
    /* x is read in place (ldx = in, no slack); the kernels copy what they need into small
     * L1 tiles. (A padded copy of all of x, made here, was measured: slower for sparse
     * patterns, where the copy is a large part of the work.) */
    if (threads == 1) {
        forward(y, x, in, 0, w, bias, tokens, act, 0, w->panels, &step.prm);
    } else {
        const size_t blocks = (tokens + NMF_SPMM_SPLIT_TOKENS - 1) / NMF_SPMM_SPLIT_TOKENS;
        const int split_tokens = blocks >= 2 * (size_t)threads &&
                                 nmf_linear_weight_bytes(lin) <= plan->tuning.token_split_bytes;
#pragma omp parallel num_threads(threads)
        {
            const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
            if (split_tokens) { /* contiguous token ranges, all panels (spmm.h) */
                const size_t t0 = blocks * id / nt * NMF_SPMM_SPLIT_TOKENS;
                const size_t t1e = blocks * (id + 1) / nt * NMF_SPMM_SPLIT_TOKENS;
                const size_t t1 = t1e < tokens ? t1e : tokens;
                if (t1 > t0)
                    forward(y + t0 * out, x + t0 * in, in, 0, w, bias, t1 - t0, act, 0,
                            w->panels, &step.prm);
            } else { /* contiguous panel ranges: each thread streams only its share of W */
                const size_t p0 = w->panels * id / nt, p1 = w->panels * (id + 1) / nt;
                if (p1 > p0) forward(y, x, in, 0, w, bias, tokens, act, p0, p1, &step.prm);
            }
        }
    }
    return NMF_OK;
}

/* Whether up and down run the token-vectorised kernel at this token count on the same token
 * tiles (f32 N:M layers of one ISA's plans), so that up's output can stay in the tv layout. */
static int mlp_chains(const nmf_linear *up, const nmf_linear *down, size_t tokens) {
    if (up->prec != NMF_PREC_F32 || down->prec != NMF_PREC_F32 || up->dense || down->dense ||
        up->d16.w || down->d16.w || !up->w.tv_pairs || !down->w.tv_pairs)
        return 0;
    const nmf_spmm_step su = nmf_spmm_plan_step(&up->plan, &up->w, tokens);
    const nmf_spmm_step sd = nmf_spmm_plan_step(&down->plan, &down->w, tokens);
    return su.kind == NMF_SPMM_STEP_TV && sd.kind == NMF_SPMM_STEP_TV &&
           up->plan.k->tv == down->plan.k->tv && up->w.tv_tokens == down->w.tv_tokens;
}

/* Tokens per pass of an MLP whose layers run apart: all of them, but for int8 layers whose
 * hidden activations outgrow L2: tiles whose hidden rows (f32, up to MLP_Q8_TILE_BYTES) stay in
 * L2 from up's epilogue to down's quantiser. (DeiT-small int8 at batch 32: 39 MB of GELU output
 * a layer went to memory and back; int8 products are per token, so the tiles give the same
 * bits.) */
#define MLP_Q8_TILE_BYTES ((size_t)1 << 20)
static size_t mlp_tile_tokens(const nmf_linear *up, const nmf_linear *down, size_t tokens) {
    const size_t row = up->out * sizeof(float);
    if (up->prec != NMF_PREC_INT8 || down->prec != NMF_PREC_INT8 || tokens <= 2 * MLP_Q8_TILE_BYTES / row)
        return tokens;
    const size_t tile = MLP_Q8_TILE_BYTES / row / Q8_SPLIT_TOKENS * Q8_SPLIT_TOKENS;
    return tile > 2 * Q8_SPLIT_TOKENS ? tile : 2 * Q8_SPLIT_TOKENS; /* two threads' token shares */
}

nmf_status nmf_linear_forward_mlp(float *y, float *hidden, const float *x, const nmf_linear *up,
                                  const float *up_bias, nmf_activation act, const nmf_linear *down,
                                  const float *down_bias, size_t tokens) {
    nmf_status st = check_args(y, x, up, tokens, "mlp");
    if (st == NMF_OK) st = check_args(hidden, x, down, tokens, "mlp");
    if (st != NMF_OK) return st;
    if (down->in != up->out)
        return nmf_error(NMF_ERR_SHAPE, "linear mlp: down takes %zu inputs, up gives %zu",
                         down->in, up->out);
    if ((unsigned)act >= NMF_ACT_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "linear mlp: activation %d unknown", (int)act);
    if (tokens == 0) return NMF_OK;
    const nmf_spmm_tv_kernels *tv = up->plan.k ? up->plan.k->tv : NULL;
    float *xT = NULL;
    size_t xt1 = 0, xt2 = 0, xs1 = 0, xs2 = 0, xt_all = 0, yt = 0;
    int threads = 1, split = 0;
    if (mlp_chains(up, down, tokens)) {
        const size_t tok = up->w.tv_tokens;
        const size_t chunk = up->plan.tv_shape.chunk > down->plan.tv_shape.chunk
                                 ? up->plan.tv_shape.chunk : down->plan.tv_shape.chunk;
        const double fmas = (double)tokens * (double)up->out * (double)up->w.groups * (double)up->w.n;
        threads = threads_for(2.0 * fmas, up->w.panels < down->w.panels ? up->w.panels : down->w.panels);
        /* by tokens when both layers' rules say so: then each thread chains its own tokens
         * through both, with no barrier */
        split = tv_split_tokens(&up->plan, &up->w, tokens, threads) &&
                tv_split_tokens(&down->plan, &down->w, tokens, threads);
        /* a thread's xT pair (split), and the shared pair (a team smaller than asked for) */
        xt1 = tv_xt_floats(up->in, tokens, tok, tv->lanes, threads, split);
        xt2 = tv_xt_floats(up->out, tokens, tok, tv->lanes, threads, split);
        xs1 = tv_xt_floats(up->in, tokens, tok, tv->lanes, threads, 0);
        xs2 = tv_xt_floats(up->out, tokens, tok, tv->lanes, threads, 0);
        yt = nmf_round_up(nmf_spmm_tv_yt_floats(chunk, tok), 16);
        size_t pair, shared;
        if (xt1 && xt2 && xs1 && xs2 && !nmf_add_overflow(xt1, xt2, &pair) &&
            !nmf_add_overflow(xs1, xs2, &shared) &&
            (xt_all = tv_scratch_floats(shared, pair, threads, split)) != 0) {
            const size_t floats = xt_all + yt * (size_t)threads;
            if (floats < SIZE_MAX / sizeof(float)) xT = nmf_scratch_take(floats * sizeof(float));
        }
    }
    if (!xT) { /* apart, through hidden (also when the scratch cannot be had) */
        const size_t tile = mlp_tile_tokens(up, down, tokens);
        for (size_t t0 = 0; t0 < tokens && st == NMF_OK; t0 += tile) {
            const size_t n = tokens - t0 < tile ? tokens - t0 : tile;
            st = nmf_linear_forward(hidden, x + t0 * up->in, up, up_bias, n, act);
            if (st == NMF_OK)
                st = nmf_linear_forward(y + t0 * down->out, hidden, down, down_bias, n, NMF_ACT_NONE);
        }
        return st;
    }
    float *yT = xT + xt_all;
    const size_t tok = up->w.tv_tokens, in16 = nmf_round_up(up->out, NMF_TV_IN_ALIGN);
    const size_t vecs = (tokens + tv->lanes - 1) / tv->lanes;
    /* up's output lands in xT2 as down's transpose would have put it there; every float down
     * reads is written before (rows past up->out: zeros, as a transpose pads them) */
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const token_share sh = share_of(vecs, tv->lanes, tokens, id, nt);
        float *yTi = yT + id * yt;
        if (split && nt == (size_t)threads) { /* this thread's tokens through both layers */
            float *x1 = xT + id * (xt1 + xt2), *x2 = x1 + xt1;
            const size_t n = sh.t1 - sh.t0;
            if (n) {
                tv->transpose(x1, x + sh.t0 * up->in, up->in, up->in, n, tok, 0, sh.v1 - sh.v0);
                for (size_t t = 0; t < (n + tok - 1) / tok; t++)
                    memset(x2 + t * in16 * tok + up->out * tok, 0, (in16 - up->out) * tok * sizeof(float));
                tv->forward_xt_xt(x2, x1, &up->w, up_bias, n, act, 0, up->w.panels,
                                  up->plan.tv_shape.chunk, yTi);
                tv->forward_xt(y + sh.t0 * down->out, x2, &down->w, down_bias, n, NMF_ACT_NONE, 0,
                               down->w.panels, down->plan.tv_shape.chunk, yTi);
            }
        } else { /* panels of shared xT1 and xT2, a barrier after each */
            float *x1 = xT, *x2 = xT + xs1;
            const size_t tiles = (tokens + tok - 1) / tok;
            tv->transpose(x1, x, up->in, up->in, tokens, tok, sh.v0, sh.v1);
            for (size_t t = id; t < tiles; t += nt)
                memset(x2 + t * in16 * tok + up->out * tok, 0, (in16 - up->out) * tok * sizeof(float));
#pragma omp barrier
            const size_t p0 = up->w.panels * id / nt, p1 = up->w.panels * (id + 1) / nt;
            if (p1 > p0)
                tv->forward_xt_xt(x2, x1, &up->w, up_bias, tokens, act, p0, p1,
                                  up->plan.tv_shape.chunk, yTi);
#pragma omp barrier
            const size_t q0 = down->w.panels * id / nt, q1 = down->w.panels * (id + 1) / nt;
            if (q1 > q0)
                tv->forward_xt(y, x2, &down->w, down_bias, tokens, NMF_ACT_NONE, q0, q1,
                               down->plan.tv_shape.chunk, yTi);
        }
    }
    nmf_scratch_give(xT);
    return NMF_OK;
}

/* Builds W^T (CSR by input column) from the panel layout, once. Zero weights are left out
 * (padding rows and padding columns are stored as zeros). */
static nmf_status make_transpose(nmf_linear *l) {
    nmf_spmm_weights *w = &l->w;
    const size_t in = w->in, out = w->out, G = w->groups, n = (size_t)w->n, m = (size_t)w->m;
    const size_t slots = w->panels * G * n * NMF_SPMM_ROWS;
    size_t nnz = 0;
    for (size_t s = 0; s < slots; s++) nnz += w->val[s] != 0.0f;
    size_t ptr_bytes, row_bytes, val_bytes, total;
    if (nmf_mul_overflow(in + 1, sizeof(size_t), &ptr_bytes) ||
        nmf_mul_overflow(nnz, sizeof(uint32_t), &row_bytes) ||
        nmf_mul_overflow(nnz, sizeof(float), &val_bytes) ||
        nmf_add_overflow(ptr_bytes, row_bytes, &total) || nmf_add_overflow(total, val_bytes, &total))
        return nmf_error(NMF_ERR_NOMEM, "linear backward: transpose of %zu x %zu too large", out,
                         in);
    uint8_t *mem = nmf_alloc(total, 1);
    if (!mem) return nmf_error(NMF_ERR_NOMEM, "linear backward: transpose: out of memory");
    size_t *ptr = (size_t *)mem;             /* values first in each array: all aligned */
    float *val = (float *)(mem + ptr_bytes);
    uint32_t *row = (uint32_t *)(mem + ptr_bytes + val_bytes);
    /* count per column, prefix sums, then fill in panel/row order (rows come out ascending) */
    for (int pass = 0; pass < 2; pass++) {
        size_t s = 0;
        for (size_t b = 0; b < w->panels; b++)
            for (size_t g = 0; g < G; g++)
                for (size_t k = 0; k < n; k++)
                    for (size_t r = 0; r < NMF_SPMM_ROWS; r++, s++) {
                        if (w->val[s] == 0.0f) continue;
                        const size_t col = g * m + w->idx[s];
                        if (pass == 0) {
                            ptr[col + 1]++;
                        } else {
                            const size_t at = ptr[col]++;
                            val[at] = w->val[s];
                            row[at] = (uint32_t)(b * NMF_SPMM_ROWS + r);
                        }
                    }
        if (pass == 0)
            for (size_t i = 0; i < in; i++) ptr[i + 1] += ptr[i];
    }
    for (size_t i = in; i > 0; i--) ptr[i] = ptr[i - 1]; /* the fill advanced each start by its count */
    ptr[0] = 0;
    l->transpose_storage = mem;
    w->tval = val;
    w->trow = row;
    __atomic_store_n(&w->tptr, ptr, __ATOMIC_RELEASE); /* last: published to the checks */
    return NMF_OK;
}
/* W^T is built on the first backward product under the layer's lock; make_transpose publishes
 * the pointer checked here last (release), so once it reads non-NULL (acquire) W^T is complete
 * and no lock is taken. */
static nmf_status build_transpose(nmf_linear *l) {
    if (__atomic_load_n(&l->w.tptr, __ATOMIC_ACQUIRE)) return NMF_OK;
    pthread_mutex_lock(&l->cache_lock);
    const nmf_status st = l->w.tptr ? NMF_OK : make_transpose(l);
    pthread_mutex_unlock(&l->cache_lock);
    return st;
}

nmf_status nmf_linear_backward_input(float *dx, const float *dy, const nmf_linear *lin,
                                     size_t tokens) {
    nmf_status st = check_args(dx, dy, lin, tokens, "backward");
    if (st != NMF_OK) return st;
    if (tokens == 0) return NMF_OK;
    const size_t out = lin->out, in = lin->in;
    if (lin->prec == NMF_PREC_INT8 || lin->d16.w || (lin->pattern.n && !lin->w.val))
        return nmf_error(NMF_ERR_UNSUPPORTED, "linear backward: %s layers are inference only",
                         lin->d16.w ? "dense 16-bit" : lin->prec == NMF_PREC_INT8 ? "int8"
                                                                                : "compact bf16");
    if (lin->dense) { /* (T,out)(out,in) */
        if (lin->dense_t)
            nmf_gemm(0, 1, tokens, in, out, 1.0f, dy, out, lin->dense, out, 0.0f, dx, in);
        else
            nmf_gemm(0, 0, tokens, in, out, 1.0f, dy, out, lin->dense, in, 0.0f, dx, in);
        return NMF_OK;
    }
    /* the transpose is a cache: building it does not change what the layer computes */
    st = build_transpose((nmf_linear *)lin);
    if (st != NMF_OK) return st;
    const nmf_spmm_kernels *k = nmf_spmm_kernels_for(nmf_active_isa());
    const nmf_spmm_weights *w = &lin->w;
    const size_t blocks = (tokens + NMF_SPMM_BWD_TOKENS - 1) / NMF_SPMM_BWD_TOKENS;
    const double fmas = (double)tokens * (double)out * (double)w->groups * (double)w->n;
    const int threads = threads_for(fmas, blocks);
    /* one allocation for every thread's work tile (threads x NMF_SPMM_BWD_WORK floats) */
    const size_t work_floats = nmf_round_up(NMF_SPMM_BWD_WORK(out), 16); /* 64 B apart */
    float *work = nmf_alloc((size_t)threads * work_floats, sizeof(float));
    if (!work) return nmf_error(NMF_ERR_NOMEM, "linear backward: out of memory for work tiles");
#pragma omp parallel num_threads(threads)
    {
        const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const size_t b0 = blocks * id / nt, b1 = blocks * (id + 1) / nt;
        const size_t t1 = b1 * NMF_SPMM_BWD_TOKENS < tokens ? b1 * NMF_SPMM_BWD_TOKENS : tokens;
        if (b1 > b0)
            k->backward_input(dx, dy, w, b0 * NMF_SPMM_BWD_TOKENS, t1, work + id * work_floats);
    }
    nmf_free(work);
    return NMF_OK;
}

/* ---- precision ------------------------------------------------------------------------------ */

static const char *const prec_names[NMF_PREC_COUNT] = {"f32", "bf16", "int8"};

const char *nmf_precision_name(nmf_precision p) {
    return (unsigned)p < NMF_PREC_COUNT ? prec_names[p] : "unknown";
}

nmf_status nmf_precision_parse(const char *s, nmf_precision *p) {
    if (!s || !p) return nmf_error(NMF_ERR_INVALID_ARG, "precision: NULL argument");
    for (int i = 0; i < NMF_PREC_COUNT; i++)
        if (!strcmp(s, prec_names[i])) {
            *p = (nmf_precision)i;
            return NMF_OK;
        }
    return nmf_error(NMF_ERR_INVALID_ARG, "precision '%s' unknown (f32, bf16, int8)", s);
}

nmf_precision nmf_linear_precision(const nmf_linear *lin) { return lin ? lin->prec : NMF_PREC_F32; }

/* The panel layout's u8 positions of `slots` values as nibbles (spmm.h idx4): per slot of 16
 * rows, 8 bytes with row r's position at bit nmf_idx4_shift(r). */
static void pack_nibbles(uint8_t *idx4, const uint8_t *idx, size_t slots) {
    memset(idx4, 0, slots / 2);
    for (size_t s = 0; s < slots; s += NMF_SPMM_ROWS)
        for (unsigned r = 0; r < NMF_SPMM_ROWS; r++) {
            const unsigned b = nmf_idx4_shift(r);
            idx4[s / 2 + b / 8] |= (uint8_t)(idx[s + r] << (b % 8));
        }
}

/* bf16: the panel values rounded in place (so that every layout built from them, the plan's
 * tv layout and the backward transpose, computes with the bf16 weights) and kept as bf16 for
 * the panel kernels. */
static nmf_status to_bf16(nmf_linear *l) {
    nmf_spmm_weights *w = &l->w;
    const size_t slots = w->panels * w->groups * (size_t)w->n * NMF_SPMM_ROWS;
    /* the bf16 values and, for M <= 16, the positions as nibbles (spmm.h idx4: what a bf16
     * product of one token reads, 2.5 bytes per weight; the u8 ones stay for the f32 kernels
     * the plan may run at more tokens): one allocation, sizes checked at create */
    const int nibbles = w->m <= 16;
    uint16_t *v16 = nmf_alloc(slots * sizeof(uint16_t) + (nibbles ? slots / 2 : 0), 1);
    if (!v16) return nmf_error(NMF_ERR_NOMEM, "linear bf16: out of memory");
    float *val = (float *)l->storage; /* w->val: the layer's own */
    for (size_t s = 0; s < slots; s++) { /* rows r and r + 8 of a slot side by side (spmm.h) */
        const size_t r = s % NMF_SPMM_ROWS, at = s - r + r % 8 * 2 + r / 8;
        v16[at] = nmf_f32_to_bf16(val[s]);
        val[s] = nmf_bf16_to_f32(v16[at]);
    }
    if (nibbles) {
        uint8_t *idx4 = (uint8_t *)(v16 + slots);
        pack_nibbles(idx4, w->idx, slots);
        w->idx4 = idx4;
    }
    nmf_free(l->transpose_storage); /* built from the f32 values: rebuilt on use */
    l->transpose_storage = NULL;
    w->tptr = NULL;
    w->trow = NULL;
    w->tval = NULL;
    w->val16 = v16;
    l->lowprec_storage = v16;
    l->prec = NMF_PREC_BF16;
    return nmf_spmm_plan_make(&l->plan, w, &l->plan.tuning);
}

/* A dense layer's f32 weights freed once a lower precision holds them; storage: what the layer
 * owns instead (the 16-bit weights, or NULL when they live in lowprec_storage). */
static void drop_dense_f32(nmf_linear *l, void *storage) {
    nmf_free(l->storage);
    l->storage = storage;
    l->dense = NULL;
    l->dense_t = 0;
}

/* Dense bf16: the f32 weights rounded (nearest even) into the layer's 16-bit storage, which
 * replaces them. */
static nmf_status dense_to_bf16(nmf_linear *l) {
    const size_t out = l->out, in = l->in; /* the 16-bit layer is [out][in] */
    uint16_t *w = nmf_alloc(out * in, sizeof(uint16_t));
    if (!w) return nmf_error(NMF_ERR_NOMEM, "linear bf16: out of memory");
    for (size_t o = 0; o < out; o++)
        for (size_t i = 0; i < in; i++)
            w[o * in + i] = nmf_f32_to_bf16(l->dense_t ? l->dense[i * out + o] : l->dense[o * in + i]);
    const nmf_status st = plan_dense16(l, w, NMF_DTYPE_BF16);
    if (st != NMF_OK) {
        nmf_free(w);
        return st;
    }
    drop_dense_f32(l, w);
    return NMF_OK;
}

nmf_status nmf_linear_compact(nmf_linear *lin) {
    if (!lin || !lin->pattern.n || lin->prec != NMF_PREC_BF16)
        return nmf_error(NMF_ERR_INVALID_ARG, "linear compact: needs a bf16 N:M layer");
    nmf_spmm_weights *w = &lin->w;
    if (!w->val) return NMF_OK; /* compact already */
    const size_t slots = w->panels * w->groups * (size_t)w->n * NMF_SPMM_ROWS;
    /* M <= 16: the nibble positions are there already (to_bf16), beside the bf16 values;
     * else the u8 positions are kept in a block of their own */
    uint8_t *idx = NULL;
    if (!w->idx4) {
        idx = nmf_alloc(slots, 1); /* size checked at create */
        if (!idx) return nmf_error(NMF_ERR_NOMEM, "linear compact: out of memory");
    }
    /* a panel-only plan first: it frees the tv layout (and u32 positions) built from `val` */
    nmf_spmm_tuning t = lin->plan.tuning;
    t.tv = NMF_SPMM_OFF;
    t.wide = NMF_SPMM_OFF;
    const nmf_status st = nmf_spmm_plan_make(&lin->plan, w, &t);
    if (st != NMF_OK) {
        nmf_free(idx);
        return st;
    }
    if (idx) memcpy(idx, w->idx, slots);
    nmf_free(lin->transpose_storage); /* a backward cache, refused from now on */
    lin->transpose_storage = NULL;
    w->tptr = NULL;
    w->trow = NULL;
    w->tval = NULL;
    nmf_free(lin->storage); /* the f32 values and the u8 positions, in one block */
    lin->storage = idx;
    w->idx = idx;
    w->val = NULL;
    return NMF_OK;
}

/* lin becomes int8 on the layout of the kernel planned for the active ISA (spmm_q8.h): a dense
 * layer's from w (out, in), or w^T (in, out) when transposed; an N:M layer's (w NULL) from its
 * panels. */
static nmf_status plan_int8(nmf_linear *lin, const float *w, int transposed) {
    const nmf_q8_kernel *k = nmf_q8_kernel_for(nmf_active_isa(), w != NULL);
    const nmf_status st = w ? nmf_q8_build_dense(&lin->q8, &lin->lowprec_storage, w, transposed,
                                                 lin->out, lin->in, k->g)
                            : nmf_q8_build_nm(&lin->q8, &lin->lowprec_storage, &lin->w, k->g);
    if (st != NMF_OK) return st;
    lin->q8k = k;
    lin->prec = NMF_PREC_INT8;
    return NMF_OK;
}

nmf_status nmf_linear_set_precision(nmf_linear *lin, nmf_precision p) {
    if (!lin) return nmf_error(NMF_ERR_INVALID_ARG, "linear precision: NULL layer");
    if ((unsigned)p >= NMF_PREC_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "linear precision: %d unknown", (int)p);
    if (p == lin->prec) return NMF_OK;
    if (lin->prec != NMF_PREC_F32)
        return nmf_error(NMF_ERR_INVALID_ARG, "linear precision: already %s, cannot become %s",
                         nmf_precision_name(lin->prec), nmf_precision_name(p));
    if (lin->dense && p == NMF_PREC_BF16) return dense_to_bf16(lin);
    if (p == NMF_PREC_BF16) return to_bf16(lin);
    /* int8: a dense layer's f32 weights are dropped once converted, as bf16 drops them */
    if (lin->dense) {
        const nmf_status st = plan_int8(lin, lin->dense, lin->dense_t);
        if (st == NMF_OK) drop_dense_f32(lin, NULL);
        return st;
    }
    return plan_int8(lin, NULL, 0);
}

nmf_status nmf_linear_create_dense_int8(nmf_linear **lin, const float *w, size_t out, size_t in) {
    nmf_status st = dense_args(lin, w, out, in);
    if (st) return st;
    nmf_linear *l = linear_new(out, in);
    if (!l) return nmf_error(NMF_ERR_NOMEM, "linear: out of memory");
    st = plan_int8(l, w, 0);
    if (st != NMF_OK) {
        nmf_linear_free(l);
        return st;
    }
    *lin = l;
    return NMF_OK;
}
