/* Calibration samples: what the model's forward takes (normalised NCHW images for the ViT, token
 * ids for the token families), checked here once so that a bad file fails before any pruning
 * with a detail that says what is wrong and where; and the pass of the whole set through the one
 * observed forward. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nmformer/data.h"
#include "nmformer/lm.h"
#include "prune/prune_internal.h"

void nmf_calib_free(nmf_calib *cal) {
    if (!cal) return;
    nmf_free(cal->images);
    nmf_free(cal->ids);
    memset(cal, 0, sizeof *cal);
}

static size_t take(size_t have, size_t max_samples) {
    return max_samples && max_samples < have ? max_samples : have;
}

static nmf_status load_images(nmf_calib *out, const nmf_model_config *c, const char *path,
                              size_t max_samples) {
    nmf_array a;
    nmf_status st = nmf_npy_read(path, &a);
    if (st) return st;
    const int64_t S = c->img_size;
    if (a.ndim != 4 || a.shape[1] != c->in_chans || a.shape[2] != S || a.shape[3] != S) {
        char got[96] = "";
        for (int i = 0, k = 0; i < a.ndim && k < (int)sizeof got - 24; i++)
            k += snprintf(got + k, sizeof got - (size_t)k, "%s%lld", i ? ", " : "", (long long)a.shape[i]);
        nmf_array_free(&a);
        return nmf_error(NMF_ERR_SHAPE, "%s: images of shape (%s); the model takes (B, %d, %d, %d) "
                         "float32 NCHW", path, got, c->in_chans, c->img_size, c->img_size);
    }
    if (a.shape[0] == 0) {
        nmf_array_free(&a);
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: holds no images", path);
    }
    const size_t per = a.numel / (size_t)a.shape[0];
    for (size_t i = 0; i < a.numel; i++)
        if (!isfinite(a.data[i])) {
            nmf_error(NMF_ERR_NUMERIC, "%s: image %zu has a non-finite value (%g) at index %zu", path,
                      i / per, (double)a.data[i], i % per);
            nmf_array_free(&a);
            return NMF_ERR_NUMERIC;
        }
    out->count = take((size_t)a.shape[0], max_samples);
    out->sample_len = per;
    out->images = a.data; /* the samples past count are never read */
    return NMF_OK;
}

static nmf_status load_ids(nmf_calib *out, const nmf_model_config *c, const char *path,
                           size_t max_samples) {
    nmf_id_array a;
    nmf_status st = nmf_npy_read_ids(path, &a);
    if (st) return st;
    const nmf_hf_config *h = &c->hf;
    if (a.ndim != 2) {
        nmf_id_array_free(&a);
        return nmf_error(NMF_ERR_SHAPE, "%s: token ids of %d dimensions; the model takes (B, T)",
                         path, a.ndim);
    }
    if (a.shape[0] == 0 || a.shape[1] == 0) {
        nmf_id_array_free(&a);
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: holds no tokens (shape (%lld, %lld))", path,
                         (long long)a.shape[0], (long long)a.shape[1]);
    }
    if (a.shape[1] > h->max_position_embeddings) {
        nmf_id_array_free(&a);
        return nmf_error(NMF_ERR_SHAPE, "%s: sequences of %lld tokens; the model takes at most %d",
                         path, (long long)a.shape[1], h->max_position_embeddings);
    }
    const size_t T = (size_t)a.shape[1];
    for (size_t i = 0; i < a.numel; i++)
        if (a.data[i] < 0 || a.data[i] >= h->vocab_size) {
            nmf_error(NMF_ERR_INVALID_ARG, "%s: sequence %zu, position %zu: token id %lld is outside "
                      "[0, %d)", path, i / T, i % T, (long long)a.data[i], h->vocab_size);
            nmf_id_array_free(&a);
            return NMF_ERR_INVALID_ARG;
        }
    out->count = take((size_t)a.shape[0], max_samples);
    out->seq_len = out->sample_len = T;
    out->ids = a.data;
    return NMF_OK;
}

nmf_status nmf_calib_load(nmf_calib *out, const nmf_model_config *c, const char *path,
                          size_t max_samples) {
    if (!out || !c || !path) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_calib_load: NULL argument");
    memset(out, 0, sizeof *out);
    return nmf_model_is_token(c) ? load_ids(out, c, path, max_samples)
                                 : load_images(out, c, path, max_samples);
}

nmf_status nmf_calib_fashion_mnist(nmf_calib *out, const nmf_model_config *c, const char *data_dir,
                                   size_t samples) {
    if (!out || !c || samples == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_calib_fashion_mnist: NULL argument or no samples");
    memset(out, 0, sizeof *out);
    if (nmf_model_is_token(c) || c->in_chans != 1 || c->img_size != 28)
        return nmf_error(NMF_ERR_INVALID_ARG, "the default calibration set is Fashion-MNIST (1 x 28 x "
                         "28 images); this %s model needs a calibration file", c->arch);
    nmf_dataset ds;
    nmf_status st = nmf_dataset_load(&ds, data_dir, NMF_SPLIT_TRAIN);
    if (st) return st;
    const size_t n = take(ds.n, samples), per = (size_t)ds.rows * (size_t)ds.cols;
    out->images = nmf_alloc(n * per, sizeof(float));
    if (!out->images) st = nmf_error(NMF_ERR_NOMEM, "%zu calibration images", n);
    /* the first n training images (idx NULL): the split's order is already a shuffle */
    if (!st) st = nmf_dataset_batch(out->images, NULL, &ds, NULL, n, c->mean, c->std);
    nmf_dataset_free(&ds);
    if (st) {
        nmf_calib_free(out);
        return st;
    }
    out->count = n;
    out->sample_len = per;
    return NMF_OK;
}

/* Samples per forward when the caller names none: the ViT's activations are small; a token model
 * holds (B*T, vocab) logits (B*T*D hidden states without a head; B*labels for a classifier),
 * kept near 64 MB, and B*T near 2048 tokens. */
size_t nmf_calib_batch(const nmf_model_config *c, const nmf_calib *cal, size_t batch) {
    if (batch) return batch;
    if (!nmf_model_is_token(c)) return 64;
    const nmf_hf_config *h = &c->hf;
    const size_t per_out = h->head == NMF_HF_HEAD_LM           ? cal->seq_len * (size_t)h->vocab_size
                           : h->head == NMF_HF_HEAD_CLASSIFIER ? (size_t)h->num_labels
                                                               : cal->seq_len * (size_t)h->hidden_size;
    size_t b = 2048 / cal->seq_len;
    const size_t cap = ((size_t)16 << 20) / (per_out ? per_out : 1);
    if (b > cap) b = cap;
    return b ? b : 1;
}

nmf_status nmf_calib_forward(const nmf_model_config *c, const nmf_tensor_set *tensors,
                             const nmf_calib *cal, size_t batch, nmf_observer obs, void *ctx) {
    const int token = nmf_model_is_token(c);
    if (!cal || cal->count == 0 || (token ? !cal->ids : !cal->images))
        return nmf_error(NMF_ERR_INVALID_ARG, "calibration set: none, empty, or not the model's "
                         "input (%s)", token ? "token ids" : "images");
    nmf_vit *vit = NULL;
    nmf_lm *lm = NULL;
    nmf_status st = token ? nmf_lm_create(&lm, c, tensors) : nmf_vit_create(&vit, c, tensors);
    if (st) return st;
    const size_t per_out = token ? nmf_lm_output_floats(lm, 1, cal->seq_len) : (size_t)c->num_classes;
    const size_t B = nmf_calib_batch(c, cal, batch);
    float *out = nmf_alloc(B * per_out, sizeof(float));
    if (!out) st = nmf_error(NMF_ERR_NOMEM, "calibration outputs of %zu samples", B);
    for (size_t i = 0; !st && i < cal->count; i += B) {
        const size_t b = cal->count - i < B ? cal->count - i : B;
        st = token ? nmf_lm_forward_observed(lm, out, cal->ids + i * cal->seq_len, b, cal->seq_len,
                                             NULL, obs, ctx)
                   : nmf_vit_forward_observed(vit, out, cal->images + i * cal->sample_len, b, obs, ctx);
    }
    nmf_free(out);
    nmf_vit_free(vit);
    nmf_lm_free(lm);
    return st;
}
