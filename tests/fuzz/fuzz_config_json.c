/* libFuzzer harness: the model config JSON (the "nmformer.config" metadata of .nmf and
 * safetensors files). A config that parses and validates round-trips through JSON, yields its
 * tensor table, and, when small, a random model of it runs one forward pass. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "nmformer/config.h"
#include "nmformer/desc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_text(data, size);
    nmf_model_config c;
    nmf_model_config_default(&c);
    nmf_status st = nmf_model_config_from_json(text, &c);
    free(text);
    if (st != NMF_OK || nmf_model_config_validate(&c) != NMF_OK) return 0;
    char *json = nmf_model_config_to_json(&c);
    if (!json) abort();
    nmf_model_config back;
    nmf_model_config_default(&back);
    if (nmf_model_config_from_json(json, &back) != NMF_OK || nmf_model_config_validate(&back) != NMF_OK)
        abort();
    if (back.dim != c.dim || back.depth != c.depth || nmf_vit_hidden(&back) != nmf_vit_hidden(&c))
        abort();
    free(json);
    nmf_model_desc desc;
    if (nmf_model_describe(&desc, &c) != NMF_OK) abort(); /* valid config: must work */
    for (size_t i = 0; i < desc.count; i++)
        for (int d = 0; d < desc.params[i].ndim; d++)
            if (desc.params[i].shape[d] < 1) abort(); /* a valid config has no empty tensor */
    nmf_model_desc_free(&desc);
    fuzz_forward_random(&c);
    return 0;
}
