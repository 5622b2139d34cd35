/* nmformer run MODEL --input x.npy --output y.npy [--model NAME] [--batch B] [--threads T]
 * A ViT: logits (N, classes) for images (N, C, S, S) float32, already normalised.
 * A token model (BERT, GPT-2, LLaMA): its output (lm.h) for token ids (B, T) int32/int64. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/model_cli.h"
#include "nmformer/io.h"
#include "nmformer/lm.h"
#include "nmformer/model.h"

static const char about[] =
    "Runs a model (a Hugging Face folder, a safetensors file or one candidate of an .nmf\n"
    "family; told apart by their contents): a ViT on a batch of images, a BERT / GPT-2 /\n"
    "LLaMA model on a batch of token ids.\n"
    "  input   ViT: float32 .npy, NCHW (N, in_chans, img_size, img_size), already\n"
    "          normalised ((pixel/255 - mean)/std); a single (C, S, S) image is accepted\n"
    "          too. Token model: int64 or int32 .npy of token ids (B, T) (or one sequence\n"
    "          (T)), each in [0, vocab_size), T <= max_position_embeddings. - = stdin\n"
    "  output  float32 .npy: ViT logits (N, num_classes); token models by their head:\n"
    "          causal LM logits (B, T, vocab), sequence classification logits\n"
    "          (B, num_labels), a bare model's last hidden state (B, T, hidden).\n"
    "          Replaced atomically, a symlink written through, a device/FIFO or - (stdout)\n"
    "          written directly\n";

typedef struct {
    const char *input, *output, *types, *mask;
} lm_run_files;

/* ids (B, T) or one sequence (T) -> *B, *T; 0 and a message when it is neither. */
static int ids_shape(const char *cmd, const char *path, const nmf_id_array *a, size_t *B, size_t *T) {
    if ((a->ndim == 2 || a->ndim == 1) && a->numel > 0) {
        *B = a->ndim == 2 ? (size_t)a->shape[0] : 1;
        *T = (size_t)a->shape[a->ndim - 1];
        return 1;
    }
    char have[96] = "[";
    for (int d = 0; d < a->ndim; d++)
        snprintf(have + strlen(have), sizeof have - strlen(have), d ? ",%lld" : "%lld",
                 (long long)a->shape[d]);
    fprintf(stderr, "nmformer %s: %s: token ids of shape %s], expected [B,T] (int64 or int32)\n", cmd,
            path, have);
    return 0;
}

/* An optional (B, T) id input of BERT that must match the token ids' shape. */
static nmf_status read_side_ids(const char *path, const char *what, size_t B, size_t T, nmf_id_array *a) {
    nmf_status st = nmf_npy_read_ids(path, a);
    if (st) return st;
    size_t b = 0, t = 0;
    if (!((a->ndim == 2 || a->ndim == 1) && a->numel > 0) ||
        (b = a->ndim == 2 ? (size_t)a->shape[0] : 1, t = (size_t)a->shape[a->ndim - 1], b != B || t != T))
        return nmf_error(NMF_ERR_SHAPE, "%s must have the token ids' shape [%zu,%zu]", what, B, T);
    return NMF_OK;
}

static int run_token_model(nmf_lm *lm, const lm_run_files *f, size_t batch) {
    const nmf_model_config *c = nmf_lm_get_config(lm);
    nmf_id_array ids = {0}, types = {0}, mask = {0};
    const char *what = f->input;
    size_t B = 0, T = 0;
    nmf_status st = nmf_npy_read_ids(f->input, &ids);
    if (st) return cli_fail("run", f->input, st);
    if (!ids_shape("run", f->input, &ids, &B, &T)) {
        nmf_id_array_free(&ids);
        return 1;
    }
    if ((f->types || f->mask) && c->hf.model_type != NMF_HF_BERT) {
        nmf_id_array_free(&ids);
        return cli_usage_error("run", "--token-types and --attention-mask are for BERT models, "
                               "not %s", c->arch);
    }
    if (f->types && (st = read_side_ids(f->types, "--token-types", B, T, &types))) what = f->types;
    if (!st && f->mask && (st = read_side_ids(f->mask, "--attention-mask", B, T, &mask))) what = f->mask;
    const size_t per_seq = nmf_lm_output_floats(lm, 1, T);
    float *out = st ? NULL : nmf_alloc(B, per_seq * sizeof(float));
    if (!st && !out) st = nmf_error(NMF_ERR_NOMEM, "outputs of %zu sequences", B);
    for (size_t i = 0; st == NMF_OK && i < B; i += batch) {
        const size_t b = B - i < batch ? B - i : batch;
        nmf_lm_inputs in = {types.data ? types.data + i * T : NULL, mask.data ? mask.data + i * T : NULL,
                            NULL};
        st = nmf_lm_forward(lm, out + i * per_seq, ids.data + i * T, b, T, &in);
        if (st && B > b) /* the library numbers the sequences of this pass from 0 */
            st = nmf_error_context(st, "in the pass over sequences %zu..%zu", i, i + b - 1);
        if (st) what = f->input;
    }
    if (st == NMF_OK) {
        int64_t shape[3] = {(int64_t)B, 0, 0};
        int ndim;
        if (c->hf.head == NMF_HF_HEAD_CLASSIFIER) ndim = 2, shape[1] = c->hf.num_labels;
        else
            ndim = 3, shape[1] = (int64_t)T,
            shape[2] = c->hf.head == NMF_HF_HEAD_LM ? c->hf.vocab_size : c->hf.hidden_size;
        what = f->output;
        st = nmf_npy_write(f->output, out, ndim, shape);
    }
    nmf_free(out);
    nmf_id_array_free(&ids);
    nmf_id_array_free(&types);
    nmf_id_array_free(&mask);
    return st ? cli_fail("run", what, st) : 0;
}

int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *input = NULL, *output = NULL, *name = NULL;
    const char *types_path = NULL, *mask_path = NULL, *sta = NULL;
    int batch = 32, threads = 0;
    nmf_precision prec = NMF_PREC_COUNT; /* not given: the weights as stored */
    cli_config_flags flags = {0};
    const cli_opt opts[] = {
        CLI_STR("input", 'i', &input, "PATH", "the input .npy (see above); - = stdin"),
        CLI_STR("output", 'o', &output, "PATH", "the output .npy (see above); - = stdout"),
        CLI_STR("model", 'm', &name, "NAME", "candidate of a family file (dense, 2:8, ...)"),
        CLI_STR("token-types", 0, &types_path, "PATH", "BERT: token type ids (B, T), int64/int32\n(default zeros)"),
        CLI_STR("attention-mask", 0, &mask_path, "PATH", "BERT: 1 = token, 0 = padding (B, T),\nint64/int32 (default all 1)"),
        CLI_INT("batch", 'b', &batch, 1, 1 << 20, "B", "images (sequences) per forward pass (default 32)"),
        CLI_INT("threads", 'j', &threads, 1, 4096, "T", "threads (default: NMF_THREADS or all cores)"),
        CLI_FN("precision", 0, cli_parse_precision, &prec, "P",
               "f32, bf16 or int8 arithmetic for the block\nlinears (int8: a ViT's attention and patch\nembedding too). Without it the weights\n"
               "stay as stored (BF16/F16 16-bit, F32 f32)"),
        CLI_STR("sta", 0, &sta, "HW.ini", "ViT with --precision int8: the STA accelerator's\n"
                "fixed-point numbers, bit for bit (docs/STA.md)"),
        CLI_CONFIG_OPTS(&flags),
        CLI_END,
    };
    const cli_command cmd = {"run", "MODEL --input x.npy --output y.npy [options]", about, opts,
                             {&model_path}, NULL};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_GO_ON) return rc;
    if (!model_path || !input || !output)
        return cli_usage_error("run", "need MODEL, --input and --output (see --help)");
    if (threads) nmf_set_threads(threads);

    if (model_cli_is_token(model_path)) { /* a family candidate is built layer by layer */
        if (sta) return cli_usage_error("run", "--sta is for ViT models (the accelerator's datapath)");
        nmf_lm *lm = NULL;
        nmf_status st = model_cli_lm_load(&lm, model_path, name, &flags, prec);
        if (st) return cli_fail("run", model_path, st);
        const lm_run_files files = {input, output, types_path, mask_path};
        rc = run_token_model(lm, &files, (size_t)batch);
        nmf_lm_free(lm);
        return rc;
    }
    if (types_path || mask_path)
        return cli_usage_error("run", "--token-types and --attention-mask are for BERT models");
    model_cli_vit m = {0}; /* 16-bit weights stay 16-bit unless a precision is asked for */
    nmf_status st = model_cli_vit_load(&m, model_path, name, &flags, prec, sta, NULL);
    if (st) {
        model_cli_vit_free(&m);
        return cli_fail("run", model_path, st);
    }
    nmf_array x = {0};
    st = nmf_npy_read(input, &x);
    if (st) {
        model_cli_vit_free(&m);
        return cli_fail("run", input, st);
    }
    const nmf_model_config *c = &m.config;
    int64_t want[4] = {-1, c->in_chans, c->img_size, c->img_size};
    int lead = x.ndim == 4 ? 1 : 0; /* (C, S, S) is one image */
    int ok = (x.ndim == 4 || x.ndim == 3) && x.numel > 0;
    for (int d = 0; ok && d < 3; d++) ok = x.shape[d + lead] == want[d + 1];
    if (!ok) {
        char have[96] = "[";
        for (int d = 0; d < x.ndim; d++)
            snprintf(have + strlen(have), sizeof have - strlen(have), d ? ",%lld" : "%lld",
                     (long long)x.shape[d]);
        fprintf(stderr,
                "nmformer run: %s: input shape %s], model expects [N,%d,%d,%d] (float32 NCHW)\n",
                input, have, c->in_chans, c->img_size, c->img_size);
        model_cli_vit_free(&m);
        nmf_array_free(&x);
        return 1;
    }
    size_t n = lead ? (size_t)x.shape[0] : 1;
    size_t per_image = (size_t)c->in_chans * (size_t)c->img_size * (size_t)c->img_size;
    size_t classes = (size_t)c->num_classes;
    float *logits = nmf_alloc(n, classes * sizeof(float));
    if (!logits) st = nmf_error(NMF_ERR_NOMEM, "logits for %zu images", n);
    const char *what = input;
    for (size_t i = 0; st == NMF_OK && i < n; i += (size_t)batch) {
        size_t b = n - i < (size_t)batch ? n - i : (size_t)batch;
        st = model_cli_vit_forward(&m, logits + i * classes, x.data + i * per_image, b);
    }
    if (st == NMF_OK) {
        int64_t shape[2] = {(int64_t)n, (int64_t)classes};
        what = output;
        st = nmf_npy_write(output, logits, 2, shape);
    }
    nmf_free(logits);
    model_cli_vit_free(&m);
    nmf_array_free(&x);
    if (st) return cli_fail("run", what, st);
    return 0;
}
