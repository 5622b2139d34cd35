/* A layer's plan (spmm.h): decided when the layer is created (or retuned), for the ISA active
 * then, XNNPACK create/reshape style. The kernels read nothing but their arguments; every
 * measured rule that picks a kernel, a layout or a blocking lives here.
 *
 * Rules (measured, docs/PERFORMANCE.md):
 * - 1 token: the panel kernel of the ISA (a GEMV: it reads each weight once, 5 bytes); a bf16
 *   layer (w->val16) runs the panel kernel of the ISA on its bf16 values (3 bytes; 2.5 with
 *   nibble positions) at every step that is a panel step, except where its f32 values (rounded
 *   to bf16) are still there on an AVX-512 CPU from 2 tokens: the f32 tiles skip the widening.
 * - The token-vectorised kernel (spmm_tv_avx2.c, spmm_tv_avx512.c) from a token count and for
 *   layer shapes that depend on the ISA and the pattern's density (tv_rule below), with a block
 *   shape and blocking per ISA and density; the panel kernel elsewhere (AVX-512: with u32
 *   positions from NMF_SPMM_WIDE_MIN_TOKENS).
 * - AVX2 (Zen 3): tv from 8 tokens at every pattern, for layers of at least 128 x 128 weights
 *   (the panel kernel's vpermps per FMA holds it near a quarter of the FMA peak), 2 rows x 6
 *   token vectors (48-token tiles), input blocks of 128 columns, chunks of 512 rows. Measured
 *   by a sweep of R x TOK in {1x64, 2x32, 2x48, 1x48, 4x16, 2x16, 1x32, 4x24}, input blocks
 *   64-768 and chunks 64-512 on 768x768 at 16/128/512 tokens: the best
 *   cells were within ~10 % of each other (a shared, noisy machine), and 2x48 / 128 was in or
 *   near the best group at every pattern; one layout serves every token count.
 * - AVX-512 (Intel Xeon family 6 model 207, 48 KiB L1): the panel kernel runs at ~0.45 of the
 *   FMA peak at every token count (vpermps + FMA pairs: the permute port is an FMA port). The
 *   tv kernel is load-bound (V + 1 loads per V FMAs) and pays two transposes, so it needs
 *   whole tiles and an xT block that fills L1: measured (best of 21, 2026-12-01) over R x TOK
 *   in {1x128, 2x64, 4x64, 2x96, 4x48, 4x32, 2x128}, input blocks 32-768 columns, chunks
 *   64-768 rows; an xT block of 32 KiB was best throughout (64 columns at TOK 128, 128 at 64)
 *   and the chunk did not matter (512 kept). Below density 1/2 the AVX-512 tv kernel takes a
 *   kept weight's value from a load of 8 pairs by a vpermps (w->tv_perm): in-process A/B on the
 *   Xeon (bench/ab_spmm.sh), 2:8 and 1:8 1-5 % faster; at 2:4 and 4:8, nearer the FMA bound,
 *   1-4 % slower (the permute port is an FMA port).
 * - AVX-512 panel kernel, tokens per block (params.token_block): 16 for patterns with n >= 2 in
 *   layers of at least 32 groups, else 12. In-process A/B on the Xeon: 2:4 / 4:8 on 768x768 at
 *   16 tokens 1.22-1.25x faster, at 32-197 tokens 1.03-1.08x; 1:8 3-8 % slower at 16-197 tokens
 *   (n = 1 uses each table once a group anyway); the demo ViT's 64-wide layers (8-16 groups,
 *   2176 tokens a training product) 2-4 % slower: a 16-token call's setup (16 row pointers, 16
 *   accumulators in and out) over 8 groups. Density >= 1/4 (2:8, 1:4, 2:4, 4:8): 1 x 128,
 *   from 48 tokens (768x768 128 tokens: 2:8 0.61 of the peak vs the panel's 0.44, 2:4/4:8
 *   0.66; at 32 tokens the panel kernel still won). Density < 1/4 (1:8, 1:16): 2 x 64 from
 *   64 tokens, and only for layers at least 768 wide both ways: 1:8 on 768x768 / 3072x768 at
 *   128 tokens 0.50 / 0.51 vs 0.44 / 0.39, while on DeiT's 384-wide layers at 197 tokens the
 *   panel kernel won by 5-20 %. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/env.h"
#include "kernels/spmm.h"

/* The tv kernel's rule and shape for an ISA and density (the layer's plan; tests and
 * benchmarks override the shape through the tuning): from min_tokens tokens, for layers of at
 * least min_weights weights (out x in) and min_side rows and columns; R rows x TOK tokens per
 * microkernel call, input columns per block, rows per chunk. */
typedef struct {
    size_t min_tokens, min_weights, min_side;
    size_t rows, tokens, in_block, chunk;
} tv_rule;
/* AVX2 (Zen 3), every density. Below 8 tokens a token vector is partly empty and the tv kernel
 * does the work of 8 tokens: the panel kernel (4-token blocks) is faster there (768x768: 2-4
 * tokens 2-4x); at 8 they are even, from 16 on the tv kernel leads (1.4-1.9x). Below 128 x 128
 * weights its per-product transposes and scratch cost more than its FMAs save: measured at 17
 * tokens (the make-run ViT's layers), 64x64, 128x64, 64x128 and 192x64 ran 2:8 / 1:8 20-50 %
 * faster on the panel kernel, while from 128x128 up the tv kernel won (1:8 0.0053 vs 0.0062
 * ms, 2:8 0.0060 vs 0.0085 ms). R x V = 2 x 6 accumulators (1 broadcast + 6 loads per 6
 * FMAs), 48-token tiles; input blocks of 128 columns (24 KiB of xT, in L1 (32 KiB)); chunks
 * of 512 rows: their partial sums (yT, 512 x 48 floats = 96 KiB) stay in L2 and the xT block in
 * L1 is swept by that many rows before the next one is loaded. Measured on 768x768 at 512
 * tokens and 768x3072 at 128: chunks of 256-512 rows beat 48-128 by 10-40 % (sizing chunks so
 * that their weights stay in L2 across token tiles was slower: re-reading xT costs more). */
static const tv_rule tv_avx2 = {8, 128 * 128, 0, 2, 48, 128, 512};
/* AVX-512 (see the rules above): density >= 1/4, and below it. */
static const tv_rule tv_avx512_dense = {48, 128 * 128, 0, 1, 128, 64, 512};
static const tv_rule tv_avx512_sparse = {64, 128 * 128, 768, 2, 64, 128, 512};

static const tv_rule *tv_rule_for(nmf_isa isa, const nmf_spmm_weights *w) {
    if (isa != NMF_ISA_AVX512) return &tv_avx2;
    return 4 * w->n >= w->m ? &tv_avx512_dense : &tv_avx512_sparse;
}

/* NMF_SPMM=panel|tv forces the kernel of every layer planned afterwards (benchmarks), read once
 * (as NMF_ISA is). */
static nmf_spmm_choice env_tv = NMF_SPMM_AUTO;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
nmf_status nmf_env_spmm(int *choice) {
    const char *e = getenv("NMF_SPMM");
    *choice = NMF_SPMM_AUTO;
    if (!e || !*e) return NMF_OK;
    if (!strcmp(e, "tv")) *choice = NMF_SPMM_ON;
    else if (!strcmp(e, "panel")) *choice = NMF_SPMM_OFF;
    else return nmf_error(NMF_ERR_INVALID_ARG, "NMF_SPMM='%s': expected panel or tv", e);
    return NMF_OK;
}

static void read_env(void) {
    int choice;
    if (nmf_env_spmm(&choice) == NMF_OK) env_tv = (nmf_spmm_choice)choice; /* else: auto */
}

nmf_spmm_tuning nmf_spmm_tuning_default(void) {
    pthread_once(&env_once, read_env);
    return (nmf_spmm_tuning){.tv = env_tv, .wide = NMF_SPMM_AUTO,
                             .token_split_bytes = NMF_SPMM_TOKEN_SPLIT_BYTES_DEFAULT};
}

static nmf_spmm_tv_shape tv_shape_for(const nmf_spmm_weights *w, nmf_isa isa,
                                      const nmf_spmm_tuning *t) {
    const tv_rule *d = tv_rule_for(isa, w);
    const size_t m = (size_t)w->m, n = (size_t)w->n;
    nmf_spmm_tv_shape s = {.rows = d->rows, .tokens = d->tokens, .chunk = d->chunk,
                           .min_tokens = d->min_tokens};
    size_t in_block = d->in_block;
    if (t->tv_rows && t->tv_tokens) {
        s.rows = t->tv_rows;
        s.tokens = t->tv_tokens;
    }
    if (t->tv_in_block) in_block = t->tv_in_block;
    if (t->tv_chunk) s.chunk = t->tv_chunk;
    s.kblock = (in_block / m ? in_block / m : 1) * n; /* whole groups */
    s.perm = isa == NMF_ISA_AVX512 && 2 * n < m;      /* below density 1/2 (the rules above) */
    if (s.chunk > w->panels * NMF_SPMM_ROWS) s.chunk = w->panels * NMF_SPMM_ROWS; /* scratch */
    return s;
}

void nmf_spmm_plan_free(nmf_spmm_plan *p, nmf_spmm_weights *w) {
    nmf_free(p->tv_storage);
    nmf_free(p->idx32_storage);
    p->tv_storage = NULL;
    p->idx32_storage = NULL;
    p->tv = 0;
    w->tv_pairs = NULL;
    w->tv_perm = 0;
    w->idx32 = NULL;
}

/* Whether the plan may run the tv kernel at some token count / the AVX-512 panel kernel with
 * u32 positions at some token count. */
static int may_tv(const nmf_spmm_plan *p, const nmf_spmm_weights *w) {
    if (p->tuning.tv == NMF_SPMM_OFF || !p->k->tv) return 0;
    const tv_rule *r = tv_rule_for(p->isa, w);
    return p->tuning.tv == NMF_SPMM_ON ||
           (w->out * w->in >= r->min_weights && w->out >= r->min_side && w->in >= r->min_side);
}
static int may_wide(const nmf_spmm_plan *p) {
    return p->isa == NMF_ISA_AVX512 && p->tuning.wide != NMF_SPMM_OFF &&
           p->tuning.tv != NMF_SPMM_ON;
}

nmf_status nmf_spmm_plan_make(nmf_spmm_plan *p, nmf_spmm_weights *w, const nmf_spmm_tuning *t) {
    const nmf_spmm_tuning tuning = t ? *t : nmf_spmm_tuning_default();
    if ((unsigned)tuning.tv >= NMF_SPMM_CHOICE_COUNT ||
        (unsigned)tuning.wide >= NMF_SPMM_CHOICE_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "linear: tuning choice out of range");
    const nmf_spmm_kernels *k = nmf_spmm_kernels_for(nmf_active_isa());
    if ((tuning.tv_rows || tuning.tv_tokens) && k->tv &&
        !k->tv->supports(tuning.tv_rows, tuning.tv_tokens))
        return nmf_error(NMF_ERR_INVALID_ARG, "linear: %s shape %zu x %zu not supported",
                         k->tv->name, tuning.tv_rows, tuning.tv_tokens);
    /* from here on a failure (out of memory) leaves a plan without the layout it could not
     * build: the panel kernels need none */
    nmf_spmm_plan_free(p, w);
    p->isa = nmf_active_isa();
    p->k = k;
    p->tuning = tuning;
    if (may_tv(p, w)) {
        p->tv_shape = tv_shape_for(w, p->isa, &tuning);
        if (k->tv->supports(p->tv_shape.rows, p->tv_shape.tokens)) {
            const nmf_status st = nmf_spmm_tv_layout(w, p->tv_shape.rows, p->tv_shape.tokens,
                                                     p->tv_shape.kblock, &p->tv_storage);
            if (st != NMF_OK) return st;
            w->tv_perm = p->tv_shape.perm;
            p->tv = 1;
        }
    }
    if (may_wide(p)) {
        const size_t slots = w->panels * w->groups * (size_t)w->n * NMF_SPMM_ROWS;
        uint32_t *idx32 = nmf_alloc(slots, sizeof(uint32_t)); /* size checked */
        if (!idx32) return nmf_error(NMF_ERR_NOMEM, "linear: u32 positions: out of memory");
        for (size_t s = 0; s < slots; s++) idx32[s] = w->idx[s];
        p->idx32_storage = idx32;
        w->idx32 = idx32;
    }
    return NMF_OK;
}

/* The AVX-512 panel kernel's tokens per block (the rule above). */
#define PANEL_TB_MIN_GROUPS 32
static size_t panel_token_block(const nmf_spmm_weights *w) {
    return w->n >= 2 && w->groups >= PANEL_TB_MIN_GROUPS ? 16 : 12;
}

nmf_spmm_step nmf_spmm_plan_step(const nmf_spmm_plan *p, const nmf_spmm_weights *w,
                                 size_t tokens) {
    nmf_spmm_step s = {.kind = NMF_SPMM_STEP_PANEL, .name = p->k->name};
    if (p->isa == NMF_ISA_AVX512) s.prm.token_block = panel_token_block(w);
    if (tokens >= 2 && p->tv &&
        (p->tuning.tv == NMF_SPMM_ON || tokens >= p->tv_shape.min_tokens)) {
        s.kind = NMF_SPMM_STEP_TV;
        s.name = p->k->tv->name;
        return s;
    }
    /* a bf16 layer: the panel kernel on its bf16 values, except on AVX-512 from 2 tokens where
     * the f32 values (rounded to bf16) are still there and the f32 tiles skip the widening (the
     * AVX2 bf16 kernel on an AVX-512 CPU ran DeiT-small 1:8 in 44 ms against 27 on them, Xeon
     * model 207); one token keeps the bf16 values (2.5 bytes per kept weight with the nibble
     * positions of M <= 16, 3 with u8 ones; not 5) */
    if (w->val16 && (tokens < 2 || !w->val || p->isa != NMF_ISA_AVX512)) {
        s.prm.bf16 = 1;
        s.name = p->isa == NMF_ISA_AVX512 ? "avx512-bf16"
                 : p->isa == NMF_ISA_AVX2 ? "avx2-bf16" : "scalar-bf16";
        return s;
    }
    if (p->isa == NMF_ISA_AVX512) {
        s.prm.panel_block = p->tuning.panel_block;
        s.prm.wide = w->idx32 != NULL && tokens >= 2 &&
                     (p->tuning.wide == NMF_SPMM_ON || tokens >= NMF_SPMM_WIDE_MIN_TOKENS);
    }
    return s;
}
