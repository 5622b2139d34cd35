/* One model read tensor by tensor, from any model path (src/io/model_stream.c). Private: the
 * streaming prune and convert (src/model/family_stream.c) are its users. */
#ifndef NMF_IO_MODEL_STREAM_H
#define NMF_IO_MODEL_STREAM_H

#include "nmformer/io.h"

typedef struct nmf_model_stream nmf_model_stream;
/* Opens path as nmf_load_model_with would load it (name: the candidate of an .nmf; overrides
 * may be NULL), with the same config and the same checks of the tensors against it, but reads
 * only headers: a safetensors header, the shard headers of a model folder (checked against its
 * index), the table of an .nmf. A tied LLaMA/GPT-2 head stored anyway is read with the
 * embedding to compare them, as the loader does. */
nmf_status nmf_model_stream_open(const char *path, const char *name, const nmf_config_overrides *overrides,
                                 nmf_model_stream **out);
void nmf_model_stream_close(nmf_model_stream *s);
const nmf_model_config *nmf_model_stream_config(const nmf_model_stream *s);
/* What nmf_load_model_with would give, without values (nmf_tensors_add_header): every tensor in
 * the loader's order with its shape, N:M form and stored dtype, and the metadata (nmformer.config
 * included). */
const nmf_tensor_set *nmf_model_stream_headers(const nmf_model_stream *s);
/* Tensor i of the headers with its values, added to out as the loader holds it (dense f32, or
 * N:M for an N:M tensor of an .nmf, checked when its payload is touched). On failure out may
 * hold the tensor without its values: the caller frees out either way. */
nmf_status nmf_model_stream_read(const nmf_model_stream *s, size_t i, nmf_tensor_set *out);
/* Bytes tensor i is stored in (for progress). */
uint64_t nmf_model_stream_bytes(const nmf_model_stream *s, size_t i);

#endif
