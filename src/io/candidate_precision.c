/* A candidate's default precision (io.h NMF_META_PRECISION): a key of its metadata, so that it
 * travels with the candidate through every .nmf and safetensors file it is copied into. */
#include <string.h>

#include "io/io_internal.h"
#include "nmformer/io.h"
#include "nmformer/kernels.h"

nmf_status nmf_candidate_precision(const nmf_tensor_set *s, nmf_precision *p) {
    if (!s || !p) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_candidate_precision: NULL argument");
    *p = NMF_PREC_COUNT;
    const char *v = nmf_tensors_get_meta(s, NMF_META_PRECISION);
    if (!v) return NMF_OK;
    nmf_precision q;
    if (nmf_precision_parse(v, &q) != NMF_OK)
        return nmf_error(NMF_ERR_FORMAT, "metadata %s '%.32s': expected f32, bf16 or int8",
                         NMF_META_PRECISION, v);
    *p = q;
    return NMF_OK;
}

nmf_status nmf_candidate_set_precision(nmf_tensor_set *s, nmf_precision p) {
    if (!s || (unsigned)p >= NMF_PREC_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_candidate_set_precision: bad argument");
    return nmf_tensors_set_meta(s, NMF_META_PRECISION, nmf_precision_name(p));
}

nmf_status nmf_file_default_precision(const char *path, const char *name, nmf_precision *p) {
    if (!path || !p) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_file_default_precision: NULL argument");
    *p = NMF_PREC_COUNT;
    if (!nmf_io_peekable(path)) return NMF_OK; /* a FIFO or device: its bytes are the load's */
    nmf_file_kind kind;
    nmf_status st = nmf_file_kind_detect(path, &kind);
    if (st) { /* no default to read: the load that follows says what is wrong with the path */
        nmf_clear_error();
        return NMF_OK;
    }
    if (kind != NMF_FILE_NMF) return NMF_OK;
    nmf_family_file *f;
    if ((st = nmf_family_open(path, &f))) return st;
    const size_t n = nmf_family_file_count(f);
    size_t i = 0;
    if (name)
        while (i < n && strcmp(nmf_family_file_name(f, i), name)) i++;
    if (i >= n || (!name && n != 1)) /* the loader says which candidate is missing or needed */
        i = n;
    if (i < n) st = nmf_candidate_precision(nmf_family_file_metadata(f, i), p);
    if (st) st = nmf_error_context(st, "model '%s'", nmf_family_file_name(f, i));
    nmf_family_close(f);
    return st;
}
