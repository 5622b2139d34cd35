/* The simulator's functional datapath: the fixed-point values the accelerator computes, op by op
 * over the same schedule the timing model runs, with the units' own data movement:
 *   engine   output tiles of D rows; per token and step, a window register of gpc*M activation
 *            columns (zeros past the end of the row) from which each multiplier's M:1 multiplexer
 *            picks the column named by its weight's N:M position (sparse), or L consecutive
 *            columns (dense); an adder tree sums the L products; the accumulator starts from the
 *            bias and saturates to acc_bits on readout; the output stage requantises.
 *   softmax  the running max is taken as the engine writes scores; then P lanes compute exp with
 *            per-lane partial sums, one reciprocal per row, and a scale pass.
 *   vector   LayerNorm from one pass of per-lane sums of x and x^2 (sum (Cx - S)^2 = C (C Q - S^2)),
 *            GELU by table, residual add with one shared shift.
 * fxp_ref.c computes the same numbers with plain dense loops; the tests require equality. */
#include <stdlib.h>
#include <string.h>

#include "model/patchify.h"
#include "nmformer/model.h"
#include "nmformer/sta.h"
#include "sta/fx_internal.h"

typedef struct {
    const nmf_sta_config *hw;
    int bits, acc_bits;
    int score_rows;  /* query rows the score buffer holds */
    int64_t *acc;    /* [D] accumulators */
    int16_t *win;    /* window register [L * max M] */
} fx_engine;

/* y[t][r] = requant(bias + sum W[r] . x[t]) for r in [0, rows); raw (if not NULL) receives the
 * saturated accumulators instead. tok_bias: per (token, row) bias [T][rows] or NULL. */
static nmf_status engine_linear(fx_engine *e, int16_t *y, int64_t *raw, const int16_t *x, int T,
                                const nmf_fx_linear *L, const int64_t *tok_bias) {
    const int D = e->hw->dpus, lanes = e->hw->lanes_per_dpu, K = L->cols;
    const int sparse = L->pattern.n > 0 && L->values;
    const int N = sparse ? L->pattern.n : 1, M = sparse ? L->pattern.m : 1;
    nmf_status st = fx_check_linear(L, e->hw, NULL);
    if (st) return st;
    const int gpc = lanes / N;
    const int groups = sparse ? (int)L->groups : K;
    for (int r0 = 0; r0 < L->rows; r0 += D) {
        const int rn = L->rows - r0 < D ? L->rows - r0 : D;
        for (int t = 0; t < T; t++) {
            const int16_t *xr = x + (size_t)t * K;
            for (int d = 0; d < rn; d++)
                e->acc[d] = tok_bias ? tok_bias[(size_t)t * L->rows + r0 + d] : L->bias[r0 + d];
            for (int g0 = 0; g0 < groups; g0 += gpc) {
                const int g1 = g0 + gpc < groups ? g0 + gpc : groups;
                /* window register: the columns of groups [g0, g1) */
                const int wn = (g1 - g0) * M;
                for (int w = 0; w < wn; w++) {
                    int col = g0 * M + w;
                    e->win[w] = col < K ? xr[col] : 0;
                }
                for (int d = 0; d < rn; d++) {
                    const int r = r0 + d;
                    int64_t tree = 0;
                    if (sparse) {
                        const size_t row = (size_t)r * L->groups * (size_t)N;
                        for (int lane = 0; lane < (g1 - g0) * N; lane++) {
                            const size_t idx = row + (size_t)g0 * N + (size_t)lane;
                            const int sel = (lane / N) * M + L->pos[idx]; /* the M:1 mux */
                            tree += (int64_t)L->values[idx] * e->win[sel];
                        }
                    } else {
                        const int16_t *w = L->w + (size_t)r * K + g0;
                        for (int lane = 0; lane < wn; lane++) tree += (int64_t)w[lane] * e->win[lane];
                    }
                    e->acc[d] += tree;
                }
            }
            for (int d = 0; d < rn; d++) {
                if (raw) raw[(size_t)t * L->rows + r0 + d] = nmf_fx_sat(e->acc[d], e->acc_bits);
                else y[(size_t)t * L->rows + r0 + d] = fx_out(e->acc[d], L->rq[r0 + d], e->bits, e->acc_bits);
            }
        }
    }
    return NMF_OK;
}

/* Attention of one block: per head, per tile of query rows held by the score buffer. */
static nmf_status engine_attention(fx_engine *e, int16_t *out, const int16_t *qkv,
                                   const nmf_fx_block *B, int T, int D, int heads) {
    const nmf_sta_config *hw = e->hw;
    const int dh = D / heads, lanes = hw->lanes_per_dpu, P = hw->softmax_lanes, Dp = hw->dpus;
    const int Tq = e->score_rows; /* query rows the score buffer holds (fx_check_design) */
    int64_t *score = malloc((size_t)Tq * T * sizeof *score); /* the score buffer */
    int64_t *rowmax = malloc((size_t)Tq * sizeof *rowmax);
    int64_t *lsum = malloc((size_t)P * sizeof *lsum);
    if (!score || !rowmax || !lsum) {
        free(score);
        free(rowmax);
        free(lsum);
        return nmf_error(NMF_ERR_NOMEM, "sta functional: out of memory");
    }
    for (int h = 0; h < heads; h++)
        for (int q0 = 0; q0 < T; q0 += Tq) {
            const int qn = T - q0 < Tq ? T - q0 : Tq;
            /* engine, dense x dense: DPU j holds key row j; steps of L over the head dimension */
            for (int i = 0; i < qn; i++) {
                const int16_t *q = qkv + (size_t)(q0 + i) * 3 * D + h * dh;
                for (int j0 = 0; j0 < T; j0 += Dp)
                    for (int j = j0; j < T && j < j0 + Dp; j++) {
                        const int16_t *k = qkv + (size_t)j * 3 * D + D + h * dh;
                        int64_t acc = 0;
                        for (int c0 = 0; c0 < dh; c0 += lanes) {
                            int64_t tree = 0;
                            for (int c = c0; c < dh && c < c0 + lanes; c++) tree += (int64_t)q[c] * k[c];
                            acc += tree;
                        }
                        int64_t s = nmf_fx_sat(acc, e->acc_bits);
                        score[(size_t)i * T + j] = s;
                        if (j == 0 || s > rowmax[i]) rowmax[i] = s; /* max on the fly */
                    }
            }
            /* softmax unit: P lanes, exp + partial sums, reciprocal, scale (in place) */
            for (int i = 0; i < qn; i++)
                fx_softmax_row(score + (size_t)i * T, T, rowmax[i], B->softmax_rq, P, e->bits, lsum);
            /* engine, dense x dense: DPU d holds column d of V; steps of L over the keys */
            for (int i = 0; i < qn; i++) {
                const int64_t *p = score + (size_t)i * T;
                for (int d0 = 0; d0 < dh; d0 += Dp)
                    for (int d = d0; d < dh && d < d0 + Dp; d++) {
                        int64_t acc = 0;
                        for (int j0 = 0; j0 < T; j0 += lanes) {
                            int64_t tree = 0;
                            for (int j = j0; j < T && j < j0 + lanes; j++)
                                tree += p[j] * qkv[(size_t)j * 3 * D + 2 * D + h * dh + d];
                            acc += tree;
                        }
                        out[(size_t)(q0 + i) * D + h * dh + d] = fx_out(acc, B->av_rq, e->bits, e->acc_bits);
                    }
            }
        }
    free(score);
    free(rowmax);
    free(lsum);
    return NMF_OK;
}

/* Vector unit LayerNorm, row by row (fx_rows.c). */
static void vector_layernorm(int16_t *y, const int16_t *x, const nmf_fx_norm *n, int rows, int C,
                             int V, int bits) {
    for (int t = 0; t < rows; t++) fx_layernorm_row(y + (size_t)t * C, x + (size_t)t * C, n, C, V, bits);
}

nmf_status nmf_sta_functional_forward(int64_t *logits, const int16_t *image, const nmf_fx_model *q,
                                      const nmf_sta_config *hw) {
    if (!logits || !image || !q || !hw || !q->blocks)
        return nmf_error(NMF_ERR_INVALID_ARG, "sta functional: NULL argument");
    int score_rows = 0;
    nmf_status st = fx_check_design(q, hw, &score_rows);
    if (st) return st;
    const nmf_model_config *v = &q->vit;
    nmf_sta_schedule s;
    if ((st = nmf_sta_schedule_synthetic(&s, v, (nmf_pattern){0, 0}, 0))) return st;
    const int T = s.tokens, D = v->dim, bits = q->data_bits;
    int16_t **ten = calloc(s.tensor_count, sizeof *ten);
    fx_engine e = {hw, bits, q->acc_bits, score_rows, malloc((size_t)hw->dpus * sizeof(int64_t)),
                   malloc((size_t)hw->lanes_per_dpu * NMF_NM_MAX_M * sizeof(int16_t))};
    if (!ten || !e.acc || !e.win) goto nomem;
    for (size_t i = 0; i < s.tensor_count; i++)
        if (!(ten[i] = malloc((size_t)s.tensors[i].elems * sizeof **ten))) goto nomem;
    for (size_t i = 0; i < s.op_count && !st; i++) {
        const nmf_sta_op *op = &s.ops[i];
        const nmf_fx_block *B = op->block >= 0 ? &q->blocks[op->block] : NULL;
        int16_t *in0 = op->in[0] >= 0 ? ten[op->in[0]] : NULL, *in1 = op->in[1] >= 0 ? ten[op->in[1]] : NULL;
        int16_t *out = op->out >= 0 ? ten[op->out] : NULL;
        switch ((nmf_vit_op)op->model_op) { /* the ViT's op list (model.h) */
        case NMF_OP_EMBED:
            /* the host writes the patches of the image into the image tensor */
            nmf_patchify(in0, image, sizeof *in0, 1, v->in_chans, v->img_size, v->patch);
            memcpy(out, q->cls, (size_t)D * sizeof *out);
            st = engine_linear(&e, out + D, NULL, in0, T - 1, &q->patch, q->patch_bias);
            break;
        case NMF_OP_NORM1:
        case NMF_OP_NORM2:
        case NMF_OP_NORM: {
            const nmf_fx_norm *n = op->model_op == NMF_OP_NORM ? &q->norm
                                   : op->model_op == NMF_OP_NORM1 ? &B->norm1 : &B->norm2;
            vector_layernorm(out, in0, n, (int)op->rows, D, hw->vector_lanes, bits);
            break;
        }
        case NMF_OP_ADD1:
        case NMF_OP_ADD2: {
            const int first = op->model_op == NMF_OP_ADD1;
            nmf_fx_rq ma = first ? B->add1_a : B->add2_a, mb = first ? B->add1_b : B->add2_b;
            for (size_t k = 0; k < (size_t)op->rows * (size_t)op->k; k++)
                out[k] = (int16_t)fx_add(in0[k], ma, in1[k], mb, bits);
            break;
        }
        case NMF_OP_GELU:
            for (size_t k = 0; k < (size_t)op->rows * (size_t)op->k; k++)
                out[k] = fx_gelu(B, in0[k], bits);
            break;
        case NMF_OP_ATTN: {
            /* qk, softmax, av: run together, head-interleaved */
            const nmf_sta_op *av = &s.ops[i + 2];
            st = engine_attention(&e, ten[av->out], in0, B, T, D, v->heads);
            i += 2;
            break;
        }
        case NMF_OP_HEAD: st = engine_linear(&e, NULL, logits, in0, 1, &q->head, NULL); break;
        case NMF_OP_QKV: st = engine_linear(&e, out, NULL, in0, T, &B->qkv, NULL); break;
        case NMF_OP_PROJ: st = engine_linear(&e, out, NULL, in0, T, &B->proj, NULL); break;
        case NMF_OP_FC1: st = engine_linear(&e, out, NULL, in0, T, &B->fc1, NULL); break;
        case NMF_OP_FC2: st = engine_linear(&e, out, NULL, in0, T, &B->fc2, NULL); break;
        default:
            st = nmf_error(NMF_ERR_INVALID_ARG, "sta functional: op '%s' is not a ViT op", op->name);
        }
    }
    goto out;
nomem:
    st = nmf_error(NMF_ERR_NOMEM, "sta functional: out of memory");
out:
    if (ten)
        for (size_t i = 0; i < s.tensor_count; i++) free(ten[i]);
    free(ten);
    free(e.acc);
    free(e.win);
    nmf_sta_schedule_free(&s);
    return st;
}
