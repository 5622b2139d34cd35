/* Functional-mode verification: the simulator against the fixed-point reference and the CPU's
 * fixed-point mode (bit for bit), and against the f32 forward, on given images. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/model.h"
#include "nmformer/sta.h"

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

nmf_status nmf_sta_verify(nmf_sta_verify_result *r, const nmf_sta_config *hw,
                          const nmf_model_config *v, const nmf_tensor_set *weights,
                          const float *calib, size_t ncal, const float *x, const int *labels,
                          size_t neval) {
    if (!r || !hw || !v || !weights || !calib || !ncal || !x || !neval)
        return nmf_error(NMF_ERR_INVALID_ARG, "sta verify: NULL argument or no images");
    memset(r, 0, sizeof *r);
    const size_t img = (size_t)v->in_chans * (size_t)v->img_size * (size_t)v->img_size;
    const int classes = v->num_classes;
    float *lf32 = malloc(neval * (size_t)classes * sizeof(float));
    float *lfx = malloc((size_t)classes * sizeof(float));
    int16_t *xq = malloc(neval * img * sizeof(int16_t));
    int64_t *lcpu = malloc(neval * (size_t)classes * sizeof(int64_t));
    nmf_fx_cpu *cpu = NULL;
    int64_t *lsim = malloc((size_t)classes * sizeof(int64_t)), *lref = malloc((size_t)classes * sizeof(int64_t));
    nmf_fx_model q = {0};
    nmf_status st = NMF_OK;
    double t0 = nmf_now();
    if (!lf32 || !lfx || !xq || !lsim || !lref || !lcpu) st = nmf_error(NMF_ERR_NOMEM, "sta verify: out of memory");
    if (!st) st = nmf_fx_quantize_model(&q, v, weights, hw, calib, ncal);
    if (!st) st = nmf_sta_f32_forward(lf32, x, neval, v, weights, NULL, 0);
    if (!st) st = nmf_fx_cpu_create_quantized(&cpu, &q, hw);
    if (!st) {
        nmf_fx_quantize_input(xq, x, neval * img, &q);
        double c0 = nmf_now();
        st = nmf_fx_cpu_forward_q(cpu, lcpu, xq, neval);
        r->cpu_s = nmf_now() - c0;
        r->cpu_threads = nmf_get_threads();
    }
    for (size_t b = 0; b < neval && !st; b++) {
        double s0 = nmf_now();
        if ((st = nmf_sta_functional_forward(lsim, xq + b * img, &q, hw))) break;
        r->sim_s += nmf_now() - s0;
        if ((st = nmf_fx_ref_forward(lref, xq + b * img, &q))) break;
        r->mismatched += memcmp(lsim, lref, (size_t)classes * sizeof *lsim) != 0;
        r->cpu_mismatched += memcmp(lsim, lcpu + b * (size_t)classes, (size_t)classes * sizeof *lsim) != 0;
        nmf_fx_logits_to_f32(lfx, lsim, &q);
        const float *lf = lf32 + b * (size_t)classes;
        for (int o = 0; o < classes; o++)
            r->max_abs_logit_error = fmax(r->max_abs_logit_error, fabs((double)lfx[o] - lf[o]));
        int pf = argmax(lf, classes), px = argmax(lfx, classes);
        r->top1_agree += pf == px;
        if (labels) {
            r->correct_f32 += pf == labels[b];
            r->correct_fixed += px == labels[b];
        }
    }
    r->images = neval;
    r->calibration_images = ncal;
    r->wall_s = nmf_now() - t0;
    nmf_fx_cpu_free(cpu);
    nmf_fx_model_free(&q);
    free(lf32), free(lfx), free(xq), free(lsim), free(lref), free(lcpu);
    return st;
}
