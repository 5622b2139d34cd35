/* Writing a Hugging Face model folder: config.json + model.safetensors, as save_pretrained
 * writes them, so that a pruned model goes back to the tools it came from.
 *
 * The tensors keep the names they were read with (desc.h's tables: HF names, the checkpoint's
 * own prefix, a tied head not stored), their stored layout (GPT-2's Conv1D stays [in, out]) and
 * dense values, pruned weights as zeros: transformers has no N:M storage. The folder is written
 * whole or not at all (nmf_io_dir_stage). */
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

nmf_status nmf_hf_folder_write(const char *dir, const nmf_model_config *c, const nmf_tensor_set *s,
                               const nmf_hf_write_options *opt) {
    if (!dir || !c || !s) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_hf_folder_write: NULL argument");
    nmf_dtype dtype = opt ? opt->dtype : nmf_tensors_stored_dtype(s);
    if ((unsigned)dtype >= NMF_DTYPE_COUNT) return nmf_error(NMF_ERR_INVALID_ARG, "%s: bad dtype", dir);
    if (!nmf_model_is_token(c))
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: a '%s' model has no Hugging Face folder form "
                         "(bert, gpt2, llama do; write .safetensors or .nmf)", dir, c->arch);
    /* what is written must load back as this model: every tensor of the table, nothing else */
    nmf_status st = nmf_model_check_tensors(c, s);
    if (st) return nmf_error_context(st, "%s", dir);
    char *config = config_text(&c->hf, dtype);
    if (!config) return nmf_error(NMF_ERR_NOMEM, "%s: config.json", dir);

    nmf_io_staged_dir staged;
    st = nmf_io_dir_stage(dir, opt && opt->force, &staged);
    if (st) {
        free(config);
        return st;
    }
    char *config_path = nmf_io_dir_file(&staged, "config.json");
    char *weights_path = nmf_io_dir_file(&staged, "model.safetensors");
    /* transformers refuses a safetensors file whose metadata lacks format "pt" */
    const nmf_meta meta = {(char *)"format", (char *)"pt"};
    if (!config_path || !weights_path) st = nmf_error(NMF_ERR_NOMEM, "%s: out of memory", dir);
    if (!st) st = write_text(config_path, config);
    if (!st) st = nmf_io_safetensors_write_meta(weights_path, s, dtype, &meta, 1);
    free(config_path);
    free(weights_path);
    free(config);
    if (st) {
        nmf_io_dir_discard(&staged);
        return st;
    }
    return nmf_io_dir_publish(&staged);
}
