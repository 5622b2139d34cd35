/* The one table of N:M kernels, indexed by instruction set (ggml style: a name per entry,
 * checked against NMF_ISA_COUNT). nmf_active_isa() is decided once (cpuid + xgetbv, NMF_ISA);
 * each product looks its entry up, so nmf_set_isa() in tests takes effect immediately. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/spmm.h"

static const nmf_spmm_kernels table[] = {
    [NMF_ISA_SCALAR] = {"scalar", nmf_spmm_forward_scalar, nmf_spmm_backward_scalar},
    [NMF_ISA_AVX2] = {"avx2", nmf_spmm_forward_avx2, nmf_spmm_backward_avx2},
    [NMF_ISA_AVX512] = {"avx512", nmf_spmm_forward_avx512, nmf_spmm_backward_avx512},
};
_Static_assert(sizeof table / sizeof table[0] == NMF_ISA_COUNT, "one kernel set per nmf_isa");

const nmf_spmm_kernels *nmf_spmm_kernels_for(nmf_isa isa) {
    nmf_isa best = nmf_cpu_best_isa();
    if ((unsigned)isa >= NMF_ISA_COUNT || isa > best) isa = best; /* never run what the CPU lacks */
    return &table[isa];
}

size_t nmf_spmm_panel_block = 0;
void nmf_spmm_avx512_set_panel_block(size_t bytes) { nmf_spmm_panel_block = bytes; }
nmf_spmm_wide_mode nmf_spmm_wide_positions = NMF_SPMM_WIDE_AUTO;

int nmf_spmm_use_wide(size_t tokens) {
    if (tokens < 2 || nmf_spmm_wide_positions == NMF_SPMM_WIDE_OFF) return 0;
    return nmf_spmm_wide_positions == NMF_SPMM_WIDE_ON || tokens >= NMF_SPMM_WIDE_MIN_TOKENS;
}

size_t nmf_spmm_tv_in_block = 0;
size_t nmf_spmm_token_split_bytes = NMF_SPMM_TOKEN_SPLIT_BYTES_DEFAULT;
nmf_spmm_tv_mode nmf_spmm_tv = NMF_SPMM_TV_AUTO;

/* NMF_SPMM=panel|tv forces one AVX-512 forward kernel (benchmarks); read once. */
static nmf_spmm_tv_mode env_mode = NMF_SPMM_TV_AUTO;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static void read_env(void) {
    const char *e = getenv("NMF_SPMM");
    if (e && !strcmp(e, "tv")) env_mode = NMF_SPMM_TV_ON;
    if (e && !strcmp(e, "panel")) env_mode = NMF_SPMM_TV_OFF;
}

int nmf_spmm_use_tv(const nmf_spmm_weights *w, size_t tokens) {
    if (tokens < 2 || nmf_active_isa() != NMF_ISA_AVX512) return 0; /* active <= best */
    if (nmf_spmm_tv != NMF_SPMM_TV_AUTO) return nmf_spmm_tv == NMF_SPMM_TV_ON;
    pthread_once(&env_once, read_env);
    if (env_mode != NMF_SPMM_TV_AUTO) return env_mode == NMF_SPMM_TV_ON;
    /* Measured on Zen 4 (docs/PERFORMANCE.md, GEMM): the token-vectorised kernel beats the
     * panel kernel by 5-20 % at density 1/2 (2:4, 4:8) when its 64-token tiles are full; at
     * lower densities its per-call transposes of x and y cost more than the permutes it
     * saves, and a ragged last tile (few token vectors per broadcast) loses to the panel
     * kernel, unless there are many tiles to amortise it. */
    const size_t tail = tokens % NMF_TV_TOKENS;
    return 2 * w->n >= w->m && tokens >= NMF_TV_TOKENS &&
           (tail == 0 || tail > NMF_TV_TOKENS - 16 || tokens >= 6 * NMF_TV_TOKENS);
}
