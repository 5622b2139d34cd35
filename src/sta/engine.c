/* The computing engine: D dot-product units (DPUs) of L multipliers, an adder tree and an
 * accumulator each, timed tile by tile (docs/STA.md, "engine").
 *
 * Mapping (weight stationary per tile): the D DPUs take D output channels (rows of W) at once;
 * for every token of the tile they walk the row in steps. Sparse x dense: a step covers
 * gpc = floor(L / N) whole groups, i.e. gpc*N kept weights (one per multiplier) and a window of
 * gpc*M activation columns from which each multiplier's M:1 mux picks its operand. Dense x dense:
 * a step covers L columns, muxes bypassed. A step costs max(1, fetch) cycles, where fetch is the
 * time the activation buffer needs to supply the step's operands (window: every column of the
 * window, act_banks per cycle; banked: the most-loaded bank's distinct requested columns).
 *
 * Loops: token tiles (as many tokens as the activation and output buffer halves hold) outside,
 * then output tiles of D rows, then K chunks (as many steps as the weight buffer half holds).
 * Activations of a token tile are loaded once and kept across output tiles; weights are loaded
 * per tile, once for the whole op when the whole weight fits one buffer half. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nmformer/sta.h"
#include "sta/sta_internal.h"

int nmf_sta_engine_depth(const nmf_sta_config *c, int sparse) {
    int tree = 0;
    while ((1 << tree) < c->lanes_per_dpu) tree++;
    /* mux (sparse only) + multiplier + adder tree levels + accumulator */
    return (sparse ? 1 : 0) + c->mult_latency + tree + 1;
}

/* Geometry of one product op on this engine. */
typedef struct {
    int sparse;
    int64_t N, M;       /* sparse pattern (dense: N = M = 1) */
    int64_t groups;     /* per row: ceil(k / M) (dense: k columns, as groups of 1) */
    int64_t gpc;        /* groups per step */
    int64_t steps;      /* per row */
    uint64_t meta_bits; /* per group */
} geometry;

static nmf_status geometry_of(const nmf_sta_config *c, const nmf_sta_op *op, geometry *g) {
    memset(g, 0, sizeof *g);
    g->sparse = op->kind == NMF_STA_OP_SPARSE;
    if (g->sparse) {
        g->N = op->pattern.n;
        g->M = op->pattern.m;
        if (g->M > c->max_m)
            return nmf_error(NMF_ERR_INVALID_ARG,
                             "engine.max_m: %d, but %s is %lld:%lld (the M:1 muxes are too narrow)",
                             c->max_m, op->name, (long long)g->N, (long long)g->M);
        if (g->N > c->lanes_per_dpu)
            return nmf_error(NMF_ERR_INVALID_ARG,
                             "engine.lanes_per_dpu: %d, fewer than N = %lld of %s", c->lanes_per_dpu,
                             (long long)g->N, op->name);
        g->groups = (op->k + g->M - 1) / g->M;
        g->gpc = c->lanes_per_dpu / g->N;
        g->meta_bits = c->index == NMF_STA_INDEX_BITMAP ? (uint64_t)g->M
                                                         : (uint64_t)nmf_nm_code_bits(op->pattern);
    } else {
        g->N = g->M = 1;
        g->groups = op->k;
        g->gpc = c->lanes_per_dpu;
    }
    g->steps = (g->groups + g->gpc - 1) / g->gpc;
    return NMF_OK;
}

/* Kept weights of one row within groups [g0, g1) that fall inside the k real columns. */
static uint64_t kept_in(const geometry *g, const nmf_sta_op *op, int64_t row, int64_t g0,
                        int64_t g1) {
    if (!g->sparse) return (uint64_t)(g1 - g0);
    uint64_t n = 0;
    int64_t full_end = op->k / g->M; /* groups entirely inside k */
    int64_t gf = g1 < full_end ? g1 : full_end;
    if (gf > g0) n += (uint64_t)((gf - g0) * g->N);
    for (int64_t gg = (g0 > full_end ? g0 : full_end); gg < g1; gg++) {
        int64_t valid = op->k - gg * g->M; /* columns of this partial group inside k */
        if (op->weights) {
            const uint8_t *pos = op->weights->pos + (size_t)row * op->weights->groups * (size_t)g->N +
                                 (size_t)gg * (size_t)g->N;
            for (int64_t j = 0; j < g->N; j++) n += pos[j] < valid;
        } else {
            n += (uint64_t)(valid < g->N ? valid : g->N);
        }
    }
    return n;
}

/* Synthetic positions (no weights): a deterministic pseudo-random N-subset of M per group, from
 * a stream of its own per (row, group) so that tiles can be costed in any order. */
static void synth_positions(uint64_t seed, int64_t row, int64_t group, int n, int m, uint8_t *pos) {
    uint64_t x = seed ^ ((uint64_t)row * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)group * 0xC2B2AE3D27D4EB4FULL);
    uint8_t used[NMF_NM_MAX_M] = {0};
    for (int j = 0; j < n; j++) {
        int p = (int)nmf_rng_below(&x, (uint64_t)(m - j)), k = -1;
        for (int q = 0; q < m; q++)
            if (!used[q] && ++k == p) {
                used[q] = 1;
                break;
            }
    }
    int k = 0;
    for (int q = 0; q < m; q++)
        if (used[q]) pos[k++] = (uint8_t)q;
}

/* Fetch cycles of every step of rows [r0, r1): out[s] for s in [0, steps). */
static nmf_status fetch_cycles(const nmf_sta_config *c, const nmf_sta_op *op, const geometry *g,
                               int64_t r0, int64_t r1, uint64_t seed, int64_t packs, uint64_t *out) {
    const uint64_t banks = (uint64_t)c->act_banks;
    if (c->fetch == NMF_STA_FETCH_WINDOW || !g->sparse) {
        for (int64_t s = 0; s < g->steps; s++) {
            int64_t g0 = s * g->gpc, g1 = g0 + g->gpc < g->groups ? g0 + g->gpc : g->groups;
            int64_t c0 = g0 * g->M, c1 = g1 * g->M;
            if (c1 > op->k) c1 = op->k;
            uint64_t f = sta_ceil_div((uint64_t)(c1 - c0) * (uint64_t)packs, banks);
            out[s] = f > 1 ? f : 1;
        }
        return NMF_OK;
    }
    /* banked: distinct columns requested per bank by the rows in flight */
    size_t win = (size_t)(g->gpc * g->M);
    uint8_t *need = calloc(win, 1);
    uint32_t *load = calloc((size_t)(banks < win ? banks : win), sizeof *load);
    if (!need || !load) {
        free(need);
        free(load);
        return nmf_error(NMF_ERR_NOMEM, "sta engine: out of memory");
    }
    size_t nb = banks < win ? (size_t)banks : win;
    for (int64_t s = 0; s < g->steps; s++) {
        int64_t g0 = s * g->gpc, g1 = g0 + g->gpc < g->groups ? g0 + g->gpc : g->groups;
        memset(need, 0, win);
        for (int64_t r = r0; r < r1; r++)
            for (int64_t gg = g0; gg < g1; gg++) {
                uint8_t sp[NMF_NM_MAX_M];
                const uint8_t *pos;
                if (op->weights) {
                    pos = op->weights->pos + (size_t)r * op->weights->groups * (size_t)g->N +
                          (size_t)gg * (size_t)g->N;
                } else {
                    synth_positions(seed, r, gg, (int)g->N, (int)g->M, sp);
                    pos = sp;
                }
                for (int64_t j = 0; j < g->N; j++) {
                    int64_t col = gg * g->M + pos[j];
                    if (col < op->k) need[(size_t)((gg - g0) * g->M + pos[j])] = 1;
                }
            }
        memset(load, 0, nb * sizeof *load);
        uint32_t worst = 1;
        for (size_t w = 0; w < win; w++)
            if (need[w]) {
                /* bank of the absolute column (g0*M + w) */
                size_t b = (size_t)(((uint64_t)(g0 * g->M) + w) % banks) % nb;
                if (++load[b] > worst) worst = load[b];
            }
        out[s] = worst;
    }
    free(need);
    free(load);
    return NMF_OK;
}

nmf_status sta_engine_op(sta_pipe *p, const nmf_sta_config *c, const nmf_sta_op *op,
                         const sta_residency *rs, int64_t t0, int64_t t1, uint64_t seed) {
    geometry g;
    nmf_status st = geometry_of(c, op, &g);
    if (st) return st;
    sta_buffers buf;
    sta_buffers_of(c, &buf);
    const uint64_t D = (uint64_t)c->dpus, db = (uint64_t)sta_data_bytes(c);
    const uint64_t accb = (uint64_t)sta_acc_bytes(c);
    const int64_t rows = t1 - t0;
    /* bytes of one row's weights per step: values + positions (+ per-row bias/requant once) */
    const uint64_t step_row_bytes =
        (uint64_t)(g.gpc * g.N) * db + (g.sparse ? sta_ceil_div((uint64_t)g.gpc * g.meta_bits, 8) : 0);
    const uint64_t row_fixed = op->weight_from_dram ? 8 : 0;
    if (buf.weight_slot < D * (step_row_bytes + row_fixed))
        return nmf_error(NMF_ERR_INVALID_ARG,
                         "memory.weight_buf_kib: %d KiB cannot hold one step of %s (%llu bytes)",
                         c->weight_buf_kib, op->name,
                         (unsigned long long)(D * (step_row_bytes + row_fixed)));
    int64_t chunk_steps = (int64_t)((buf.weight_slot - D * row_fixed) / (D * step_row_bytes));
    if (chunk_steps > g.steps) chunk_steps = g.steps;
    const int64_t chunks = (g.steps + chunk_steps - 1) / chunk_steps;
    chunk_steps = (g.steps + chunks - 1) / chunks; /* balanced: no tiny last chunk */
    const int64_t otiles = (op->cols + (int64_t)D - 1) / (int64_t)D;
    /* token tile */
    uint64_t tt_out = buf.out_slot / (D * accb);
    uint64_t tt_act = rs->in_resident ? UINT64_MAX : buf.act_slot / ((uint64_t)op->k * db);
    if (tt_act == 0)
        return nmf_error(NMF_ERR_INVALID_ARG,
                         "memory.act_buf_kib: %d KiB cannot stream one token of %s (%lld x %llu "
                         "bytes per buffer half)",
                         c->act_buf_kib, op->name, (long long)op->k, (unsigned long long)db);
    int64_t Tt = (int64_t)(tt_out < tt_act ? tt_out : tt_act);
    if (Tt > rows) Tt = rows;
    if (Tt < 1) Tt = 1;
    /* whole weight in one half: loaded once per op slice */
    uint64_t whole_w = 0;
    for (int64_t s = 0; s < g.steps; s++) whole_w += step_row_bytes;
    whole_w = (whole_w + row_fixed) * (uint64_t)op->cols;
    int w_once = otiles == 1 && chunks == 1 && whole_w <= buf.weight_slot;
    int w_from_dram = op->weight_from_dram || !rs->wt_resident;

    /* Token packing: when the op has fewer output rows than DPUs (A V: head_dim rows), the DPUs
     * split into `packs` groups that take different tokens of the tile at once, each group with
     * its own activation window (so the window fetch grows by the same factor). */
    int64_t packs = 1;
    if (op->cols < (int64_t)D) {
        packs = (int64_t)D / op->cols;
        if (packs > Tt) packs = Tt;
    }
    /* fetch cycles per step; per output tile when they depend on the rows (banked fetch) */
    int per_tile_fetch = c->fetch == NMF_STA_FETCH_BANKED && g.sparse;
    size_t fc_tiles = per_tile_fetch ? (size_t)otiles : 1;
    uint64_t *fc = malloc(fc_tiles * (size_t)g.steps * sizeof *fc);
    if (!fc) return nmf_error(NMF_ERR_NOMEM, "sta engine: out of memory");
    for (size_t ft = 0; ft < fc_tiles; ft++) {
        int64_t r0 = (int64_t)ft * (int64_t)D;
        int64_t r1 = r0 + (int64_t)D < op->cols ? r0 + (int64_t)D : op->cols;
        if ((st = fetch_cycles(c, op, &g, r0, r1, seed, packs, fc + ft * (size_t)g.steps))) goto done;
    }

    nmf_sta_op_result *res = p->res;
    /* loop order: token tiles, output tiles, chunks */
    for (int64_t tt0 = t0; tt0 < t1; tt0 += Tt) {
        int64_t tn = t1 - tt0 < Tt ? t1 - tt0 : Tt;
        for (int64_t ot = 0; ot < otiles; ot++) {
            int64_t r0 = ot * (int64_t)D, r1 = r0 + (int64_t)D < op->cols ? r0 + (int64_t)D : op->cols;
            const uint64_t *fct = fc + (per_tile_fetch ? (size_t)ot * (size_t)g.steps : 0);
            for (int64_t ch = 0; ch < chunks; ch++) {
                int64_t s0 = ch * chunk_steps, s1 = s0 + chunk_steps < g.steps ? s0 + chunk_steps : g.steps;
                int64_t g0 = s0 * g.gpc, g1 = s1 * g.gpc < g.groups ? s1 * g.gpc : g.groups;
                /* kept weights of this tile: its weight bytes (sparse) and its useful MACs */
                uint64_t kept = 0;
                for (int64_t r = r0; r < r1; r++) kept += kept_in(&g, op, r, g0, g1);
                /* weights of this tile */
                uint64_t wv = 0, wm = 0;
                if (w_from_dram && !(w_once && tt0 != t0)) {
                    if (g.sparse) {
                        wv = kept * db;
                        wm = (uint64_t)(r1 - r0) * sta_ceil_div((uint64_t)(g1 - g0) * g.meta_bits, 8);
                    } else {
                        int64_t c1 = g1 < op->k ? g1 : op->k;
                        wv = (uint64_t)(r1 - r0) * (uint64_t)(c1 - g0) * db;
                    }
                    if (ch == 0 && op->weight_from_dram) wm += (uint64_t)(r1 - r0) * row_fixed;
                }
                /* activations of the token tile: once, with the first tile that uses them */
                uint64_t av = 0;
                if (!rs->in_resident && ot == 0 && ch == 0) av = (uint64_t)tn * (uint64_t)op->k * db;
                /* step-major inside the tile: a step's weights stay in the DPUs' weight registers
                 * while the tile's tokens stream through; the registers of the next step reload
                 * meanwhile, which takes NMF_STA_WEIGHT_RELOAD cycles */
                uint64_t tok = sta_ceil_div((uint64_t)tn, (uint64_t)(packs < tn ? packs : tn));
                uint64_t compute = 0;
                for (int64_t s = s0; s < s1; s++) {
                    uint64_t cyc = tok * fct[s];
                    compute += cyc > NMF_STA_WEIGHT_RELOAD ? cyc : NMF_STA_WEIGHT_RELOAD;
                }
                uint64_t store = 0;
                if (!rs->out_resident && ch == chunks - 1)
                    store = (uint64_t)tn * (uint64_t)(r1 - r0) * db;
                uint64_t early = op->weight_from_dram ? wv + wm : 0;
                if ((st = sta_pipe_tile(p, early, wv + wm + av, compute, store))) goto done;
                /* accounting */
                res->useful_macs += kept * (uint64_t)tn;
                res->conflict += compute - tok * (uint64_t)(s1 - s0);
                if (op->weight_from_dram) {
                    res->weight_bytes += wv;
                    res->meta_bytes += wm;
                } else {
                    res->act_read_bytes += wv;
                }
                res->act_read_bytes += av;
                res->act_write_bytes += store;
                res->dram_read += wv + wm + av;
                res->dram_write += store;
                uint64_t wocc = (uint64_t)(r1 - r0) * ((uint64_t)(s1 - s0) * step_row_bytes + row_fixed);
                if (wocc > res->weight_buf_peak) res->weight_buf_peak = wocc;
                uint64_t aocc = rs->in_resident ? 0 : (uint64_t)tn * (uint64_t)op->k * db;
                if (aocc > res->act_buf_peak) res->act_buf_peak = aocc;
                uint64_t oocc = (uint64_t)tn * (uint64_t)(r1 - r0) * accb;
                if (oocc > res->out_buf_peak) res->out_buf_peak = oocc;
            }
        }
    }
done:
    free(fc);
    return st;
}
