/* The observer on the forward: every op seen once, in order, with its name and shape; what it
 * sees is what the forward computed (input, residual adds, GELU of fc1, the final norm of the
 * last block's class tokens, the logits), and observing does not change the logits. */
#include "nmformer/model.h"
#include "nmformer/ops.h"
#include "nmformer/sta.h"
#include "test.h"

#define MAX_EVENTS 64

typedef struct {
    int n;
    nmf_op_event e[MAX_EVENTS];
    float *copy[MAX_EVENTS]; /* the data is valid during the call only */
} trace;

static void record(const nmf_op_event *e, void *ctx) {
    trace *t = ctx;
    if (t->n < MAX_EVENTS) {
        t->e[t->n] = *e;
        t->copy[t->n] = malloc(e->rows * e->cols * sizeof(float));
        memcpy(t->copy[t->n], e->data, e->rows * e->cols * sizeof(float));
    }
    t->n++;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

int main(void) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.depth = 3;
    c.num_classes = 7;
    const size_t B = 3, T = (size_t)nmf_vit_tokens(&c), D = (size_t)c.dim, H = (size_t)nmf_vit_hidden(&c);
    const size_t img = (size_t)c.in_chans * (size_t)c.img_size * (size_t)c.img_size, K = 7;
    for (int sparse = 0; sparse < 2; sparse++) {
        nmf_vit *m;
        CHECK_OK(nmf_vit_create_random(&m, &c, sparse ? (nmf_pattern){2, 8} : (nmf_pattern){0, 0}, 9));
        float *x = malloc(B * img * sizeof(float)), y0[3 * 7], y1[3 * 7];
        unsigned long long seed = 17;
        for (size_t i = 0; i < B * img; i++) x[i] = test_rand_float(&seed);
        CHECK_OK(nmf_vit_forward(m, y0, x, B));
        trace t = {0};
        CHECK_OK(nmf_vit_forward_observed(m, y1, x, B, record, &t));
        /* order: input, embedding, 10 ops per block, final norm, head -- each once */
        const int n = 2 + 10 * c.depth + 2;
        CHECK(t.n == n);
        if (t.n != n) return test_finish("observer");
        for (int i = 0; i < n; i++) {
            const nmf_op_event *e = &t.e[i];
            nmf_vit_op want = i == 0 ? NMF_OP_INPUT : i == 1 ? NMF_OP_EMBED
                            : i == n - 2 ? NMF_OP_NORM : i == n - 1 ? NMF_OP_HEAD
                            : (nmf_vit_op)(NMF_OP_NORM1 + (i - 2) % 10);
            int block = i >= 2 && i < n - 2 ? (i - 2) / 10 : -1;
            size_t rows = B * T, cols = D;
            if (want == NMF_OP_INPUT) rows = B, cols = img;
            else if (want == NMF_OP_QKV) cols = 3 * D;
            else if (want == NMF_OP_FC1 || want == NMF_OP_GELU) cols = H;
            else if (want == NMF_OP_NORM) rows = B;
            else if (want == NMF_OP_HEAD) rows = B, cols = K;
            CHECK_MSG(e->op == (int)want && e->block == block && e->rows == rows && e->cols == cols,
                      "event %d (%s): op %d block %d %zux%zu, want op %d block %d %zux%zu", i, e->name,
                      e->op, e->block, e->rows, e->cols, want, block, rows, cols);
        }
        CHECK(!strcmp(t.e[0].name, "input") && !strcmp(t.e[1].name, "patch_embed"));
        CHECK(!strcmp(t.e[2 + 10 + 1].name, "blocks.1.attn.qkv") &&
              !strcmp(t.e[2 + 10 + 2].name, "blocks.1.attn.av") &&
              !strcmp(t.e[2 + 10 + 7].name, "blocks.1.mlp.gelu"));
        CHECK(!strcmp(t.e[n - 2].name, "norm") && !strcmp(t.e[n - 1].name, "head"));
        /* what it sees is what was computed */
        CHECK(!memcmp(t.copy[0], x, B * img * sizeof(float)));
        CHECK(!memcmp(t.copy[n - 1], y1, sizeof y1));
        float *sum = malloc(B * T * H * sizeof(float));
        for (size_t i = 0; i < B * T * D; i++) sum[i] = t.copy[1][i] + t.copy[2 + 3][i]; /* x0 + proj */
        CHECK(!memcmp(sum, t.copy[2 + 4], B * T * D * sizeof(float)));                   /* == add1 */
        nmf_gelu_forward_ref(sum, t.copy[2 + 6], B * T * H);                             /* GELU(fc1) */
        CHECK(max_diff(sum, t.copy[2 + 7], B * T * H) < 1e-6);
        /* random models have norm scale 1, shift 0: the final norm normalises the class tokens */
        float ones[64], zeros[64] = {0}, cls[3 * 64];
        for (size_t d = 0; d < D; d++) ones[d] = 1.0f;
        for (size_t b = 0; b < B; b++) memcpy(cls + b * D, t.copy[n - 3] + b * T * D, D * sizeof(float));
        nmf_layernorm_forward(cls, cls, ones, zeros, B, D, NMF_LAYERNORM_EPS);
        CHECK(!memcmp(cls, t.copy[n - 2], B * D * sizeof(float)));
        /* observing (fc1 and GELU unfused) changes the logits by float rounding at most */
        CHECK_MSG(max_diff(y0, y1, B * K) <= 1e-5, "observed logits differ by %g", max_diff(y0, y1, B * K));
        /* the STA schedule lowers the same op list: its ops, but for the attention's Q K^T and
         * softmax steps, are the observed ops after the input, in order and by name */
        nmf_sta_schedule sched;
        CHECK_OK(nmf_sta_schedule_synthetic(&sched, &c, (nmf_pattern){2, 8}, 0));
        int k = 1, same = 1;
        for (size_t i = 0; i < sched.op_count; i++) {
            const char *nm = sched.ops[i].name;
            size_t len = strlen(nm);
            if ((len > 8 && !strcmp(nm + len - 8, ".attn.qk")) || strstr(nm, ".attn.softmax")) continue;
            same &= k < n && !strcmp(nm, t.e[k].name);
            k++;
        }
        CHECK_MSG(same && k == n, "schedule ops and observed ops differ");
        nmf_sta_schedule_free(&sched);
        for (int i = 0; i < n; i++) free(t.copy[i]);
        free(sum);
        free(x);
        nmf_vit_free(m);
    }
    return test_finish("observer");
}
