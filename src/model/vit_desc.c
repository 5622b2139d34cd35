/* The ViT family's description: timm names, shapes and roles; the struct of pointers over a
 * parameter buffer. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "model/desc_internal.h"
#include "nmformer/model.h"

/* name, role, per_block, nm, in_axis -- in buffer order (= nmf_vit_param order) */
static const nmf_param_kind vit_kinds[] = {
    [NMF_VP_PATCH_W] = {"patch_embed.proj.weight", NMF_ROLE_EMBED, 0, 0, -1},
    [NMF_VP_PATCH_B] = {"patch_embed.proj.bias", NMF_ROLE_BIAS, 0, 0, -1},
    [NMF_VP_CLS] = {"cls_token", NMF_ROLE_CLS, 0, 0, -1},
    [NMF_VP_POS] = {"pos_embed", NMF_ROLE_POS, 0, 0, -1},
    [NMF_VP_LN1_W] = {"norm1.weight", NMF_ROLE_NORM_W, 1, 0, -1},
    [NMF_VP_LN1_B] = {"norm1.bias", NMF_ROLE_NORM_B, 1, 0, -1},
    [NMF_VP_QKV_W] = {"attn.qkv.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_VP_QKV_B] = {"attn.qkv.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_VP_PROJ_W] = {"attn.proj.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_VP_PROJ_B] = {"attn.proj.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_VP_LN2_W] = {"norm2.weight", NMF_ROLE_NORM_W, 1, 0, -1},
    [NMF_VP_LN2_B] = {"norm2.bias", NMF_ROLE_NORM_B, 1, 0, -1},
    [NMF_VP_FC1_W] = {"mlp.fc1.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_VP_FC1_B] = {"mlp.fc1.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_VP_FC2_W] = {"mlp.fc2.weight", NMF_ROLE_LINEAR_W, 1, 1, 1},
    [NMF_VP_FC2_B] = {"mlp.fc2.bias", NMF_ROLE_BIAS, 1, 0, -1},
    [NMF_VP_NORM_W] = {"norm.weight", NMF_ROLE_NORM_W, 0, 0, -1},
    [NMF_VP_NORM_B] = {"norm.bias", NMF_ROLE_NORM_B, 0, 0, -1},
    [NMF_VP_HEAD_W] = {"head.weight", NMF_ROLE_HEAD_W, 0, 0, -1},
    [NMF_VP_HEAD_B] = {"head.bias", NMF_ROLE_HEAD_B, 0, 0, -1},
};
_Static_assert(sizeof vit_kinds / sizeof vit_kinds[0] == NMF_VP_COUNT, "a row per nmf_vit_param");
_Static_assert(NMF_VP_COUNT <= NMF_DESC_MAX_KINDS, "NMF_DESC_MAX_KINDS too small");
_Static_assert(sizeof(nmf_vit_params) == NMF_VP_COUNT * sizeof(float *),
               "nmf_vit_params must hold one pointer per nmf_vit_param, in kind order");

/* timm's state_dict order: cls, pos, patch embedding, blocks, norm, head */
static const nmf_vit_param order_top[] = {NMF_VP_CLS, NMF_VP_POS, NMF_VP_PATCH_W, NMF_VP_PATCH_B};
static const nmf_vit_param order_end[] = {NMF_VP_NORM_W, NMF_VP_NORM_B, NMF_VP_HEAD_W, NMF_VP_HEAD_B};
#define BLOCK_KINDS (NMF_VP_FC2_B - NMF_VP_LN1_W + 1)

static size_t vit_count(const nmf_model_config *c) { return 8 + BLOCK_KINDS * (size_t)c->depth; }

static void vit_shape(const nmf_model_config *c, nmf_vit_param k, nmf_param *p) {
    const int64_t D = c->dim, H = nmf_vit_hidden(c), P = c->patch, T = nmf_vit_tokens(c);
    const int64_t K = c->num_classes;
    int64_t s[NMF_MAX_DIMS] = {D};
    int n = 1;
    switch (k) {
    case NMF_VP_CLS: n = 3, s[0] = 1, s[1] = 1, s[2] = D; break;
    case NMF_VP_POS: n = 3, s[0] = 1, s[1] = T, s[2] = D; break;
    case NMF_VP_PATCH_W: n = 4, s[1] = c->in_chans, s[2] = P, s[3] = P; break;
    case NMF_VP_QKV_W: n = 2, s[0] = 3 * D, s[1] = D; break;
    case NMF_VP_QKV_B: s[0] = 3 * D; break;
    case NMF_VP_PROJ_W: n = 2, s[1] = D; break;
    case NMF_VP_FC1_W: n = 2, s[0] = H, s[1] = D; break;
    case NMF_VP_FC1_B: s[0] = H; break;
    case NMF_VP_FC2_W: n = 2, s[1] = H; break;
    case NMF_VP_HEAD_W: n = 2, s[0] = K, s[1] = D; break;
    case NMF_VP_HEAD_B: s[0] = K; break;
    default: break; /* (D) vectors */
    }
    p->ndim = n;
    memcpy(p->shape, s, sizeof s);
}

static void row(const nmf_model_config *c, nmf_param *p, nmf_vit_param k, int block) {
    memset(p, 0, sizeof *p);
    p->kind = (int)k;
    p->block = block;
    if (block >= 0) snprintf(p->name, sizeof p->name, "blocks.%d.%s", block, vit_kinds[k].name);
    else snprintf(p->name, sizeof p->name, "%s", vit_kinds[k].name);
    vit_shape(c, k, p);
}

static void vit_build(const nmf_model_config *c, nmf_param *rows) {
    size_t n = 0;
    for (size_t i = 0; i < sizeof order_top / sizeof order_top[0]; i++) row(c, &rows[n++], order_top[i], -1);
    for (int b = 0; b < c->depth; b++)
        for (int k = NMF_VP_LN1_W; k <= NMF_VP_FC2_B; k++) row(c, &rows[n++], (nmf_vit_param)k, b);
    for (size_t i = 0; i < sizeof order_end / sizeof order_end[0]; i++) row(c, &rows[n++], order_end[i], -1);
}

static const nmf_model_family vit_family = {"ViT", vit_kinds, NMF_VP_COUNT, vit_count, vit_build};

const nmf_model_family *nmf_vit_family(void) { return &vit_family; }

void nmf_vit_params_bind(const nmf_model_desc *d, nmf_layout l, float *buf, nmf_vit_params *p) {
    float **slot = (float **)p;
    for (int k = 0; k < NMF_VP_COUNT; k++)
        slot[k] = d->kind_offset[l][k] == SIZE_MAX ? NULL : buf + d->kind_offset[l][k];
}

const char *nmf_vit_param_name(nmf_vit_param p) {
    return (unsigned)p < NMF_VP_COUNT ? vit_kinds[p].name : "?";
}
int nmf_vit_param_is_block(nmf_vit_param p) {
    return (unsigned)p < NMF_VP_COUNT && vit_kinds[p].per_block;
}
int nmf_vit_param_prunable(nmf_vit_param p) { return (unsigned)p < NMF_VP_COUNT && vit_kinds[p].nm; }
int nmf_vit_param_decays(nmf_vit_param p) {
    return (unsigned)p < NMF_VP_COUNT && nmf_param_role_decays(vit_kinds[p].role);
}

/* The op list; its ids are nmf_vit_op's (model.h), so the observer sees this order. */
static const nmf_op_row stem_ops[] = {
    {NMF_OP_EMBED, "patch_embed", "x0", NMF_OPK_EMBED, NMF_VP_PATCH_W, NMF_OPIN_NONE, NMF_OPIN_NONE, 0, NMF_OPIN_NONE},
};
static const nmf_op_row block_ops[] = {
    {NMF_OP_NORM1, "norm1", "ln1", NMF_OPK_NORM, NMF_VP_LN1_W, NMF_OPIN_BLOCK, NMF_OPIN_NONE, 0, NMF_OPIN_NONE},
    {NMF_OP_QKV, "attn.qkv", "qkv", NMF_OPK_LINEAR, NMF_VP_QKV_W, NMF_OP_NORM1, NMF_OPIN_NONE, 0, NMF_OPIN_NONE},
    {NMF_OP_ATTN, "attn.av", "attn", NMF_OPK_ATTENTION, -1, NMF_OP_QKV, NMF_OPIN_NONE, 0, NMF_OPIN_NONE},
    {NMF_OP_PROJ, "attn.proj", "proj", NMF_OPK_LINEAR, NMF_VP_PROJ_W, NMF_OP_ATTN, NMF_OPIN_NONE, 0, NMF_OPIN_NONE},
    {NMF_OP_ADD1, "add1", "x1", NMF_OPK_ADD, -1, NMF_OPIN_BLOCK, NMF_OP_PROJ, 0, NMF_OPIN_NONE},
    {NMF_OP_NORM2, "norm2", "ln2", NMF_OPK_NORM, NMF_VP_LN2_W, NMF_OP_ADD1, NMF_OPIN_NONE, 0, NMF_OPIN_NONE},
    {NMF_OP_FC1, "mlp.fc1", "fc1", NMF_OPK_LINEAR, NMF_VP_FC1_W, NMF_OP_NORM2, NMF_OPIN_NONE, 0, NMF_OPIN_NONE},
    {NMF_OP_GELU, "mlp.gelu", "gelu", NMF_OPK_GELU, -1, NMF_OP_FC1, NMF_OPIN_NONE, 0, NMF_OPIN_NONE},
    {NMF_OP_FC2, "mlp.fc2", "fc2", NMF_OPK_LINEAR, NMF_VP_FC2_W, NMF_OP_GELU, NMF_OPIN_NONE, 0, NMF_OPIN_NONE},
    {NMF_OP_ADD2, "add2", "x2", NMF_OPK_ADD, -1, NMF_OP_ADD1, NMF_OP_FC2, 0, NMF_OPIN_NONE},
};
static const nmf_op_row tail_ops[] = {
    {NMF_OP_NORM, "norm", "norm", NMF_OPK_NORM, NMF_VP_NORM_W, NMF_OPIN_BLOCK, NMF_OPIN_NONE, 1, NMF_OPIN_NONE},
    {NMF_OP_HEAD, "head", "logits", NMF_OPK_LINEAR, NMF_VP_HEAD_W, NMF_OP_NORM, NMF_OPIN_NONE, 1, NMF_OPIN_NONE},
};

const nmf_op_row *nmf_vit_stem_ops(int *n) {
    *n = (int)(sizeof stem_ops / sizeof stem_ops[0]);
    return stem_ops;
}
const nmf_op_row *nmf_vit_block_ops(int *n) {
    *n = (int)(sizeof block_ops / sizeof block_ops[0]);
    return block_ops;
}
const nmf_op_row *nmf_vit_tail_ops(int *n) {
    *n = (int)(sizeof tail_ops / sizeof tail_ops[0]);
    return tail_ops;
}
