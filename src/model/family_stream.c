/* Family files made tensor by tensor: `prune` (magnitude) and `convert` to .nmf without holding
 * the model. The source is read one tensor at a time (src/io/model_stream.c); each tensor's
 * outputs (the dense copy, each pattern's N:M form) go to the incremental writer
 * (nmf_family_writer) and are freed before the next tensor is read. Peak memory: the largest
 * tensor in f32, its N:M forms and one stored payload (plus one read back to compare when two
 * payloads have the same CRC), never the model.
 *
 * Each tensor goes through the same functions as the whole-model path (nmf_model_prune,
 * nmf_model_pack_nm on a one-tensor set, which work tensor by tensor), so the values are the
 * same bit for bit; tensors land in the same entries, only the order of the payloads in the data
 * section differs (tensor after tensor instead of candidate after candidate).
 *
 * Wanda and SparseGPT (nmf_family_prune_file_oneshot) plan and write the same way; their
 * tensors go block by block instead, calibrated on the activations they keep
 * (src/prune/stream.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"
#include "core/tensor_internal.h"
#include "io/model_stream.h"
#include "model/prune_internal.h"
#include "prune/prune_internal.h"
#include "nmformer/desc.h"
#include "nmformer/model.h"

/* Plan of one candidate: src's headers, every N:M-eligible one as pattern p (p.n == 0: all
 * dense, as a dense copy is; keep_nm: N:M headers stay as they are). */
static nmf_status plan_candidate(nmf_family *plan, const char *name, const nmf_model_desc *d,
                                 const nmf_tensor_set *src, nmf_pattern p, int keep_nm) {
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    nmf_status st = nmf_tensors_copy_meta(src, &s);
    for (size_t i = 0; !st && i < src->count; i++) {
        const nmf_tensor *t = &src->items[i];
        const nmf_param *row = p.n ? nmf_model_nm_param(d, t->name) : NULL;
        nmf_pattern tp = {0, 0};
        int transposed = 0;
        if (row) {
            tp = p;
            transposed = nmf_param_kind_of(d, row)->in_axis == 0;
        } else if (keep_nm && t->nm) {
            tp = t->nm->pattern;
            transposed = t->nm_transposed;
        }
        st = nmf_tensors_add_header(&s, t->name, t->ndim, t->shape, tp, transposed, t->stored_dtype, NULL);
    }
    if (!st) st = nmf_family_add(plan, name, &s);
    nmf_tensors_free(&s);
    return st;
}

/* The source's stored dtype unless the caller names one. */
static nmf_dtype pick_dtype(nmf_dtype asked, nmf_dtype source) {
    return (unsigned)asked < NMF_DTYPE_COUNT ? asked : source;
}

nmf_status nmf_family_writer_add_planned(nmf_family_writer *w, const nmf_family *plan, size_t m,
                                         const nmf_tensor *t) {
    const nmf_tensor *want = nmf_tensors_find(&plan->models[m].tensors, t->name);
    if (!want || want->nm || !t->nm) return nmf_family_writer_add(w, m, t);
    nmf_tensor_set one;
    nmf_tensors_init(&one);
    nmf_tensor *copy;
    nmf_status st = nmf_tensors_add_dense(&one, t->name, t->ndim, t->shape, NULL, &copy);
    if (!st) st = nmf_tensor_dense(t, copy->data);
    if (!st) st = nmf_family_writer_add(w, m, copy);
    nmf_tensors_free(&one);
    return st;
}

/* The candidates of the family at path, each as a stream (names[i], streams[i]; *n of them), and
 * the dtype they share (F32 when they differ, as nmf_family_stored_dtype). */
static nmf_status open_candidates(const char *path, const nmf_config_overrides *overrides,
                                  nmf_model_stream **streams, char (*names)[32], size_t *n,
                                  nmf_dtype *stored) {
    nmf_family_file *f;
    *n = 0;
    nmf_status st = nmf_family_open(path, &f);
    if (st) return st;
    *n = nmf_family_file_count(f);
    for (size_t i = 0; i < *n; i++) snprintf(names[i], sizeof names[i], "%s", nmf_family_file_name(f, i));
    nmf_family_close(f);
    for (size_t i = 0; !st && i < *n; i++) {
        if ((st = nmf_model_stream_open(path, names[i], overrides, &streams[i])))
            st = nmf_error_context(st, "model '%s'", names[i]);
        const nmf_dtype t =
            st ? NMF_DTYPE_F32 : nmf_tensors_stored_dtype(nmf_model_stream_headers(streams[i]));
        *stored = i == 0 || t == *stored ? t : NMF_DTYPE_F32;
    }
    return st;
}

/* Every tensor of stream s to the writer as model m's, one at a time (pack: N:M-eligible weights
 * packed to it first; {0, 0}: as read). */
static nmf_status copy_candidate(nmf_family_writer *w, size_t m, nmf_model_stream *s,
                                 const nmf_model_config *c, nmf_pattern pack, nmf_progress_step *step) {
    const nmf_tensor_set *h = nmf_model_stream_headers(s);
    nmf_status st = NMF_OK;
    for (size_t j = 0; !st && j < h->count; j++) {
        nmf_tensor_set one;
        nmf_tensors_init(&one);
        st = nmf_model_stream_read(s, j, &one);
        if (!st && pack.n) st = nmf_model_pack_nm(c, &one, pack);
        if (!st) st = nmf_family_writer_add(w, m, &one.items[0]);
        if (!st) nmf_progress_advance(step, one.items[0].name, nmf_model_stream_bytes(s, j));
        nmf_tensors_free(&one);
    }
    return st;
}

/* nmf_family_prune_file, or with add (then out is an existing family) its candidates first,
 * copied tensor by tensor, and the new ones after them, the whole file replaced atomically. */
static nmf_status prune_file(const char *in, const char *model, const nmf_config_overrides *overrides,
                             const char *out, const nmf_pattern *patterns, size_t count, int with_dense,
                             int add, const nmf_prune_options *o, nmf_calib_loader load, void *user,
                             nmf_dtype dtype, nmf_family *written, nmf_dtype *dtype_used,
                             nmf_prune_stats *stats);

nmf_status nmf_family_prune_file(const char *in, const char *model, const nmf_config_overrides *overrides,
                                 const char *out, const nmf_pattern *patterns, size_t count, int with_dense,
                                 nmf_dtype dtype, nmf_family *written, nmf_dtype *dtype_used) {
    if (written) nmf_family_init(written);
    if (!in || !out || (count && !patterns))
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_prune_file: NULL argument");
    return prune_file(in, model, overrides, out, patterns, count, with_dense, 0, NULL, NULL, NULL, dtype,
                      written, dtype_used, NULL);
}

nmf_status nmf_family_extend_file(const char *in, const char *model, const nmf_config_overrides *overrides,
                                  const char *family, const nmf_pattern *patterns, size_t count,
                                  nmf_dtype dtype, nmf_family *written, nmf_dtype *dtype_used) {
    if (written) nmf_family_init(written);
    if (!in || !family || !patterns)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_extend_file: NULL argument");
    return prune_file(in, model, overrides, family, patterns, count, 0, 1, NULL, NULL, NULL, dtype, written,
                      dtype_used, NULL);
}

nmf_status nmf_family_prune_file_oneshot(const char *in, const char *model,
                                         const nmf_config_overrides *overrides, const char *out,
                                         const nmf_pattern *patterns, size_t count, int with_dense,
                                         int add, const nmf_prune_options *o, nmf_calib_loader load,
                                         void *user, nmf_dtype dtype, nmf_family *written,
                                         nmf_dtype *dtype_used, nmf_prune_stats *stats) {
    if (written) nmf_family_init(written);
    if (!in || !out || (count && !patterns))
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_prune_file_oneshot: NULL argument");
    return prune_file(in, model, overrides, out, patterns, count, add ? 0 : with_dense, add, o, load, user,
                      dtype, written, dtype_used, stats);
}

static nmf_status prune_file(const char *in, const char *model, const nmf_config_overrides *overrides,
                             const char *out, const nmf_pattern *patterns, size_t count, int with_dense,
                             int add, const nmf_prune_options *o, nmf_calib_loader load, void *user,
                             nmf_dtype dtype, nmf_family *written, nmf_dtype *dtype_used,
                             nmf_prune_stats *stats) {
    nmf_prune_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    const int calibrated = o && o->method != NMF_PRUNE_MAGNITUDE;
    if (o && (unsigned)o->method >= NMF_PRUNE_METHOD_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "pruning method %d", (int)o->method);
    if (calibrated && !load)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s needs calibration samples", nmf_prune_method_name(o->method));
    if (!count && !with_dense) return nmf_error(NMF_ERR_INVALID_ARG, "%s: no candidate to write", out);
    for (size_t k = 0; k < count; k++) {
        if (!nmf_pattern_valid(patterns[k]))
            return nmf_error(NMF_ERR_INVALID_ARG, "pattern %d:%d", patterns[k].n, patterns[k].m);
        for (size_t j = 0; j < k; j++)
            if (patterns[j].n == patterns[k].n && patterns[j].m == patterns[k].m)
                return nmf_error(NMF_ERR_INVALID_ARG, "pattern %d:%d given twice", patterns[k].n,
                                 patterns[k].m);
    }
    nmf_model_stream *src;
    nmf_status st = nmf_model_stream_open(in, model, overrides, &src);
    if (st) return st;
    const nmf_model_config *cfg = nmf_model_stream_config(src);
    const nmf_tensor_set *heads = nmf_model_stream_headers(src);
    nmf_calib cal = {0}; /* the samples, once the config says what they must be */
    if (calibrated) st = load(&cal, cfg, user);
    nmf_model_desc d;
    if (!st) st = nmf_model_describe(&d, cfg);
    if (st) {
        nmf_calib_free(&cal);
        nmf_model_stream_close(src);
        return st;
    }
    nmf_family plan;
    nmf_family_init(&plan);
    plan.config = *cfg;
    /* extending: the family's candidates come first, as they are; it keeps its stored dtype */
    nmf_model_stream *kept[NMF_FAMILY_MAX_MODELS] = {0};
    char kept_names[NMF_FAMILY_MAX_MODELS][32];
    size_t nkept = 0;
    nmf_dtype stored = nmf_tensors_stored_dtype(heads);
    if (add) st = open_candidates(out, NULL, kept, kept_names, &nkept, &stored);
    if (add && !st && !nkept) st = nmf_error(NMF_ERR_FORMAT, "%s: a family of no candidate", out);
    if (add && !st) st = nmf_family_same_config(nmf_model_stream_config(kept[0]), cfg);
    for (size_t i = 0; !st && i < nkept; i++)
        st = plan_candidate(&plan, kept_names[i], &d, nmf_model_stream_headers(kept[i]),
                            (nmf_pattern){0, 0}, 1);
    for (size_t k = 0; !st && k < count; k++) {
        char name[16];
        nmf_pattern_format(patterns[k], name, sizeof name);
        if (nmf_family_find(&plan, name))
            st = nmf_error(NMF_ERR_INVALID_ARG, "the family already holds a model named '%s'", name);
    }
    if (!st && with_dense) st = plan_candidate(&plan, "dense", &d, heads, (nmf_pattern){0, 0}, 0);
    for (size_t k = 0; !st && k < count; k++) {
        char name[16];
        nmf_pattern_format(patterns[k], name, sizeof name);
        st = plan_candidate(&plan, name, &d, heads, patterns[k], 0);
    }
    nmf_write_options opt = {pick_dtype(dtype, stored)};
    nmf_family_writer *w = NULL;
    if (!st) st = nmf_family_writer_open(out, &plan, &opt, &w);
    uint64_t total = 0;
    for (size_t i = 0; i < heads->count; i++) total += nmf_model_stream_bytes(src, i);
    for (size_t i = 0; !st && i < nkept; i++) /* every stream open when st is NMF_OK */
        for (size_t j = 0; j < nmf_model_stream_headers(kept[i])->count; j++)
            total += nmf_model_stream_bytes(kept[i], j);
    nmf_progress_step step;
    nmf_progress_begin(&step, "prune", in, total);
    for (size_t i = 0; !st && i < nkept; i++)
        st = copy_candidate(w, i, kept[i], cfg, (nmf_pattern){0, 0}, &step);
    const size_t first = nkept + (with_dense ? 1 : 0); /* plan model of patterns[0] */
    if (calibrated && !st) {
        const nmf_prune_sink sink = {w, &plan, src, cfg, &d, with_dense, nkept, first, &step};
        st = nmf_prune_streamed(&sink, patterns, count, o, &cal, stats);
    }
    for (size_t i = 0; !calibrated && !st && i < heads->count; i++) {
        nmf_tensor_set one;
        nmf_tensors_init(&one);
        st = nmf_model_stream_read(src, i, &one);
        const nmf_tensor *t = st ? NULL : &one.items[0];
        if (!st && with_dense) st = nmf_family_writer_add_planned(w, &plan, nkept, t);
        const int eligible = t && nmf_model_nm_param(&d, t->name) != NULL;
        for (size_t k = 0; !st && k < count; k++) {
            if (!eligible) { /* stays as it is: the writer shares the dense payload */
                st = nmf_family_writer_add_planned(w, &plan, first + k, t);
                continue;
            }
            nmf_tensor_set pruned;
            st = nmf_model_prune(cfg, &one, patterns[k], &pruned);
            if (!st) st = nmf_family_writer_add(w, first + k, &pruned.items[0]);
            if (st) st = nmf_error_context(st, "%s", plan.models[first + k].name);
            nmf_tensors_free(&pruned);
        }
        if (!st) nmf_progress_advance(&step, t->name, nmf_model_stream_bytes(src, i));
        nmf_tensors_free(&one);
    }
    if (st)
        nmf_family_writer_abort(w);
    else
        st = nmf_family_writer_commit(w);
    nmf_model_desc_free(&d);
    nmf_calib_free(&cal);
    nmf_model_stream_close(src);
    for (size_t i = 0; i < nkept; i++) nmf_model_stream_close(kept[i]);
    if (!st && dtype_used) *dtype_used = opt.value_dtype;
    if (!st && written)
        *written = plan;
    else
        nmf_family_free(&plan);
    return st;
}

/* Candidate `name` of a one-model source: a pattern name packs the eligible weights, which must
 * already be N:M (nmf_model_pack_nm, as nmf_family_from_model does). */
static int pattern_name(const char *name, nmf_pattern *p) {
    int ok = strcmp(name, "dense") && nmf_pattern_parse(name, p) == NMF_OK;
    nmf_clear_error(); /* a plain name is stored as it is */
    return ok;
}

nmf_status nmf_family_convert_file(const char *in, const char *model, const nmf_config_overrides *overrides,
                                   const char *out, nmf_dtype dtype, nmf_family *written,
                                   nmf_dtype *dtype_used) {
    return nmf_family_convert_file_precision(in, model, overrides, out, dtype, NMF_PREC_COUNT,
                                             written, dtype_used);
}

nmf_status nmf_family_convert_file_precision(const char *in, const char *model,
                                             const nmf_config_overrides *overrides, const char *out,
                                             nmf_dtype dtype, nmf_precision default_precision,
                                             nmf_family *written, nmf_dtype *dtype_used) {
    if (written) nmf_family_init(written);
    if (!in || !out) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_convert_file: NULL argument");
    if ((unsigned)default_precision > NMF_PREC_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_convert_file: precision %d unknown",
                         (int)default_precision);
    nmf_file_kind kind;
    nmf_status st = nmf_file_kind_detect(in, &kind);
    if (st) return st;
    /* the candidates to copy: every one of an .nmf (or the one named), else the one model */
    nmf_model_stream *srcs[NMF_FAMILY_MAX_MODELS] = {0};
    char names[NMF_FAMILY_MAX_MODELS][32]; /* the candidates' names */
    size_t n = 0;
    const char *cand_name = model ? model : "dense";
    nmf_pattern pack = {0, 0};
    nmf_dtype ignored;
    if (kind == NMF_FILE_NMF && !model) {
        st = open_candidates(in, overrides, srcs, names, &n, &ignored);
    } else {
        n = 1;
        snprintf(names[0], sizeof names[0], "%s", cand_name);
        st = nmf_model_stream_open(in, kind == NMF_FILE_NMF ? model : NULL, overrides, &srcs[0]);
        if (kind != NMF_FILE_NMF && !st && !pattern_name(cand_name, &pack)) pack.n = 0;
    }
    nmf_family plan;
    nmf_family_init(&plan);
    nmf_model_desc d = {0};
    int have_desc = 0;
    if (!st) {
        plan.config = *nmf_model_stream_config(srcs[0]);
        st = nmf_model_describe(&d, &plan.config);
        have_desc = !st;
    }
    nmf_dtype stored = NMF_DTYPE_F32;
    for (size_t i = 0; !st && i < n; i++) {
        const nmf_tensor_set *h = nmf_model_stream_headers(srcs[i]);
        st = plan_candidate(&plan, names[i], &d, h, pack, 1);
        if (!st && default_precision != NMF_PREC_COUNT)
            st = nmf_candidate_set_precision(&plan.models[plan.count - 1].tensors, default_precision);
        /* one dtype for all, as nmf_family_stored_dtype: F32 when they differ */
        nmf_dtype t = nmf_tensors_stored_dtype(h);
        stored = i == 0 || t == stored ? t : NMF_DTYPE_F32;
    }
    nmf_write_options opt = {pick_dtype(dtype, stored)};
    nmf_family_writer *w = NULL;
    if (!st) st = nmf_family_writer_open(out, &plan, &opt, &w);
    uint64_t total = 0;
    for (size_t i = 0; !st && i < n; i++)
        for (size_t j = 0; j < nmf_model_stream_headers(srcs[i])->count; j++)
            total += nmf_model_stream_bytes(srcs[i], j);
    nmf_progress_step step;
    nmf_progress_begin(&step, "convert", in, total);
    for (size_t i = 0; !st && i < n; i++) st = copy_candidate(w, i, srcs[i], &plan.config, pack, &step);
    if (st)
        nmf_family_writer_abort(w);
    else
        st = nmf_family_writer_commit(w);
    if (have_desc) nmf_model_desc_free(&d);
    for (size_t i = 0; i < n; i++) nmf_model_stream_close(srcs[i]);
    if (!st && dtype_used) *dtype_used = opt.value_dtype;
    if (!st && written)
        *written = plan;
    else
        nmf_family_free(&plan);
    return st;
}
