/* A model's block linears built from their tensors: the one path by which every model (token
 * models in lm.c, the ViT in vit.c) reads a model file for building and turns each weight as read
 * into the layer that runs it, so that a weight stored 16-bit stays 16-bit and a family
 * candidate's N:M tensors are read one layer at a time in whichever model holds them. */
#ifndef NMF_MODEL_BLOCK_LINEAR_H
#define NMF_MODEL_BLOCK_LINEAR_H

#include "io/io_internal.h"
#include "nmformer/desc.h"
#include "nmformer/io.h"
#include "nmformer/kernels.h"
#include "nmformer/tensor.h"

/* NMF_ERR_NUMERIC naming `name` when one of the n 16-bit values v (dtype) is an infinity or a NaN. */
nmf_status nmf_block_check_finite16(const char *name, const uint16_t *v, size_t n, nmf_dtype dtype);
/* 1 when t holds 16-bit values, or is the header of a 16-bit dense tensor to be read or mapped
 * (NMF_IO_RAW16_HEADERS). */
int nmf_block_is16(const nmf_tensor *t);
/* 1 when the set was read keeping 16-bit values (nmf_load_model_keep16: a tensor nmf_block_is16). */
int nmf_block_set_kept16(const nmf_tensor_set *s);

/* The file mappings a model's borrowed weights point into (nmf_linear_create_dense16_borrow):
 * the model holds them until it is freed, after its linears. */
typedef struct {
    nmf_io_window *items;
    size_t count, cap;
} nmf_block_maps;
void nmf_block_maps_free(nmf_block_maps *m);
/* *lin from t, the tensor of parameter p (kind k):
 * - N:M (t->nm, the (out, in) view): checked (nmf_nm_validate, finite kept values); when kept16
 *   and stored BF16, a compact bf16 N:M layer (nmf_linear_create_nm_bf16: its values are bf16
 *   already, memory ~ the stored bytes), else an f32 one;
 * - dense 16-bit (t->data16): a dense 16-bit layer (nmf_linear_create_dense16), taking t's values
 *   when take (t is the caller's to give up) and no transposition is needed;
 * - dense f32: a dense layer.
 * A weight stored [in, out] (k->in_axis == 0, GPT-2's Conv1D) is transposed once to (out, in);
 * 16-bit values are moved, never rounded. */
nmf_status nmf_block_linear_from_tensor(nmf_linear **lin, const nmf_param *p, const nmf_param_kind *k,
                                        nmf_tensor *t, int take, int kept16);

/* Where a model's tensors come from while it is built. */
typedef struct {
    nmf_family_file *file; /* an .nmf family: the candidate's N:M tensors are in the set as headers
                            * (values NULL), each read when its layer is built; NULL: all in the set */
    size_t model;          /* the candidate in file */
} nmf_block_source;

/* path's model `name` read for a build: its config (fallback, overrides: as nmf_load_model_with;
 * finished and checked against the tensors) and tensors into s (16-bit values kept with keep16).
 * A family candidate's f32 dense tensors are read now, its N:M tensors and (keep16) 16-bit dense
 * ones only as headers: each N:M one read when its layer is built, each 16-bit one used in place
 * from the file when it becomes a dense 16-bit layer (nmf_block_dense16_build) or read when it
 * goes to the model's dense buffer (nmf_block_source_fill); memory ~ the candidate's stored bytes
 * once built, the in-place ones file-backed. A folder or safetensors file is read whole. token:
 * the kind the caller builds (1 a token model, 0 a ViT); a family of the other kind is
 * NMF_ERR_UNSUPPORTED before any tensor is read (a folder or safetensors file: after). Close src
 * (and free s) even after a failure. */
nmf_status nmf_block_source_open(nmf_block_source *src, const char *path, const char *name,
                                 const nmf_model_config *fallback, const nmf_config_overrides *overrides,
                                 int keep16, int token, nmf_model_config *c, nmf_tensor_set *s);
void nmf_block_source_close(nmf_block_source *src);
/* Every tensor of s that goes to the model's dense buffer (its kind has an offset in layout l of
 * d) and is a header only (NMF_IO_RAW16_HEADERS), read now (16-bit values kept): what
 * nmf_model_load_dense then copies. src NULL or without a file: nothing to do. */
nmf_status nmf_block_source_fill(const nmf_block_source *src, nmf_tensor_set *s, const nmf_model_desc *d,
                                 nmf_layout l);
/* A dense 16-bit layer of p's (out, in) = (p->rows, p->cols) from t (16-bit values, or a header of
 * src's family): used in place from the file when t is a header, stored (out, in) and the layout
 * allows (nmf_io_family_file_map16; maps then holds the mapping), else built from its values (read
 * from src when t is a header; taken when take, else copied; transposed once from [in, out] when
 * transposed). The values are checked finite either way. */
nmf_status nmf_block_dense16_build(nmf_linear **lin, const nmf_param *p, nmf_tensor *t, int transposed,
                                   int take, const nmf_block_source *src, nmf_block_maps *maps);
/* nmf_block_linear_from_tensor for t, the set's tensor of p; when t is a header (src's family), an
 * N:M tensor is read from src's file (its CRC checked), built and dropped, a 16-bit dense one goes
 * to nmf_block_dense16_build. */
nmf_status nmf_block_linear_build(nmf_linear **lin, const nmf_param *p, const nmf_param_kind *k,
                                  nmf_tensor *t, int take, int kept16, const nmf_block_source *src,
                                  nmf_block_maps *maps);

#endif
