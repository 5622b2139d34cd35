/* A candidate's default precision (io.h NMF_META_PRECISION): a key of its metadata, so that it
 * travels with the candidate through every .nmf and safetensors file it is copied into. */
#include <string.h>

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
