/* nmf_file_kind_detect: what a model path holds, from its first bytes (docs/CLI.md). The name is
 * never consulted, so a family saved as x.bin loads and a text file named x.nmf is refused with
 * a line that says what was expected. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/io_internal.h"
#include "io/nmf_format.h"

const char *nmf_file_kind_name(nmf_file_kind kind) {
    switch (kind) {
    case NMF_FILE_NMF: return "nmf";
    case NMF_FILE_SAFETENSORS: return "safetensors";
    case NMF_FILE_HF_FOLDER: return "hf folder";
    default: return "unknown";
    }
}

nmf_status nmf_file_kind_detect(const char *path, nmf_file_kind *kind) {
    if (!path || !kind) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_file_kind_detect: NULL argument");
    *kind = NMF_FILE_UNKNOWN;
    struct stat sb;
    if (stat(path, &sb) != 0) return nmf_error(NMF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) { /* its files are checked by the folder reader */
        *kind = NMF_FILE_HF_FOLDER;
        return NMF_OK;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return nmf_error(NMF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* .nmf: 8 magic bytes. safetensors: an 8-byte little-endian header length, then the JSON
     * header, which is an object: '{'. The length itself is checked by the reader. */
    unsigned char head[NMF_FILE_MAGIC_SIZE + 1];
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got >= NMF_FILE_MAGIC_SIZE && !memcmp(head, NMF_FILE_MAGIC, NMF_FILE_MAGIC_SIZE))
        *kind = NMF_FILE_NMF;
    else if (got == sizeof head && head[8] == '{')
        *kind = NMF_FILE_SAFETENSORS;
    else
        return nmf_error(NMF_ERR_FORMAT, "%s: not a model file (neither the .nmf magic nor a "
                         "safetensors header: 8-byte length, then '{'; nor a model folder)", path);
    return NMF_OK;
}

int nmf_io_peekable(const char *path) {
    struct stat sb;
    return stat(path, &sb) != 0 || S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode);
}

nmf_status nmf_file_is_token_model(const char *path, int *token) {
    if (!path || !token) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_file_is_token_model: NULL argument");
    *token = 0;
    if (!nmf_io_peekable(path))
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: not a regular file or folder: its kind is not peeked",
                         path);
    nmf_file_kind kind;
    nmf_status st = nmf_file_kind_detect(path, &kind);
    if (st) return st;
    if (kind == NMF_FILE_HF_FOLDER) { /* config.json's model_type: bert, gpt2 or llama */
        *token = 1;
        return NMF_OK;
    }
    if (kind == NMF_FILE_NMF) { /* the header and table only: no payload is read */
        nmf_family_file *fam;
        if ((st = nmf_family_open(path, &fam))) return st;
        *token = nmf_model_is_token(nmf_family_file_config(fam));
        nmf_family_close(fam);
        return NMF_OK;
    }
    nmf_io_st_file f; /* the header only; no metadata: a ViT whose config the caller gives */
    if ((st = nmf_io_st_open(path, &f))) return st;
    const char *json = nmf_tensors_get_meta(&f.meta, NMF_CONFIG_META_KEY);
    nmf_model_config c;
    nmf_model_config_default(&c);
    if (json && (st = nmf_model_config_from_json(json, &c)))
        st = nmf_error_context(st, "%s: metadata %s", path, NMF_CONFIG_META_KEY);
    if (st == NMF_OK) *token = json && nmf_model_is_token(&c);
    nmf_io_st_close(&f);
    return st;
}
