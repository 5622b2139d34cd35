/* Prints the size, field offsets and field sizes of every public struct the Python package mirrors with ctypes
 * (python/nmformer/_capi.py), as JSON; tests/python/test_nmformer.py compares them with ctypes'
 * own, so a header change that the package does not follow fails the tests. */
#include <stddef.h>
#include <stdio.h>

#include "nmformer/nmformer.h"

static int first_struct = 1, first_field;
static void begin(const char *name, size_t size) {
    printf("%s\n  \"%s\": {\"size\": %zu, \"fields\": {", first_struct ? "{" : ",", name, size);
    first_struct = 0;
    first_field = 1;
}
static void field(const char *name, size_t offset, size_t size) {
    printf("%s\"%s\": [%zu, %zu]", first_field ? "" : ", ", name, offset, size);
    first_field = 0;
}
static void end(void) { printf("}}"); }

#define S(type) begin(#type, sizeof(type))
#define F(type, f) field(#f, offsetof(type, f), sizeof(((type *)0)->f))

int main(void) {
    S(nmf_model_config); F(nmf_model_config, arch); F(nmf_model_config, img_size);
    F(nmf_model_config, patch); F(nmf_model_config, in_chans); F(nmf_model_config, dim);
    F(nmf_model_config, depth); F(nmf_model_config, heads); F(nmf_model_config, mlp_ratio);
    F(nmf_model_config, num_classes); F(nmf_model_config, mean); F(nmf_model_config, std);
    F(nmf_model_config, hf); end();
    S(nmf_hf_config); F(nmf_hf_config, model_type); F(nmf_hf_config, architecture);
    F(nmf_hf_config, hidden_size); F(nmf_hf_config, num_hidden_layers);
    F(nmf_hf_config, num_attention_heads); F(nmf_hf_config, num_key_value_heads);
    F(nmf_hf_config, head_dim); F(nmf_hf_config, intermediate_size); F(nmf_hf_config, vocab_size);
    F(nmf_hf_config, max_position_embeddings); F(nmf_hf_config, type_vocab_size);
    F(nmf_hf_config, norm_eps); F(nmf_hf_config, rope_theta); F(nmf_hf_config, tie_word_embeddings);
    F(nmf_hf_config, hidden_act); F(nmf_hf_config, attention_bias); F(nmf_hf_config, mlp_bias);
    F(nmf_hf_config, num_labels); F(nmf_hf_config, head); F(nmf_hf_config, pooler);
    F(nmf_hf_config, prefix); end();
    S(nmf_config_overrides); F(nmf_config_overrides, img_size); F(nmf_config_overrides, patch);
    F(nmf_config_overrides, in_chans); F(nmf_config_overrides, dim); F(nmf_config_overrides, depth);
    F(nmf_config_overrides, heads); F(nmf_config_overrides, num_classes);
    F(nmf_config_overrides, mlp_ratio); end();
    S(nmf_pattern); F(nmf_pattern, n); F(nmf_pattern, m); end();
    S(nmf_nm_matrix); F(nmf_nm_matrix, rows); F(nmf_nm_matrix, cols); F(nmf_nm_matrix, groups);
    F(nmf_nm_matrix, pattern); F(nmf_nm_matrix, values); F(nmf_nm_matrix, pos);
    F(nmf_nm_matrix, storage_); end();
    S(nmf_tensor); F(nmf_tensor, name); F(nmf_tensor, ndim); F(nmf_tensor, shape);
    F(nmf_tensor, numel); F(nmf_tensor, data); F(nmf_tensor, data16);
    F(nmf_tensor, nm); F(nmf_tensor, nm_transposed);
    F(nmf_tensor, stored_dtype); end();
    S(nmf_meta); F(nmf_meta, key); F(nmf_meta, value); end();
    S(nmf_tensor_set); F(nmf_tensor_set, items); F(nmf_tensor_set, count); F(nmf_tensor_set, cap);
    F(nmf_tensor_set, meta); F(nmf_tensor_set, meta_count); F(nmf_tensor_set, meta_cap);
    F(nmf_tensor_set, index_); F(nmf_tensor_set, index_cap_); end();
    S(nmf_candidate); F(nmf_candidate, name); F(nmf_candidate, tensors); end();
    S(nmf_family); F(nmf_family, config); F(nmf_family, models); F(nmf_family, count); end();
    S(nmf_write_options); F(nmf_write_options, value_dtype); end();
    S(nmf_stored_tensor); F(nmf_stored_tensor, model); F(nmf_stored_tensor, tensor);
    F(nmf_stored_tensor, dtype); F(nmf_stored_tensor, pattern); F(nmf_stored_tensor, offset);
    F(nmf_stored_tensor, size); F(nmf_stored_tensor, payload); end();
    S(nmf_family_layout); F(nmf_family_layout, items); F(nmf_family_layout, count);
    F(nmf_family_layout, payloads); F(nmf_family_layout, version); F(nmf_family_layout, file_size);
    F(nmf_family_layout, data_offset); F(nmf_family_layout, data_size);
    F(nmf_family_layout, json_size); end();
    S(nmf_param_kind); F(nmf_param_kind, name); F(nmf_param_kind, role);
    F(nmf_param_kind, per_block); F(nmf_param_kind, nm); F(nmf_param_kind, in_axis); end();
    S(nmf_param); F(nmf_param, name); F(nmf_param, kind); F(nmf_param, block); F(nmf_param, ndim);
    F(nmf_param, shape); F(nmf_param, numel); F(nmf_param, rows); F(nmf_param, cols); end();
    S(nmf_model_desc); F(nmf_model_desc, config); F(nmf_model_desc, family);
    F(nmf_model_desc, kinds); F(nmf_model_desc, kind_count); F(nmf_model_desc, params);
    F(nmf_model_desc, count); F(nmf_model_desc, kind_offset); F(nmf_model_desc, kind_numel);
    F(nmf_model_desc, kind_first); F(nmf_model_desc, floats); end();
    S(nmf_lm_inputs); F(nmf_lm_inputs, token_type_ids); F(nmf_lm_inputs, attention_mask);
    F(nmf_lm_inputs, pooler_output); end();
    S(nmf_sampling); F(nmf_sampling, temperature); F(nmf_sampling, top_k); F(nmf_sampling, seed);
    end();
    S(nmf_generate_stats); F(nmf_generate_stats, prefill_seconds);
    F(nmf_generate_stats, decode_seconds); F(nmf_generate_stats, decode_tokens); end();
    S(nmf_prune_options); F(nmf_prune_options, method); F(nmf_prune_options, damp);
    F(nmf_prune_options, block_cols); F(nmf_prune_options, batch); end();
    S(nmf_calib); F(nmf_calib, count); F(nmf_calib, seq_len); F(nmf_calib, sample_len);
    F(nmf_calib, images); F(nmf_calib, ids); end();
    S(nmf_prune_stats); F(nmf_prune_stats, seconds); F(nmf_prune_stats, samples);
    F(nmf_prune_stats, tokens); F(nmf_prune_stats, forwards); end();
    /* the constants the package writes down: array sizes, every nmf_status, the nmf_hf_head values */
    printf(",\n  \"constants\": {\"NMF_MAX_DIMS\": %d, \"NMF_LAYOUT_COUNT\": %d, "
           "\"NMF_DESC_MAX_KINDS\": %d, \"NMF_STATUS_COUNT\": %d",
           NMF_MAX_DIMS, (int)NMF_LAYOUT_COUNT, NMF_DESC_MAX_KINDS, (int)NMF_STATUS_COUNT);
#define K(c) printf(", \"" #c "\": %d", (int)(c))
    K(NMF_OK); K(NMF_ERR_INVALID_ARG); K(NMF_ERR_NOMEM); K(NMF_ERR_IO); K(NMF_ERR_FORMAT);
    K(NMF_ERR_UNSUPPORTED); K(NMF_ERR_CHECKSUM); K(NMF_ERR_SHAPE); K(NMF_ERR_NOT_FOUND);
    K(NMF_ERR_NUMERIC);
    K(NMF_HF_HEAD_NONE); K(NMF_HF_HEAD_LM); K(NMF_HF_HEAD_CLASSIFIER);
    printf("}\n}\n");
    return 0;
}
