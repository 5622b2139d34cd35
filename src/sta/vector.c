/* Timing of the vector unit: LayerNorm, GELU and residual add (docs/STA.md, "vector unit").
 *
 * V lanes. LayerNorm makes two passes over a row (sum and sum of squares, then normalise + scale
 * + shift; the inverse square root is one pipelined operation per row), GELU (a table lookup) and
 * add one. Rows are streamed in tiles through the activation buffer's streaming half when their
 * tensors are not resident. */
#include "nmformer/sta.h"
#include "sta/sta_internal.h"

nmf_status sta_vector_op(sta_pipe *p, const nmf_sta_config *c, const nmf_sta_op *op,
                         const int *in_resident, int out_resident) {
    sta_buffers buf;
    sta_buffers_of(c, &buf);
    const uint64_t db = (uint64_t)sta_data_bytes(c), width = (uint64_t)op->k;
    uint64_t streamed = 0; /* tensors streamed through the buffer per row */
    for (int i = 0; i < NMF_STA_MAX_OP_INPUTS; i++)
        if (op->in[i] >= 0 && !in_resident[i]) streamed++;
    if (!out_resident) streamed++;
    uint64_t rows = (uint64_t)op->rows, tile = rows;
    if (streamed) {
        tile = buf.act_slot / (width * db * streamed);
        if (tile == 0)
            return nmf_error(NMF_ERR_INVALID_ARG,
                             "memory.act_buf_kib: %d KiB cannot stream one row of %s (%llu x %llu "
                             "bytes x %llu tensors per buffer half)",
                             c->act_buf_kib, op->name, (unsigned long long)width,
                             (unsigned long long)db, (unsigned long long)streamed);
        if (tile > rows) tile = rows;
    }
    uint64_t passes = op->vec == NMF_STA_VEC_LAYERNORM ? 2 : 1;
    uint64_t per_row = passes * sta_ceil_div(width, (uint64_t)c->vector_lanes);
    nmf_sta_op_result *res = p->res;
    for (uint64_t r = 0; r < rows; r += tile) {
        uint64_t n = rows - r < tile ? rows - r : tile;
        uint64_t load = 0;
        for (int i = 0; i < NMF_STA_MAX_OP_INPUTS; i++)
            if (op->in[i] >= 0 && !in_resident[i]) load += n * width * db;
        uint64_t store = out_resident ? 0 : n * width * db;
        nmf_status st = sta_pipe_tile(p, 0, load, n * per_row, store);
        if (st) return st;
        res->act_read_bytes += load;
        res->act_write_bytes += store;
        res->dram_read += load;
        res->dram_write += store;
        res->elements += n * width;
        uint64_t occ = n * width * db * streamed;
        if (occ > res->act_buf_peak) res->act_buf_peak = occ;
    }
    return NMF_OK;
}
