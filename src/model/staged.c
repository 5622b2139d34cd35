/* A model run one stage at a time (staged.h): the ViT or a token model, shell first, parameters
 * as they come. */
#include <stdlib.h>

#include "model/desc_internal.h"
#include "model/lm_internal.h"
#include "model/staged.h"
#include "model/vit_internal.h"

struct nmf_staged {
    nmf_vit *vit; /* one of the two */
    nmf_lm *lm;
};

nmf_status nmf_staged_create(nmf_staged **out, const nmf_model_config *c) {
    *out = NULL;
    nmf_staged *s = calloc(1, sizeof *s);
    if (!s) return nmf_error(NMF_ERR_NOMEM, "staged model");
    nmf_status st = nmf_model_is_token(c) ? nmf_lm_create_shell(&s->lm, c) : nmf_vit_create_shell(&s->vit, c);
    if (st) {
        free(s);
        return st;
    }
    *out = s;
    return NMF_OK;
}

void nmf_staged_free(nmf_staged *s) {
    if (!s) return;
    nmf_vit_free(s->vit);
    nmf_lm_free(s->lm);
    free(s);
}

size_t nmf_staged_rows(const nmf_staged *s, const nmf_calib *cal) {
    return s->vit ? s->vit->T : cal->seq_len;
}

size_t nmf_staged_width(const nmf_staged *s) { return s->vit ? s->vit->D : s->lm->D; }

nmf_status nmf_staged_set_param(nmf_staged *s, const nmf_tensor *t) {
    const nmf_model_desc *d = s->vit ? &s->vit->desc : &s->lm->desc;
    float *buf = s->vit ? s->vit->param_buf : s->lm->param_buf;
    const nmf_param *p = nmf_model_desc_find(d, t->name);
    if (!p) return nmf_error(NMF_ERR_FORMAT, "unexpected tensor '%s'", t->name);
    return nmf_model_load_param(d, NMF_LAYOUT_DENSE, p, t, buf); /* no offset: the tail's */
}

nmf_status nmf_staged_set_block(nmf_staged *s, int l, const nmf_tensor_set *set) {
    return s->vit ? nmf_vit_set_block(s->vit, l, set) : nmf_lm_set_block(s->lm, l, set);
}

void nmf_staged_drop_block(nmf_staged *s, int l) {
    if (s->vit) nmf_vit_drop_block(s->vit, l);
    else nmf_lm_drop_block(s->lm, l);
}

nmf_status nmf_staged_embed(nmf_staged *s, const nmf_calib *cal, size_t i, size_t b, float *x,
                            nmf_observer obs, void *ctx) {
    if (s->vit) {
        if (!cal->images) return nmf_error(NMF_ERR_INVALID_ARG, "calibration set: not images");
        return nmf_vit_stage_embed(s->vit, cal->images + i * cal->sample_len, b, x, obs, ctx);
    }
    if (!cal->ids) return nmf_error(NMF_ERR_INVALID_ARG, "calibration set: not token ids");
    return nmf_lm_stage_embed(s->lm, cal->ids + i * cal->seq_len, b, cal->seq_len, x, obs, ctx);
}

nmf_status nmf_staged_block(nmf_staged *s, int l, size_t b, size_t rows, const float *x, float *y,
                            nmf_observer obs, void *ctx) {
    return s->vit ? nmf_vit_stage_block(s->vit, l, b, x, y, obs, ctx)
                  : nmf_lm_stage_block(s->lm, l, b, rows, x, y, obs, ctx);
}
