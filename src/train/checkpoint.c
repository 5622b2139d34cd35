/* Training checkpoints: everything needed to continue a run bit-for-bit (parameters, AdamW
 * moments, masks, the run position that drives data order and RNG, the current stage's best
 * checkpoint and every finished candidate), written atomically, CRC-checked when read. Nothing
 * in it depends on the number of ranks: a checkpoint of a K-rank run resumes with any K.
 *
 * Layout (little-endian, as written by the host; checkpoints are not an interchange format):
 *   "NMFCKPT1" | u32 version | u32 0 | u64 fingerprint | u64 num_params | u64 mask_bytes
 *   | i32 stage, step, stage_started, pattern.n, pattern.m, ncand, best_step, 0
 *   | i64 global_step | f64 elapsed_s, best_acc
 *   | f32 params[P] | f32 m[P] | f32 v[P] | u8 mask[MB] | f32 best_params[P] | u8 best_mask[MB]
 *   | ncand x { char name[32] | i32 n, m, best_step, 0 | f64 heldout | i64 steps
 *               | f32 params[P] | u8 mask[MB] }
 *   | u32 crc32 (zlib) of everything before it */
#include <stdlib.h>
#include <string.h>

#include "train/dist.h"
#include "train/train_internal.h"

#define CKPT_MAGIC "NMFCKPT1"
#define CKPT_VERSION 1u
#define CKPT_MAX_BYTES ((size_t)1 << 36)

typedef struct {
    nmf_atomic_file *f;
    uint32_t crc;
    nmf_status st;
} writer;

static void put(writer *w, const void *p, size_t n) {
    if (w->st != NMF_OK || n == 0) return;
    w->crc = nmf_crc32_update(w->crc, p, n);
    w->st = nmf_atomic_write(w->f, p, n);
}

static void put_i32(writer *w, int32_t v) { put(w, &v, sizeof v); }

nmf_status nmf_checkpoint_save(const char *path, nmf_vit_train *m, const nmf_run_state *rs) {
    writer w = {NULL, 0, NMF_OK};
    nmf_status st = nmf_atomic_open(path, &w.f);
    if (st != NMF_OK) return st;
    const size_t P = m->num_params, MB = m->mask_total;
    uint32_t head32[2] = {CKPT_VERSION, 0};
    uint64_t head64[3] = {rs->fingerprint, P, MB};
    put(&w, CKPT_MAGIC, 8);
    put(&w, head32, sizeof head32);
    put(&w, head64, sizeof head64);
    int32_t pos[8] = {rs->stage, rs->step, rs->stage_started, m->pattern.n, m->pattern.m,
                      rs->ncand, rs->best_step, 0};
    put(&w, pos, sizeof pos);
    int64_t gs = rs->global_step;
    double d[2] = {rs->elapsed_s, rs->best_acc};
    put(&w, &gs, sizeof gs);
    put(&w, d, sizeof d);
    put(&w, m->param_mem, P * sizeof(float));
    put(&w, m->m_mem, P * sizeof(float));
    put(&w, m->v_mem, P * sizeof(float));
    put(&w, m->mask_mem, MB);
    put(&w, rs->best_params, P * sizeof(float));
    put(&w, rs->best_mask, MB);
    for (int i = 0; i < rs->ncand; i++) {
        const nmf_run_candidate *c = &rs->cand[i];
        put(&w, c->name, sizeof c->name);
        put_i32(&w, c->pattern.n);
        put_i32(&w, c->pattern.m);
        put_i32(&w, c->best_step);
        put_i32(&w, 0);
        put(&w, &c->heldout_acc, sizeof c->heldout_acc);
        int64_t steps = c->steps;
        put(&w, &steps, sizeof steps);
        put(&w, c->params, P * sizeof(float));
        put(&w, c->mask, MB);
    }
    uint32_t crc = w.crc;
    if (w.st == NMF_OK) w.st = nmf_atomic_write(w.f, &crc, sizeof crc);
    if (w.st != NMF_OK) {
        nmf_atomic_abort(w.f);
        return w.st;
    }
    return nmf_atomic_commit(w.f);
}

typedef struct {
    const uint8_t *p;
    size_t left;
    const char *path;
} reader;

static nmf_status get(reader *r, void *out, size_t n, const char *what) {
    if (n > r->left) return nmf_error(NMF_ERR_FORMAT, "%s: truncated in %s", r->path, what);
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return NMF_OK;
}

/* Rank 0 reads the file and every rank receives its bytes: the other ranks need no access to rank
 * 0's disk (only rank 0 writes checkpoints). With one rank this is nmf_read_file. */
static nmf_status read_on_rank0(const char *path, uint8_t **data, size_t *size) {
    nmf_status st = NMF_OK;
    if (nmf_dist_rank() == 0) st = nmf_read_file(path, CKPT_MAX_BYTES, data, size);
    if (nmf_dist_size() == 1) return st;
    uint64_t n = st == NMF_OK ? (uint64_t)*size : UINT64_MAX; /* UINT64_MAX: rank 0 failed */
    nmf_status bst = nmf_dist_bcast(&n, sizeof n, 0);
    if (bst != NMF_OK || n == UINT64_MAX) {
        if (nmf_dist_rank() == 0) return bst != NMF_OK ? bst : st;
        return bst != NMF_OK ? bst : nmf_error(NMF_ERR_IO, "%s: rank 0 could not read it", path);
    }
    if (nmf_dist_rank() != 0) {
        *size = (size_t)n;
        if (!(*data = malloc(n ? (size_t)n : 1)))
            return nmf_error(NMF_ERR_NOMEM, "%s: %llu bytes", path, (unsigned long long)n);
    }
    if ((st = nmf_dist_bcast(*data, (size_t)n, 0)) != NMF_OK) {
        free(*data);
        *data = NULL;
    }
    return st;
}

nmf_status nmf_checkpoint_load(const char *path, nmf_vit_train *m, nmf_run_state *rs) {
    uint8_t *data = NULL;
    size_t size = 0;
    nmf_status st = read_on_rank0(path, &data, &size);
    if (st != NMF_OK) return st;
    if (size < 12 || memcmp(data, CKPT_MAGIC, 8) != 0) {
        free(data);
        return nmf_error(NMF_ERR_FORMAT, "%s: not an nmformer training checkpoint", path);
    }
    uint32_t crc_stored;
    memcpy(&crc_stored, data + size - 4, 4);
    if (nmf_crc32_update(0, data, size - 4) != crc_stored) {
        free(data);
        return nmf_error(NMF_ERR_CHECKSUM, "%s: checkpoint CRC mismatch (corrupt file)", path);
    }
    reader r = {data + 8, size - 12, path};
    const size_t P = m->num_params, MB = m->mask_total;
    uint32_t head32[2] = {0};
    uint64_t head64[3] = {0};
    int32_t pos[8] = {0};
    int64_t gs = 0;
    double d[2] = {0};
#define GET(ptr, n, what) if ((st = get(&r, ptr, n, what)) != NMF_OK) goto done
    GET(head32, sizeof head32, "header");
    if (head32[0] != CKPT_VERSION) {
        st = nmf_error(NMF_ERR_UNSUPPORTED, "%s: checkpoint version %u (this build reads %u)", path,
                       head32[0], CKPT_VERSION);
        goto done;
    }
    GET(head64, sizeof head64, "header");
    if (head64[0] != rs->fingerprint) {
        st = nmf_error(NMF_ERR_INVALID_ARG, "%s: checkpoint was written by a run with different "
                       "options (model, method, patterns, steps, seed ...); resume needs the same "
                       "ones", path);
        goto done;
    }
    if (head64[1] != P || head64[2] != MB) {
        st = nmf_error(NMF_ERR_SHAPE, "%s: checkpoint has %llu parameters, model %zu", path,
                       (unsigned long long)head64[1], P);
        goto done;
    }
    GET(pos, sizeof pos, "position");
    GET(&gs, sizeof gs, "position");
    GET(d, sizeof d, "position");
    /* one candidate per finished stage; the candidate buffers exist only for the plan's stages */
    if (pos[0] < 0 || pos[1] < 0 || pos[5] != pos[0] || pos[0] > rs->num_stages ||
        rs->num_stages > NMF_TRAIN_MAX_PATTERNS + 1 || gs < 0) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: checkpoint position out of range", path);
        goto done;
    }
    nmf_pattern pat = {pos[3], pos[4]};
    if (!(pat.n == 0 && pat.m == 0) && !nmf_pattern_valid(pat)) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: checkpoint pattern %d:%d invalid", path, pat.n, pat.m);
        goto done;
    }
    /* the pattern decides which weights the passes use; its masks come from the file below */
    if ((st = nmf_vit_train_use_pattern(m, pat)) != NMF_OK) goto done;
    GET(m->param_mem, P * sizeof(float), "parameters");
    GET(m->m_mem, P * sizeof(float), "AdamW m");
    GET(m->v_mem, P * sizeof(float), "AdamW v");
    GET(m->mask_mem, MB, "masks");
    GET(rs->best_params, P * sizeof(float), "best parameters");
    GET(rs->best_mask, MB, "best masks");
    for (int i = 0; i < pos[5]; i++) {
        nmf_run_candidate *c = &rs->cand[i];
        int32_t q[4] = {0};
        GET(c->name, sizeof c->name, "candidate");
        c->name[sizeof c->name - 1] = '\0';
        GET(q, sizeof q, "candidate");
        c->pattern = (nmf_pattern){q[0], q[1]};
        if (!(q[0] == 0 && q[1] == 0) && !nmf_pattern_valid(c->pattern)) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: candidate %d pattern %d:%d invalid", path, i, q[0],
                           q[1]);
            goto done;
        }
        c->best_step = q[2];
        GET(&c->heldout_acc, sizeof c->heldout_acc, "candidate");
        int64_t steps = 0;
        GET(&steps, sizeof steps, "candidate");
        c->steps = steps;
        GET(c->params, P * sizeof(float), "candidate parameters");
        GET(c->mask, MB, "candidate masks");
    }
    if (r.left != 0) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: %zu unexpected bytes at the end", path, r.left);
        goto done;
    }
#undef GET
    rs->stage = pos[0];
    rs->step = pos[1];
    rs->stage_started = pos[2];
    rs->ncand = pos[5];
    rs->best_step = pos[6];
    rs->global_step = gs;
    rs->elapsed_s = d[0];
    rs->best_acc = d[1];
    nmf_vit_train_refresh_masked(m);
done:
    free(data);
    return st;
}
