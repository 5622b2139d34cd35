/* Training checkpoints are hostile input too: a round trip restores everything, and a file that
 * is corrupt, truncated, from other options, or whose position does not fit the run's plan is
 * refused with an error (never a crash or a write past the run state's buffers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "nmformer/io.h"
#include "test.h"
#include "train/train_internal.h"

static nmf_model_config tiny(void) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.img_size = 8;
    c.patch = 4;
    c.dim = 16;
    c.depth = 1;
    c.heads = 2;
    c.mlp_ratio = 2.0f;
    return c;
}

/* run state with candidate buffers for `stages` stages */
static void state_alloc(nmf_run_state *rs, const nmf_vit_train *m, int stages) {
    memset(rs, 0, sizeof *rs);
    size_t P = nmf_vit_train_num_params(m), MB = nmf_vit_train_mask_bytes(m) + 1;
    rs->fingerprint = 1234;
    rs->num_stages = stages;
    rs->best_params = calloc(P, sizeof(float));
    rs->best_mask = calloc(MB, 1);
    for (int i = 0; i < stages; i++) {
        rs->cand[i].params = calloc(P, sizeof(float));
        rs->cand[i].mask = calloc(MB, 1);
    }
}

static void state_free(nmf_run_state *rs) {
    free(rs->best_params);
    free(rs->best_mask);
    for (int i = 0; i < rs->num_stages; i++) {
        free(rs->cand[i].params);
        free(rs->cand[i].mask);
    }
}

/* rewrites the trailing CRC so that only the semantic checks can catch an edit */
static void fix_crc(const char *path) {
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    unsigned char *b = malloc((size_t)n);
    fseek(f, 0, SEEK_SET);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) abort();
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(n - 4));
    fseek(f, n - 4, SEEK_SET);
    fwrite(&crc, 4, 1, f);
    fclose(f);
    free(b);
}

static void patch_i32(const char *path, long offset, int32_t v) {
    FILE *f = fopen(path, "r+b");
    fseek(f, offset, SEEK_SET);
    fwrite(&v, 4, 1, f);
    fclose(f);
    fix_crc(path);
}

int main(void) {
    char dir[] = "/tmp/nmf_test_ckpt.XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    nmf_model_config c = tiny();
    nmf_vit_train *m = NULL;
    CHECK_OK(nmf_vit_train_create(&m, &c, 4));
    nmf_vit_train_init(m, 7);
    CHECK_OK(nmf_vit_train_set_pattern(m, (nmf_pattern){2, 8}));
    const size_t P = nmf_vit_train_num_params(m);

    /* a run of 3 stages, in stage 1 (one candidate done) */
    nmf_run_state w;
    state_alloc(&w, m, 3);
    w.stage = 1, w.step = 5, w.stage_started = 1, w.global_step = 25, w.ncand = 1;
    w.best_acc = 0.5, w.best_step = 3;
    snprintf(w.cand[0].name, sizeof w.cand[0].name, "dense");
    w.cand[0].params[P - 1] = 42.0f;
    CHECK_OK(nmf_checkpoint_save(path, m, &w));

    float saved = nmf_vit_train_param_mem(m)[0];
    nmf_vit_train_param_mem(m)[0] = -1.0f;
    nmf_run_state r;
    state_alloc(&r, m, 3);
    CHECK_OK(nmf_checkpoint_load(path, m, &r));
    CHECK(r.stage == 1 && r.step == 5 && r.ncand == 1 && r.global_step == 25);
    CHECK(r.cand[0].params[P - 1] == 42.0f && !strcmp(r.cand[0].name, "dense"));
    CHECK(nmf_vit_train_param_mem(m)[0] == saved);

    /* other options: refused */
    r.fingerprint = 99;
    CHECK_STATUS(nmf_checkpoint_load(path, m, &r), NMF_ERR_INVALID_ARG);
    r.fingerprint = 1234;

    /* a plan with fewer stages than the checkpoint's position: refused, not a write into
     * candidate buffers that do not exist */
    nmf_run_state small;
    state_alloc(&small, m, 1);
    w.stage = 2, w.ncand = 2;
    CHECK_OK(nmf_checkpoint_save(path, m, &w));
    CHECK_STATUS(nmf_checkpoint_load(path, m, &small), NMF_ERR_FORMAT);
    state_free(&small);

    /* offsets: magic 8, u32 x2, u64 x3 -> position block at 40: stage, step, started, n, m, ncand */
    w.stage = 1, w.ncand = 1;
    CHECK_OK(nmf_checkpoint_save(path, m, &w));
    patch_i32(path, 40 + 5 * 4, 17); /* ncand beyond any capacity, CRC made valid */
    CHECK_STATUS(nmf_checkpoint_load(path, m, &r), NMF_ERR_FORMAT);
    CHECK_OK(nmf_checkpoint_save(path, m, &w));
    patch_i32(path, 40 + 5 * 4, 0); /* candidates disagree with the stage */
    CHECK_STATUS(nmf_checkpoint_load(path, m, &r), NMF_ERR_FORMAT);
    CHECK_OK(nmf_checkpoint_save(path, m, &w));
    patch_i32(path, 40 + 3 * 4, 9); /* pattern 9:8 */
    CHECK_STATUS(nmf_checkpoint_load(path, m, &r), NMF_ERR_FORMAT);
    /* candidate 0's pattern: after the fixed part, params/m/v/mask/best, then its 32-byte name */
    CHECK_OK(nmf_checkpoint_save(path, m, &w));
    long cand0 = 40 + 32 + 8 + 16 + (long)(4 * P * sizeof(float)) +
                 2 * (long)nmf_vit_train_mask_bytes(m) + 32;
    patch_i32(path, cand0, 5);
    patch_i32(path, cand0 + 4, 3); /* 5:3 */
    CHECK_STATUS(nmf_checkpoint_load(path, m, &r), NMF_ERR_FORMAT);

    /* a flipped byte: CRC; truncation: refused */
    CHECK_OK(nmf_checkpoint_save(path, m, &w));
    FILE *f = fopen(path, "r+b");
    fseek(f, 100, SEEK_SET);
    fputc(0x5a ^ 0xff, f);
    fclose(f);
    CHECK(nmf_checkpoint_load(path, m, &r) != NMF_OK);
    CHECK_OK(nmf_checkpoint_save(path, m, &w));
    CHECK(truncate(path, 60) == 0);
    CHECK(nmf_checkpoint_load(path, m, &r) != NMF_OK);
    CHECK(truncate(path, 3) == 0);
    CHECK_STATUS(nmf_checkpoint_load(path, m, &r), NMF_ERR_FORMAT);

    state_free(&w);
    state_free(&r);
    nmf_vit_train_free(m);
    remove(path);
    rmdir(dir);
    return test_finish("checkpoint");
}
