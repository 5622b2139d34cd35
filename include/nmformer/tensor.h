/* A named set of tensors (one model's weights) plus string metadata, as read from safetensors or
 * from one candidate of an .nmf family. In memory every value is f32 (a 2-D weight may be held
 * packed N:M instead of (or besides) dense), except in a set read for a model that keeps its
 * weights in their storage precision (nmf_load_model_keep16): there a dense BF16/F16 tensor
 * holds its stored 16-bit values in data16 and data is NULL. */
#ifndef NMFORMER_TENSOR_H
#define NMFORMER_TENSOR_H

#include "nmformer/nm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NMF_MAX_DIMS 4

typedef enum { NMF_DTYPE_F32 = 0, NMF_DTYPE_F16, NMF_DTYPE_BF16, NMF_DTYPE_COUNT } nmf_dtype;
NMF_API const char *nmf_dtype_name(nmf_dtype t);            /* "F32", "F16", "BF16" (safetensors names) */
NMF_API nmf_status nmf_dtype_parse(const char *s, nmf_dtype *out); /* accepts F32/f32, F16/f16, BF16/bf16 */
NMF_API size_t nmf_dtype_size(nmf_dtype t);
/* Conversions (round to nearest even for f32 -> f16/bf16; NaN stays NaN). */
NMF_API uint16_t nmf_f32_to_f16(float x);
NMF_API float nmf_f16_to_f32(uint16_t h);
NMF_API uint16_t nmf_f32_to_bf16(float x);
NMF_API float nmf_bf16_to_f32(uint16_t h);

typedef struct {
    char *name;
    int ndim;
    int64_t shape[NMF_MAX_DIMS];
    size_t numel;
    float *data;       /* dense values [numel] in `shape`, or NULL when the tensor is held only as nm
                        * or as data16 */
    uint16_t *data16;  /* the stored BF16/F16 values [numel] (stored_dtype says which) when a reader
                        * was asked to keep them (nmf_load_model_keep16), else NULL */
    /* Packed N:M form of a 2-D linear weight, or NULL. The nm matrix is ALWAYS the linear's
     * (out, in) view: nm->rows = outputs, nm->cols = inputs, groups of M consecutive inputs, so
     * y = x W^T with W = nmf_nm_unpack(nm) whatever the storage order; an nmf_linear built from it
     * needs no transpose. How it relates to `shape`: */
    nmf_nm_matrix *nm;
    /* 0: shape = [nm->rows, nm->cols] = [out, in] (nn.Linear, every family but GPT-2);
     * 1: shape = [nm->cols, nm->rows] = [in, out] (GPT-2's Conv1D, in_axis 0 in desc.h): the
     *    tensor keeps its logical [in, out] shape and nmf_tensor_dense gives [in, out] values
     *    (the transpose of nm's unpack). nmf_model_desc_check requires it to match the kind's
     *    in_axis, so GPT-2's N:M weights always have 1 and the others 0. */
    int nm_transposed;
    /* The dtype the values were stored in in the file they were read from (F32 for tensors made
     * in memory): what writers use by default (nmf_tensors_stored_dtype). In memory every value
     * is f32 regardless. */
    nmf_dtype stored_dtype;
} nmf_tensor;

typedef struct {
    char *key, *value;
} nmf_meta;

typedef struct {
    nmf_tensor *items;
    size_t count, cap;
    nmf_meta *meta;
    size_t meta_count, meta_cap;
    /* internal: hash of item names (open addressing, item index + 1; 0 = empty slot), so that
     * find and the duplicate check of add stay O(1) for files with very many tensors */
    size_t *index_;
    size_t index_cap_;
} nmf_tensor_set;

NMF_API void nmf_tensors_init(nmf_tensor_set *s);
NMF_API void nmf_tensors_free(nmf_tensor_set *s);
/* Adds a dense tensor (data copied; NULL -> zeros). Duplicate names are an error. */
NMF_API nmf_status nmf_tensors_add_dense(nmf_tensor_set *s, const char *name, int ndim,
                                 const int64_t *shape, const float *data, nmf_tensor **out);
/* Adds a 2-D N:M tensor of shape [nm->rows, nm->cols]; takes ownership of *nm (the struct is
 * moved, caller's copy zeroed). */
NMF_API nmf_status nmf_tensors_add_nm(nmf_tensor_set *s, const char *name, nmf_nm_matrix *nm,
                              nmf_tensor **out);
/* The same with transposed != 0 for a weight stored [in, out] (GPT-2's Conv1D): *nm is its
 * (out, in) view and the tensor gets shape [nm->cols, nm->rows] and nm_transposed = 1. */
NMF_API nmf_status nmf_tensors_add_nm_transposed(nmf_tensor_set *s, const char *name, nmf_nm_matrix *nm,
                                         int transposed, nmf_tensor **out);
/* Adds a dense tensor held as 16-bit values (data16, zeroed; data NULL) of stored dtype
 * NMF_DTYPE_BF16 or NMF_DTYPE_F16. */
NMF_API nmf_status nmf_tensors_add_dense16(nmf_tensor_set *s, const char *name, int ndim,
                                           const int64_t *shape, nmf_dtype dtype, nmf_tensor **out);
/* Moves t (a tensor of another set: name, shape, values in whatever form, stored dtype) into s;
 * t keeps its name and loses its values (data, data16, nm NULL), so that its set frees nothing
 * twice. A duplicate name in s is an error and leaves t as it was. */
NMF_API nmf_status nmf_tensors_move_in(nmf_tensor_set *s, nmf_tensor *t, nmf_tensor **out);
NMF_API nmf_tensor *nmf_tensors_find(const nmf_tensor_set *s, const char *name);
/* Removes (and frees) the tensor of that name; 1 if there was one, 0 if not. Keeps the order of
 * the others. */
NMF_API int nmf_tensors_remove(nmf_tensor_set *s, const char *name);
/* Dense values of t into out[numel], in t's shape (unpacks nm tensors; [in, out] for a
 * transposed one; widens data16). */
NMF_API nmf_status nmf_tensor_dense(const nmf_tensor *t, float *out);
/* The dtype every tensor of s was stored in (stored_dtype); F32 when they differ or s is empty
 * (f32 holds every F16/BF16 value exactly). Writers' default, so that a BF16 source stays BF16. */
NMF_API nmf_dtype nmf_tensors_stored_dtype(const nmf_tensor_set *s);
NMF_API nmf_status nmf_tensors_set_meta(nmf_tensor_set *s, const char *key, const char *value);
NMF_API const char *nmf_tensors_get_meta(const nmf_tensor_set *s, const char *key); /* NULL if absent */
/* Every metadata entry of s set in out as well. */
NMF_API nmf_status nmf_tensors_copy_meta(const nmf_tensor_set *s, nmf_tensor_set *out);
/* out (initialised here) = copy of s, metadata and stored dtypes included, with every tensor
 * dense (N:M ones unpacked, zeros where pruned). */
NMF_API nmf_status nmf_tensors_copy_dense(const nmf_tensor_set *s, nmf_tensor_set *out);

#ifdef __cplusplus
}
#endif
#endif
