/* nmformer prune: one-shot pruning of every block linear to one or more N:M patterns, by
 * magnitude or, with calibration data, Wanda or SparseGPT (the library's nmformer/prune.h).
 * The result is a family file (dense + one candidate per pattern, sharing every tensor that
 * pruning does not touch), or a single pruned model as safetensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/model_cli.h"
#include "nmformer/data.h"
#include "nmformer/model.h"
#include "nmformer/prune.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: nmformer prune IN OUT --pattern N:M[,N:M...] [options]\n"
            "\n"
            "One-shot pruning: in every block linear (ViT attn.qkv, attn.proj, mlp.fc1,\n"
            "mlp.fc2; BERT query/key/value/dense; GPT-2 c_attn, c_proj, c_fc; LLaMA q/k/v/o,\n"
            "gate/up/down) keep N of each group of M consecutive inputs (ties: lower index),\n"
            "along the input dimension whatever the storage (GPT-2's [in, out]: M consecutive\n"
            "rows per output column). Embeddings, norms, pooler and heads stay dense. IN is\n"
            ".safetensors, .nmf (its 'dense' model, or --model) or a Hugging Face model folder\n"
            "(config.json + weights).\n"
            "Methods (--method):\n"
            "  magnitude  the N largest |w| (no calibration; the default)\n"
            "  wanda      the N largest |w| * ||x||_2, x the linear's input over the\n"
            "             calibration tokens (one forward, shared by all patterns)\n"
            "  sparsegpt  block by block on the model pruned so far, the N largest\n"
            "             w^2 / [H^-1]_jj^2 with H = X^T X + damp * mean(diag) * I, the kept\n"
            "             weights updated to make up for the pruned ones\n"
            "Calibration (wanda, sparsegpt): --calib FILE.npy, float32 NCHW images (B, C, S, S)\n"
            "for a ViT, int32/int64 token ids (B, T) for BERT / GPT-2 / LLaMA; without it a\n"
            "ViT of Fashion-MNIST's shape uses the first K images of its train split.\n"
            "OUT .nmf: a family holding 'dense' and one candidate per pattern (named \"N:M\");\n"
            "tensors the candidates have in common are stored once.\n"
            "OUT .safetensors: one pattern only; the pruned model, dense with zeros.\n"
            "\n"
            "options:\n"
            "  --pattern LIST    N:M patterns, comma separated (e.g. 4:8,2:8,1:8)\n"
            "  --add             append the candidates to the existing family file OUT\n"
            "                    (IN is then the dense source they are pruned from)\n"
            "  --no-dense        do not store the dense model in a new family\n"
            "  --model NAME      model of an .nmf IN to prune (default: dense)\n"
            "  --method M        magnitude (default), wanda or sparsegpt\n"
            "  --calib FILE      calibration samples (.npy, see above)\n"
            "  --calib-samples K use the first K samples (default 128)\n"
            "  --damp X          SparseGPT dampening, a fraction of mean diag(H) (default 0.01)\n"
            "  --data DIR        Fashion-MNIST IDX files for the default calibration set\n"
            "                    (default: $NMF_DATA_DIR or " NMF_FASHION_MNIST_DIR ")\n"
            "  --dtype T         stored values: f32, f16 or bf16 (default: the source's\n"
            "                    dtype, f32 when its tensors differ; with --add: the family's)\n"
            "  --help            this text\n" CLI_CONFIG_FLAGS_HELP);
}

#define MAX_PATTERNS 16

int cmd_prune(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *patterns = NULL, *model = NULL, *dtype_s = NULL;
    const char *method_s = NULL, *calib = NULL, *samples_s = NULL, *damp_s = NULL, *data_dir = NULL;
    int add = 0, no_dense = 0;
    cli_config_flags flags = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--pattern") || !strcmp(a, "--patterns")) {
            if (!(patterns = cli_value("prune", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--model")) {
            if (!(model = cli_value("prune", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--dtype")) {
            if (!(dtype_s = cli_value("prune", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--method")) {
            if (!(method_s = cli_value("prune", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--calib")) {
            if (!(calib = cli_value("prune", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--calib-samples")) {
            if (!(samples_s = cli_value("prune", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--damp")) {
            if (!(damp_s = cli_value("prune", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--data")) {
            if (!(data_dir = cli_value("prune", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--add")) {
            add = 1;
        } else if (!strcmp(a, "--no-dense")) {
            no_dense = 1;
        } else if ((r = cli_take_config_flag("prune", argc, argv, &i, &flags)) != 0) {
            if (r < 0) return 2;
        } else if (cli_positional("prune", a, (const char **[]){&in, &out}, 2)) {
            return 2;
        }
    }
    if (!in || !out || !patterns) {
        fprintf(stderr, "nmformer prune: need IN, OUT and --pattern (see --help)\n");
        return 2;
    }
    nmf_dtype dtype = NMF_DTYPE_F32;
    if (dtype_s && nmf_dtype_parse(dtype_s, &dtype))
        return cli_fail("prune", "--dtype", NMF_ERR_INVALID_ARG);
    nmf_prune_options popt;
    nmf_prune_options_default(&popt);
    if (method_s && nmf_prune_method_parse(method_s, &popt.method))
        return cli_fail("prune", "--method", NMF_ERR_INVALID_ARG);
    long samples = 128;
    if (samples_s && model_cli_int(samples_s, 1, 1L << 30, &samples)) {
        fprintf(stderr, "nmformer prune: --calib-samples wants an integer >= 1, got '%s'\n", samples_s);
        return 2;
    }
    if (damp_s) {
        char *end;
        popt.damp = strtod(damp_s, &end);
        if (end == damp_s || *end || !isfinite(popt.damp) || popt.damp < 0) {
            fprintf(stderr, "nmformer prune: --damp wants a finite number >= 0, got '%s'\n", damp_s);
            return 2;
        }
    }
    const int calibrated = popt.method != NMF_PRUNE_MAGNITUDE;
    if (!calibrated && (calib || samples_s || damp_s || data_dir)) {
        fprintf(stderr, "nmformer prune: --calib, --calib-samples, --damp and --data are for "
                        "--method wanda or sparsegpt\n");
        return 2;
    }
    if (damp_s && popt.method != NMF_PRUNE_SPARSEGPT) {
        fprintf(stderr, "nmformer prune: --damp is for --method sparsegpt\n");
        return 2;
    }

    nmf_pattern pats[MAX_PATTERNS];
    int npat = 0;
    char list[256];
    if (strlen(patterns) >= sizeof list) {
        fprintf(stderr, "nmformer prune: --pattern list too long\n");
        return 2;
    }
    strcpy(list, patterns);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (npat >= MAX_PATTERNS) {
            fprintf(stderr, "nmformer prune: at most %d patterns\n", MAX_PATTERNS);
            return 2;
        }
        nmf_status st = nmf_pattern_parse(tok, &pats[npat]);
        if (st) return cli_fail("prune", "--pattern", st);
        for (int k = 0; k < npat; k++)
            if (pats[k].n == pats[npat].n && pats[k].m == pats[npat].m) {
                fprintf(stderr, "nmformer prune: pattern %s given twice\n", tok);
                return 2;
            }
        npat++;
    }
    if (npat == 0) {
        fprintf(stderr, "nmformer prune: --pattern needs at least one N:M\n");
        return 2;
    }
    cli_file_kind out_kind = cli_file_kind_of(out);
    if (out_kind == CLI_FILE_OTHER) {
        fprintf(stderr, "nmformer prune: %s: output must be .nmf or .safetensors\n", out);
        return 2;
    }
    if (out_kind == CLI_FILE_SAFETENSORS && (npat != 1 || add)) {
        fprintf(stderr, "nmformer prune: a .safetensors output holds one pattern and no --add; "
                        "use .nmf for a family\n");
        return 2;
    }

    nmf_model_config cfg;
    nmf_tensor_set src;
    const char *src_model = model;
    if (!src_model && cli_file_kind_of(in) == CLI_FILE_NMF) src_model = "dense";
    nmf_status st = cli_load_model(in, src_model, &flags, &cfg, &src);
    if (st) return cli_fail("prune", in, st);

    int rc = 0;
    nmf_family fam;
    nmf_family_init(&fam);
    nmf_calib cal = {0};
    nmf_prune_stats stats = {0};
    if (calibrated) {
        st = calib ? nmf_calib_load(&cal, &cfg, calib, (size_t)samples)
                   : nmf_calib_fashion_mnist(&cal, &cfg, data_dir, (size_t)samples);
        if (st) {
            rc = cli_fail("prune", calib ? "--calib" : "default calibration set", st);
            goto done;
        }
    }
    if (out_kind == CLI_FILE_SAFETENSORS) {
        if (!dtype_s) dtype = nmf_tensors_stored_dtype(&src); /* a BF16 source stays BF16 */
        nmf_tensor_set pruned;
        st = nmf_prune_oneshot(&cfg, &src, pats, 1, &popt, &cal, &pruned, &stats);
        if (!st) {
            st = nmf_safetensors_write(out, &pruned, dtype);
            nmf_tensors_free(&pruned);
        }
        rc = st ? cli_fail("prune", out, st) : 0;
        goto done;
    }
    if (add) { /* the family to extend */
        st = nmf_family_read(out, &fam);
        if (st) {
            rc = cli_fail("prune", out, st);
            goto done;
        }
    } else {
        fam.config = cfg;
    }
    nmf_dtype default_dtype;
    st = nmf_family_prune_oneshot(&fam, &cfg, &src, pats, (size_t)npat, !add && !no_dense, &popt, &cal,
                                  &default_dtype, &stats);
    if (st) {
        rc = cli_fail("prune", out, st);
        goto done;
    }
    if (!dtype_s) dtype = default_dtype;
    nmf_write_options opt = {dtype};
    st = nmf_family_write(out, &fam, &opt);
    if (st) rc = cli_fail("prune", out, st);
done:
    /* what the calibration cost, for the one-shot table (docs/IDP.md); on stderr: stdout stays
     * free for a written output (docs/RELIABILITY.md) */
    if (!rc && calibrated)
        fprintf(stderr, "prune: %s, %d pattern%s: %zu calibration samples (%zu tokens per pass), %zu forward "
               "pass%s, %.2f s\n", nmf_prune_method_name(popt.method), npat, npat > 1 ? "s" : "",
               stats.samples, stats.tokens, stats.forwards, stats.forwards == 1 ? "" : "es",
               stats.seconds);
    nmf_calib_free(&cal);
    nmf_family_free(&fam);
    nmf_tensors_free(&src);
    return rc;
}
