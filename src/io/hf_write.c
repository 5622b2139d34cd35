/* Writing a Hugging Face model folder: config.json + model.safetensors, as save_pretrained
 * writes them, so that a pruned model goes back to the tools it came from.
 *
 * The tensors keep the names they were read with (desc.h's tables: HF names, the checkpoint's
 * own prefix, a tied head not stored), their stored layout (GPT-2's Conv1D stays [in, out]) and
 * dense values, pruned weights as zeros: transformers has no N:M storage. The folder is written
 * whole or not at all (nmf_io_dir_stage).
 *
 * One tensor at a time (nmf_io_hf_writer, io_internal.h): config.json and the shard plan come
 * from the tensors' headers, so each shard's safetensors header is written before its first
 * tensor arrives (src/io/safetensors_write.c); writing a whole tensor set is the same writer fed
 * from the set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "io/io_internal.h"

/* torch's name of a dtype, as save_pretrained records it in config.json ("torch_dtype"). */
static const char *torch_dtype_name(nmf_dtype t) {
    switch (t) {
    case NMF_DTYPE_F16: return "float16";
    case NMF_DTYPE_BF16: return "bfloat16";
    default: return "float32";
    }
}

/* config.json text: nmf_hf_config_to_json plus the stored dtype. malloc'd; NULL: no memory. */
static char *config_text(const nmf_hf_config *h, nmf_dtype dtype) {
    char *base = nmf_hf_config_to_json(h);
    cJSON *root = base ? cJSON_Parse(base) : NULL;
    free(base);
    if (!root) return NULL;
    char *text = NULL;
    if (cJSON_AddStringToObject(root, "torch_dtype", torch_dtype_name(dtype))) text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

static nmf_status write_text(const char *path, const char *text) {
    nmf_atomic_file *f;
    nmf_status st = nmf_atomic_open(path, &f);
    if (st) return st;
    st = nmf_atomic_write(f, text, strlen(text));
    if (!st) st = nmf_atomic_write(f, "\n", 1);
    if (st) {
        nmf_atomic_abort(f);
        return st;
    }
    return nmf_atomic_commit(f);
}

struct nmf_io_hf_writer {
    const nmf_tensor_set *headers;
    nmf_dtype dtype;
    nmf_io_staged_dir staged;
    size_t nshards, shard, *shard_end; /* shard s holds tensors [shard_end[s - 1], shard_end[s]) */
    nmf_io_st_writer *cur;             /* the shard being written; NULL after the last */
    size_t next;                       /* tensors added */
};

/* The shard plan: tensors in order, a new shard whenever the next tensor would take the current
 * one past max (save_pretrained's rule); a tensor larger than max alone, where it stands (the hub
 * moves it to a shard of its own ahead of the current one: here the order stays the headers'). */
static size_t plan_shards(const nmf_tensor_set *h, size_t esize, uint64_t max, size_t *end) {
    size_t n = 0;
    uint64_t size = 0;
    for (size_t i = 0; i < h->count; i++) {
        const uint64_t bytes = (uint64_t)h->items[i].numel * esize;
        if (max && i > 0 && size + bytes > max) {
            end[n++] = i;
            size = 0;
        }
        size += bytes;
    }
    end[n++] = h->count; /* also the one (empty) shard of no tensor */
    return n;
}

/* Shard s's file name: model.safetensors when it is the only one. */
static void shard_name(const nmf_io_hf_writer *w, size_t s, char *buf, size_t cap) {
    if (w->nshards == 1)
        snprintf(buf, cap, "model.safetensors");
    else
        snprintf(buf, cap, "model-%05zu-of-%05zu.safetensors", s + 1, w->nshards);
}

static nmf_status open_shard(nmf_io_hf_writer *w) {
    char name[64];
    shard_name(w, w->shard, name, sizeof name);
    char *path = nmf_io_dir_file(&w->staged, name);
    if (!path) return nmf_error(NMF_ERR_NOMEM, "%s: out of memory", w->staged.dir);
    /* transformers refuses a safetensors file whose metadata lacks format "pt" */
    const nmf_meta meta = {(char *)"format", (char *)"pt"};
    const size_t first = w->shard ? w->shard_end[w->shard - 1] : 0;
    nmf_status st = nmf_io_st_writer_open(path, w->headers, first, w->shard_end[w->shard] - first,
                                          w->dtype, &meta, 1, &w->cur);
    free(path);
    return st;
}

/* model.safetensors.index.json as save_pretrained writes it: json.dumps(indent=2,
 * sort_keys=True) + "\n", {"metadata": {"total_size": bytes}, "weight_map": {tensor: shard}}
 * (a name outside ASCII stays UTF-8 here where Python writes \uXXXX: the same JSON). */
static int by_name(const void *a, const void *b) {
    return strcmp((*(const nmf_tensor *const *)a)->name, (*(const nmf_tensor *const *)b)->name);
}

/* text[*len ..] += piece, growing text; 0 when out of memory. */
static int append(char **text, size_t *len, size_t *cap, const char *piece) {
    const size_t n = strlen(piece);
    if (*len + n + 1 > *cap) {
        size_t c = (*cap ? *cap : 4096);
        while (c < *len + n + 1) c *= 2;
        char *t = realloc(*text, c);
        if (!t) return 0;
        *text = t;
        *cap = c;
    }
    memcpy(*text + *len, piece, n + 1);
    *len += n;
    return 1;
}

static nmf_status write_index(nmf_io_hf_writer *w) {
    const nmf_tensor_set *h = w->headers;
    const nmf_tensor **sorted = malloc((h->count + 1) * sizeof *sorted);
    size_t *shard_at = malloc((h->count + 1) * sizeof *shard_at); /* by place in h */
    char *path = nmf_io_dir_file(&w->staged, "model.safetensors.index.json");
    char *text = NULL;
    size_t len = 0, cap = 0;
    int ok = sorted && shard_at && path;
    uint64_t total = 0;
    for (size_t i = 0, s = 0; ok && i < h->count; i++) {
        while (i >= w->shard_end[s]) s++;
        shard_at[i] = s;
        sorted[i] = &h->items[i];
        total += (uint64_t)h->items[i].numel * nmf_dtype_size(w->dtype);
    }
    if (ok) qsort(sorted, h->count, sizeof *sorted, by_name);
    char line[160];
    snprintf(line, sizeof line, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n",
             (unsigned long long)total);
    ok = ok && append(&text, &len, &cap, line);
    for (size_t i = 0; ok && i < h->count; i++) {
        cJSON *key = cJSON_CreateString(sorted[i]->name); /* the name as a JSON string, escaped */
        char *quoted = key ? cJSON_PrintUnformatted(key) : NULL;
        cJSON_Delete(key);
        char file[64];
        shard_name(w, shard_at[sorted[i] - h->items], file, sizeof file);
        snprintf(line, sizeof line, ": \"%s\"%s\n", file, i + 1 < h->count ? "," : "");
        ok = quoted && append(&text, &len, &cap, "    ") && append(&text, &len, &cap, quoted) &&
             append(&text, &len, &cap, line);
        free(quoted);
    }
    ok = ok && append(&text, &len, &cap, "  }\n}");
    /* write_text adds the final newline */
    nmf_status st = ok ? write_text(path, text) : nmf_error(NMF_ERR_NOMEM, "%s: index", w->staged.dir);
    free(text);
    free(sorted);
    free(shard_at);
    free(path);
    return st;
}

void nmf_io_hf_writer_abort(nmf_io_hf_writer *w) {
    if (!w) return;
    nmf_io_st_writer_abort(w->cur);
    if (w->staged.tmp) nmf_io_dir_discard(&w->staged);
    free(w->shard_end);
    free(w);
}

nmf_status nmf_io_hf_writer_open(const char *dir, const nmf_model_config *c, const nmf_tensor_set *headers,
                                 const nmf_hf_write_options *opt, nmf_io_hf_writer **out) {
    *out = NULL;
    if (!dir || !c || !headers) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_hf_folder_write: NULL argument");
    nmf_dtype dtype = opt ? opt->dtype : nmf_tensors_stored_dtype(headers);
    if ((unsigned)dtype >= NMF_DTYPE_COUNT) return nmf_error(NMF_ERR_INVALID_ARG, "%s: bad dtype", dir);
    if (!nmf_model_is_token(c))
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: a '%s' model has no Hugging Face folder form "
                         "(bert, gpt2, llama do; write .safetensors or .nmf)", dir, c->arch);
    /* what is written must load back as this model: every tensor of the table, nothing else */
    nmf_status st = nmf_model_check_tensors(c, headers);
    if (st) return nmf_error_context(st, "%s", dir);
    nmf_io_hf_writer *w = calloc(1, sizeof *w);
    if (w) w->shard_end = calloc(headers->count + 1, sizeof *w->shard_end);
    char *config = w && w->shard_end ? config_text(&c->hf, dtype) : NULL;
    if (!config) {
        nmf_io_hf_writer_abort(w);
        return nmf_error(NMF_ERR_NOMEM, "%s: config.json", dir);
    }
    w->headers = headers;
    w->dtype = dtype;
    w->nshards = plan_shards(headers, nmf_dtype_size(dtype), opt ? opt->max_shard_bytes : 0, w->shard_end);
    st = nmf_io_dir_stage(dir, opt && opt->force, &w->staged);
    if (st) memset(&w->staged, 0, sizeof w->staged); /* nothing staged: nothing to discard */
    char *config_path = st ? NULL : nmf_io_dir_file(&w->staged, "config.json");
    if (!st && !config_path) st = nmf_error(NMF_ERR_NOMEM, "%s: out of memory", dir);
    if (!st) st = write_text(config_path, config);
    if (!st) st = open_shard(w);
    free(config_path);
    free(config);
    if (st) {
        nmf_io_hf_writer_abort(w);
        return st;
    }
    *out = w;
    return NMF_OK;
}

nmf_status nmf_io_hf_writer_add(nmf_io_hf_writer *w, const nmf_tensor *t) {
    if (!w->cur)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: tensor '%s' after the last one", w->staged.dir, t->name);
    nmf_status st = nmf_io_st_writer_add(w->cur, t);
    if (st || ++w->next < w->shard_end[w->shard]) return st;
    /* the shard is full: it is committed and the next one begun */
    st = nmf_io_st_writer_commit(w->cur);
    w->cur = NULL;
    if (!st && ++w->shard < w->nshards) st = open_shard(w);
    return st;
}

nmf_status nmf_io_hf_writer_commit(nmf_io_hf_writer *w) {
    nmf_status st = NMF_OK;
    if (w->cur && w->next == w->headers->count) { /* the one empty shard of a model of no tensor */
        st = nmf_io_st_writer_commit(w->cur);
        w->cur = NULL;
    }
    if (!st && w->next != w->headers->count)
        st = nmf_error(NMF_ERR_INVALID_ARG, "%s: %zu of the model's tensors not written", w->staged.dir,
                       w->headers->count - w->next);
    if (!st && w->nshards > 1) st = write_index(w);
    if (!st) st = nmf_io_dir_publish(&w->staged); /* frees what was staged, even when it fails */
    else nmf_io_dir_discard(&w->staged);
    w->staged.tmp = NULL;
    nmf_io_hf_writer_abort(w);
    return st;
}

nmf_status nmf_hf_folder_write(const char *dir, const nmf_model_config *c, const nmf_tensor_set *s,
                               const nmf_hf_write_options *opt) {
    if (!s) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_hf_folder_write: NULL argument");
    nmf_io_hf_writer *w;
    nmf_status st = nmf_io_hf_writer_open(dir, c, s, opt, &w);
    for (size_t i = 0; !st && i < s->count; i++)
        if ((st = nmf_io_hf_writer_add(w, &s->items[i]))) nmf_io_hf_writer_abort(w);
    return st ? st : nmf_io_hf_writer_commit(w);
}
