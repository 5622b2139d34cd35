/* Families built from one model: the candidates of a pruning run (dense + one per N:M pattern),
 * one model as a family (packed when named by a pattern), and the pick of candidates that
 * `convert` writes. The CLI's prune / convert and the Python package compose files from these, so
 * both write the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "nmformer/io.h"
#include "nmformer/model.h"
#include "nmformer/prune.h"
#include "model/prune_internal.h"

nmf_dtype nmf_family_stored_dtype(const nmf_family *f) {
    nmf_dtype t = f->count ? nmf_tensors_stored_dtype(&f->models[0].tensors) : NMF_DTYPE_F32;
    for (size_t i = 1; i < f->count; i++)
        if (nmf_tensors_stored_dtype(&f->models[i].tensors) != t) return NMF_DTYPE_F32;
    return t;
}

/* Configs compare as their JSON text: the one form every reader and writer agrees on. */
nmf_status nmf_family_same_config(const nmf_model_config *family, const nmf_model_config *source) {
    char *a = nmf_model_config_to_json(family), *b = nmf_model_config_to_json(source);
    nmf_status st = NMF_OK;
    if (!a || !b)
        st = nmf_error(NMF_ERR_NOMEM, "model config JSON");
    else if (strcmp(a, b))
        st = nmf_error(NMF_ERR_INVALID_ARG, "model config of the source differs from the family's "
                       "(%s vs %s)", b, a);
    free(a);
    free(b);
    return st;
}

nmf_status nmf_family_prune(nmf_family *fam, const nmf_model_config *cfg, const nmf_tensor_set *src,
                            const nmf_pattern *patterns, size_t count, int with_dense,
                            nmf_dtype *default_dtype) {
    return nmf_family_prune_oneshot(fam, cfg, src, patterns, count, with_dense, NULL, NULL,
                                    default_dtype, NULL);
}

nmf_status nmf_family_prune_oneshot(nmf_family *fam, const nmf_model_config *cfg,
                                    const nmf_tensor_set *src, const nmf_pattern *patterns,
                                    size_t count, int with_dense, const nmf_prune_options *o,
                                    const nmf_calib *cal, nmf_dtype *default_dtype,
                                    nmf_prune_stats *stats) {
    if (!fam || !cfg || !src || (count && !patterns))
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_prune: NULL argument");
    nmf_status st = nmf_family_same_config(&fam->config, cfg);
    if (st) return st;
    /* a family being extended is rewritten whole: it keeps its stored dtype; a new one takes the
     * source's (a BF16 source stays BF16) */
    if (default_dtype)
        *default_dtype = fam->count ? nmf_family_stored_dtype(fam) : nmf_tensors_stored_dtype(src);
    for (size_t k = 0; k < count; k++) { /* every name checked before anything is added */
        char name[16];
        nmf_pattern_format(patterns[k], name, sizeof name);
        if (nmf_family_find(fam, name))
            return nmf_error(NMF_ERR_INVALID_ARG, "the family already holds a model named '%s'", name);
        for (size_t j = 0; j < k; j++)
            if (patterns[j].n == patterns[k].n && patterns[j].m == patterns[k].m)
                return nmf_error(NMF_ERR_INVALID_ARG, "pattern %s given twice", name);
    }
    if (with_dense) {
        nmf_tensor_set copy;
        st = nmf_tensors_copy_dense(src, &copy);
        if (!st) st = nmf_family_add(fam, "dense", &copy);
        nmf_tensors_free(&copy);
        if (st) return nmf_error_context(st, "dense");
    }
    /* every pattern in one call: Wanda's statistics are gathered once for all of them */
    nmf_tensor_set *pruned = calloc(count ? count : 1, sizeof *pruned);
    if (!pruned) return nmf_error(NMF_ERR_NOMEM, "%zu candidates", count);
    st = nmf_prune_oneshot(cfg, src, patterns, count, o, cal, pruned, stats);
    for (size_t k = 0; !st && k < count; k++) {
        char name[16];
        nmf_pattern_format(patterns[k], name, sizeof name);
        st = nmf_family_add(fam, name, &pruned[k]);
        if (st) st = nmf_error_context(st, "%s", name);
    }
    for (size_t k = 0; k < count; k++) nmf_tensors_free(&pruned[k]); /* added ones are empty */
    free(pruned);
    return st;
}

nmf_status nmf_family_from_model(nmf_family *fam, const nmf_model_config *cfg, nmf_tensor_set *tensors,
                                 const char *name) {
    if (!fam || !cfg || !tensors) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_from_model: NULL argument");
    nmf_family_init(fam);
    if (!name) name = "dense";
    nmf_pattern p;
    nmf_status st = NMF_OK;
    if (strcmp(name, "dense") != 0 && nmf_pattern_parse(name, &p) == NMF_OK)
        st = nmf_model_pack_nm(cfg, tensors, p);
    else
        nmf_clear_error(); /* a plain name, stored as it is */
    if (st) return st;
    fam->config = *cfg;
    return nmf_family_add(fam, name, tensors);
}

nmf_status nmf_family_select(nmf_family *fam, const char *name) {
    if (!fam) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_select: NULL argument");
    for (size_t i = 0; i < fam->count; i++) {
        nmf_status st = nmf_model_check_tensors(&fam->config, &fam->models[i].tensors);
        if (st) return nmf_error_context(st, "model '%s'", fam->models[i].name);
    }
    if (!name) return NMF_OK;
    nmf_candidate *c = nmf_family_find(fam, name);
    if (!c) return nmf_error(NMF_ERR_NOT_FOUND, "no model '%s'", name);
    nmf_family one;
    nmf_family_init(&one);
    one.config = fam->config;
    nmf_status st = nmf_family_add(&one, c->name, &c->tensors);
    if (st) {
        nmf_family_free(&one);
        return st;
    }
    nmf_family_free(fam);
    *fam = one;
    return NMF_OK;
}
