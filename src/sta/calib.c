/* The calibration images of functional mode: one definition for the simulator's functional
 * check (`sim --functional`) and the CPU's fixed-point mode (`run`/`eval --sta`), so both quantise
 * a model to the same numbers. */
#include <string.h>

#include "core/rng.h"
#include "nmformer/data.h"
#include "nmformer/sta.h"

#define CALIB_FMNIST 256  /* training images */
#define CALIB_RANDOM 16   /* N(0,1) images when Fashion-MNIST does not apply */
#define CALIB_SEED 0x1234567ULL

nmf_status nmf_sta_calibration_images(float **images, size_t *n, int *fmnist,
                                      const nmf_model_config *v, const char *data_dir) {
    if (!images || !n || !v) return nmf_error(NMF_ERR_INVALID_ARG, "sta calibration: NULL argument");
    *images = NULL;
    *n = 0;
    if (fmnist) *fmnist = 0;
    const size_t img = (size_t)v->in_chans * (size_t)v->img_size * (size_t)v->img_size;
    nmf_dataset train = {0};
    int use = v->in_chans == 1 && v->img_size == 28 && v->num_classes >= NMF_FASHION_MNIST_CLASSES &&
              nmf_dataset_load(&train, data_dir, NMF_SPLIT_TRAIN) == NMF_OK && train.n >= CALIB_FMNIST;
    const size_t count = use ? CALIB_FMNIST : CALIB_RANDOM;
    float *x = nmf_alloc(count * img, sizeof *x);
    nmf_status st = x ? NMF_OK : nmf_error(NMF_ERR_NOMEM, "sta calibration: out of memory");
    if (!st && use) {
        st = nmf_dataset_batch(x, NULL, &train, NULL, count, v->mean, v->std);
    } else if (!st) {
        /* a missing dataset is not an error here; why it is missing stays in nmf_last_error()
         * for the caller's warning (sim prints it) */
        uint64_t s = CALIB_SEED;
        for (size_t i = 0; i < count * img; i++) x[i] = (float)nmf_rng_normal(&s);
    }
    nmf_dataset_free(&train);
    if (st) {
        nmf_free(x);
        return st;
    }
    *images = x;
    *n = count;
    if (fmnist) *fmnist = use;
    return NMF_OK;
}
