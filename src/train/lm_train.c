/* The GPT-2 decoder's training passes: token + position embedding, the shared pre-norm blocks
 * (vit_train.c over model/vit_block.c: causal attention, tanh GELU, GPT-2's LayerNorm eps), the
 * final LayerNorm on every token and the LM head tied to the token embedding; the loss is the
 * cross-entropy of every next token. Shapes: B sequences of T tokens, BT = B*T, D width, V vocab. */
#include <math.h>
#include <string.h>

#include "train/layers.h"
#include "train/train_internal.h"

int nmf_vit_train_is_lm(const nmf_vit_train *m) { return m->lm; }
int nmf_vit_train_seq_len(const nmf_vit_train *m) { return (int)m->shape.T; }

/* t (n = sequences x T) in [0, V) */
static nmf_status check_tokens(const int *t, size_t n, size_t T, int V, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= V)
            return nmf_error(NMF_ERR_INVALID_ARG, "%s %d (sequence %zu, position %zu) outside the "
                             "vocabulary [0, %d)", what, t[i], i / T, i % T, V);
    return NMF_OK;
}

nmf_status nmf_lm_train_forward(nmf_vit_train *m, const int *ids, const int *targets, int B,
                                float *loss, int *correct) {
    if (!m->lm) return nmf_error(NMF_ERR_INVALID_ARG, "not a language model: nmf_vit_train_forward");
    if (B < 1 || B > m->max_batch)
        return nmf_error(NMF_ERR_INVALID_ARG, "batch %d out of range 1..%d", B, m->max_batch);
    const size_t T = m->shape.T, D = m->shape.D, BT = (size_t)B * T;
    const int V = m->cfg.hf.vocab_size;
    nmf_status st = check_tokens(ids, BT, T, V, "token id");
    if (st == NMF_OK && targets) st = check_tokens(targets, BT, T, V, "target");
    if (st != NMF_OK) return st;
    float **a = m->act;
    m->B = B;
    m->has_labels = targets != NULL;
    memcpy(m->ids, ids, BT * sizeof(int));

    // enc (BT, D) = wte[ids] + wpe[position]
    const float *wte = m->fw.k[NMF_GP_WTE], *wpe = m->fw.k[NMF_GP_WPE];
    float *enc = a[ACT_ENCODED];
    for (size_t r = 0; r < BT; r++) {
        const float *e = wte + (size_t)ids[r] * D, *p = wpe + (r % T) * D;
        for (size_t i = 0; i < D; i++) enc[r * D + i] = e[i] + p[i];
    }
    const float *x;
    if ((st = nmf_train_blocks_forward(m, B, enc, &x)) != NMF_OK) return st;
    // every token: final norm, then logits (BT, V) = lnf wte^T (the tied head)
    layernorm_forward(a[ACT_LNF], a[ACT_LNF_MEAN], a[ACT_LNF_RSTD], x, m->fw.k[NMF_GP_LNF_W],
                      m->fw.k[NMF_GP_LNF_B], BT, D, m->shape.eps);
    matmul_forward(a[ACT_LOGITS], a[ACT_LNF], wte, NULL, BT, D, (size_t)V);
    const float *logits = a[ACT_LOGITS];
    for (size_t i = 0; i < BT * (size_t)V; i++)
        if (!isfinite(logits[i]))
            return nmf_error(NMF_ERR_NUMERIC, "non-finite logit (sequence %zu, position %zu): "
                             "training diverged", i / V / T, i / V % T);
    if (targets) {
        memcpy(m->labels, targets, BT * sizeof(int));
        float l = crossentropy_forward(a[ACT_PROBS], a[ACT_LOSSES], logits, targets, (int)BT, V);
        if (loss) *loss = l;
    }
    if (correct) *correct = targets ? nmf_train_count_argmax(logits, targets, (int)BT, V) : 0;
    return NMF_OK;
}

nmf_status nmf_lm_train_backward(nmf_vit_train *m) {
    const int B = m->B, V = m->cfg.hf.vocab_size;
    const size_t T = m->shape.T, D = m->shape.D, BT = (size_t)B * T;
    float **a = m->act;
    float *g = m->grad_mem;
    float *g_wte = g + m->offsets[NMF_GP_WTE], *g_wpe = g + m->offsets[NMF_GP_WPE];
    const float *wte = m->fw.k[NMF_GP_WTE];
    const float *x = m->L ? a[ACT_RES3] + (size_t)(m->L - 1) * BT * D : a[ACT_ENCODED];

    memset(g, 0, m->num_params * sizeof(float));
    /* the mean over every token of the global batch (loss_denom sequences) */
    const int denom = (m->loss_denom > 0 ? m->loss_denom : B) * (int)T;
    memset(a[ACT_DLOGITS], 0, BT * (size_t)V * sizeof(float));
    crossentropy_backward(a[ACT_DLOGITS], a[ACT_PROBS], m->labels, (int)BT, V, denom);
    // logits = lnf wte^T: dlnf = dlogits wte, dwte += dlogits^T lnf
    memset(a[ACT_DLNF], 0, BT * D * sizeof(float));
    matmul_backward(a[ACT_DLNF], g_wte, NULL, a[ACT_DLOGITS], a[ACT_LNF], wte, BT, D, (size_t)V);
    float *dres = a[ACT_DRES];
    memset(dres, 0, BT * D * sizeof(float));
    layernorm_backward(dres, g + m->offsets[NMF_GP_LNF_W], g + m->offsets[NMF_GP_LNF_B],
                       a[ACT_DLNF], x, m->fw.k[NMF_GP_LNF_W], a[ACT_LNF_MEAN], a[ACT_LNF_RSTD],
                       BT, D);
    nmf_status st = nmf_train_blocks_backward(m, B, dres);
    if (st != NMF_OK) return st;
    // enc = wte[ids] + wpe[t]: scatter in token order (deterministic)
    for (size_t r = 0; r < BT; r++) {
        const float *d = dres + r * D;
        float *ge = g_wte + (size_t)m->ids[r] * D, *gp = g_wpe + (r % T) * D;
        for (size_t i = 0; i < D; i++) {
            ge[i] += d[i];
            gp[i] += d[i];
        }
    }
    return NMF_OK;
}
