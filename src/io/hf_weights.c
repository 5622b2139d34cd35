/* The weights of a Hugging Face model folder: model.safetensors, or the shards listed in
 * model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor: shard file}}).
 *
 * Which file is read follows transformers' loader: model.safetensors when present, else the
 * index. Each shard is read once with the safetensors reader (src/io/safetensors.c); the index
 * and the shards must agree exactly: every tensor in its mapped shard and in no other, nothing
 * unlisted, nothing listed twice. Shard names are plain file names inside the folder. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/progress.h"
#include "io/io_internal.h"

#define HF_MAX_INDEX_FILE ((size_t)256 << 20)
#define HF_MAX_SHARD_NAME 255

typedef struct {
    const char *name, *file; /* into the parsed index */
    size_t shard;            /* index into the distinct shard files */
    int found;
} hf_entry;

static int entry_cmp(const void *a, const void *b) {
    return strcmp(((const hf_entry *)a)->name, ((const hf_entry *)b)->name);
}

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A shard is a plain file of the folder: no directory part (this also refuses absolute paths
 * and "../"), not "." or "..", not empty, a .safetensors name of sane length. */
static int shard_name_ok(const char *s) {
    size_t n = strlen(s);
    static const char ext[] = ".safetensors";
    return n > sizeof ext - 1 && n <= HF_MAX_SHARD_NAME && !strchr(s, '/') && !strchr(s, '\\') &&
           strcmp(s, "..") && !strcmp(s + n - (sizeof ext - 1), ext);
}

/* Shard metadata (save_pretrained writes {"format": "pt"} into each) merged into one set;
 * a key with different values in two shards is an error. */
static nmf_status merge_meta(nmf_tensor_set *out, const nmf_tensor_set *part, const char *path) {
    for (size_t i = 0; i < part->meta_count; i++) {
        const char *have = nmf_tensors_get_meta(out, part->meta[i].key);
        if (!have) {
            nmf_status st = nmf_tensors_set_meta(out, part->meta[i].key, part->meta[i].value);
            if (st) return st;
        } else if (strcmp(have, part->meta[i].value)) {
            return nmf_error(NMF_ERR_FORMAT,
                             "%s: __metadata__ key '%s' differs from the one in an earlier shard",
                             path, part->meta[i].key);
        }
    }
    return NMF_OK;
}

/* Parses the index into entries sorted by tensor name and the distinct shard files sorted by
 * name; checks names, duplicates and shard file names. */
static nmf_status parse_index(const char *index_path, const cJSON *root, hf_entry **entries_out,
                              size_t *count_out, const char ***files_out, size_t *nfiles_out) {
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!map) return nmf_error(NMF_ERR_NOT_FOUND, "%s: missing key 'weight_map'", index_path);
    if (!cJSON_IsObject(map))
        return nmf_error(NMF_ERR_FORMAT, "%s: key 'weight_map' must be an object", index_path);
    int n = cJSON_GetArraySize(map);
    if (n < 1) return nmf_error(NMF_ERR_FORMAT, "%s: 'weight_map' lists no tensors", index_path);
    hf_entry *entries = calloc((size_t)n, sizeof *entries);
    const char **files = calloc((size_t)n, sizeof *files);
    if (!entries || !files) {
        free(entries);
        free(files);
        return nmf_error(NMF_ERR_NOMEM, "%s: %d index entries", index_path, n);
    }
    nmf_status st = NMF_OK;
    size_t count = 0;
    for (const cJSON *e = map->child; e && !st; e = e->next) {
        if (!e->string || !e->string[0])
            st = nmf_error(NMF_ERR_FORMAT, "%s: 'weight_map' has an entry without a tensor name",
                           index_path);
        else if (!cJSON_IsString(e))
            st = nmf_error(NMF_ERR_FORMAT, "%s: 'weight_map': the shard of tensor '%s' is not a "
                           "string", index_path, e->string);
        else if (!shard_name_ok(e->valuestring))
            st = nmf_error(NMF_ERR_FORMAT,
                           "%s: 'weight_map': tensor '%s' is mapped to '%.300s', which is not a "
                           ".safetensors file in the model folder",
                           index_path, e->string, e->valuestring);
        else {
            entries[count] = (hf_entry){e->string, e->valuestring, 0, 0};
            files[count++] = e->valuestring;
        }
    }
    size_t nfiles = 0;
    if (!st) {
        qsort(entries, count, sizeof *entries, entry_cmp);
        for (size_t i = 1; i < count && !st; i++)
            if (!strcmp(entries[i - 1].name, entries[i].name))
                st = nmf_error(NMF_ERR_FORMAT, "%s: 'weight_map' lists tensor '%s' twice",
                               index_path, entries[i].name);
    }
    if (!st) {
        qsort(files, count, sizeof *files, str_cmp);
        for (size_t i = 0; i < count; i++)
            if (!nfiles || strcmp(files[nfiles - 1], files[i])) files[nfiles++] = files[i];
        for (size_t i = 0; i < count; i++) {
            const char **f = bsearch(&entries[i].file, files, nfiles, sizeof *files, str_cmp);
            entries[i].shard = (size_t)(f - files); /* always found: files holds every name */
        }
    }
    if (st) {
        free(entries);
        free(files);
        return st;
    }
    *entries_out = entries;
    *count_out = count;
    *files_out = files;
    *nfiles_out = nfiles;
    return NMF_OK;
}

/* Checks one shard's tensors against the index and merges its metadata into meta. */
static nmf_status check_shard(const nmf_io_st_file *part, const char *index_path, const char *file,
                              size_t shard, hf_entry *entries, size_t count, nmf_tensor_set *meta) {
    for (size_t i = 0; i < part->count; i++) {
        const char *name = part->items[i].name;
        hf_entry key = {name, NULL, 0, 0};
        hf_entry *e = bsearch(&key, entries, count, sizeof *entries, entry_cmp);
        if (!e)
            return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s' is not listed in %s", part->path, name,
                             index_path);
        if (e->shard != shard)
            return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s' is in %s but the index maps it to %s",
                             index_path, name, file, e->file);
        e->found = 1;
    }
    return merge_meta(meta, &part->meta, part->path);
}

/* The shards named by the index, each header opened and checked against it (every tensor in its
 * mapped shard and in no other, nothing unlisted, nothing missing). */
static nmf_status open_sharded(const char *dir, const char *index_path, nmf_io_hf_weights *w) {
    uint8_t *text = NULL;
    size_t size = 0;
    nmf_status st = nmf_read_file(index_path, HF_MAX_INDEX_FILE, &text, &size);
    if (st) return st;
    cJSON *root = nmf_io_parse_json((const char *)text, size);
    free(text);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return nmf_error(NMF_ERR_FORMAT, "%s: not a JSON object", index_path);
    }
    hf_entry *entries = NULL;
    const char **files = NULL;
    size_t count = 0, nfiles = 0;
    st = parse_index(index_path, root, &entries, &count, &files, &nfiles);
    if (!st) {
        w->paths = calloc(nfiles, sizeof *w->paths);
        w->shards = calloc(nfiles, sizeof *w->shards);
        if (!w->paths || !w->shards) st = nmf_error(NMF_ERR_NOMEM, "%s: shard table", index_path);
        else w->npaths = nfiles;
    }
    for (size_t s = 0; !st && s < nfiles; s++) {
        if (!(w->paths[s] = nmf_io_path_join(dir, files[s]))) {
            st = nmf_error(NMF_ERR_NOMEM, "%s: path", dir);
            break;
        }
        st = nmf_io_st_open(w->paths[s], &w->shards[s]);
        if (st) break;
        w->count++;
        st = check_shard(&w->shards[s], index_path, files[s], s, entries, count, &w->meta);
    }
    for (size_t i = 0; !st && i < count; i++)
        if (!entries[i].found)
            st = nmf_error(NMF_ERR_NOT_FOUND, "%s: tensor '%s' is listed but %s does not hold it",
                           index_path, entries[i].name, entries[i].file);
    free(entries);
    free(files);
    cJSON_Delete(root);
    return st;
}

nmf_status nmf_io_hf_weights_open_file(const char *path, nmf_io_hf_weights *w) {
    memset(w, 0, sizeof *w);
    w->paths = calloc(1, sizeof *w->paths);
    w->shards = calloc(1, sizeof *w->shards);
    nmf_status st = NMF_OK;
    if (!w->paths || !w->shards || !(w->paths[0] = strdup(path)))
        st = nmf_error(NMF_ERR_NOMEM, "%s: path", path);
    else
        w->npaths = 1;
    if (!st) st = nmf_io_st_open(w->paths[0], &w->shards[0]);
    if (!st) w->count = 1;
    if (!st) st = nmf_tensors_copy_meta(&w->shards[0].meta, &w->meta);
    if (st) nmf_io_hf_weights_close(w);
    return st;
}

nmf_status nmf_io_hf_weights_open(const char *dir, nmf_io_hf_weights *w) {
    memset(w, 0, sizeof *w);
    if (!dir) return nmf_error(NMF_ERR_INVALID_ARG, "no model folder given");
    char *single = nmf_io_path_join(dir, "model.safetensors");
    char *index = nmf_io_path_join(dir, "model.safetensors.index.json");
    char *pickle = nmf_io_path_join(dir, "pytorch_model.bin");
    nmf_status st;
    if (!single || !index || !pickle) {
        st = nmf_error(NMF_ERR_NOMEM, "%s: path", dir);
    } else if (is_file(single)) { /* transformers: SAFE_WEIGHTS_NAME first, then the index */
        st = nmf_io_hf_weights_open_file(single, w);
    } else if (is_file(index)) {
        st = open_sharded(dir, index, w);
    } else if (is_file(pickle)) {
        st = nmf_error(NMF_ERR_UNSUPPORTED,
                       "%s: only pytorch_model.bin (a pickle); nmformer reads safetensors weights "
                       "(model.safetensors or model.safetensors.index.json)",
                       dir);
    } else {
        st = nmf_error(NMF_ERR_NOT_FOUND,
                       "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    free(single);
    free(index);
    free(pickle);
    if (st) nmf_io_hf_weights_close(w);
    return st;
}

void nmf_io_hf_weights_close(nmf_io_hf_weights *w) {
    for (size_t s = 0; s < w->count; s++) nmf_io_st_close(&w->shards[s]);
    for (size_t s = 0; s < w->npaths; s++) free(w->paths[s]);
    free(w->paths);
    free(w->shards);
    nmf_tensors_free(&w->meta);
    memset(w, 0, sizeof *w);
}

nmf_status nmf_hf_weights_read(const char *dir, nmf_tensor_set *out, nmf_dtype **dtypes) {
    return nmf_io_hf_weights_read(dir, out, dtypes, 0);
}

nmf_status nmf_io_hf_weights_read(const char *dir, nmf_tensor_set *out, nmf_dtype **dtypes,
                                  int keep16) {
    nmf_tensors_init(out);
    if (dtypes) *dtypes = NULL;
    nmf_io_hf_weights w;
    nmf_status st = nmf_io_hf_weights_open(dir, &w);
    if (st) return st;
    size_t total = 0;
    for (size_t s = 0; s < w.count; s++) total += w.shards[s].count;
    nmf_dtype *dt = malloc((total + 1) * sizeof *dt);
    if (!dt) st = nmf_error(NMF_ERR_NOMEM, "%s: dtype table", dir);
    if (!st) st = nmf_tensors_copy_meta(&w.meta, out);
    for (size_t s = 0; !st && s < w.count; s++) /* shard by shard, each in its header's order */
        st = nmf_io_st_read_all(&w.shards[s], out, dt + out->count, keep16);
    nmf_io_hf_weights_close(&w);
    if (st) {
        free(dt);
        nmf_tensors_free(out);
        return st;
    }
    if (dtypes)
        *dtypes = dt;
    else
        free(dt);
    return NMF_OK;
}

nmf_status nmf_hf_folder_read(const char *dir, nmf_hf_config *config, nmf_tensor_set *tensors) {
    nmf_tensors_init(tensors);
    nmf_status st = nmf_hf_config_read(dir, config);
    if (st) return st;
    return nmf_hf_weights_read(dir, tensors, NULL);
}
