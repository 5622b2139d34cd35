/* Timing of the scalable softmax unit (docs/STA.md, "softmax unit").
 *
 * P lanes. The running max of a row is taken on the fly while the engine writes the scores into
 * the score buffer, so the unit makes two passes over a row of T scores: exp + sum, then
 * reciprocal-scale (the reciprocal of the sum is one pipelined divide per row, overlapped with the
 * next row's first pass). A row costs 2 * ceil(T / P) cycles; the pipeline (latency cycles) fills
 * once per slice. Scores and probabilities never leave the chip. */
#include "nmformer/sta.h"
#include "sta/sta_internal.h"

nmf_status sta_softmax_op(sta_pipe *p, const nmf_sta_config *c, const nmf_sta_op *op, int64_t r0,
                          int64_t r1) {
    uint64_t rows = (uint64_t)(r1 - r0), per_row = 2 * sta_ceil_div((uint64_t)op->k,
                                                                     (uint64_t)c->softmax_lanes);
    nmf_status st = sta_pipe_tile(p, 0, 0, rows * per_row, 0);
    if (st) return st;
    p->res->elements += rows * (uint64_t)op->k;
    uint64_t occ = rows * (uint64_t)op->k * (uint64_t)sta_acc_bytes(c);
    if (occ > p->res->score_buf_peak) p->res->score_buf_peak = occ;
    return NMF_OK;
}
