/* nmformer run MODEL --input x.npy --output y.npy [--model NAME] [--batch B] [--threads T]
 * Logits (N, classes) for images (N, C, S, S) float32, already normalised. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/model_cli.h"
#include "nmformer/io.h"
#include "nmformer/model.h"

static const char usage_text[] =
    "usage: nmformer run MODEL --input x.npy --output y.npy [options]\n"
    "  Runs a ViT (.safetensors or one candidate of an .nmf family) on a batch of images.\n"
    "  --input PATH    float32 .npy, NCHW (N, in_chans, img_size, img_size), already normalised\n"
    "                  ((pixel/255 - mean)/std); a single (C, S, S) image is accepted too; - = stdin\n"
    "  --output PATH   float32 .npy: logits (N, num_classes); replaced atomically, a symlink\n"
    "                  written through, a device/FIFO or - (stdout) written directly\n"
    "  --model NAME    candidate of a family file (dense, 2:8, ...)\n"
    "  --batch B       images per forward pass (default 32)\n"
    "  --threads T     threads (default: NMF_THREADS or all cores)\n"
    CLI_CONFIG_FLAGS_HELP;

int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *input = NULL, *output = NULL, *name = NULL;
    long batch = 32, threads = 0;
    cli_config_flags flags = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int took = cli_take_config_flag("run", argc, argv, &i, &flags);
        if (took < 0) return 2;
        if (took) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--input") && has_value) input = argv[++i];
        else if (!strcmp(a, "--output") && has_value) output = argv[++i];
        else if (!strcmp(a, "--model") && has_value) name = argv[++i];
        else if (!strcmp(a, "--batch") && has_value) {
            if (model_cli_int(argv[++i], 1, 1 << 20, &batch)) {
                fprintf(stderr, "nmformer run: --batch wants an integer >= 1, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--threads") && has_value) {
            if (model_cli_int(argv[++i], 1, 4096, &threads)) {
                fprintf(stderr, "nmformer run: --threads wants an integer >= 1, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "nmformer run: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        } else if (!model_path) model_path = a;
        else {
            fprintf(stderr, "nmformer run: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!model_path || !input || !output) {
        fprintf(stderr, "nmformer run: need MODEL, --input and --output (see --help)\n");
        return 2;
    }
    if (threads) nmf_set_threads((int)threads);

    nmf_array x = {0};
    nmf_status st = nmf_npy_read(input, &x);
    if (st) return cli_fail("run", input, st);
    nmf_vit *m = NULL;
    st = model_cli_load(&m, model_path, name, &flags);
    if (st) {
        nmf_array_free(&x);
        return cli_fail("run", model_path, st);
    }
    const nmf_model_config *c = nmf_vit_get_config(m);
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
        nmf_vit_free(m);
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
        st = nmf_vit_forward(m, logits + i * classes, x.data + i * per_image, b);
    }
    if (st == NMF_OK) {
        int64_t shape[2] = {(int64_t)n, (int64_t)classes};
        what = output;
        st = nmf_npy_write(output, logits, 2, shape);
    }
    nmf_free(logits);
    nmf_vit_free(m);
    nmf_array_free(&x);
    if (st) return cli_fail("run", what, st);
    return 0;
}
