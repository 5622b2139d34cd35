/* libFuzzer harness: a Hugging Face config.json (nmf_hf_config_parse). A config that parses keeps
 * the invariants the family forwards will rely on (docs/HF.md): positive sizes within the limits,
 * heads dividing the width, kv heads dividing the heads, an even LLaMA head size; and the
 * config.json nmformer writes for it (nmf_hf_config_to_json, `convert ... OUT_DIR`) parses back
 * to the same config (architectures filled in when it had none). */
#include <stdlib.h>
#include <string.h>

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
    char *text = nmf_hf_config_to_json(&c);
    if (!text) abort();
    nmf_hf_config back;
    if (nmf_hf_config_parse(text, strlen(text), "written config.json", &back) != NMF_OK) abort();
    free(text);
    /* an absent "architectures" is written as the class of the config's head (hf.head) */
    if (back.model_type != c.model_type || (c.architecture[0] && strcmp(back.architecture, c.architecture)) ||
        back.hidden_size != c.hidden_size || back.num_hidden_layers != c.num_hidden_layers ||
        back.num_attention_heads != c.num_attention_heads ||
        back.num_key_value_heads != c.num_key_value_heads || back.head_dim != c.head_dim ||
        back.intermediate_size != c.intermediate_size || back.vocab_size != c.vocab_size ||
        back.max_position_embeddings != c.max_position_embeddings ||
        back.type_vocab_size != c.type_vocab_size || back.norm_eps != c.norm_eps ||
        back.rope_theta != c.rope_theta || back.tie_word_embeddings != c.tie_word_embeddings ||
        back.hidden_act != c.hidden_act || back.attention_bias != c.attention_bias ||
        back.mlp_bias != c.mlp_bias || back.num_labels != c.num_labels)
        abort(); /* what we write is not what we read */
    return 0;
}
