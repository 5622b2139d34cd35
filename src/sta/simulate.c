/* The simulation driver: decides which activation tensors stay on chip, then runs every op of the
 * schedule through its unit on one global clock (docs/STA.md, "timing model").
 *
 * Residency: half of the activation buffer keeps whole tensors. Tensors are considered in the
 * order they are produced; one becomes resident when, at every op of its live range (producer to
 * last consumer), it fits next to the resident tensors already alive there. The input image and
 * the logits always cross DRAM, and so do tensors marked in_dram (a decoder's key/value cache). A
 * tensor that is not resident is written to DRAM by its producer and read back by each consumer.
 *
 * Attention: for each head and each tile of query rows that the score buffer holds, the engine
 * computes Q K^T into the score buffer, the softmax unit turns the rows into probabilities in
 * place, and the engine computes P V from there; the three ops are reported separately. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/sta.h"
#include "sta/sta_internal.h"

static void decide_residency(const nmf_sta_config *c, nmf_sta_schedule *s) {
    const uint64_t pool = (uint64_t)c->act_buf_kib * 1024 / 2, db = (uint64_t)sta_data_bytes(c);
    uint64_t *occ = calloc(s->op_count ? s->op_count : 1, sizeof *occ);
    for (size_t t = 0; t < s->tensor_count; t++) {
        nmf_sta_tensor *ten = &s->tensors[t];
        ten->resident = 0;
        if (!occ) continue;
        long first = -1, last = -1;
        for (size_t i = 0; i < s->op_count; i++) {
            const nmf_sta_op *op = &s->ops[i];
            int touches = op->out == (int)t || op->in[0] == (int)t || op->in[1] == (int)t;
            if (op->out == (int)t && first < 0) first = (long)i;
            if (touches) last = (long)i;
        }
        if (first < 0 || last < 0 || ten->in_dram || !strcmp(ten->name, "logits"))
            continue; /* image / logits / the key-value cache / the model's output */
        uint64_t bytes = (uint64_t)ten->elems * db;
        int fits = 1;
        for (long i = first; i <= last && fits; i++) fits = occ[i] + bytes <= pool;
        if (!fits) continue;
        ten->resident = 1;
        for (long i = first; i <= last; i++) occ[i] += bytes;
    }
    free(occ);
}

static int resident(const nmf_sta_schedule *s, int t) {
    return t >= 0 && (size_t)t < s->tensor_count && s->tensors[t].resident;
}

static uint8_t unit_of(nmf_sta_op_kind k) {
    return k == NMF_STA_OP_SOFTMAX ? 1 : k == NMF_STA_OP_VECTOR ? 2 : 0;
}

static nmf_status run_attention(sta_pipe *p, const nmf_sta_config *c, nmf_sta_schedule *s,
                                size_t i, nmf_sta_result *r) {
    if (i + 2 >= s->op_count || s->ops[i + 1].kind != NMF_STA_OP_SOFTMAX ||
        s->ops[i + 2].attn_group != s->ops[i].attn_group)
        return nmf_error(NMF_ERR_INVALID_ARG, "sta: malformed attention group at %s", s->ops[i].name);
    const nmf_sta_op *qk = &s->ops[i], *sm = &s->ops[i + 1], *av = &s->ops[i + 2];
    const int64_t T = qk->rows, keys = qk->cols; /* queries; keys (T, or the cache in decode) */
    const uint64_t row_bytes = (uint64_t)keys * (uint64_t)sta_acc_bytes(c);
    int64_t Tq = (int64_t)((uint64_t)c->score_buf_kib * 1024 / row_bytes);
    if (Tq < 1)
        return nmf_error(NMF_ERR_INVALID_ARG,
                         "memory.score_buf_kib: %d KiB cannot hold one row of attention scores (%lld "
                         "tokens x %d bytes)",
                         c->score_buf_kib, (long long)keys, sta_acc_bytes(c));
    if (Tq > T) Tq = T;
    sta_residency rq = {resident(s, qk->in[0]), resident(s, qk->in[1]), 1},
                  ra = {1, resident(s, av->in[1]), resident(s, av->out)};
    int depth = nmf_sta_engine_depth(c, 0);
    nmf_status st;
    for (int h = 0; h < qk->batch; h++)
        for (int64_t q0 = 0; q0 < T; q0 += Tq) {
            int64_t q1 = q0 + Tq < T ? q0 + Tq : T;
            sta_pipe_begin_op(p, (uint32_t)i, 0, &r->ops[i]);
            if ((st = sta_engine_op(p, c, qk, &rq, q0, q1, s->seed ^ i))) return st;
            if ((st = sta_pipe_end_op(p, (uint64_t)depth))) return st;
            sta_pipe_begin_op(p, (uint32_t)(i + 1), 1, &r->ops[i + 1]);
            if ((st = sta_softmax_op(p, c, sm, q0, q1))) return st;
            if ((st = sta_pipe_end_op(p, (uint64_t)c->softmax_latency))) return st;
            sta_pipe_begin_op(p, (uint32_t)(i + 2), 0, &r->ops[i + 2]);
            if ((st = sta_engine_op(p, c, av, &ra, q0, q1, s->seed ^ (i + 2))))
                return st;
            if ((st = sta_pipe_end_op(p, (uint64_t)depth))) return st;
        }
    return NMF_OK;
}

nmf_status nmf_sta_simulate(const nmf_sta_config *c, nmf_sta_schedule *s, int record_events,
                            nmf_sta_result *r) {
    if (!c || !s || !r) return nmf_error(NMF_ERR_INVALID_ARG, "sta simulate: NULL argument");
    memset(r, 0, sizeof *r);
    nmf_status st = nmf_sta_config_validate(c);
    if (st) return st;
    r->ops = calloc(s->op_count ? s->op_count : 1, sizeof *r->ops);
    if (!r->ops) return nmf_error(NMF_ERR_NOMEM, "sta simulate: out of memory");
    decide_residency(c, s);
    sta_pipe p;
    memset(&p, 0, sizeof p);
    p.c = c;
    p.r = r;
    p.record = record_events;
    for (size_t i = 0; i < s->op_count; i++) {
        const nmf_sta_op *op = &s->ops[i];
        r->ops[i].start = (uint64_t)p.now;
        if (op->attn_group >= 0) {
            if ((st = run_attention(&p, c, s, i, r))) goto fail;
            r->ops[i + 1].start = r->ops[i].start;
            r->ops[i + 2].start = r->ops[i].start;
            i += 2;
            continue;
        }
        sta_pipe_begin_op(&p, (uint32_t)i, unit_of(op->kind), &r->ops[i]);
        if (op->kind == NMF_STA_OP_VECTOR) {
            int inr[NMF_STA_MAX_OP_INPUTS] = {resident(s, op->in[0]), resident(s, op->in[1])};
            if ((st = sta_vector_op(&p, c, op, inr, resident(s, op->out)))) goto fail;
            if ((st = sta_pipe_end_op(&p, (uint64_t)c->vector_latency))) goto fail;
        } else if (op->kind == NMF_STA_OP_SPARSE || op->kind == NMF_STA_OP_DENSE) {
            sta_residency rs = {resident(s, op->in[0]), 0, resident(s, op->out)};
            if ((st = sta_engine_op(&p, c, op, &rs, 0, op->rows, s->seed ^ i))) goto fail;
            int depth = nmf_sta_engine_depth(c, op->kind == NMF_STA_OP_SPARSE);
            if ((st = sta_pipe_end_op(&p, (uint64_t)depth))) goto fail;
        } else {
            st = nmf_error(NMF_ERR_INVALID_ARG, "sta simulate: softmax op %s outside attention",
                           op->name);
            goto fail;
        }
    }
    nmf_sta_total *t = &r->total;
    const double mults = (double)nmf_sta_multipliers(c);
    for (size_t i = 0; i < s->op_count; i++) {
        const nmf_sta_op_result *o = &r->ops[i];
        t->cycles += o->cycles;
        t->busy += o->busy;
        t->fill += o->fill;
        t->stall += o->stall;
        t->useful_macs += o->useful_macs;
        t->dram_read += o->dram_read;
        t->dram_write += o->dram_write;
    }
    t->time_ms = (double)t->cycles / (c->freq_mhz * 1e3);
    t->mac_efficiency = t->cycles ? (double)t->useful_macs / (mults * (double)t->cycles) : 0.0;
    t->compute_lower_bound = (uint64_t)ceil((double)t->useful_macs / mults);
    double bpc = c->dram_gbps * 1e9 / (c->freq_mhz * 1e6);
    t->dram_lower_bound = (uint64_t)floor((double)(t->dram_read + t->dram_write) / bpc);
    return NMF_OK;
fail:
    nmf_sta_result_free(r);
    return st;
}

void nmf_sta_result_free(nmf_sta_result *r) {
    if (!r) return;
    free(r->ops);
    free(r->events);
    memset(r, 0, sizeof *r);
}
