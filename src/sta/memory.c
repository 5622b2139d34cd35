/* Memory system: buffer halves, the DRAM channel, and the tile pipeline that overlaps transfers
 * with compute (double buffering).
 *
 * DRAM: one channel, requests served one after another in order of readiness. A request of n
 * bytes takes  latency_cycles + ceil(n / burst) * burst / bytes_per_cycle  cycles, where
 * bytes_per_cycle = dram_gbps * 1e9 / (freq_mhz * 1e6). Time is kept in (fractional) cycles and
 * an op's end is rounded up to a whole cycle.
 *
 * Tile pipeline (per unit): tile i uses buffer half i mod 2 (double buffering) or the only half.
 * Its loads may start once that half is released (end of compute of tile i-2, or i-1) and the
 * DRAM channel is free; the weight part may even start during the previous op (weights are
 * parameters, known in advance), the activation part not before the op starts. Compute starts when
 * its loads are in and the unit is free; stores leave after compute. Per op:
 *   cycles = busy + fill + stall,  stall = time the unit waited for DRAM (>= 0 by construction). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/sta.h"
#include "sta/sta_internal.h"

void sta_buffers_of(const nmf_sta_config *c, sta_buffers *b) {
    uint64_t slots = c->double_buffer ? 2 : 1;
    b->weight_slot = (uint64_t)c->weight_buf_kib * 1024 / slots;
    b->act_slot = (uint64_t)c->act_buf_kib * 1024 / 2 / slots; /* streaming half */
    b->out_slot = (uint64_t)c->out_buf_kib * 1024 / slots;
    b->score_slot = (uint64_t)c->score_buf_kib * 1024;
}

static double bytes_per_cycle(const nmf_sta_config *c) {
    return c->dram_gbps * 1e9 / (c->freq_mhz * 1e6);
}

double nmf_sta_dram_cycles(const nmf_sta_config *c, uint64_t bytes) {
    if (!bytes) return 0.0;
    uint64_t burst = (uint64_t)c->dram_burst_bytes;
    double padded = (double)(sta_ceil_div(bytes, burst) * burst);
    return c->dram_latency_ns * c->freq_mhz * 1e-3 + padded / bytes_per_cycle(c);
}

nmf_status sta_event(sta_pipe *p, uint8_t unit, int is_write, double b, double e) {
    if (!p->record) return NMF_OK;
    nmf_sta_result *r = p->r;
    if (r->event_count == r->event_cap) {
        size_t cap = r->event_cap ? r->event_cap * 2 : 1024;
        nmf_sta_event *ev = realloc(r->events, cap * sizeof *ev);
        if (!ev) return nmf_error(NMF_ERR_NOMEM, "sta trace: out of memory");
        r->events = ev;
        r->event_cap = cap;
    }
    nmf_sta_event *ev = &r->events[r->event_count++];
    ev->op = p->op;
    ev->unit = unit;
    ev->is_write = (uint8_t)(is_write != 0);
    ev->begin = (uint64_t)floor(b);
    ev->end = (uint64_t)ceil(e);
    return NMF_OK;
}

/* One DRAM request ready at `ready`; returns its completion time. */
static nmf_status dram_request(sta_pipe *p, double ready, uint64_t bytes, int is_write,
                               double *done) {
    double s = ready > p->dram_free ? ready : p->dram_free;
    double e = s + nmf_sta_dram_cycles(p->c, bytes);
    p->dram_free = e;
    *done = e;
    return sta_event(p, 3, is_write, s, e);
}

static nmf_status flush_store(sta_pipe *p) {
    if (!p->has_pending_store) return NMF_OK;
    double done;
    nmf_status st = dram_request(p, p->pending_store_ready, (uint64_t)p->pending_store_bytes, 1,
                                 &done);
    if (st) return st;
    p->has_pending_store = 0;
    if (done > p->last_end) p->last_end = done;
    return NMF_OK;
}

void sta_pipe_begin_op(sta_pipe *p, uint32_t op, uint8_t unit, nmf_sta_op_result *res) {
    p->op = op;
    p->unit = unit;
    p->res = res;
    p->busy = 0;
    p->last_end = p->now;
}

nmf_status sta_pipe_tile(sta_pipe *p, uint64_t load_early, uint64_t load, uint64_t compute,
                         uint64_t store) {
    nmf_status st;
    int slot = p->c->double_buffer ? p->next_slot : 0;
    p->next_slot ^= 1;
    double slot_ready = p->slot_free[slot];
    double loaded = slot_ready > p->now ? slot_ready : p->now;
    if (load) {
        /* a queued store that is ready no later than this load goes first */
        double act_ready = slot_ready > p->now ? slot_ready : p->now;
        if (p->has_pending_store && p->pending_store_ready <= (load_early ? slot_ready : act_ready))
            if ((st = flush_store(p))) return st;
        double done = 0;
        if (load_early) {
            if ((st = dram_request(p, slot_ready, load_early, 0, &done))) return st;
            loaded = done;
        }
        if (load > load_early) {
            if (p->has_pending_store && p->pending_store_ready <= act_ready)
                if ((st = flush_store(p))) return st;
            if ((st = dram_request(p, act_ready, load - load_early, 0, &done))) return st;
            if (done > loaded) loaded = done;
        }
        if (loaded < p->now) loaded = p->now;
    }
    double cs = loaded > p->unit_free ? loaded : p->unit_free;
    if (cs < p->now) cs = p->now;
    double ce = cs + (double)compute;
    if (compute && (st = sta_event(p, p->unit, 0, cs, ce))) return st;
    p->unit_free = ce;
    p->slot_free[slot] = ce;
    p->busy += (double)compute;
    if (ce > p->last_end) p->last_end = ce;
    if (store) {
        if ((st = flush_store(p))) return st;
        p->has_pending_store = 1;
        p->pending_store_ready = ce;
        p->pending_store_bytes = (double)store;
    }
    p->res->tiles++;
    return NMF_OK;
}

nmf_status sta_pipe_end_op(sta_pipe *p, uint64_t fill) {
    /* the last results leave the pipeline `fill` cycles after the last compute cycle */
    p->unit_free += (double)fill;
    if (p->unit_free > p->last_end) p->last_end = p->unit_free;
    if (p->has_pending_store) {
        p->pending_store_ready += (double)fill;
        nmf_status st = flush_store(p);
        if (st) return st;
    }
    double end = ceil(p->last_end - 1e-9);
    if (end < p->now) end = p->now;
    uint64_t cycles = (uint64_t)(end - p->now);
    uint64_t busy = (uint64_t)llround(p->busy);
    nmf_sta_op_result *r = p->res;
    if (cycles < busy + fill) /* cannot happen: compute is serial and starts at or after now */
        return nmf_error(NMF_ERR_INVALID_ARG, "sta: internal timing error (cycles %llu < %llu)",
                         (unsigned long long)cycles, (unsigned long long)(busy + fill));
    r->cycles += cycles;
    r->busy += busy;
    r->fill += fill;
    r->stall += cycles - busy - fill;
    p->now = end;
    if (p->unit_free < end) p->unit_free = end;
    return NMF_OK;
}

uint64_t nmf_sta_value_bytes(const nmf_sta_config *c, uint64_t weights) {
    return weights * (uint64_t)sta_data_bytes(c);
}

uint64_t nmf_sta_meta_bytes(const nmf_sta_config *c, nmf_pattern p, uint64_t groups) {
    if (p.n <= 0) return 0;
    uint64_t bits = c->index == NMF_STA_INDEX_BITMAP ? (uint64_t)p.m : (uint64_t)nmf_nm_code_bits(p);
    return sta_ceil_div(groups * bits, 8);
}
