/* Checking a model file's stored bytes without loading the model (`nmformer info --verify`):
 * an .nmf family payload by payload (nmf_family_file_check: padding, CRC, N:M codes), a
 * safetensors file or model folder (no checksums there) header by header and tensor by tensor.
 * Every bad tensor is reported, not only the first. */
#include <stdlib.h>

#include "io/io_internal.h"

/* The file as a whole is bad: one problem without a tensor. */
static nmf_status whole_file(nmf_status st, nmf_verify_fn fn, void *user, size_t *bad) {
    if (bad) *bad = 1;
    if (fn) {
        nmf_verify_problem p = {NULL, NULL, st, nmf_last_error()};
        fn(&p, user);
    }
    return st;
}

/* Every tensor's bytes mapped and decoded, one at a time. */
static nmf_status check_files(const nmf_io_hf_weights *w, nmf_verify_fn fn, void *user, size_t *bad) {
    nmf_status first = NMF_OK;
    for (size_t s = 0; s < w->count; s++) {
        const nmf_io_st_file *f = &w->shards[s];
        for (size_t i = 0; i < f->count; i++) {
            float *v = nmf_alloc(f->items[i].numel, sizeof(float));
            nmf_status st = v ? nmf_io_st_decode(f, i, v)
                              : nmf_error(NMF_ERR_NOMEM, "tensor '%s'", f->items[i].name);
            nmf_free(v);
            if (!st) continue;
            if (!first) first = st;
            if (bad) (*bad)++;
            if (fn) {
                nmf_verify_problem p = {"dense", f->items[i].name, st, nmf_last_error()};
                fn(&p, user);
            }
        }
    }
    return first;
}

nmf_status nmf_file_verify(const char *path, nmf_verify_fn fn, void *user, size_t *bad) {
    if (bad) *bad = 0;
    if (!path) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_file_verify: NULL argument");
    nmf_file_kind kind;
    nmf_status st = nmf_file_kind_detect(path, &kind);
    if (st) return whole_file(st, fn, user, bad);
    if (kind == NMF_FILE_NMF) {
        nmf_family_file *f;
        if ((st = nmf_family_open(path, &f))) return whole_file(st, fn, user, bad);
        st = nmf_family_file_check(f, fn, user, bad);
        nmf_family_close(f);
        return st;
    }
    nmf_io_hf_weights w;
    st = kind == NMF_FILE_HF_FOLDER ? nmf_io_hf_weights_open(path, &w) : nmf_io_hf_weights_open_file(path, &w);
    if (st) return whole_file(st, fn, user, bad);
    st = check_files(&w, fn, user, bad);
    nmf_io_hf_weights_close(&w);
    if (st) return nmf_error(st, "%s: %zu bad tensor%s", path, bad ? *bad : 0, bad && *bad == 1 ? "" : "s");
    return NMF_OK;
}
