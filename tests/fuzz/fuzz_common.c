/* Shared harness code; see fuzz_common.h. */
#define _GNU_SOURCE
#include "fuzz_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nmformer/model.h"

/* A forward pass runs only below this many multiply-adds, so the fuzzer stays fast. */
#define FUZZ_FORWARD_MAX_MACS (1u << 20)

static int slot_fd[2] = {-1, -1};
static char slot_path[2][64];

const char *fuzz_file(int slot, const uint8_t *data, size_t size) {
    if (slot_fd[slot] < 0) {
        slot_fd[slot] = memfd_create(slot ? "fuzz-input-1" : "fuzz-input-0", MFD_CLOEXEC);
        if (slot_fd[slot] < 0) abort();
        snprintf(slot_path[slot], sizeof slot_path[slot], "/proc/self/fd/%d", slot_fd[slot]);
    }
    int fd = slot_fd[slot];
    if (ftruncate(fd, 0) != 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    return slot_path[slot];
}

char *fuzz_text(const uint8_t *data, size_t size) {
    char *t = malloc(size + 1);
    if (!t) abort();
    memcpy(t, data, size);
    t[size] = '\0';
    return t;
}

void fuzz_init(void) {
    setenv("NMF_THREADS", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
}

/* Multiply-adds of one forward pass on one image (a rough bound, enough to stay fast). */
static double forward_macs(const nmf_model_config *c) {
    double T = nmf_vit_tokens(c), D = c->dim, H = nmf_vit_hidden(c);
    return c->depth * (T * D * (4 * D + 2 * H) + 2 * T * T * D) + T * D * c->in_chans * c->patch * c->patch;
}

/* One image of fixed values through m. Stored weights may be anything a file can hold (NaN
 * included), so the logits are not judged: a crash or a sanitizer report is the finding. */
static void run_forward(nmf_vit *m, const nmf_model_config *c) {
    size_t pixels = (size_t)c->in_chans * c->img_size * c->img_size;
    float *x = malloc(pixels * sizeof *x), *logits = malloc((size_t)c->num_classes * sizeof *logits);
    if (!x || !logits) abort();
    for (size_t i = 0; i < pixels; i++) x[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
    (void)nmf_vit_forward(m, logits, x, 1);
    free(x);
    free(logits);
}

void fuzz_forward_random(const nmf_model_config *config) {
    if (nmf_model_config_validate(config) != NMF_OK || forward_macs(config) > FUZZ_FORWARD_MAX_MACS)
        return;
    nmf_vit *m = NULL;
    if (nmf_vit_create_random(&m, config, (nmf_pattern){0, 0}, 1) == NMF_OK) run_forward(m, config);
    nmf_vit_free(m);
}

void fuzz_exercise(const nmf_model_config *config, const nmf_tensor_set *tensors) {
    volatile float sink = 0;
    for (size_t i = 0; i < tensors->count; i++) {
        const nmf_tensor *t = &tensors->items[i];
        if (t->numel > ((size_t)1 << 24)) continue; /* the readers cap sizes; keep runs short */
        float *dense = malloc((t->numel ? t->numel : 1) * sizeof *dense);
        if (!dense) abort();
        if (nmf_tensor_dense(t, dense) == NMF_OK)
            for (size_t k = 0; k < t->numel; k++) sink += dense[k];
        free(dense);
    }
    (void)sink;
    if (!config || nmf_model_check_tensors(config, tensors) != NMF_OK) return;
    if (strcmp(config->arch, "vit")) return; /* a token family: the ViT forward does not apply */
    if (forward_macs(config) > FUZZ_FORWARD_MAX_MACS) return;
    nmf_vit *m = NULL;
    if (nmf_vit_create(&m, config, tensors) == NMF_OK) run_forward(m, config);
    nmf_vit_free(m);
}
