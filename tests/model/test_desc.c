/* The model description: the parameter table of every preset (names, shapes, roles, N:M
 * eligibility, input axis), both buffer layouts tiling their buffers exactly, the check of a
 * tensor set against the table, and pruning / repacking driven by it. */
#include <stdint.h>

#include "nmformer/desc.h"
#include "nmformer/model.h"
#include "test.h"

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Every tensor of layout l sits at its own offset and together they tile [0, floats) exactly;
 * kinds appear in kind order, each kind's blocks one after the other. */
static int tiles(const nmf_model_desc *d, nmf_layout l) {
    size_t n = 0, (*span)[2] = malloc(d->count * sizeof *span);
    for (size_t i = 0; i < d->count; i++) {
        size_t off = nmf_model_desc_offset(d, l, &d->params[i]);
        if (off == SIZE_MAX) continue;
        span[n][0] = off, span[n][1] = d->params[i].numel, n++;
    }
    qsort(span, n, sizeof *span, cmp_size);
    size_t end = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= span[i][0] == end, end += span[i][1];
    free(span);
    size_t prev = 0;
    for (int k = 0; k < d->kind_count; k++) {
        if (d->kind_offset[l][k] == SIZE_MAX) continue;
        ok &= d->kind_offset[l][k] >= prev;
        prev = d->kind_offset[l][k];
    }
    return ok && end == d->floats[l];
}

static void preset(const char *name) {
    nmf_model_config c;
    CHECK_OK(nmf_model_shape_config(name, &c));
    nmf_model_desc d;
    CHECK_OK(nmf_model_describe(&d, &c));
    const size_t D = (size_t)c.dim, H = (size_t)nmf_vit_hidden(&c), L = (size_t)c.depth;
    CHECK(d.count == 8 + 12 * L && d.kind_count == NMF_VP_COUNT && !strcmp(d.family, "ViT"));
    size_t all = 0, nm = 0, nm_rows = 0;
    int ok = 1;
    for (size_t i = 0; i < d.count; i++) {
        const nmf_param *p = &d.params[i];
        const nmf_param_kind *k = nmf_param_kind_of(&d, p);
        ok &= nmf_model_desc_find(&d, p->name) == p; /* names unique and found */
        all += p->numel;
        int is_linear = strstr(p->name, ".weight") && (strstr(p->name, "attn.") || strstr(p->name, "mlp."));
        ok &= k->nm == is_linear && (k->role == NMF_ROLE_LINEAR_W) == is_linear;
        if (k->nm) {
            nm += p->numel, nm_rows++;
            /* timm linears are [out, in]: groups run along axis 1 */
            ok &= k->in_axis == 1 && p->ndim == 2 && p->rows == (size_t)p->shape[0] &&
                  p->cols == (size_t)p->shape[1];
            ok &= nmf_model_desc_offset(&d, NMF_LAYOUT_DENSE, p) == SIZE_MAX;
        } else {
            ok &= k->in_axis == -1;
        }
        ok &= (p->block >= 0) == (k->per_block != 0) && p->block < (int)L;
        ok &= nmf_param_role_decays(k->role) ==
              (k->nm || !strcmp(p->name, "patch_embed.proj.weight") || !strcmp(p->name, "head.weight"));
    }
    CHECK_MSG(ok, "%s: a row of the table is wrong", name);
    CHECK(nm_rows == 4 * L && nm == L * (4 * D * D + 2 * D * H));
    CHECK(all == d.floats[NMF_LAYOUT_ALL] && all - nm == d.floats[NMF_LAYOUT_DENSE]);
    CHECK_MSG(tiles(&d, NMF_LAYOUT_ALL) && tiles(&d, NMF_LAYOUT_DENSE), "%s: layouts", name);
    /* timm order and shapes at the ends */
    CHECK(!strcmp(d.params[0].name, "cls_token") && d.params[0].ndim == 3 && d.params[0].shape[2] == (int64_t)D);
    CHECK(!strcmp(d.params[1].name, "pos_embed") && d.params[1].shape[1] == nmf_vit_tokens(&c));
    CHECK(!strcmp(d.params[2].name, "patch_embed.proj.weight") && d.params[2].ndim == 4 &&
          d.params[2].rows == D && d.params[2].cols == (size_t)(c.in_chans * c.patch * c.patch));
    CHECK(!strcmp(d.params[d.count - 1].name, "head.bias") && d.params[d.count - 1].numel == (size_t)c.num_classes);
    const nmf_param *fc2 = nmf_model_desc_find(&d, "blocks.1.mlp.fc2.weight");
    CHECK(fc2 && fc2->block == 1 && fc2->kind == NMF_VP_FC2_W && fc2->rows == D && fc2->cols == H);
    CHECK(nmf_model_desc_find(&d, "blocks.99.mlp.fc2.weight") == NULL);
    /* the struct of pointers: block-0 tensors at the kind's offset, linear weights absent from
     * the dense layout */
    nmf_vit_params p;
    float *buf = (float *)(uintptr_t)4096; /* never dereferenced */
    nmf_vit_params_bind(&d, NMF_LAYOUT_DENSE, buf, &p);
    CHECK(p.qkv_w == NULL && p.fc2_w == NULL && p.ln1_w != NULL && p.head_b != NULL);
    CHECK(p.fc1_b == buf + nmf_model_desc_offset(&d, NMF_LAYOUT_DENSE, nmf_model_desc_find(&d, "blocks.0.mlp.fc1.bias")));
    nmf_vit_params_bind(&d, NMF_LAYOUT_ALL, buf, &p);
    CHECK(p.qkv_w == buf + nmf_model_desc_offset(&d, NMF_LAYOUT_ALL, nmf_model_desc_find(&d, "blocks.0.attn.qkv.weight")));
    nmf_model_desc_free(&d);
}

/* a set of the config's tensors with values v(i) = small pseudo-random numbers */
static void make_set(const nmf_model_desc *d, nmf_tensor_set *s) {
    unsigned long long seed = 5;
    nmf_tensors_init(s);
    for (size_t i = 0; i < d->count; i++) {
        nmf_tensor *t;
        CHECK_OK(nmf_tensors_add_dense(s, d->params[i].name, d->params[i].ndim, d->params[i].shape, NULL, &t));
        for (size_t k = 0; k < t->numel; k++) t->data[k] = test_rand_float(&seed);
    }
}

static void prune_and_check(void) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.depth = 2;
    nmf_model_desc d;
    CHECK_OK(nmf_model_describe(&d, &c));
    nmf_tensor_set dense, pruned;
    make_set(&d, &dense);
    CHECK_OK(nmf_model_check_tensors(&c, &dense));
    CHECK_OK(nmf_tensors_set_meta(&dense, "k", "v"));
    CHECK_OK(nmf_model_prune(&c, &dense, (nmf_pattern){2, 8}, &pruned));
    CHECK(pruned.count == dense.count && !strcmp(nmf_tensors_get_meta(&pruned, "k"), "v"));
    int ok = 1;
    for (size_t i = 0; i < d.count; i++) {
        const nmf_param *p = &d.params[i];
        const nmf_tensor *a = nmf_tensors_find(&dense, p->name), *b = nmf_tensors_find(&pruned, p->name);
        if (nmf_param_kind_of(&d, p)->nm) {
            /* packed 2:8 along the input axis, and the kept values are the 2 largest of each 8 */
            ok &= b->nm && b->nm->pattern.n == 2 && b->nm->pattern.m == 8 && b->nm->rows == p->rows;
            float *w = malloc(p->numel * sizeof *w);
            CHECK_OK(nmf_tensor_dense(b, w));
            for (size_t r = 0; r < p->rows; r++)
                for (size_t g = 0; g + 8 <= p->cols; g += 8) {
                    int kept = 0;
                    float min_kept = INFINITY, max_dropped = 0;
                    for (size_t j = g; j < g + 8; j++) {
                        float v = a->data[r * p->cols + j], got = w[r * p->cols + j];
                        if (got != 0) kept++, ok &= got == v, min_kept = fminf(min_kept, fabsf(v));
                        else max_dropped = fmaxf(max_dropped, fabsf(v));
                    }
                    ok &= kept == 2 && min_kept >= max_dropped;
                }
            free(w);
        } else {
            ok &= !b->nm && b->data && !memcmp(a->data, b->data, a->numel * sizeof(float));
        }
    }
    CHECK_MSG(ok, "pruning follows the table");
    CHECK_OK(nmf_model_check_tensors(&c, &pruned));
    /* repacking: the pruned model made dense again packs back to the same positions */
    nmf_tensor_set again;
    CHECK_OK(nmf_tensors_copy_dense(&pruned, &again));
    CHECK(nmf_tensors_find(&again, "blocks.0.attn.qkv.weight")->nm == NULL);
    CHECK_OK(nmf_model_pack_nm(&c, &again, (nmf_pattern){2, 8}));
    const nmf_tensor *x = nmf_tensors_find(&again, "blocks.1.mlp.fc2.weight"),
                     *y = nmf_tensors_find(&pruned, "blocks.1.mlp.fc2.weight");
    CHECK(x->nm && x->data == NULL && !memcmp(x->nm->values, y->nm->values,
                                              x->nm->rows * x->nm->groups * 2 * sizeof(float)));
    CHECK(nmf_tensors_find(&again, "head.weight")->nm == NULL);
    /* a dense model is not 1:8 sparse: the error names the tensor */
    CHECK_STATUS(nmf_model_pack_nm(&c, &dense, (nmf_pattern){1, 8}), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "blocks.0.attn.qkv.weight") && strstr(nmf_last_error(), "1:8"));
    /* N:M storage only where the table allows it */
    nmf_tensor *head = nmf_tensors_find(&pruned, "head.weight");
    nmf_nm_matrix hm;
    CHECK_OK(nmf_nm_pack(&hm, head->data, (size_t)head->shape[0], (size_t)head->shape[1], (nmf_pattern){2, 8}, 0));
    head->nm = malloc(sizeof hm);
    *head->nm = hm;
    CHECK_STATUS(nmf_model_check_tensors(&c, &pruned), NMF_ERR_FORMAT);
    CHECK(strstr(nmf_last_error(), "head.weight") != NULL);
    nmf_tensors_free(&dense), nmf_tensors_free(&pruned), nmf_tensors_free(&again);
    nmf_model_desc_free(&d);
}

int main(void) {
    const char *presets[] = {"vit-fmnist", "vit-fmnist-full", "deit-tiny", "deit-small", "deit-base"};
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) preset(presets[i]);
    /* DeiT-small has timm's 22,050,664 parameters, 21,233,664 of them in the block linears */
    nmf_model_config c;
    nmf_model_desc d;
    CHECK_OK(nmf_model_shape_config("deit-small", &c));
    CHECK_OK(nmf_model_describe(&d, &c));
    CHECK(d.floats[NMF_LAYOUT_ALL] == 22050664 && d.floats[NMF_LAYOUT_DENSE] == 22050664 - 21233664);
    nmf_model_desc_free(&d);
    /* configs that do not validate, or have no family, describe nothing */
    c.heads = 5;
    CHECK_STATUS(nmf_model_describe(&d, &c), NMF_ERR_INVALID_ARG);
    prune_and_check();
    return test_finish("desc");
}
