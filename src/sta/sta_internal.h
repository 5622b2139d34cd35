/* Internals shared by the files of src/sta. */
#ifndef NMF_STA_INTERNAL_H
#define NMF_STA_INTERNAL_H

#include "nmformer/sta.h"

static inline int sta_data_bytes(const nmf_sta_config *c) { return c->data_bits / 8; }
static inline int sta_acc_bytes(const nmf_sta_config *c) { return (c->acc_bits + 7) / 8; }
static inline uint64_t sta_ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

uint64_t sta_min_weight_tile(const nmf_sta_config *c);
size_t sta_config_key_count(void);
void sta_config_key(const nmf_sta_config *c, size_t i, const char **section, const char **key,
                    int *is_string, double *num, const char **str);

/* ---- the tile pipeline (memory.c) ----
 * One unit (engine, softmax or vector) computes tiles in order. Tile i needs `load` bytes in its
 * buffer half before it starts, `load_early` of which (weights) may be fetched as soon as a half
 * is free; its `store` bytes go out after it. One DRAM channel serves everything in order of
 * readiness (stores first on ties). With double buffering tile i+1 loads while tile i computes. */
typedef struct {
    const nmf_sta_config *c;
    nmf_sta_result *r;      /* events go here when record */
    int record;
    uint32_t op;            /* index of the op being simulated (for events) */
    uint8_t unit;
    double now;             /* global time (cycles) the current op started */
    double dram_free;       /* DRAM channel busy until */
    double unit_free;       /* compute unit busy until (end of last tile) */
    double slot_free[2];    /* when each buffer half was last released */
    int next_slot;
    double pending_store_ready, pending_store_bytes; /* at most one store queued */
    int has_pending_store;
    double busy;            /* sum of tile compute cycles of the current op */
    double last_end;        /* latest completion of anything in the current op */
    nmf_sta_op_result *res;
} sta_pipe;

void sta_pipe_begin_op(sta_pipe *p, uint32_t op, uint8_t unit, nmf_sta_op_result *res);
nmf_status sta_pipe_tile(sta_pipe *p, uint64_t load_early, uint64_t load, uint64_t compute,
                         uint64_t store);
/* Flushes the queued store, adds the pipeline drain `fill`, closes the op. */
nmf_status sta_pipe_end_op(sta_pipe *p, uint64_t fill);
nmf_status sta_event(sta_pipe *p, uint8_t unit, int is_write, double b, double e);

/* ---- units ---- */
typedef struct {
    uint64_t act_slot, weight_slot, out_slot, score_slot; /* bytes per buffer half */
} sta_buffers;
void sta_buffers_of(const nmf_sta_config *c, sta_buffers *b);

/* Engine: one product op (or a slice of it: tokens [t0, t1) of batch element bi). */
typedef struct {
    int in_resident;      /* activation operand already on chip */
    int wt_resident;      /* dense x dense: the second operand (K or V) is on chip */
    int out_resident;     /* output stays on chip */
} sta_residency;
nmf_status sta_engine_op(sta_pipe *p, const nmf_sta_config *c, const nmf_sta_op *op,
                         const sta_residency *res, int64_t t0, int64_t t1, uint64_t seed);
nmf_status sta_softmax_op(sta_pipe *p, const nmf_sta_config *c, const nmf_sta_op *op, int64_t r0,
                          int64_t r1);
nmf_status sta_vector_op(sta_pipe *p, const nmf_sta_config *c, const nmf_sta_op *op,
                         const int *in_resident, int out_resident);

#endif
