/* nmformer convert: between .safetensors, .nmf and Hugging Face model folders (also .nmf -> .nmf
 * and safetensors -> safetensors, to change the stored dtype or pick one candidate). IN's type
 * comes from its contents, OUT's from its name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "nmformer/model.h"

static const char about[] =
    "Converts between .safetensors, .nmf and Hugging Face model folders. IN's type comes from\n"
    "its contents (the .nmf magic, a safetensors header, or a folder holding config.json +\n"
    "model.safetensors or shards), whatever its name; OUT's from its name: .nmf, .safetensors,\n"
    "anything else is written as a model folder.\n"
    "  safetensors/folder -> .nmf   one candidate, named by --model (default 'dense');\n"
    "                               if NAME is an N:M pattern (e.g. 2:8), the block\n"
    "                               linears must already be N:M and are stored packed\n"
    "  .nmf -> safetensors          one candidate (--model NAME when the file holds\n"
    "                               several), dense, zeros where pruned\n"
    "  .nmf -> .nmf                 all candidates, or only --model NAME\n"
    "  safetensors -> safetensors   re-encode (e.g. --dtype bf16)\n"
    "  any -> OUT_DIR               a BERT, GPT-2 or LLaMA model (one candidate of an\n"
    "                               .nmf: --model NAME) as a Hugging Face folder:\n"
    "                               config.json + model.safetensors, the original\n"
    "                               tensor names, dense values (zeros where pruned);\n"
    "                               over --max-shard-size (default 5GB) in shards,\n"
    "                               model-0000i-of-0000n.safetensors + index, as\n"
    "                               save_pretrained. Written whole or not at all; an\n"
    "                               existing non-empty OUT_DIR is refused unless --force\n"
    "--default-precision P (an .nmf OUT) records P (f32, bf16 or int8) as every written\n"
    "candidate's default: run, eval and bench model then compute in it unless --precision\n"
    "says otherwise (metadata key nmformer.precision; OUT may be IN: written atomically).\n"
    "Every OUT is written tensor by tensor (IN read one tensor at a time: memory is a\n"
    "few tensors, not the model).\n"
    "Progress (bytes/s, ETA) on stderr for steps over a second; --quiet silences it.\n"
    "On success one line on stdout: IN and OUT with their kinds and sizes, the candidates\n"
    "written (bits per group of each N:M one) and the dtype.\n";

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *model = NULL;
    nmf_dtype dtype = NMF_DTYPE_COUNT; /* not given: the source's */
    nmf_precision default_prec = NMF_PREC_COUNT; /* not given: as the source's metadata says */
    int force = 0, quiet = 0, json = 0;
    uint64_t max_shard = 0; /* not given: save_pretrained's 5GB */
    cli_config_flags flags = {0};
    const cli_opt opts[] = {
        CLI_STR("model", 'm', &model, "NAME", "candidate to read or to write (see above)"),
        CLI_FN("dtype", 0, cli_parse_dtype, &dtype, "T",
               "stored values: f32, f16 or bf16 (default: the\nsource's dtype, f32 when its tensors differ)"),
        CLI_FN("default-precision", 0, cli_parse_precision, &default_prec, "P",
               "an .nmf OUT: the candidates' default arithmetic\n(f32, bf16 or int8), see above"),
        CLI_FLAG("force", 'f', &force, "replace an existing model folder OUT_DIR\n(config.json and "
                 "files only; any other\nnon-empty folder is left alone)"),
        CLI_FN("max-shard-size", 0, cli_parse_size, &max_shard, "SIZE",
               "a model folder OUT: shards of at most SIZE\n(5GB, 500MB, 2GiB, bytes; default 5GB, as\n"
               "save_pretrained), see above"),
        CLI_FLAG("quiet", 'q', &quiet, "no summary line, no progress"),
        CLI_FLAG("json", 0, &json, "the summary as one JSON object"),
        CLI_CONFIG_OPTS(&flags),
        CLI_END,
    };
    const cli_command cmd = {"convert", "IN OUT [options]", about, opts, {&in, &out}, NULL};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_GO_ON) return rc;
    if (!in || !out) return cli_usage_error("convert", "need IN and OUT (see --help)");
    nmf_file_kind ik, ok = cli_output_kind(out);
    const int to_folder = ok == NMF_FILE_HF_FOLDER;
    if (force && !to_folder)
        return cli_usage_error("convert", "--force applies to a model folder OUT only");
    if (max_shard && !to_folder)
        return cli_usage_error("convert", "--max-shard-size applies to a model folder OUT only");
    if (!max_shard) max_shard = 5000000000ull;
    if (default_prec != NMF_PREC_COUNT && ok != NMF_FILE_NMF)
        return cli_usage_error("convert", "--default-precision is stored in an .nmf OUT only");
    if (cli_file_kind("convert", in, &ik)) return CLI_EXIT_FAILURE;
    nmf_status st;

    if (ok == NMF_FILE_NMF) { /* tensor by tensor (nmf_family_convert_file) */
        if (ik == NMF_FILE_NMF && cli_config_flags_any(&flags))
            return cli_usage_error("convert", "config flags apply to safetensors input only");
        nmf_config_overrides o;
        nmf_family fam;
        st = cli_config_overrides(&flags, &o);
        if (!st)
            st = nmf_family_convert_file_precision(in, model, &o, out, dtype, default_prec, &fam,
                                                   &dtype);
        if (st) return cli_fail("convert", cli_failed_path(in, out), st);
        if (!quiet) cli_print_summary("convert", in, out, &fam, NULL, dtype, json);
        nmf_family_free(&fam);
        return 0;
    }

    /* One model in (a candidate of an .nmf: --model, or the one model of a file or folder),
     * written dense as a safetensors file or a model folder, tensor by tensor. */
    int one_model_in = ik != NMF_FILE_NMF;
    if (one_model_in && model && strcmp(model, "dense"))
        return cli_usage_error("convert", "--model names a candidate of an .nmf file; %s holds "
                               "one model", in);
    nmf_config_overrides o;
    const nmf_dense_write_options dopt = {dtype, {0, 0}, to_folder, force, max_shard};
    st = cli_config_overrides(&flags, &o);
    if (!st) st = nmf_dense_convert_file(in, one_model_in ? NULL : model, &o, out, &dopt, &dtype);
    if (st) return cli_fail("convert", cli_failed_path(in, out), st);
    const char *written = one_model_in || !model ? "dense" : model;
    if (!quiet) cli_print_summary("convert", in, out, NULL, written, dtype, json);
    return 0;
}
