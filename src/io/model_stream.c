/* One model read tensor by tensor (model_stream.h). The headers are read and checked when the
 * stream opens; each tensor's bytes are mapped only while it is decoded (src/io/mapped.c), so a
 * reader of the stream holds what it keeps of the tensors, never the model. */
#include "io/model_stream.h"

#include <stdlib.h>
#include <string.h>

#include "core/tensor_internal.h"
#include "io/io_internal.h"
#include "nmformer/model.h"

typedef struct {
    size_t shard, item; /* safetensors: shards[shard].items[item]; .nmf: item in the candidate */
} location;

struct nmf_model_stream {
    nmf_file_kind kind;
    nmf_model_config config;
    nmf_tensor_set headers;
    location *loc; /* per header */
    nmf_io_hf_weights files; /* safetensors (one "shard") and model folders */
    nmf_family_file *fam;
    size_t pick;
};

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Headers of every tensor of the safetensors files, shard by shard, with their locations. */
static nmf_status add_file_headers(nmf_model_stream *s) {
    size_t total = 0;
    for (size_t f = 0; f < s->files.count; f++) total += s->files.shards[f].count;
    if (!(s->loc = calloc(total + 1, sizeof *s->loc))) return nmf_error(NMF_ERR_NOMEM, "tensor table");
    nmf_status st = nmf_tensors_copy_meta(&s->files.meta, &s->headers);
    for (size_t f = 0; !st && f < s->files.count; f++) {
        const nmf_io_st_file *file = &s->files.shards[f];
        for (size_t i = 0; !st && i < file->count; i++) {
            const nmf_io_st_tensor *e = &file->items[i];
            st = nmf_tensors_add_header(&s->headers, e->name, e->ndim, e->shape, (nmf_pattern){0, 0}, 0,
                                        e->dtype, NULL);
            if (st) st = nmf_error_context(st, "%s", file->path);
            else s->loc[s->headers.count - 1] = (location){f, i};
        }
    }
    return st;
}

/* Values of header i from its safetensors file, into t (numel floats, nmf_alloc'd). */
static nmf_status decode_file_tensor(const nmf_model_stream *s, size_t i, float **out) {
    const location *l = &s->loc[i];
    const nmf_io_st_tensor *e = &s->files.shards[l->shard].items[l->item];
    float *v = nmf_alloc(e->numel, sizeof(float));
    if (!v) return nmf_error(NMF_ERR_NOMEM, "tensor '%s': %zu values", e->name, e->numel);
    nmf_status st = nmf_io_st_decode(&s->files.shards[l->shard], l->item, v);
    if (st) {
        nmf_free(v);
        return st;
    }
    *out = v;
    return NMF_OK;
}

/* The loader drops a tied head stored anyway only when it equals the embedding: those two get
 * their values for nmf_model_config_from_hf, and lose them again after. */
static nmf_status hf_config(nmf_model_stream *s, const char *path) {
    nmf_hf_config hf;
    nmf_status st = nmf_hf_config_read(path, &hf);
    if (st) return st;
    int tied = hf.tie_word_embeddings && nmf_tensors_find(&s->headers, "lm_head.weight");
    for (size_t i = 0; tied && !st && i < s->headers.count; i++) {
        nmf_tensor *t = &s->headers.items[i];
        if (!strcmp(t->name, "lm_head.weight") || ends_with(t->name, "embed_tokens.weight") ||
            ends_with(t->name, "wte.weight"))
            st = decode_file_tensor(s, i, &t->data);
    }
    /* the loader's removals (GPT-2's mask buffers, the tied head) keep the order of the rest */
    const size_t before = s->headers.count;
    if (!st && (st = nmf_model_config_from_hf(&s->config, &hf, &s->headers)))
        st = nmf_error_context(st, "%s", path);
    for (size_t i = 0; i < s->headers.count; i++) {
        nmf_free(s->headers.items[i].data);
        s->headers.items[i].data = NULL;
    }
    size_t i = 0; /* i <= j: the locations move down in place */
    for (size_t j = 0; !st && j < before && i < s->headers.count; j++) {
        const location l = s->loc[j];
        if (!strcmp(s->headers.items[i].name, s->files.shards[l.shard].items[l.item].name)) s->loc[i++] = l;
    }
    return st;
}

nmf_status nmf_model_stream_open(const char *path, const char *name, const nmf_config_overrides *overrides,
                                 nmf_model_stream **out) {
    *out = NULL;
    nmf_model_stream *s = calloc(1, sizeof *s);
    if (!s) return nmf_error(NMF_ERR_NOMEM, "model stream");
    nmf_status st = nmf_file_kind_detect(path, &s->kind);
    int from_file = 1;
    if (st) {
    } else if (s->kind == NMF_FILE_NMF) {
        st = nmf_family_open(path, &s->fam);
        if (!st) st = nmf_io_family_file_pick(s->fam, path, name, &s->pick);
        if (!st) {
            s->config = *nmf_family_file_config(s->fam);
            st = nmf_io_family_file_headers(s->fam, s->pick, &s->headers);
        }
    } else if (name && strcmp(name, "dense") != 0) {
        st = nmf_error(NMF_ERR_NOT_FOUND, "%s: a %s holds one model ('dense'), not '%s'", path,
                       s->kind == NMF_FILE_HF_FOLDER ? "model folder" : "safetensors file", name);
    } else if (s->kind == NMF_FILE_HF_FOLDER) {
        st = nmf_io_hf_weights_open(path, &s->files);
        if (!st) st = add_file_headers(s);
        if (!st) st = hf_config(s, path);
    } else {
        st = nmf_io_hf_weights_open_file(path, &s->files);
        if (!st) st = add_file_headers(s);
        if (!st)
            st = nmf_io_safetensors_config(path, &s->headers, NULL, overrides, &s->config, &from_file);
    }
    if (!st) st = nmf_io_model_config_finish(path, from_file, overrides, &s->config, &s->headers);
    if (st) {
        nmf_model_stream_close(s);
        return st;
    }
    *out = s;
    return NMF_OK;
}

void nmf_model_stream_close(nmf_model_stream *s) {
    if (!s) return;
    nmf_tensors_free(&s->headers);
    free(s->loc);
    nmf_io_hf_weights_close(&s->files);
    nmf_family_close(s->fam);
    free(s);
}

const nmf_model_config *nmf_model_stream_config(const nmf_model_stream *s) { return &s->config; }
const nmf_tensor_set *nmf_model_stream_headers(const nmf_model_stream *s) { return &s->headers; }

nmf_status nmf_model_stream_read(const nmf_model_stream *s, size_t i, nmf_tensor_set *out) {
    if (i >= s->headers.count)
        return nmf_error(NMF_ERR_INVALID_ARG, "tensor %zu of %zu", i, s->headers.count);
    if (s->fam) return nmf_io_family_file_decode(s->fam, s->pick, i, out);
    const nmf_tensor *h = &s->headers.items[i];
    const location *l = &s->loc[i];
    nmf_tensor *t;
    /* decoded straight into the tensor's own buffer: one copy of its values, never two */
    nmf_status st = nmf_tensors_add_dense(out, h->name, h->ndim, h->shape, NULL, &t);
    if (st) return st;
    t->stored_dtype = h->stored_dtype;
    return nmf_io_st_decode(&s->files.shards[l->shard], l->item, t->data);
}

uint64_t nmf_model_stream_bytes(const nmf_model_stream *s, size_t i) {
    if (i >= s->headers.count) return 0;
    if (s->fam) return nmf_io_family_file_bytes(s->fam, s->pick, i);
    return s->files.shards[s->loc[i].shard].items[s->loc[i].item].bytes;
}
