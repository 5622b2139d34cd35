/* One model streamed to a dense output, a .safetensors file or a Hugging Face model folder
 * (nmf_dense_convert_file): `convert IN OUT.safetensors|OUT_DIR` and `prune IN OUT.safetensors`
 * by magnitude without holding the model.
 *
 * The output's header (or config.json and the shard plan) is fixed by the source's headers
 * (src/io/model_stream.c), so it is written first; then each tensor is read, pruned when asked
 * (nmf_model_prune on a one-tensor set, as src/model/family_stream.c does, so the values are
 * the whole-model path's bit for bit), handed to the writer and freed before the next is read.
 * Peak memory: the largest tensor in f32, its N:M form and its unpacked copy, one encode buffer. */
#include "core/progress.h"
#include "core/tensor_internal.h"
#include "io/io_internal.h"
#include "io/model_stream.h"
#include "model/prune_internal.h"
#include "nmformer/desc.h"
#include "nmformer/model.h"

/* The one output, a safetensors file or a model folder. */
typedef struct {
    nmf_io_st_writer *file;
    nmf_io_hf_writer *folder;
} dense_sink;

static nmf_status sink_add(dense_sink *k, const nmf_tensor *t) {
    return k->folder ? nmf_io_hf_writer_add(k->folder, t) : nmf_io_st_writer_add(k->file, t);
}

static nmf_status sink_finish(dense_sink *k, nmf_status st) {
    if (st) {
        nmf_io_hf_writer_abort(k->folder);
        nmf_io_st_writer_abort(k->file);
        return st;
    }
    return k->folder ? nmf_io_hf_writer_commit(k->folder) : nmf_io_st_writer_commit(k->file);
}

/* Tensor i of the source as it is written: read, and pruned when it is an eligible weight. */
static nmf_status next_tensor(nmf_model_stream *src, size_t i, const nmf_model_desc *d, nmf_pattern p,
                              nmf_tensor_set *out) {
    nmf_tensors_init(out);
    nmf_status st = nmf_model_stream_read(src, i, out);
    if (st || !p.n || !nmf_model_nm_param(d, out->items[0].name)) return st;
    nmf_tensor_set pruned;
    st = nmf_model_prune(nmf_model_stream_config(src), out, p, &pruned);
    nmf_tensors_free(out); /* the source tensor goes before the pruned one is unpacked */
    if (st) return st;
    *out = pruned;
    return NMF_OK;
}

nmf_status nmf_dense_convert_file(const char *in, const char *model, const nmf_config_overrides *overrides,
                                  const char *out, const nmf_dense_write_options *opt, nmf_dtype *dtype_used) {
    if (!in || !out || !opt) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_dense_convert_file: NULL argument");
    if (opt->prune.n && !nmf_pattern_valid(opt->prune))
        return nmf_error(NMF_ERR_INVALID_ARG, "pattern %d:%d", opt->prune.n, opt->prune.m);
    nmf_model_stream *src;
    nmf_status st = nmf_model_stream_open(in, model, overrides, &src);
    if (st) return st;
    const nmf_model_config *cfg = nmf_model_stream_config(src);
    const nmf_tensor_set *heads = nmf_model_stream_headers(src);
    const nmf_dtype dtype = (unsigned)opt->dtype < NMF_DTYPE_COUNT ? opt->dtype : nmf_tensors_stored_dtype(heads);
    nmf_model_desc d = {0};
    const int have_desc = opt->prune.n && !(st = nmf_model_describe(&d, cfg));
    dense_sink sink = {0};
    if (!st && opt->folder) {
        const nmf_hf_write_options h = {dtype, opt->force, opt->max_shard_bytes};
        st = nmf_io_hf_writer_open(out, cfg, heads, &h, &sink.folder);
    } else if (!st) {
        st = nmf_io_st_writer_open(out, heads, 0, heads->count, dtype, heads->meta, heads->meta_count,
                                   &sink.file);
    }
    uint64_t total = 0;
    for (size_t i = 0; i < heads->count; i++) total += nmf_model_stream_bytes(src, i);
    nmf_progress_step step;
    nmf_progress_begin(&step, opt->prune.n ? "prune" : "convert", in, total);
    for (size_t i = 0; !st && i < heads->count; i++) {
        nmf_tensor_set one;
        st = next_tensor(src, i, &d, opt->prune, &one);
        if (!st) st = sink_add(&sink, &one.items[0]);
        if (!st) nmf_progress_advance(&step, one.items[0].name, nmf_model_stream_bytes(src, i));
        nmf_tensors_free(&one);
    }
    st = sink_finish(&sink, st);
    if (have_desc) nmf_model_desc_free(&d);
    nmf_model_stream_close(src);
    if (!st && dtype_used) *dtype_used = dtype;
    return st;
}
