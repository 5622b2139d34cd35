/* libFuzzer harness: the safetensors reader; a file that reads is unpacked, and when its metadata
 * carries a model config that the tensors fit, the model is built and run. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "nmformer/io.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nmf_tensor_set set;
    nmf_dtype *dtypes = NULL;
    if (nmf_safetensors_read_ex(fuzz_file(0, data, size), &set, &dtypes) != NMF_OK) return 0;
    for (size_t i = 0; i < set.count; i++)
        if (dtypes[i] != NMF_DTYPE_F32 && dtypes[i] != NMF_DTYPE_F16 && dtypes[i] != NMF_DTYPE_BF16)
            abort(); /* the reader reports only the dtypes it decodes */
    nmf_model_config c;
    nmf_model_config_default(&c);
    const char *json = nmf_tensors_get_meta(&set, NMF_CONFIG_META_KEY);
    int have_config = json && nmf_model_config_from_json(json, &c) == NMF_OK;
    fuzz_exercise(have_config ? &c : NULL, &set);
    free(dtypes);
    nmf_tensors_free(&set);
    return 0;
}
