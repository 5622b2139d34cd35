/* libFuzzer harness: a Hugging Face config.json (nmf_hf_config_parse). A config that parses keeps
 * the invariants the family forwards will rely on (docs/HF.md): positive sizes within the limits,
 * heads dividing the width, kv heads dividing the heads, an even LLaMA head size. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "nmformer/io.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nmf_hf_config c;
    if (nmf_hf_config_parse((const char *)data, size, "config.json", &c) != NMF_OK) return 0;
    if (c.hidden_size < 1 || c.num_hidden_layers < 1 || c.num_attention_heads < 1 ||
        c.num_key_value_heads < 1 || c.intermediate_size < 1 || c.vocab_size < 1 ||
        c.max_position_embeddings < 1)
        abort(); /* a size that is not positive got through */
    if (c.hidden_size % c.num_attention_heads ||
        c.head_dim * c.num_attention_heads != c.hidden_size ||
        c.num_attention_heads % c.num_key_value_heads)
        abort(); /* heads that do not divide */
    if (c.model_type == NMF_HF_LLAMA && c.head_dim % 2) abort(); /* RoPE needs pairs */
    if ((unsigned)c.model_type >= NMF_HF_MODEL_TYPE_COUNT || (unsigned)c.hidden_act >= NMF_HF_ACT_COUNT)
        abort();
    if (!(c.norm_eps > 0)) abort();
    return 0;
}
