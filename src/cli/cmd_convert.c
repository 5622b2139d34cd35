/* nmformer convert: between .safetensors, .nmf and Hugging Face model folders, by the paths
 * (also .nmf -> .nmf and safetensors -> safetensors, to change the stored dtype or pick one
 * candidate). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "nmformer/model.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: nmformer convert IN OUT [options]\n"
            "\n"
            "Converts between .safetensors, .nmf and Hugging Face model folders (IN: a file\n"
            "by its extension, or a folder holding config.json + model.safetensors or shards;\n"
            "OUT: .nmf, .safetensors, anything else is written as a model folder).\n"
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
            "                               tensor names, dense values (zeros where pruned).\n"
            "                               Written whole or not at all; an existing non-empty\n"
            "                               OUT_DIR is refused unless --force\n"
            "\n"
            "options:\n"
            "  --model NAME   candidate to read or to write (see above)\n"
            "  --dtype T      stored values: f32, f16 or bf16 (default: the source's dtype,\n"
            "                 f32 when its tensors differ)\n"
            "  --force        replace an existing model folder OUT_DIR (config.json and files\n"
            "                 only; any other non-empty folder is left alone)\n"
            "  --help         this text\n" CLI_CONFIG_FLAGS_HELP);
}

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *model = NULL, *dtype_s = NULL;
    int force = 0;
    cli_config_flags flags = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--model")) {
            if (!(model = cli_value("convert", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--dtype")) {
            if (!(dtype_s = cli_value("convert", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if ((r = cli_take_config_flag("convert", argc, argv, &i, &flags)) != 0) {
            if (r < 0) return 2;
        } else if (cli_positional("convert", a, (const char **[]){&in, &out}, 2)) {
            return 2;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "nmformer convert: need IN and OUT (see --help)\n");
        return 2;
    }
    nmf_dtype dtype = NMF_DTYPE_F32;
    if (dtype_s && nmf_dtype_parse(dtype_s, &dtype))
        return cli_fail("convert", "--dtype", NMF_ERR_INVALID_ARG);
    cli_file_kind ik = cli_file_kind_of(in), ok = cli_file_kind_of(out);
    int to_folder = ok != CLI_FILE_NMF && ok != CLI_FILE_SAFETENSORS;
    if (ik == CLI_FILE_OTHER) {
        fprintf(stderr, "nmformer convert: %s: input must be .safetensors, .nmf or a model folder\n",
                in);
        return 2;
    }
    if (force && !to_folder) {
        fprintf(stderr, "nmformer convert: --force applies to a model folder OUT only\n");
        return 2;
    }
    nmf_status st;
    nmf_model_config cfg;
    nmf_tensor_set set;

    if (ik == CLI_FILE_NMF && ok == CLI_FILE_NMF) {
        if (flags.count) {
            fprintf(stderr, "nmformer convert: config flags apply to safetensors input only\n");
            return 2;
        }
        nmf_family fam;
        st = nmf_family_read(in, &fam);
        if (st) return cli_fail("convert", in, st);
        st = nmf_family_select(&fam, model);
        if (st) { /* a problem of the input */
            nmf_family_free(&fam);
            return cli_fail("convert", in, st);
        }
        nmf_write_options opt = {dtype_s ? dtype : nmf_family_stored_dtype(&fam)};
        st = nmf_family_write(out, &fam, &opt);
        nmf_family_free(&fam);
        return st ? cli_fail("convert", out, st) : 0;
    }

    /* One model in: a candidate of an .nmf (--model), or the one model of a file or folder. */
    int one_model_in = ik != CLI_FILE_NMF;
    if (one_model_in && ok != CLI_FILE_NMF && model && strcmp(model, "dense")) {
        fprintf(stderr, "nmformer convert: --model names a candidate of an .nmf file; %s holds "
                        "one model\n", in);
        return 2;
    }
    st = cli_load_model(in, one_model_in ? NULL : model, &flags, &cfg, &set);
    if (st) return cli_fail("convert", in, st);
    if (!dtype_s) dtype = nmf_tensors_stored_dtype(&set);
    if (to_folder) {
        nmf_hf_write_options hopt = {dtype, force};
        st = nmf_hf_folder_write(out, &cfg, &set, &hopt);
        nmf_tensors_free(&set);
        return st ? cli_fail("convert", out, st) : 0;
    }
    if (ok == CLI_FILE_SAFETENSORS) {
        st = nmf_safetensors_write(out, &set, dtype); /* the loader set the config meta */
        nmf_tensors_free(&set);
        return st ? cli_fail("convert", out, st) : 0;
    }
    /* one model -> .nmf */
    nmf_write_options opt = {dtype};
    nmf_family fam;
    st = nmf_family_from_model(&fam, &cfg, &set, model);
    if (st) {
        nmf_family_free(&fam);
        nmf_tensors_free(&set);
        return cli_fail("convert", in, st);
    }
    st = nmf_family_write(out, &fam, &opt);
    nmf_family_free(&fam);
    return st ? cli_fail("convert", out, st) : 0;
}
