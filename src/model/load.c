/* File -> ready-to-run model: load (io.h) then build (vit.c). */
#include "nmformer/io.h"
#include "nmformer/model.h"

nmf_status nmf_vit_load(nmf_vit **out, const char *path, const char *name,
                        const nmf_model_config *fallback_config) {
    if (!out || !path) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_vit_load: NULL argument");
    *out = NULL;
    nmf_model_config config;
    nmf_tensor_set tensors;
    nmf_tensors_init(&tensors);
    /* weights as stored: BF16/F16 ones stay 16-bit in the model (nmf_vit_create) */
    nmf_status st = nmf_load_model_keep16(path, name, fallback_config, NULL, &config, &tensors);
    if (st == NMF_OK) st = nmf_vit_create(out, &config, &tensors);
    nmf_tensors_free(&tensors);
    return st;
}
