/* ViT forward: patch embedding as a matmul over patches, pre-norm blocks, class-token head.
 * Shapes in comments: B images, T = P + 1 tokens, D width, H MLP hidden, K = C*p*p. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/staged.h"
#include "model/vit_internal.h"
#include "nmformer/ops.h"

/* Images a block runs at once in inference: as many as keep the largest activation (the MLP's
 * hidden rows, or qkv: T x max(H, 3D) floats an image) within BLOCK_GROUP_BYTES, at least one,
 * so that a block's activations stay in L2 from one op to the next while its weights are shared
 * by the groups. Grouping changes no value (every op is per token, attention per image).
 * DeiT-small (1.2 MB an image: groups of one), batch 32, one thread, Xeon model 207, ms an
 * image, the whole batch a block -> groups: f32 dense 70.6 -> 64.7, 1:8 29.3 -> 24.9; int8
 * dense 31.9 -> 24.2, 1:8 20.6 -> 11.8 (batch 1: 11.7) (`bench model --shape deit-small
 * --batch 32 --threads 1`; docs/PERFORMANCE.md). */
#define BLOCK_GROUP_BYTES ((size_t)1 << 20)
static size_t images_per_group(const nmf_vit *m) {
    const size_t per_image = m->T * (m->H > 3 * m->D ? m->H : 3 * m->D) * sizeof(float);
    return per_image < BLOCK_GROUP_BYTES ? BLOCK_GROUP_BYTES / per_image : 1;
}

/* Carves the arena for `batch` images whose blocks run `group` at a time (images_per_group):
 * the residual stream x and the class tokens hold the batch, every other buffer a group.
 * Reallocates only when the batch, the group or the thread count (attention scratch is per
 * thread) grows. */
static nmf_status arena_ensure(nmf_vit *m, size_t batch, size_t group) {
    nmf_vit_arena *a = &m->arena;
    int threads = nmf_get_threads();
    if (a->storage && batch <= a->batch && group <= a->group && threads <= a->threads) return NMF_OK;
    size_t bt, gt, sizes[6], total = 0;
    if (nmf_mul_overflow(batch, m->T, &bt) || nmf_mul_overflow(group, m->T, &gt))
        return nmf_error(NMF_ERR_NOMEM, "batch %zu: activation size overflows", batch);
    size_t work = nmf_mhsa_work_floats(m->T, m->head_dim);
    int bad = nmf_mul_overflow(group * m->P, m->K, &sizes[0]) | nmf_mul_overflow(gt, m->D, &sizes[1]) |
              nmf_mul_overflow(gt, 3 * m->D, &sizes[2]) | nmf_mul_overflow(gt, m->H, &sizes[3]) |
              nmf_mul_overflow(batch, m->D, &sizes[4]) | nmf_mul_overflow(bt, m->D, &sizes[5]);
    /* Buffers whose lifetimes do not overlap share memory:
     *   patches (only before block 0) with hid (MLP hidden);
     *   ln (read by qkv) with att (written after qkv has consumed ln). */
    size_t hid = sizes[0] > sizes[3] ? sizes[0] : sizes[3];
    size_t parts[] = {sizes[5] /* x */, sizes[1] /* ln, att */, sizes[2] /* qkv */,
                      hid /* hid, patches */, sizes[1] /* tmp */, sizes[4] /* cls */, work};
    /* every buffer rounded to 16 floats so that each starts 64-byte aligned */
    for (size_t i = 0; !bad && i < sizeof parts / sizeof parts[0]; i++)
        bad |= nmf_add_overflow(total, (parts[i] + 15) / 16 * 16, &total);
    if (bad) return nmf_error(NMF_ERR_NOMEM, "batch %zu: activation size overflows", batch);
    float *storage = nmf_alloc(total, sizeof(float));
    if (!storage)
        return nmf_error(NMF_ERR_NOMEM, "activation arena of %zu MB for batch %zu",
                         total * sizeof(float) >> 20, batch);
    nmf_free(a->storage);
    a->storage = storage;
    a->floats = total;
    a->batch = batch;
    a->group = group;
    a->threads = threads;
    float *p = storage;
    float **dst[] = {&a->x, &a->ln, &a->qkv, &a->hid, &a->tmp, &a->cls, &a->work};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        *dst[i] = p;
        p += (parts[i] + 15) / 16 * 16;
    }
    a->att = a->ln;
    a->patches = a->hid;
    a->work_floats = work;
    return NMF_OK;
}

/* The blocks run in place on x (no tape: nothing is saved for a backward). */
static nmf_vit_block_io block_io(const nmf_vit_arena *a) {
    return (nmf_vit_block_io){a->x, a->x, a->x, a->ln, a->ln, a->qkv, a->att,
                              a->hid, a->hid, a->tmp, a->work, a->work_floats};
}

/* B images of the model's shape, every value finite */
static nmf_status check_images(const nmf_vit *m, const float *images, size_t B) {
    const nmf_model_config *c = &m->config;
    const size_t per_image = (size_t)c->in_chans * (size_t)c->img_size * (size_t)c->img_size;
    size_t n;
    if (nmf_mul_overflow(B, per_image, &n))
        return nmf_error(NMF_ERR_INVALID_ARG, "vit forward: batch %zu too large", B);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(images[i]))
            return nmf_error(NMF_ERR_NUMERIC, "input image %zu has a non-finite value (%g) at "
                             "channel %zu, pixel %zu", i / per_image, (double)images[i],
                             i % per_image / ((size_t)c->img_size * (size_t)c->img_size),
                             i % ((size_t)c->img_size * (size_t)c->img_size));
    return NMF_OK;
}

/* arena x (B*T, D) = the stem of B checked images, on an arena sized for them whose blocks
 * run `group` images at a time (so does the stem: its buffers hold a group) */
static nmf_status stem(nmf_vit *m, const float *images, size_t B, size_t group,
                       const nmf_vit_observer *o) {
    const nmf_model_config *c = &m->config;
    nmf_status st = check_images(m, images, B);
    if (!st) st = arena_ensure(m, B, group);
    if (st) return st;
    nmf_vit_arena *a = &m->arena;
    const size_t per_image = (size_t)c->in_chans * (size_t)c->img_size * (size_t)c->img_size;
    nmf_vit_observe(o, NMF_OP_INPUT, -1, images, B, per_image);
    for (size_t b0 = 0; b0 < B; b0 += group) {
        const size_t n = B - b0 < group ? B - b0 : group;
        if ((st = nmf_vit_embed_forward(c, &m->p, m->stem, images + b0 * per_image, n, a->patches,
                                        a->tmp, a->x + b0 * m->T * m->D))) // (n*T, D)
            return st;
    }
    nmf_vit_observe(o, NMF_OP_EMBED, -1, a->x, B * m->T, m->D);
    return NMF_OK;
}

nmf_status nmf_vit_forward(nmf_vit *m, float *logits, const float *images, size_t B) {
    return nmf_vit_forward_observed(m, logits, images, B, NULL, NULL);
}

nmf_status nmf_vit_forward_observed(nmf_vit *m, float *logits, const float *images, size_t B,
                                    nmf_observer obs, void *ctx) {
    const nmf_vit_observer o = {obs, ctx};
    if (!m || !logits || !images || B == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "vit forward: NULL argument or empty batch");
    const nmf_model_config *c = &m->config;
    /* each block over groups of images whose activations stay in L2 (an observer sees whole
     * batches: one group) */
    const size_t fit = images_per_group(m), group = obs || fit > B ? B : fit;
    nmf_status st = stem(m, images, B, group, &o);
    if (st) return st;
    nmf_vit_arena *a = &m->arena;
    const size_t D = m->D;
    const nmf_block_shape shape = nmf_vit_block_shape(c);
    for (int i = 0; i < c->depth; i++)
        for (size_t b0 = 0; b0 < B; b0 += group) {
            nmf_vit_block_io io = block_io(a);
            io.x_out = io.x1 = a->x + b0 * m->T * D; /* in place, as block_io */
            io.x_in = io.x_out;
            const size_t n = B - b0 < group ? B - b0 : group;
            if ((st = nmf_vit_block_forward(&shape, &m->p, &m->blocks[i], i, n, &io, NULL, &o))) return st;
        }

    /* the observer sees the final norm's output with the logits (the tail is one call) */
    nmf_vit_head_forward(c, &m->p, a->x, B, a->cls, a->cls, NULL, NULL, logits);
    nmf_vit_observe(&o, NMF_OP_NORM, -1, a->cls, B, D);
    nmf_vit_observe(&o, NMF_OP_HEAD, -1, logits, B, m->classes);
    /* finite inputs can still overflow float32 (|x| ~ 1e38 through the patch embedding): say so
     * rather than hand back NaN logits as a result */
    for (size_t i = 0; i < B * m->classes; i++)
        if (!isfinite(logits[i]))
            return nmf_error(NMF_ERR_NUMERIC, "image %zu: non-finite logit (activations overflowed "
                             "float32; are the inputs normalised?)", i / m->classes);
    return NMF_OK;
}

/* ---- the same pieces one stage at a time (model/staged.h) ---- */

nmf_status nmf_vit_stage_embed(nmf_vit *m, const float *images, size_t B, float *x, nmf_observer obs,
                               void *ctx) {
    const nmf_vit_observer o = {obs, ctx};
    nmf_status st = stem(m, images, B, B, &o);
    if (!st) memcpy(x, m->arena.x, B * m->T * m->D * sizeof(float));
    return st;
}

nmf_status nmf_vit_stage_block(nmf_vit *m, int l, size_t B, const float *x, float *y, nmf_observer obs,
                               void *ctx) {
    const nmf_vit_observer o = {obs, ctx};
    nmf_status st = arena_ensure(m, B, B);
    if (st) return st;
    nmf_vit_arena *a = &m->arena;
    const size_t n = B * m->T * m->D;
    memcpy(a->x, x, n * sizeof(float));
    const nmf_vit_block_io io = block_io(a);
    const nmf_block_shape shape = nmf_vit_block_shape(&m->config);
    if ((st = nmf_vit_block_forward(&shape, &m->p, &m->blocks[l], l, B, &io, NULL, &o))) return st;
    memcpy(y, a->x, n * sizeof(float));
    return NMF_OK;
}
