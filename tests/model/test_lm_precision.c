/* Token models in bf16 and int8 arithmetic (nmf_lm_set_precision), against the same model in
 * f32: the GPT-2 and LLaMA fixtures pruned to 2:4 and 2:8 by magnitude (nmf_family_prune), each
 * candidate built in f32 three times, two of them switched. bf16 and int8 logits differ from
 * f32 (the weights really are rounded / quantised) but stay within a stated fraction of the
 * largest logit (bf16 weights: 8 mantissa bits, ~2^-9 relative per weight; int8: per-row weights
 * and per-token activations, ~2^-7), at every ISA; the dense candidate in int8 (dense int8
 * products) within the int8 tolerance of its f32 logits too; a precision is set once. */
#include <stdlib.h>

#include "lm_test_util.h"
#include "model/lm_internal.h"
#include "nmformer/kernels.h"

static void one(const char *fixture, nmf_pattern p) {
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(fixture_path(fixture, NULL), NULL, NULL, &c, &s));
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = c;
    nmf_dtype dt;
    CHECK_OK(nmf_family_prune(&fam, &c, &s, &p, 1, 1, &dt));
    nmf_tensors_free(&s);
    nmf_id_array ids = fixture_ids(fixture, "input_ids.npy");
    if (test_failures || fam.count != 2 || !ids.data) goto done;
    const size_t B = (size_t)ids.shape[0], T = (size_t)ids.shape[1];
    /* the dense candidate: bf16, and int8 close to its f32 logits */
    nmf_lm *d = NULL, *di = NULL;
    CHECK_OK(nmf_lm_create(&d, &c, &fam.models[0].tensors));
    CHECK_OK(nmf_lm_create(&di, &c, &fam.models[0].tensors));
    if (d && di) {
        CHECK_OK(nmf_lm_set_precision(di, NMF_PREC_INT8));
        const size_t n = nmf_lm_output_floats(d, B, T);
        float *f = malloc(n * sizeof *f), *y = malloc(n * sizeof *y);
        CHECK_OK(nmf_lm_forward(d, f, ids.data, B, T, NULL));
        CHECK_OK(nmf_lm_forward(di, y, ids.data, B, T, NULL));
        const double e = rel_err(y, f, n);
        CHECK_MSG(e > 0 && e <= 1.0 / 16, "%s dense int8: rel err %.3g vs f32", fixture, e);
        free(f);
        free(y);
    }
    nmf_lm_free(d);
    nmf_lm_free(di);
    d = NULL;
    CHECK_OK(nmf_lm_create(&d, &c, &fam.models[0].tensors));
    if (d) CHECK_OK(nmf_lm_set_precision(d, NMF_PREC_BF16));
    nmf_lm_free(d);
    /* the N:M candidate in each precision */
    nmf_lm *mf = NULL, *mb = NULL, *mi = NULL;
    CHECK_OK(nmf_lm_create(&mf, &c, &fam.models[1].tensors));
    CHECK_OK(nmf_lm_create(&mb, &c, &fam.models[1].tensors));
    CHECK_OK(nmf_lm_create(&mi, &c, &fam.models[1].tensors));
    if (!mf || !mb || !mi) goto free_models;
    CHECK_OK(nmf_lm_set_precision(mb, NMF_PREC_BF16));
    CHECK_OK(nmf_lm_set_precision(mi, NMF_PREC_INT8));
    CHECK_STATUS(nmf_lm_set_precision(mi, NMF_PREC_BF16), NMF_ERR_INVALID_ARG); /* set once */
    /* (int8's windows are padded to 64 inputs: on this small model not below bf16's 2.5 bytes
     * per kept weight) */
    CHECK(nmf_lm_weight_bytes(mi) < nmf_lm_weight_bytes(mf) && nmf_lm_weight_bytes(mb) < nmf_lm_weight_bytes(mf));
    const size_t n = nmf_lm_output_floats(mf, B, T);
    float *f = malloc(n * sizeof *f), *y = malloc(n * sizeof *y);
    CHECK_OK(nmf_lm_forward(mf, f, ids.data, B, T, NULL));
    for (int isa = NMF_ISA_SCALAR; isa <= (int)nmf_cpu_best_isa(); isa++) {
        nmf_set_isa((nmf_isa)isa);
        const struct { nmf_lm *m; const char *name; double tol; } runs[] = {
            {mb, "bf16", 1.0 / 64}, {mi, "int8", 1.0 / 16}};
        for (int r = 0; r < 2; r++) {
            CHECK_OK(nmf_lm_forward(runs[r].m, y, ids.data, B, T, NULL));
            const double e = rel_err(y, f, n);
            CHECK_MSG(e > 0 && e <= runs[r].tol, "%s %d:%d %s (%s): rel err %.3g vs f32 (tolerance %.3g)",
                      fixture, p.n, p.m, runs[r].name, nmf_isa_name((nmf_isa)isa), e, runs[r].tol);
        }
    }
    nmf_set_isa(nmf_cpu_best_isa());
    free(f);
    free(y);
free_models:
    nmf_lm_free(mf);
    nmf_lm_free(mb);
    nmf_lm_free(mi);
done:
    nmf_id_array_free(&ids);
    nmf_family_free(&fam);
}

/* keeps a copy of the final norm's output (the head's input) */
static void keep_norm(const nmf_op_event *e, void *ctx) {
    float **dst = ctx;
    if (e->op != NMF_LOP_NORM || e->block != -1) return;
    free(*dst);
    *dst = malloc(e->rows * e->cols * sizeof(float));
    memcpy(*dst, e->data, e->rows * e->cols * sizeof(float));
}

/* An int8 decoder's head (lm_head, or the tied embedding, f32 in param_buf) runs in int8: its
 * logits are the bits of a dense int8 layer of that weight on the final norm's output, and the
 * layer counts in the weight bytes; a bf16 model keeps the f32 head. (A head kept 16-bit from
 * the file belongs to a model that is bf16 already, which cannot become int8.) */
static void int8_head(const char *fixture) {
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(fixture_path(fixture, NULL), NULL, NULL, &c, &s));
    nmf_lm *m = NULL, *mb = NULL;
    CHECK_OK(nmf_lm_create(&m, &c, &s));
    CHECK_OK(nmf_lm_create(&mb, &c, &s));
    nmf_tensors_free(&s);
    nmf_id_array ids = fixture_ids(fixture, "input_ids.npy");
    if (!m || !mb || !ids.data) goto done;
    const size_t B = (size_t)ids.shape[0], T = (size_t)ids.shape[1], n = nmf_lm_output_floats(m, B, T);
    CHECK_OK(nmf_lm_set_precision(mb, NMF_PREC_BF16));
    CHECK(mb->head8 == NULL && mb->head16 == NULL);
    CHECK_OK(nmf_lm_set_precision(m, NMF_PREC_INT8));
    CHECK_MSG(m->head8 != NULL, "%s: no int8 head", fixture);
    if (!m->head8) goto done;
    nmf_linear *made = m->head8; /* it counts in the weight bytes */
    const size_t with = nmf_lm_weight_bytes(m), hb = nmf_linear_weight_bytes(made), vd = m->V * m->D;
    m->head8 = NULL;
    CHECK(with - nmf_lm_weight_bytes(m) == hb);
    CHECK_MSG(hb >= vd && hb < 2 * vd, "%s: int8 head %zu bytes", fixture, hb); /* 1 a weight + scales */
    m->head8 = made;
    float *y = malloc(n * sizeof(float)), *h = NULL, *want = malloc(n * sizeof(float));
    CHECK_OK(nmf_lm_forward_observed(m, y, ids.data, B, T, NULL, keep_norm, &h));
    const float *W = nmf_lm_param(m, m->k.head_w, -1);
    if (!W) W = nmf_lm_param(m, m->k.word, -1);
    nmf_linear *head = NULL;
    CHECK_OK(nmf_linear_create_dense_int8(&head, W, m->V, m->D));
    if (h && head) {
        CHECK_OK(nmf_linear_forward(want, h, head, NULL, B * T, NMF_ACT_NONE));
        CHECK_MSG(!memcmp(want, y, n * sizeof(float)), "%s: int8 logits are not the int8 head's", fixture);
    }
    nmf_linear_free(head);
    free(y);
    free(h);
    free(want);
done:
    nmf_id_array_free(&ids);
    nmf_lm_free(m);
    nmf_lm_free(mb);
}

int main(void) {
    CHECK_STATUS(nmf_lm_set_precision(NULL, NMF_PREC_BF16), NMF_ERR_INVALID_ARG);
    one("gpt2_lm", (nmf_pattern){2, 4});
    one("llama_gqa6x2", (nmf_pattern){2, 8});
    int8_head("gpt2_lm");                /* tied */
    int8_head("llama_gqa6x2");           /* lm_head */
    int8_head("llama_gqa4x1_tied_bf16"); /* tied, widened to f32 by nmf_lm_create */
    return test_finish("test_lm_precision");
}
