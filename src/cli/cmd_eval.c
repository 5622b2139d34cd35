/* nmformer eval MODEL [--images X.npy --labels Y.npy | --data DIR | --corpus PATH] [options]
 * Top-1 accuracy of a ViT: on the Fashion-MNIST test split by default (pixels/255, then
 * (x - mean)/std with the mean and std of the model's config), or on any images and labels
 * given as .npy (images NCHW float32, used as they are, like run's input; labels int64/int32).
 * A byte-level language model: perplexity on a text corpus (cmd_eval_lm.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/model_cli.h"
#include "nmformer/data.h"
#include "nmformer/io.h"
#include "nmformer/model.h"

static const char about[] =
    "Top-1 accuracy of a ViT (a safetensors file, an .nmf candidate or a model folder):\n"
    "  by default on the Fashion-MNIST test split (10000 images; pixels/255, then\n"
    "  (x - mean) / std with the model config's mean and std);\n"
    "  with --images X.npy --labels Y.npy on any data: X float32 NCHW (N, in_chans,\n"
    "  img_size, img_size), already normalised as the model expects (as run's input);\n"
    "  Y int64 or int32 (N), each label in [0, num_classes).\n"
    "A byte-level GPT-2 (train --config lm): perplexity and bits per byte on the\n"
    "  test (or --split valid) split of a text corpus (--corpus; default the\n"
    "  fortunes corpus it was trained on), windows of its context length spread\n"
    "  evenly over the split (--limit: that many; default all), scored as `train`\n"
    "  scores its candidates (same windows and --batch: same figures).\n";

static nmf_status parse_split(const char *value, void *dest) {
    for (int s = 0; s < NMF_TEXT_SPLITS; s++)
        if (!strcmp(value, nmf_text_split_name((nmf_text_split)s))) {
            *(nmf_text_split *)dest = (nmf_text_split)s;
            return NMF_OK;
        }
    return nmf_error(NMF_ERR_INVALID_ARG, "--split '%s': train, valid or test", value);
}

/* Where the examples come from: the IDX dataset, or the arrays of --images/--labels. */
typedef struct {
    const nmf_dataset *ds; /* NULL: the arrays */
    const nmf_array *x;
    const nmf_id_array *y;
    float mean, std;
    size_t n, per_image;
} eval_source;

/* Examples first..first+b as normalised float NCHW and int labels. */
static nmf_status fill(const eval_source *s, float *images, int *labels, size_t *idx, size_t first,
                       size_t b) {
    if (s->ds) {
        for (size_t j = 0; j < b; j++) idx[j] = first + j;
        return nmf_dataset_batch(images, labels, s->ds, idx, b, s->mean, s->std);
    }
    memcpy(images, s->x->data + first * s->per_image, b * s->per_image * sizeof(float));
    for (size_t j = 0; j < b; j++) labels[j] = (int)s->y->data[first + j]; /* checked in range */
    return NMF_OK;
}

/* --images / --labels against the model: shapes, count, label range; one line on failure. */
static int check_arrays(const nmf_model_config *c, const char *images, const nmf_array *x,
                        const char *labels, const nmf_id_array *y) {
    const int64_t want[3] = {c->in_chans, c->img_size, c->img_size};
    int ok = x->ndim == 4 && x->shape[0] > 0;
    for (int d = 0; ok && d < 3; d++) ok = x->shape[d + 1] == want[d];
    if (!ok) {
        char have[96] = "[";
        for (int d = 0; d < x->ndim; d++)
            snprintf(have + strlen(have), sizeof have - strlen(have), d ? ",%lld" : "%lld",
                     (long long)x->shape[d]);
        fprintf(stderr, "nmformer eval: %s: images of shape %s], model expects [N,%d,%d,%d] (float32 "
                        "NCHW)\n", images, have, c->in_chans, c->img_size, c->img_size);
        return 0;
    }
    if (y->ndim != 1 || y->shape[0] != x->shape[0]) {
        fprintf(stderr, "nmformer eval: %s: want one label per image (%lld), got %zu values in %d "
                        "dimensions\n", labels, (long long)x->shape[0], y->numel, y->ndim);
        return 0;
    }
    for (size_t i = 0; i < y->numel; i++)
        if (y->data[i] < 0 || y->data[i] >= c->num_classes) {
            fprintf(stderr, "nmformer eval: %s: label %lld at %zu is outside [0, %d)\n", labels,
                    (long long)y->data[i], i, c->num_classes);
            return 0;
        }
    return 1;
}

int cmd_eval(int argc, char **argv) {
    const char *model_path = NULL, *name = NULL, *data_dir = NULL, *images = NULL, *labels = NULL;
    const char *corpus = NULL;
    nmf_text_split split = NMF_TEXT_SPLITS; /* not given: test */
    const char *sta = NULL;
    long limit = 0;
    int threads = 0, batch = 0, json = 0; /* batch 0: 64 images, 32 windows (the lm preset's) */
    nmf_precision prec = NMF_PREC_COUNT; /* not given: a ViT's weights as stored */
    cli_config_flags flags = {0};
    const cli_opt opts[] = {
        CLI_STR("model", 'm', &name, "NAME", "candidate of a family file (dense, 2:8, ...)"),
        CLI_STR("images", 0, &images, "X.npy", "images to score (with --labels), see above"),
        CLI_STR("labels", 0, &labels, "Y.npy", "their labels"),
        CLI_STR("data", 0, &data_dir, "DIR", "directory of the Fashion-MNIST IDX files (default:\n"
                "$NMF_DATA_DIR or " NMF_FASHION_MNIST_DIR ")"),
        CLI_STR("corpus", 0, &corpus, "PATH", "language models: the text corpus (default\n"
                NMF_FORTUNES_DIR ")"),
        CLI_FN("split", 0, parse_split, &split, "S", "language models: test (default) or valid"),
        CLI_LONG("limit", 0, &limit, 1, 1L << 30, "N", "only the first N images (language models: N\n"
                 "windows spread over the split)"),
        CLI_INT("batch", 'b', &batch, 1, 1 << 20, "B", "images per forward pass (default 64; language\n"
                "models: windows, default 32)"),
        CLI_INT("threads", 'j', &threads, 1, 4096, "T", "threads (default: NMF_THREADS or all cores)"),
        CLI_FN("precision", 0, cli_parse_precision, &prec, "P",
               "f32, bf16 or int8 arithmetic for the block linears\n(int8: a ViT's attention and patch embedding\n"
               "too; default: the candidate's default precision,\nelse BF16/F16 weights kept as stored, f32 ones\nf32; a language "
               "model: the trainer's f32 evaluation)"),
        CLI_STR("sta", 0, &sta, "HW.ini", "with --precision int8: the STA accelerator's\nfixed-point "
                "numbers, bit for bit (docs/STA.md)"),
        CLI_FLAG("json", 0, &json, "one JSON object instead of text"),
        CLI_CONFIG_OPTS(&flags),
        CLI_END,
    };
    const cli_command cmd = {"eval", "MODEL [--images X.npy --labels Y.npy] [options]", about, opts,
                             {&model_path}, NULL};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_GO_ON) return rc;
    if (!model_path) return cli_usage_error("eval", "need MODEL (see --help)");
    if (!images != !labels) return cli_usage_error("eval", "--images and --labels go together");
    if (images && data_dir) return cli_usage_error("eval", "--data is Fashion-MNIST's; not with --images");
    if (threads) nmf_set_threads(threads);
    if (model_cli_is_token(model_path) || corpus || split != NMF_TEXT_SPLITS) {
        /* a language model is scored by the trainer's f32 model (nmf_lm_evaluate), or with a
         * precision (--precision, or the candidate's default) by the inference engine in it */
        nmf_model_config cfg;
        nmf_tensor_set weights;
        nmf_status st = model_cli_precision(model_path, name, &prec);
        if (!st) st = cli_load_model(model_path, name, &flags, &cfg, &weights);
        if (st) return cli_fail("eval", model_path, st);
        const int token = nmf_model_is_token(&cfg);
        if (!token || images || data_dir || sta) {
            nmf_tensors_free(&weights);
            return cli_usage_error("eval", token ? "a language model is scored on a text corpus: "
                                   "--images, --labels, --data and --sta are for the ViT"
                                   : "--corpus and --split are for language models; this is a %s",
                                   cfg.arch);
        }
        const cmd_eval_lm_args a = {model_path, name, corpus,
                                    split == NMF_TEXT_SPLITS ? NMF_TEXT_TEST : split,
                                    (size_t)limit, batch ? batch : 32, json, prec};
        rc = cmd_eval_lm(&a, &cfg, &weights);
        nmf_tensors_free(&weights);
        return rc;
    }
    if (!batch) batch = 64;
    model_cli_vit m; /* 16-bit weights stay 16-bit unless a precision is asked for */
    nmf_status st = model_cli_vit_load(&m, model_path, name, &flags, prec, sta, data_dir);
    if (st) {
        model_cli_vit_free(&m);
        return cli_fail("eval", model_path, st);
    }
    if (prec == NMF_PREC_COUNT) prec = m.vit ? nmf_vit_get_precision(m.vit) : NMF_PREC_F32; /* as shown */
    const nmf_model_config *c = &m.config;
    nmf_dataset ds = {0};
    nmf_array x = {0};
    nmf_id_array y = {0};
    eval_source src = {NULL, &x, &y, c->mean, c->std, 0,
                       (size_t)c->in_chans * (size_t)c->img_size * (size_t)c->img_size};
    const char *what = images ? images : "Fashion-MNIST test split";
    if (images) {
        if ((st = nmf_npy_read(images, &x)) || (st = nmf_npy_read_ids(labels, &y))) {
            rc = cli_fail("eval", x.data ? labels : images, st);
            goto done;
        }
        if (!check_arrays(c, images, &x, labels, &y)) {
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
        src.n = (size_t)x.shape[0];
    } else {
        if ((st = nmf_dataset_load(&ds, data_dir, NMF_SPLIT_TEST))) {
            rc = cli_fail("eval", what, st);
            goto done;
        }
        if (c->in_chans != 1 || c->img_size != ds.rows || ds.rows != ds.cols ||
            c->num_classes < ds.num_classes) {
            fprintf(stderr, "nmformer eval: %s: model takes %dx%dx%d images into %d classes; "
                            "Fashion-MNIST is 1x%dx%d with %d classes\n", model_path, c->in_chans,
                    c->img_size, c->img_size, c->num_classes, ds.rows, ds.cols, ds.num_classes);
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
        src.ds = &ds;
        src.n = ds.n;
    }
    size_t n = limit && (size_t)limit < src.n ? (size_t)limit : src.n;
    size_t B = (size_t)batch, classes = (size_t)c->num_classes;
    float *xb = malloc(B * src.per_image * sizeof(float)), *logits = malloc(B * classes * sizeof(float));
    int *yb = malloc(B * sizeof(int));
    size_t *idx = malloc(B * sizeof(size_t));
    if (!xb || !logits || !yb || !idx) st = nmf_error(NMF_ERR_NOMEM, "eval batch of %zu", B);
    size_t correct = 0;
    double t0 = nmf_now();
    for (size_t i = 0; st == NMF_OK && i < n; i += B) {
        size_t b = n - i < B ? n - i : B;
        st = fill(&src, xb, yb, idx, i, b);
        if (st == NMF_OK) st = model_cli_vit_forward(&m, logits, xb, b);
        for (size_t j = 0; st == NMF_OK && j < b; j++) {
            const float *row = logits + j * classes;
            size_t best = 0;
            for (size_t k = 1; k < classes; k++)
                if (row[k] > row[best]) best = k; /* ties: the lower class, like torch.argmax */
            correct += (int)best == yb[j];
        }
    }
    double secs = nmf_now() - t0;
    free(xb);
    free(logits);
    free(yb);
    free(idx);
    if (st) {
        rc = cli_fail("eval", model_path, st);
        goto done;
    }
    rc = 0;
    double acc = n ? (double)correct / (double)n : 0.0;
    if (json) {
        printf("{\"model\": ");
        model_cli_json_string(stdout, model_path);
        printf(", \"candidate\": ");
        model_cli_json_string(stdout, name ? name : "");
        printf(", \"data\": ");
        model_cli_json_string(stdout, what);
        printf(", \"precision\": \"%s\", \"images\": %zu, \"correct\": %zu, \"top1\": %.6f, "
               "\"seconds\": %.3f}\n", nmf_precision_name(prec), n, correct, acc, secs);
    } else {
        printf("%s%s%s%s%s: top-1 %.2f%% (%zu/%zu) on %s%s, %.2f s\n", model_path, name ? " " : "",
               name ? name : "", prec ? " " : "", prec ? nmf_precision_name(prec) : "", 100.0 * acc,
               correct, n, images ? "" : "the ", what, secs);
    }
done:
    nmf_dataset_free(&ds);
    nmf_array_free(&x);
    nmf_id_array_free(&y);
    model_cli_vit_free(&m);
    return rc;
}
