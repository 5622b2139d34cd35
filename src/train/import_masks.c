/* A pruned candidate's own N:M masks: its packed tensors say which weights it keeps (the
 * positions of every group), which is more than the values say (a kept weight may be 0, and
 * recomputing a magnitude mask would then pick another). Used where a candidate is trained on
 * with its mask fixed (`train --init FAMILY --init-model 2:8`) and evaluated as it is. */
#include <string.h>

#include "train/train_internal.h"

nmf_status nmf_vit_train_import_masks(nmf_vit_train *m, const nmf_tensor_set *s,
                                      nmf_pattern *pattern) {
    if (!m || !s) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_vit_train_import_masks: NULL argument");
    /* the pattern: that of the first packed N:M weight; every other one must share it */
    nmf_pattern p = {0, 0};
    const char *first = NULL;
    size_t packed = 0, eligible = 0;
    for (size_t i = 0; i < m->desc.count; i++) {
        const nmf_param *d = &m->desc.params[i];
        if (!m->desc.kinds[d->kind].nm) continue;
        eligible++;
        const nmf_tensor *t = nmf_tensors_find(s, d->name);
        if (!t || !t->nm) continue;
        if (!first) {
            p = t->nm->pattern;
            first = d->name;
        } else if (t->nm->pattern.n != p.n || t->nm->pattern.m != p.m) {
            return nmf_error(NMF_ERR_INVALID_ARG, "%s is %d:%d but %s is %d:%d: one pattern per "
                             "candidate", d->name, t->nm->pattern.n, t->nm->pattern.m, first, p.n, p.m);
        }
        if (t->nm->rows != d->rows || t->nm->cols != d->cols)
            return nmf_error(NMF_ERR_SHAPE, "%s: N:M weight of (%zu, %zu), the model's is (%zu, %zu)",
                             d->name, t->nm->rows, t->nm->cols, d->rows, d->cols);
        packed++;
    }
    if (pattern) *pattern = p;
    if (packed == 0) return nmf_vit_train_use_pattern(m, (nmf_pattern){0, 0}); /* dense */
    if (packed != eligible)
        return nmf_error(NMF_ERR_INVALID_ARG, "%zu of the %zu prunable weights are N:M (%s ...): a "
                         "candidate is pruned whole", packed, eligible, first);
    nmf_status st = nmf_vit_train_use_pattern(m, p);
    if (st != NMF_OK) return st;
    memset(m->mask_mem, 0, m->mask_total);
    for (size_t i = 0; i < m->desc.count; i++) {
        const nmf_param *d = &m->desc.params[i];
        if (!m->desc.kinds[d->kind].nm) continue;
        const nmf_nm_matrix *a = nmf_tensors_find(s, d->name)->nm;
        // mask (out, in) [r][g*M + pos] = 1 for every kept slot (padding columns dropped)
        uint8_t *mask = nmf_vit_train_mask(m, (nmf_vit_param)d->kind, d->block < 0 ? 0 : d->block);
        const size_t slots = a->groups * (size_t)p.n;
        for (size_t r = 0; r < a->rows; r++)
            for (size_t k = 0; k < slots; k++) {
                const size_t col = k / (size_t)p.n * (size_t)p.m + a->pos[r * slots + k];
                if (col < a->cols) mask[r * a->cols + col] = 1;
            }
    }
    nmf_vit_train_refresh_masked(m);
    return NMF_OK;
}
