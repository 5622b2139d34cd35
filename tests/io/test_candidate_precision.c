/* A candidate's default precision in its metadata (io.h NMF_META_PRECISION): absent, set and read
 * back for every precision, an unknown stored value refused with a message naming it, bad
 * arguments. */
#include "nmformer/io.h"
#include "test.h"

int main(void) {
    nmf_tensor_set s;
    nmf_tensors_init(&s);
    nmf_precision p = NMF_PREC_F32;
    CHECK_OK(nmf_candidate_precision(&s, &p));
    CHECK(p == NMF_PREC_COUNT); /* absent */
    for (int q = 0; q < NMF_PREC_COUNT; q++) {
        CHECK_OK(nmf_candidate_set_precision(&s, (nmf_precision)q));
        CHECK(!strcmp(nmf_tensors_get_meta(&s, NMF_META_PRECISION), nmf_precision_name((nmf_precision)q)));
        CHECK_OK(nmf_candidate_precision(&s, &p));
        CHECK(p == (nmf_precision)q);
    }
    CHECK_OK(nmf_tensors_set_meta(&s, NMF_META_PRECISION, "fp8"));
    CHECK_STATUS(nmf_candidate_precision(&s, &p), NMF_ERR_FORMAT);
    CHECK(strstr(nmf_last_error(), "'fp8'") != NULL && strstr(nmf_last_error(), NMF_META_PRECISION));
    CHECK_STATUS(nmf_candidate_set_precision(&s, NMF_PREC_COUNT), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_candidate_set_precision(NULL, NMF_PREC_F32), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_candidate_precision(NULL, &p), NMF_ERR_INVALID_ARG);
    nmf_tensors_free(&s);
    return test_finish("candidate_precision");
}
