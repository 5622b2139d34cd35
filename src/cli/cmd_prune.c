/* nmformer prune: one-shot pruning of every block linear to one or more N:M patterns, by
 * magnitude or, with calibration data, Wanda or SparseGPT (the library's nmformer/prune.h).
 * The result is a family file (dense + one candidate per pattern, sharing every tensor that
 * pruning does not touch), or a single pruned model as safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "nmformer/data.h"
#include "nmformer/model.h"
#include "nmformer/prune.h"

static const char about[] =
    "One-shot pruning: in every block linear (ViT attn.qkv, attn.proj, mlp.fc1,\n"
    "mlp.fc2; BERT query/key/value/dense; GPT-2 c_attn, c_proj, c_fc; LLaMA q/k/v/o,\n"
    "gate/up/down) keep N of each group of M consecutive inputs (ties: lower index),\n"
    "along the input dimension whatever the storage (GPT-2's [in, out]: M consecutive\n"
    "rows per output column). Embeddings, norms, pooler and heads stay dense.\n"
    "Methods (--method):\n"
    "  magnitude  the N largest |w| (no calibration; the default)\n"
    "  wanda      the N largest |w| * ||x||_2, x the linear's input over the\n"
    "             calibration tokens (one forward, shared by all patterns)\n"
    "  sparsegpt  block by block on the model pruned so far, the N largest\n"
    "             w^2 / [H^-1]_jj^2 with H = X^T X + damp * mean(diag) * I, the kept\n"
    "             weights updated to make up for the pruned ones\n"
    "Calibration (wanda, sparsegpt): --calib FILE.npy, float32 NCHW images (B, C, S, S)\n"
    "for a ViT, int32/int64 token ids (B, T) for BERT / GPT-2 / LLaMA; without it a\n"
    "ViT of Fashion-MNIST's shape uses the first K images of its train split, a\n"
    "byte-level LM (vocabulary 256) K windows of --seq-len bytes spread over the\n"
    "train split of its text corpus; the calibration cost is printed on stderr.\n"
    " IN is a safetensors file, an .nmf family (its 'dense'\n"
    "model, or --model) or a Hugging Face model folder, told apart by their contents.\n"
    "OUT .nmf: a family holding 'dense' and one candidate per pattern (named \"N:M\");\n"
    "tensors the candidates have in common are stored once.\n"
    "OUT .safetensors: one pattern only; the pruned model, dense with zeros.\n"
    "OUT_DIR (magnitude, a BERT, GPT-2 or LLaMA model): the same as a Hugging Face\n"
    "folder (config.json + model.safetensors, as convert writes it).\n"
    "Pruning to an .nmf family streams: by magnitude IN is read one tensor at a time\n"
    "and each tensor's dense copy and N:M forms are written before the next is read;\n"
    "wanda / sparsegpt keep the calibration activations (samples x tokens x width, f32;\n"
    "sparsegpt: one set per pattern) and read, calibrate, prune and write one block at\n"
    "a time (the same candidates as pruning the model whole). Memory is a few tensors\n"
    "(plus the embeddings, norms and activations), not the model; --add copies the\n"
    "family's candidates tensor by tensor first. Magnitude pruning to a .safetensors OUT\n"
    "or a folder streams too; wanda / sparsegpt to a .safetensors OUT load the model whole.\n"
    "Progress (bytes/s, ETA) on stderr for steps over a second; --quiet silences it.\n"
    "On success one line on stdout: IN and OUT with their kinds and sizes, the candidates\n"
    "OUT holds with the index-code bits per group of each pattern, and the dtype.\n";

#define MAX_PATTERNS 16

static nmf_status parse_method(const char *value, void *dest) {
    return nmf_prune_method_parse(value, dest);
}

/* Where the calibration samples come from: --calib FILE, else the model's default set. */
typedef struct {
    const char *calib, *data_dir, *corpus;
    size_t samples, seq_len;
} calib_source;

static nmf_status load_calib(nmf_calib *cal, const nmf_model_config *c, void *user) {
    const calib_source *src = user;
    const nmf_status st = src->calib ? nmf_calib_load(cal, c, src->calib, src->samples)
                                     : nmf_calib_default(cal, c, nmf_model_is_token(c) ? src->corpus
                                                                                       : src->data_dir,
                                                         src->samples, src->seq_len);
    return st ? nmf_error_context(st, "%s", src->calib ? "--calib" : "default calibration set") : st;
}

/* What the calibration cost, for the one-shot table (docs/IDP.md); on stderr: stdout stays free
 * for a written output (docs/RELIABILITY.md). */
static void print_calib_cost(const nmf_prune_options *popt, int npat, const nmf_prune_stats *stats) {
    fprintf(stderr, "prune: %s, %d pattern%s: %zu calibration samples (%zu tokens per pass), %zu forward "
            "pass%s, %.2f s\n", nmf_prune_method_name(popt->method), npat, npat > 1 ? "s" : "",
            stats->samples, stats->tokens, stats->forwards, stats->forwards == 1 ? "" : "es",
            stats->seconds);
}

/* A family file: the library streams it (nmf_family_prune_file_oneshot), tensor by tensor for
 * magnitude, block by block for wanda / sparsegpt. */
static int prune_streamed(const char *in, const char *model, const char *out,
                          const cli_config_flags *flags, const nmf_pattern *pats, int npat,
                          int with_dense, int add, nmf_dtype dtype, const nmf_prune_options *popt,
                          const calib_source *calib, int quiet, int json) {
    nmf_config_overrides o;
    nmf_status st = cli_config_overrides(flags, &o);
    nmf_family fam;
    nmf_prune_stats stats = {0};
    if (!st)
        st = nmf_family_prune_file_oneshot(in, model, &o, out, pats, (size_t)npat, with_dense, add, popt,
                                           load_calib, (void *)calib, dtype, &fam, &dtype, &stats);
    if (st) return cli_fail("prune", cli_failed_path(in, out), st);
    if (!quiet) cli_print_summary("prune", in, out, &fam, NULL, dtype, json);
    if (!quiet && popt->method != NMF_PRUNE_MAGNITUDE) print_calib_cost(popt, npat, &stats);
    nmf_family_free(&fam);
    return 0;
}

/* One pattern by magnitude to a .safetensors file or a model folder: streamed as well
 * (nmf_dense_convert_file), dense with zeros where pruned. */
static int prune_dense_streamed(const char *in, const char *model, const char *out,
                                const cli_config_flags *flags, nmf_pattern p, int folder,
                                nmf_dtype dtype, int quiet, int json) {
    nmf_config_overrides o;
    const nmf_dense_write_options opt = {dtype, p, folder, 0, 5000000000ull /* save_pretrained's */};
    nmf_status st = cli_config_overrides(flags, &o);
    if (!st) st = nmf_dense_convert_file(in, model, &o, out, &opt, &dtype);
    if (st) return cli_fail("prune", cli_failed_path(in, out), st);
    char name[16];
    nmf_pattern_format(p, name, sizeof name);
    if (!quiet) cli_print_summary("prune", in, out, NULL, name, dtype, json);
    return 0;
}

int cmd_prune(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *patterns = NULL, *model = NULL;
    nmf_dtype dtype = NMF_DTYPE_COUNT; /* not given: the source's (with --add: the family's) */
    int add = 0, no_dense = 0, quiet = 0, json = 0;
    const char *calib = NULL, *data_dir = NULL, *corpus = NULL;
    long samples = 0;   /* 0: not given (default 128) */
    long seq_len = 0;   /* 0: the model's context */
    double damp = -1.0; /* < 0: not given (the library's default) */
    nmf_prune_options popt;
    nmf_prune_options_default(&popt);
    cli_config_flags flags = {0};
    /* Each option is one row; a new one is a row here and its use below (args.h). */
    const cli_opt opts[] = {
        CLI_STR("pattern", 'p', &patterns, "LIST", "N:M patterns, comma separated (e.g. 4:8,2:8,1:8)"),
        CLI_ALIAS("patterns", "pattern"),
        CLI_FLAG("add", 0, &add, "append the candidates to the existing family\nfile OUT (IN is "
                 "then the dense source they\nare pruned from)"),
        CLI_FLAG("no-dense", 0, &no_dense, "do not store the dense model in a new family"),
        CLI_STR("model", 'm', &model, "NAME", "model of an .nmf IN to prune (default: dense)"),
        CLI_FN("dtype", 0, cli_parse_dtype, &dtype, "T",
               "stored values: f32, f16 or bf16 (default: the\nsource's dtype, f32 when its tensors "
               "differ;\nwith --add: the family's)"),
        CLI_FN("method", 0, parse_method, &popt.method, "M", "magnitude (default), wanda or sparsegpt"),
        CLI_STR("calib", 0, &calib, "FILE", "calibration samples (.npy, see above)"),
        CLI_LONG("calib-samples", 0, &samples, 1, 1L << 30, "K", "use the first K samples (default 128)"),
        CLI_DOUBLE("damp", 0, &damp, 0, 1e30, "X",
                   "SparseGPT dampening, a fraction of mean diag(H)\n(default 0.01)"),
        CLI_STR("data", 0, &data_dir, "DIR",
                "Fashion-MNIST IDX files for the default\ncalibration set (default: $NMF_DATA_DIR or\n"
                NMF_FASHION_MNIST_DIR ")"),
        CLI_STR("corpus", 0, &corpus, "PATH", "text corpus of a byte-level LM's default\n"
                "calibration set (default " NMF_FORTUNES_DIR ")"),
        CLI_LONG("seq-len", 0, &seq_len, 1, 1L << 30, "T", "bytes per default calibration window\n"
                 "(default: the model's context)"),
        CLI_FLAG("quiet", 'q', &quiet, "no summary line, no progress"),
        CLI_FLAG("json", 0, &json, "the summary as one JSON object"),
        CLI_CONFIG_OPTS(&flags),
        CLI_END,
    };
    const cli_command cmd = {"prune", "IN OUT --pattern N:M[,N:M...] [options]", about, opts,
                             {&in, &out}, NULL};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_GO_ON) return rc;
    if (!in || !out || !patterns)
        return cli_usage_error("prune", "need IN, OUT and --pattern (see --help)");
    const int calibrated = popt.method != NMF_PRUNE_MAGNITUDE;
    if (!calibrated && (calib || samples || damp >= 0 || data_dir || corpus || seq_len))
        return cli_usage_error("prune", "--calib, --calib-samples, --damp, --data, --corpus and "
                                        "--seq-len are for --method wanda or sparsegpt");
    if (calib && (data_dir || corpus || seq_len))
        return cli_usage_error("prune", "--data, --corpus and --seq-len choose the default "
                                        "calibration set; not with --calib");
    if (damp >= 0 && popt.method != NMF_PRUNE_SPARSEGPT)
        return cli_usage_error("prune", "--damp is for --method sparsegpt");
    if (damp >= 0) popt.damp = damp;
    if (!samples) samples = 128;

    nmf_pattern pats[MAX_PATTERNS];
    int npat = 0;
    char list[256];
    if (strlen(patterns) >= sizeof list) return cli_usage_error("prune", "--pattern list too long");
    strcpy(list, patterns);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (npat >= MAX_PATTERNS) return cli_usage_error("prune", "at most %d patterns", MAX_PATTERNS);
        if (nmf_pattern_parse(tok, &pats[npat]))
            return cli_usage_error("prune", "--pattern: %s", nmf_last_error());
        for (int k = 0; k < npat; k++)
            if (pats[k].n == pats[npat].n && pats[k].m == pats[npat].m)
                return cli_usage_error("prune", "pattern %s given twice", tok);
        npat++;
    }
    if (npat == 0) return cli_usage_error("prune", "--pattern needs at least one N:M");
    nmf_file_kind out_kind = cli_output_kind(out), in_kind;
    if (out_kind == NMF_FILE_HF_FOLDER && calibrated)
        return cli_usage_error("prune", "%s: output must be .nmf or .safetensors with --method %s "
                               "(a model folder: magnitude only)", out, nmf_prune_method_name(popt.method));
    if (out_kind != NMF_FILE_NMF && (npat != 1 || add))
        return cli_usage_error("prune", "a .safetensors or folder output holds one pattern and no "
                               "--add; use .nmf for a family");
    if (cli_file_kind("prune", in, &in_kind)) return CLI_EXIT_FAILURE;

    const char *src_model = model;
    if (!src_model && in_kind == NMF_FILE_NMF) src_model = "dense";
    if (out_kind == NMF_FILE_NMF) { /* streamed: tensor by tensor or block by block, --add too */
        if (calibrated) { /* the other kind's default set, told before anything is read */
            int token = 0;
            nmf_status st = nmf_file_is_token_model(in, &token);
            if (st) return cli_fail("prune", in, st);
            if (token ? data_dir != NULL : corpus != NULL || seq_len)
                return cli_usage_error("prune", token ? "--data is Fashion-MNIST's; a language model's "
                                       "default set comes from --corpus" : "--corpus and --seq-len "
                                       "are for language models; this model takes images");
        }
        const calib_source cs = {calib, data_dir, corpus, (size_t)samples, (size_t)seq_len};
        return prune_streamed(in, src_model, out, &flags, pats, npat, !no_dense, add, dtype, &popt, &cs,
                              quiet, json);
    }
    if (!calibrated) /* magnitude, one pattern: tensor by tensor */
        return prune_dense_streamed(in, src_model, out, &flags, pats[0], out_kind == NMF_FILE_HF_FOLDER,
                                    dtype, quiet, json);

    nmf_model_config cfg;
    nmf_tensor_set src;
    nmf_status st = cli_load_model(in, src_model, &flags, &cfg, &src);
    if (st) return cli_fail("prune", in, st);

    rc = 0;
    nmf_calib cal = {0};
    nmf_prune_stats stats = {0};
    if (calibrated) {
        const int token = nmf_model_is_token(&cfg);
        if (token ? data_dir != NULL : corpus != NULL || seq_len) { /* the other kind's default set */
            rc = cli_usage_error("prune", token ? "--data is Fashion-MNIST's; a language model's "
                                 "default set comes from --corpus" : "--corpus and --seq-len are for "
                                 "language models; this %s model takes images", cfg.arch);
            goto done;
        }
        st = calib ? nmf_calib_load(&cal, &cfg, calib, (size_t)samples)
                   : nmf_calib_default(&cal, &cfg, token ? corpus : data_dir, (size_t)samples,
                                       (size_t)seq_len);
        if (st) {
            rc = cli_fail("prune", calib ? "--calib" : "default calibration set", st);
            goto done;
        }
    }
    /* a .safetensors OUT: the one pattern's model, pruned whole */
    if (dtype == NMF_DTYPE_COUNT) dtype = nmf_tensors_stored_dtype(&src); /* BF16 stays BF16 */
    nmf_tensor_set pruned;
    st = nmf_prune_oneshot(&cfg, &src, pats, 1, &popt, &cal, &pruned, &stats);
    if (!st) {
        st = nmf_safetensors_write(out, &pruned, dtype);
        nmf_tensors_free(&pruned);
    }
    if (st) {
        rc = cli_fail("prune", out, st);
    } else if (!quiet) {
        char name[16];
        nmf_pattern_format(pats[0], name, sizeof name);
        cli_print_summary("prune", in, out, NULL, name, dtype, json);
    }
done:
    if (!rc && calibrated && !quiet) print_calib_cost(&popt, npat, &stats);
    nmf_calib_free(&cal);
    nmf_tensors_free(&src);
    return rc;
}
