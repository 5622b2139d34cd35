/* nmformer eval MODEL [--model NAME] [--limit N] [--threads T] [--batch B] [--data DIR] [--json]
 * Top-1 accuracy on the Fashion-MNIST test split: pixels/255, then (x - mean)/std with the mean
 * and std of the model's config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/model_cli.h"
#include "nmformer/data.h"
#include "nmformer/model.h"

static const char usage_text[] =
    "usage: nmformer eval MODEL [options]\n"
    "  Top-1 accuracy of a ViT on the Fashion-MNIST test split (10000 images).\n"
    "  --model NAME    candidate of a family file (dense, 2:8, ...)\n"
    "  --limit N       only the first N test images\n"
    "  --batch B       images per forward pass (default 64)\n"
    "  --threads T     threads (default: NMF_THREADS or all cores)\n"
    "  --data DIR      directory of the IDX files (default: $NMF_DATA_DIR or " NMF_FASHION_MNIST_DIR ")\n"
    "  --json          one JSON object instead of text\n"
    MODEL_CLI_PRECISION_HELP
    CLI_CONFIG_FLAGS_HELP;

int cmd_eval(int argc, char **argv) {
    const char *model_path = NULL, *name = NULL, *data_dir = NULL;
    long limit = 0, threads = 0, batch = 64;
    int json = 0;
    nmf_precision prec = NMF_PREC_F32;
    cli_config_flags flags = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int took = cli_take_config_flag("eval", argc, argv, &i, &flags);
        if (took < 0) return 2;
        if (took) continue;
        int has_value = i + 1 < argc;
        long *num = NULL;
        long lo = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--model") && has_value) name = argv[++i];
        else if (!strcmp(a, "--data") && has_value) data_dir = argv[++i];
        else if (!strcmp(a, "--precision") && has_value) {
            if (model_cli_precision("eval", argv[++i], &prec)) return 2;
        }
        else if (!strcmp(a, "--limit") && has_value) num = &limit;
        else if (!strcmp(a, "--threads") && has_value) num = &threads;
        else if (!strcmp(a, "--batch") && has_value) num = &batch;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "nmformer eval: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        } else if (!model_path) model_path = a;
        else {
            fprintf(stderr, "nmformer eval: unexpected argument '%s'\n", a);
            return 2;
        }
        if (num && model_cli_int(argv[++i], lo, 1L << 30, num)) {
            fprintf(stderr, "nmformer eval: %s wants an integer >= 1, got '%s'\n", a, argv[i]);
            return 2;
        }
    }
    if (!model_path) {
        fprintf(stderr, "nmformer eval: need MODEL (see --help)\n");
        return 2;
    }
    if (threads) nmf_set_threads((int)threads);
    nmf_vit *m = NULL;
    nmf_status st = model_cli_load(&m, model_path, name, &flags);
    if (st == NMF_OK) st = nmf_vit_set_precision(m, prec);
    if (st) {
        nmf_vit_free(m);
        return cli_fail("eval", model_path, st);
    }
    const nmf_model_config *c = nmf_vit_get_config(m);
    nmf_dataset ds = {0};
    st = nmf_dataset_load(&ds, data_dir, NMF_SPLIT_TEST);
    if (st) {
        nmf_vit_free(m);
        return cli_fail("eval", "Fashion-MNIST test split", st);
    }
    if (c->in_chans != 1 || c->img_size != ds.rows || ds.rows != ds.cols ||
        c->num_classes < ds.num_classes) {
        fprintf(stderr,
                "nmformer eval: %s: model takes %dx%dx%d images into %d classes; Fashion-MNIST is "
                "1x%dx%d with %d classes\n",
                model_path, c->in_chans, c->img_size, c->img_size, c->num_classes, ds.rows, ds.cols,
                ds.num_classes);
        nmf_dataset_free(&ds);
        nmf_vit_free(m);
        return 1;
    }
    size_t n = limit && (size_t)limit < ds.n ? (size_t)limit : ds.n;
    size_t B = (size_t)batch, classes = (size_t)c->num_classes, pixels = (size_t)ds.rows * ds.cols;
    float *images = malloc(B * pixels * sizeof(float)), *logits = malloc(B * classes * sizeof(float));
    int *labels = malloc(B * sizeof(int));
    size_t *idx = malloc(B * sizeof(size_t));
    if (!images || !logits || !labels || !idx) st = nmf_error(NMF_ERR_NOMEM, "eval batch of %zu", B);
    size_t correct = 0;
    double t0 = nmf_now();
    for (size_t i = 0; st == NMF_OK && i < n; i += B) {
        size_t b = n - i < B ? n - i : B;
        for (size_t j = 0; j < b; j++) idx[j] = i + j;
        st = nmf_dataset_batch(images, labels, &ds, idx, b, c->mean, c->std);
        if (st == NMF_OK) st = nmf_vit_forward(m, logits, images, b);
        for (size_t j = 0; st == NMF_OK && j < b; j++) {
            const float *row = logits + j * classes;
            size_t best = 0;
            for (size_t k = 1; k < classes; k++)
                if (row[k] > row[best]) best = k; /* ties: the lower class, like torch.argmax */
            correct += (int)best == labels[j];
        }
    }
    double secs = nmf_now() - t0;
    free(images);
    free(logits);
    free(labels);
    free(idx);
    nmf_dataset_free(&ds);
    nmf_vit_free(m);
    if (st) return cli_fail("eval", model_path, st);
    double acc = n ? (double)correct / (double)n : 0.0;
    if (json) {
        printf("{\"model\": ");
        model_cli_json_string(stdout, model_path);
        printf(", \"candidate\": ");
        model_cli_json_string(stdout, name ? name : "");
        printf(", \"precision\": \"%s\", \"images\": %zu, \"correct\": %zu, \"top1\": %.6f, "
               "\"seconds\": %.3f}\n", nmf_precision_name(prec), n, correct, acc, secs);
    } else
        printf("%s%s%s%s%s: top-1 %.2f%% (%zu/%zu) on the Fashion-MNIST test split, %.2f s\n",
               model_path, name ? " " : "", name ? name : "", prec ? " " : "",
               prec ? nmf_precision_name(prec) : "", 100.0 * acc, correct, n, secs);
    return 0;
}
