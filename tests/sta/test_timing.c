/* STA timing model: closed forms, bandwidth bound, invariants over random designs, and MAC
 * efficiency independent of N:M when the engine is fed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/sta.h"
#include "test.h"

static nmf_sta_config ample(void) {
    nmf_sta_config c;
    nmf_sta_config_default(&c);
    c.dpus = 64;
    c.lanes_per_dpu = 16;
    c.max_m = 16;
    c.act_banks = 256;
    c.weight_buf_kib = 4096;
    c.act_buf_kib = 8192;
    c.out_buf_kib = 4096;
    c.dram_gbps = 100000; /* ample bandwidth */
    c.dram_latency_ns = 0;
    return c;
}

/* A hand-built schedule: `nops` linears y = x W^T on resident activations. */
typedef struct {
    nmf_sta_schedule s;
    nmf_sta_op ops[4];
    nmf_sta_tensor tensors[5];
} hand;

static void hand_init(hand *h, int nops, int64_t T, int64_t cols, int64_t k, nmf_pattern p,
                      int io_elems_small) {
    memset(h, 0, sizeof *h);
    nmf_model_config_default(&h->s.vit);
    h->s.tokens = (int)T;
    h->s.ops = h->ops;
    h->s.op_count = (size_t)nops;
    h->s.tensors = h->tensors;
    h->s.tensor_count = (size_t)nops + 1;
    for (int i = 0; i <= nops; i++) {
        snprintf(h->tensors[i].name, sizeof h->tensors[i].name, "t%d", i);
        h->tensors[i].elems = io_elems_small ? T * (i ? cols : k) : T * 100000;
    }
    for (int i = 0; i < nops; i++) {
        nmf_sta_op *o = &h->ops[i];
        snprintf(o->name, sizeof o->name, "op%d", i);
        o->kind = p.n ? NMF_STA_OP_SPARSE : NMF_STA_OP_DENSE;
        o->block = -1;
        o->rows = T;
        o->cols = cols;
        o->k = k;
        o->batch = 1;
        o->pattern = p;
        o->weight_from_dram = 1;
        o->in[0] = i;
        o->in[1] = -1;
        o->out = i + 1;
        o->attn_group = -1;
    }
    /* chain: op i reads tensor i and writes tensor i+1, all with the same k == cols */
}

static void test_compute_bound(void) {
    const nmf_pattern pats[] = {{2, 4}, {4, 8}, {2, 8}, {1, 8}, {1, 16}, {0, 0}};
    for (size_t pi = 0; pi < sizeof pats / sizeof pats[0]; pi++) {
        nmf_sta_config c = ample();
        nmf_pattern p = pats[pi];
        const int64_t T = 64, cols = 4 * 64, k = 1024; /* 4 output tiles of D = 64 rows */
        hand h;
        hand_init(&h, 2, T, cols, k, p, 1);
        h.ops[1].k = k;
        h.ops[0].cols = k; /* op0: k -> k, op1: k -> cols */
        h.tensors[1].elems = T * k;
        nmf_sta_result r;
        CHECK_OK(nmf_sta_simulate(&c, &h.s, 0, &r));
        if (!r.ops) continue;
        /* analytic: every step feeds all L multipliers; a step costs T cycles (T >= 16) */
        uint64_t kept_row = p.n ? (uint64_t)(k / p.m * p.n) : (uint64_t)k;
        uint64_t macs = (uint64_t)T * (uint64_t)cols * kept_row;
        uint64_t mults = (uint64_t)c.dpus * (uint64_t)c.lanes_per_dpu;
        uint64_t fill = (uint64_t)nmf_sta_engine_depth(&c, p.n > 0);
        CHECK(r.ops[1].useful_macs == macs);
        CHECK_MSG(r.ops[1].cycles == macs / mults + fill, "pattern %d:%d: cycles %llu, analytic %llu",
                  p.n, p.m, (unsigned long long)r.ops[1].cycles,
                  (unsigned long long)(macs / mults + fill));
        CHECK(r.ops[1].stall == 0);
        CHECK(r.ops[1].fill == fill);
        /* the first op has no predecessor to hide its first weight tile behind: that load is its
         * (documented) prologue stall */
        CHECK(r.ops[0].cycles == r.ops[0].busy + r.ops[0].fill + r.ops[0].stall);
        CHECK(r.ops[0].stall >= 1);
        nmf_sta_result_free(&r);
    }
}

static void test_bandwidth_bound(void) {
    nmf_sta_config c = ample();
    c.dram_gbps = 1.0; /* 5 bytes per cycle at 200 MHz */
    c.dram_latency_ns = 100;
    c.weight_buf_kib = 512;
    const nmf_pattern pats[] = {{0, 0}, {2, 8}};
    for (int pi = 0; pi < 2; pi++) {
        hand h;
        hand_init(&h, 1, 1, 4096, 4096, pats[pi], 1); /* a GEMV: weights dominate */
        nmf_sta_result r;
        CHECK_OK(nmf_sta_simulate(&c, &h.s, 0, &r));
        if (!r.ops) continue;
        double bytes = (double)(r.total.dram_read + r.total.dram_write);
        double t_bw = bytes / (c.dram_gbps * 1e9);
        double t_sim = (double)r.total.cycles / (c.freq_mhz * 1e6);
        CHECK_MSG(fabs(t_sim - t_bw) / t_bw < 0.02, "pattern %d: simulated %.6g s, bytes/bw %.6g s",
                  pi, t_sim, t_bw);
        CHECK(t_sim >= t_bw);
        /* positions are counted: 2:8 bitmap is 8 bits per 2 values */
        if (pats[pi].n) CHECK(r.ops[0].meta_bytes >= 4096ULL * 4096 / 8 * 8 / 8);
        nmf_sta_result_free(&r);
    }
}

static uint64_t urand(unsigned long long *s, uint64_t n) { return test_rand_u64(s) % n; }

static uint64_t analytic_macs(const nmf_model_config *v, int T, nmf_pattern p) {
    uint64_t D = (uint64_t)v->dim, H = (uint64_t)nmf_vit_hidden(v), t = (uint64_t)T;
    uint64_t dh = D / (uint64_t)v->heads, pk = (uint64_t)(v->in_chans * v->patch * v->patch);
    uint64_t lin = D * 3 * D + D * D + 2 * D * H; /* per token, dense */
    if (p.n) {
        lin = 3 * D * (D / (uint64_t)p.m * (uint64_t)p.n) + D * (D / (uint64_t)p.m * (uint64_t)p.n) +
              H * (D / (uint64_t)p.m * (uint64_t)p.n) + D * (H / (uint64_t)p.m * (uint64_t)p.n);
    }
    uint64_t per_block = t * lin + 2 * (uint64_t)v->heads * t * t * dh;
    return (uint64_t)v->depth * per_block + (t - 1) * D * pk + D * (uint64_t)v->num_classes;
}

static void test_invariants(void) {
    unsigned long long seed = 0x1234abcdULL;
    int ran = 0, rejected = 0;
    int rounds = getenv("NMF_SANITIZED") ? 60 : 300;
    for (int it = 0; it < rounds; it++) {
        nmf_sta_config c;
        nmf_sta_config_default(&c);
        static const int lanes[] = {1, 2, 4, 8, 16, 32};
        c.dpus = 1 + (int)urand(&seed, 300);
        c.lanes_per_dpu = lanes[urand(&seed, 6)];
        c.max_m = 4 << urand(&seed, 3);
        c.mult_latency = (int)urand(&seed, 4);
        c.act_banks = 1 + (int)urand(&seed, 512);
        c.fetch = (nmf_sta_fetch)urand(&seed, 2);
        c.softmax_lanes = 1 + (int)urand(&seed, 128);
        c.vector_lanes = 1 + (int)urand(&seed, 128);
        c.weight_buf_kib = 16 << urand(&seed, 8);
        c.act_buf_kib = 16 << urand(&seed, 9);
        c.out_buf_kib = 8 << urand(&seed, 8);
        c.score_buf_kib = 4 << urand(&seed, 8);
        c.double_buffer = (int)urand(&seed, 2);
        c.dram_gbps = 0.5 + (double)urand(&seed, 1000) / 10.0;
        c.dram_latency_ns = (double)urand(&seed, 500);
        c.dram_burst_bytes = 16 << urand(&seed, 3);
        c.data_bits = urand(&seed, 2) ? 8 : 16;
        c.acc_bits = c.data_bits == 8 ? 32 : 48;
        c.index = (nmf_sta_index)urand(&seed, 2);
        nmf_model_config v;
        nmf_model_config_default(&v);
        v.heads = 1 + (int)urand(&seed, 4);
        v.dim = v.heads * 16 * (1 + (int)urand(&seed, 4));
        v.depth = 1 + (int)urand(&seed, 2);
        v.img_size = 28;
        v.patch = urand(&seed, 2) ? 7 : 14;
        v.mlp_ratio = 2.0f;
        int m = 4 << urand(&seed, 2); /* 4, 8, 16 (dims are multiples of 16) */
        nmf_pattern p = {1 + (int)urand(&seed, (uint64_t)m - 1), m};
        if (urand(&seed, 5) == 0) p = (nmf_pattern){0, 0};
        int T = urand(&seed, 2) ? 0 : 2 + (int)urand(&seed, 60);
        if (nmf_sta_config_validate(&c) != NMF_OK) {
            rejected++;
            continue;
        }
        nmf_sta_schedule s;
        if (nmf_sta_schedule_synthetic(&s, &v, p, T) != NMF_OK) {
            CHECK(0);
            continue;
        }
        nmf_sta_result r;
        nmf_status st = nmf_sta_simulate(&c, &s, it % 7 == 0, &r);
        if (st != NMF_OK) {
            /* only "cannot hold one tile"-style rejections, each naming a key */
            CHECK_MSG(st == NMF_ERR_INVALID_ARG && (strstr(nmf_last_error(), "memory.") ||
                                                    strstr(nmf_last_error(), "engine.")),
                      "%s", nmf_last_error());
            rejected++;
            nmf_sta_schedule_free(&s);
            continue;
        }
        ran++;
        const uint64_t mults = (uint64_t)nmf_sta_multipliers(&c);
        uint64_t sum = 0, macs = 0, end = 0;
        for (size_t i = 0; i < s.op_count; i++) {
            const nmf_sta_op_result *o = &r.ops[i];
            CHECK(o->cycles == o->busy + o->fill + o->stall); /* no negative / double-counted stall */
            CHECK(o->useful_macs <= mults * o->busy);
            sum += o->cycles;
            macs += o->useful_macs;
            if (o->start + o->cycles > end && s.ops[i].attn_group < 0) end = o->start + o->cycles;
        }
        CHECK(sum == r.total.cycles);
        CHECK(end <= r.total.cycles);
        CHECK(macs == r.total.useful_macs);
        int Tm = s.tokens;
        CHECK_MSG(macs == analytic_macs(&v, Tm, p), "MACs %llu vs analytic %llu",
                  (unsigned long long)macs, (unsigned long long)analytic_macs(&v, Tm, p));
        CHECK(r.total.cycles >= r.total.compute_lower_bound);
        CHECK(r.total.cycles >= r.total.dram_lower_bound);
        CHECK(r.total.mac_efficiency <= 1.0 && r.total.mac_efficiency > 0);
        for (size_t e = 0; e < r.event_count; e++) CHECK(r.events[e].end >= r.events[e].begin);
        nmf_sta_result_free(&r);
        nmf_sta_schedule_free(&s);
    }
    printf("invariants: %d random designs simulated, %d rejected with a message\n", ran, rejected);
    CHECK(ran > rounds / 4);
}

/* Efficiency of a fed sparse layer does not depend on N:M (docs/STA.md table). */
static void test_efficiency_vs_pattern(void) {
    const nmf_pattern pats[] = {{2, 4}, {4, 8}, {2, 8}, {1, 8}, {1, 16}};
    double eff0 = -1;
    for (size_t pi = 0; pi < 5; pi++) {
        nmf_sta_config c = ample();
        hand h;
        hand_init(&h, 2, 197, 1536, 384 * 4, pats[pi], 1);
        h.ops[0].cols = 384 * 4;
        nmf_sta_result r;
        CHECK_OK(nmf_sta_simulate(&c, &h.s, 0, &r));
        if (!r.ops) continue;
        double eff = (double)r.ops[1].useful_macs /
                     ((double)nmf_sta_multipliers(&c) * (double)r.ops[1].busy);
        CHECK_NEAR(eff, 1.0, 1e-12);
        if (eff0 < 0) eff0 = eff;
        CHECK_NEAR(eff, eff0, 1e-12);
        nmf_sta_result_free(&r);
    }
    /* not fed: too few activation banks for a 1:16 window (16 lanes x 16 columns) */
    nmf_sta_config c = ample();
    c.act_banks = 64;
    hand h;
    hand_init(&h, 2, 197, 1536, 1536, (nmf_pattern){1, 16}, 1);
    nmf_sta_result r;
    CHECK_OK(nmf_sta_simulate(&c, &h.s, 0, &r));
    if (r.ops) {
        double eff = (double)r.ops[1].useful_macs / ((double)nmf_sta_multipliers(&c) * (double)r.ops[1].busy);
        CHECK_NEAR(eff, 0.25, 1e-9); /* 256 columns per step from 64 banks: 4 cycles per step */
        nmf_sta_result_free(&r);
    }
}

/* Banked fetch: timing from the model's own positions. 8 banks, a step covers 8 groups of 2:8
 * (64 columns); bank = column mod 8. */
static void test_banked_positions(void) {
    const size_t rows = 64, cols = 256;
    nmf_pattern p = {2, 8};
    float *w = malloc(rows * cols * sizeof *w);
    unsigned long long seed = 77;
    nmf_nm_matrix m[3]; /* random, staggered (best), aligned (worst) */
    for (size_t i = 0; i < rows * cols; i++) w[i] = test_rand_float(&seed);
    CHECK_OK(nmf_nm_pack(&m[0], w, rows, cols, p, 0));
    for (size_t i = 0; i < rows * cols; i++) { /* group g keeps 2(g%4), 2(g%4)+1 */
        size_t c = i % cols, g = c / 8, pos = c % 8;
        w[i] = (pos / 2 == g % 4) ? 1.0f : 0.0f;
    }
    CHECK_OK(nmf_nm_pack(&m[1], w, rows, cols, p, 0));
    for (size_t i = 0; i < rows * cols; i++) w[i] = (i % 8 < 2) ? 1.0f : 0.0f; /* keeps 0, 1 */
    CHECK_OK(nmf_nm_pack(&m[2], w, rows, cols, p, 0));
    uint64_t cyc[4];
    for (int variant = 0; variant < 4; variant++) {
        nmf_sta_config c = ample();
        c.dpus = 64;
        c.act_banks = 8;
        c.fetch = variant == 3 ? NMF_STA_FETCH_WINDOW : NMF_STA_FETCH_BANKED;
        hand h;
        hand_init(&h, 2, 32, (int64_t)rows, (int64_t)cols, p, 1);
        h.ops[0].cols = (int64_t)cols;
        h.ops[0].pattern = (nmf_pattern){0, 0};
        h.ops[0].kind = NMF_STA_OP_DENSE;
        h.ops[1].weights = &m[variant == 3 ? 0 : variant];
        nmf_sta_result r;
        CHECK_OK(nmf_sta_simulate(&c, &h.s, 0, &r));
        cyc[variant] = r.ops ? r.ops[1].busy : 0;
        nmf_sta_result_free(&r);
    }
    printf("banked fetch: busy cycles random %llu, staggered %llu, aligned %llu, window %llu\n",
           (unsigned long long)cyc[0], (unsigned long long)cyc[1], (unsigned long long)cyc[2],
           (unsigned long long)cyc[3]);
    const uint64_t steps = cols / 64, tokens = 32;
    CHECK(cyc[1] == tokens * steps * 2); /* 16 columns spread 2 per bank */
    CHECK(cyc[2] == tokens * steps * 8); /* 16 columns in banks 0 and 1: 8 each */
    CHECK(cyc[3] == tokens * steps * 8); /* window: all 64 columns over 8 banks */
    CHECK(cyc[1] < cyc[0] && cyc[0] <= cyc[2]);
    for (int i = 0; i < 3; i++) nmf_nm_free(&m[i]);
    free(w);
}

static void test_deit_small(void) {
    nmf_model_config v;
    CHECK_OK(nmf_model_shape_config("deit-small", &v));
    CHECK(v.dim == 384 && v.depth == 12 && v.heads == 6 && nmf_vit_tokens(&v) == 197);
    nmf_sta_config c;
    nmf_sta_config_default(&c);
    nmf_sta_schedule s;
    CHECK_OK(nmf_sta_schedule_synthetic(&s, &v, (nmf_pattern){2, 8}, 0));
    CHECK(s.op_count == 2 + 12 * 12 + 1);
    nmf_sta_result r;
    double t0 = nmf_now();
    CHECK_OK(nmf_sta_simulate(&c, &s, 0, &r));
    printf("deit-small 2:8 timing-only simulation: %.4f s wall, %llu cycles\n", nmf_now() - t0,
           (unsigned long long)r.total.cycles);
    CHECK(r.total.useful_macs == analytic_macs(&v, 197, (nmf_pattern){2, 8}));
    nmf_sta_result_free(&r);
    nmf_sta_schedule_free(&s);
    CHECK_STATUS(nmf_model_shape_config("deit-huge", &v), NMF_ERR_NOT_FOUND);
}

int main(void) {
    test_compute_bound();
    test_bandwidth_bound();
    test_invariants();
    test_efficiency_vs_pattern();
    test_banked_positions();
    test_deit_small();
    return test_finish("sta_timing");
}
