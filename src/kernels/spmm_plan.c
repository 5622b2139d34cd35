/* A layer's plan (spmm.h): decided when the layer is created (or retuned), for the ISA active
 * then, XNNPACK create/reshape style. The kernels read nothing but their arguments; every
 * measured rule that picks a kernel, a layout or a blocking lives here.
 *
 * Rules (measured, docs/PERFORMANCE.md):
 * - 1 token: the panel kernel of the ISA (a GEMV: it reads each weight once, 5 bytes); a bf16
 *   layer (w->val16) runs the AVX2 (or scalar) panel kernel on its bf16 values (3 bytes) at
 *   every step that is a panel step, on AVX-512 CPUs too (no AVX-512 bf16 panel kernel yet).
 * - AVX-512: the 4 x 64 token-vectorised kernel at density >= 1/2 with full 64-token tiles
 *   (Zen 4: 5-20 % faster there; at lower densities its transposes cost more than the permutes
 *   it saves); the panel kernel elsewhere, with u32 positions from NMF_SPMM_WIDE_MIN_TOKENS.
 * - AVX2: the token-vectorised kernel from NMF_TV2_MIN_TOKENS tokens at every pattern, for
 *   layers of at least NMF_TV2_MIN_WEIGHTS weights (Zen 3:
 *   the panel kernel's vpermps per FMA holds it near a quarter of the FMA peak), 2 rows x 6
 *   token vectors (48-token tiles), input blocks of 128 columns, chunks of 512 rows. Measured
 *   by a sweep of R x TOK in {1x64, 2x32, 2x48, 1x48, 4x16, 2x16, 1x32, 4x24}, input blocks
 *   64-768 and chunks 64-512 on 768x768 at 16/128/512 tokens: the best
 *   cells were within ~10 % of each other (a shared, noisy machine), and 2x48 / 128 was in or
 *   near the best group at every pattern; one layout serves every token count. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/env.h"
#include "kernels/spmm.h"

/* Below 8 tokens a token vector of the tv kernel is partly empty and it does the work of 8
 * tokens: the panel kernel (4-token blocks) is faster there (Zen 3, 768x768: 2-4 tokens 2-4x);
 * at 8 they are even, from 16 on the tv kernel leads (1.4-1.9x). */
#define NMF_TV2_MIN_TOKENS 8
/* Below this many dense weights (out x in) the tv kernel's per-product transposes and scratch cost
 * more than its FMAs save: measured at 17 tokens (Zen 3, the make-run ViT's layers), 64x64,
 * 128x64, 64x128 and 192x64 ran 2:8 / 1:8 20-50 % faster on the panel kernel, while from
 * 128x128 up the tv kernel won (1:8 0.0053 vs 0.0062 ms, 2:8 0.0060 vs 0.0085 ms). Such layers
 * keep the panel kernel at every token count and never build the tv layout. */
#define NMF_TV2_MIN_WEIGHTS ((size_t)128 * 128)
#define TV2_ROWS 2     /* R x V = 2 x 6 accumulators: 1 broadcast + 6 loads per 6 FMAs */
#define TV2_TOKENS 48  /* V = 6 token vectors per tile */
#define TV2_IN_BLOCK 128 /* input columns per block: 24 KiB of xT, in L1 (32 KiB) */
/* Rows per chunk: their partial sums (yT, 512 x 48 floats = 96 KiB) stay in L2 and the xT block
 * in L1 is swept by that many rows before the next one is loaded. Measured on 768x768 at 512
 * tokens and 768x3072 at 128: chunks of 256-512 rows beat 48-128 by 10-40 % (sizing chunks so
 * that their weights stay in L2 across token tiles was slower: re-reading xT costs more). */
#define TV2_CHUNK 512

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

static nmf_spmm_tv2_shape tv2_shape_for(const nmf_spmm_weights *w, const nmf_spmm_tuning *t) {
    const size_t m = (size_t)w->m, n = (size_t)w->n;
    nmf_spmm_tv2_shape s = {.rows = TV2_ROWS, .tokens = TV2_TOKENS, .chunk = TV2_CHUNK};
    size_t in_block = TV2_IN_BLOCK;
    if (t->tv2_rows && t->tv2_tokens) {
        s.rows = t->tv2_rows;
        s.tokens = t->tv2_tokens;
    }
    if (t->tv2_in_block) in_block = t->tv2_in_block;
    if (t->tv2_chunk) s.chunk = t->tv2_chunk;
    s.kblock = (in_block / m ? in_block / m : 1) * n; /* whole groups */
    if (s.chunk > w->panels * NMF_SPMM_ROWS) s.chunk = w->panels * NMF_SPMM_ROWS; /* scratch */
    return s;
}

void nmf_spmm_plan_free(nmf_spmm_plan *p, nmf_spmm_weights *w) {
    nmf_free(p->tv_storage);
    nmf_free(p->idx32_storage);
    p->tv_storage = NULL;
    p->idx32_storage = NULL;
    p->tv = 0;
    w->tv_val = NULL;
    w->tv_off = NULL;
    w->tv_pairs = NULL;
    w->idx32 = NULL;
}

/* Whether the plan may run the tv kernel at some token count / the AVX-512 panel kernel with
 * u32 positions at some token count. */
static int may_tv(const nmf_spmm_plan *p, const nmf_spmm_weights *w) {
    if (p->tuning.tv == NMF_SPMM_OFF) return 0;
    if (p->isa == NMF_ISA_AVX2)
        return p->tuning.tv == NMF_SPMM_ON || w->out * w->in >= NMF_TV2_MIN_WEIGHTS;
    return p->isa == NMF_ISA_AVX512 && (p->tuning.tv == NMF_SPMM_ON || 2 * w->n >= w->m);
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
    /* (the AVX2 file's code runs only where the CPU has AVX2) */
    if ((tuning.tv2_rows || tuning.tv2_tokens) && nmf_active_isa() == NMF_ISA_AVX2 &&
        !nmf_spmm_tv_avx2_supports(tuning.tv2_rows, tuning.tv2_tokens))
        return nmf_error(NMF_ERR_INVALID_ARG, "linear: tv2 shape %zu x %zu not supported",
                         tuning.tv2_rows, tuning.tv2_tokens);
    /* from here on a failure (out of memory) leaves a plan without the layout it could not
     * build: the panel kernels need none */
    nmf_spmm_plan_free(p, w);
    p->isa = nmf_active_isa();
    p->k = nmf_spmm_kernels_for(p->isa);
    p->tuning = tuning;
    if (may_tv(p, w) &&
        (p->isa != NMF_ISA_AVX2 || nmf_spmm_tv_avx2_supports(TV2_ROWS, TV2_TOKENS))) {
        nmf_status st;
        if (p->isa == NMF_ISA_AVX2) {
            p->tv2 = tv2_shape_for(w, &tuning);
            st = nmf_spmm_tv_layout(w, p->tv2.rows, p->tv2.tokens, p->tv2.kblock, 1,
                                    &p->tv_storage);
        } else {
            st = nmf_spmm_tv_layout(w, NMF_TV_ROWS, NMF_TV_TOKENS, 0, 0, &p->tv_storage);
        }
        if (st != NMF_OK) return st;
        p->tv = 1;
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

/* AVX-512: where its tv kernel beats the panel kernel (Zen 4, see the rules above): full
 * 64-token tiles, or a ragged last tile of more than 48 tokens, or enough tiles to amortise
 * a ragged one. */
static int tv512_rule(const nmf_spmm_weights *w, size_t tokens) {
    const size_t tail = tokens % NMF_TV_TOKENS;
    return 2 * w->n >= w->m && tokens >= NMF_TV_TOKENS &&
           (tail == 0 || tail > NMF_TV_TOKENS - 16 || tokens >= 6 * NMF_TV_TOKENS);
}

nmf_spmm_step nmf_spmm_plan_step(const nmf_spmm_plan *p, const nmf_spmm_weights *w,
                                 size_t tokens) {
    nmf_spmm_step s = {.kind = NMF_SPMM_STEP_PANEL, .name = p->k->name};
    if (tokens >= 2 && p->tv) {
        const int force = p->tuning.tv == NMF_SPMM_ON;
        if (p->isa == NMF_ISA_AVX2 && (force || tokens >= NMF_TV2_MIN_TOKENS)) {
            s.kind = NMF_SPMM_STEP_TV2;
            s.name = "avx2-tv";
            return s;
        }
        if (p->isa == NMF_ISA_AVX512 && (force || tv512_rule(w, tokens))) {
            s.kind = NMF_SPMM_STEP_TV512;
            s.name = "avx512-tv";
            s.prm.in_block = p->tuning.tv_in_block;
            return s;
        }
    }
    if (w->val16) { /* a bf16 layer: the panel kernel on its bf16 values (AVX2 on AVX-512 too) */
        s.prm.bf16 = 1;
        s.name = p->isa >= NMF_ISA_AVX2 ? "avx2-bf16" : "scalar-bf16";
        return s;
    }
    if (p->isa == NMF_ISA_AVX512) {
        s.prm.panel_block = p->tuning.panel_block;
        s.prm.wide = w->idx32 != NULL && tokens >= 2 &&
                     (p->tuning.wide == NMF_SPMM_ON || tokens >= NMF_SPMM_WIDE_MIN_TOKENS);
    }
    return s;
}
