/* nmformer convert: safetensors <-> .nmf by extension (also .nmf -> .nmf and safetensors ->
 * safetensors, to change the stored dtype or pick one candidate). */
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
            "Converts between .safetensors and .nmf (chosen by the file extensions).\n"
            "  safetensors -> .nmf          one candidate, named by --model (default 'dense');\n"
            "                               if NAME is an N:M pattern (e.g. 2:8), the block\n"
            "                               linears must already be N:M and are stored packed\n"
            "  .nmf -> safetensors          one candidate (--model NAME when the file holds\n"
            "                               several), dense, zeros where pruned\n"
            "  .nmf -> .nmf                 all candidates, or only --model NAME\n"
            "  safetensors -> safetensors   re-encode (e.g. --dtype bf16)\n"
            "\n"
            "options:\n"
            "  --model NAME   candidate to read or to write (see above)\n"
            "  --dtype T      stored values: f32 (default), f16 or bf16\n"
            "  --help         this text\n" CLI_CONFIG_FLAGS_HELP);
}

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *model = NULL, *dtype_s = NULL;
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
    if (ik == CLI_FILE_OTHER || ok == CLI_FILE_OTHER) {
        fprintf(stderr, "nmformer convert: %s: files must be .safetensors or .nmf\n",
                ik == CLI_FILE_OTHER ? in : out);
        return 2;
    }
    nmf_status st;
    nmf_model_config cfg;
    nmf_tensor_set set;
    nmf_write_options opt = {dtype};

    if (ik == CLI_FILE_NMF && ok == CLI_FILE_NMF) {
        if (flags.count) {
            fprintf(stderr, "nmformer convert: config flags apply to safetensors input only\n");
            return 2;
        }
        nmf_family fam;
        st = nmf_family_read(in, &fam);
        if (st) return cli_fail("convert", in, st);
        for (size_t i = 0; !st && i < fam.count; i++) {
            st = nmf_model_check_tensors(&fam.config, &fam.models[i].tensors);
            if (st) {
                st = nmf_error_context(st, "model '%s'", fam.models[i].name);
            }
        }
        if (!st && model) {
            nmf_candidate *c = nmf_family_find(&fam, model);
            if (!c) {
                st = nmf_error(NMF_ERR_NOT_FOUND, "%s: no model '%s'", in, model);
            } else {
                nmf_family one;
                nmf_family_init(&one);
                one.config = fam.config;
                st = nmf_family_add(&one, c->name, &c->tensors);
                nmf_family_free(&fam);
                fam = one;
            }
        }
        if (st) { /* a problem of the input */
            nmf_family_free(&fam);
            return cli_fail("convert", in, st);
        }
        st = nmf_family_write(out, &fam, &opt);
        nmf_family_free(&fam);
        return st ? cli_fail("convert", out, st) : 0;
    }

    if (ik == CLI_FILE_SAFETENSORS && ok == CLI_FILE_SAFETENSORS && model && strcmp(model, "dense")) {
        fprintf(stderr, "nmformer convert: --model names a candidate of an .nmf file; both files "
                        "here are safetensors\n");
        return 2;
    }
    /* One model in. */
    st = cli_load_model(in, ik == CLI_FILE_SAFETENSORS ? NULL : model, &flags, &cfg, &set);
    if (st) return cli_fail("convert", in, st);
    if (ok == CLI_FILE_SAFETENSORS) {
        st = nmf_safetensors_write(out, &set, dtype); /* the loader set the config meta */
        nmf_tensors_free(&set);
        return st ? cli_fail("convert", out, st) : 0;
    }
    /* safetensors -> .nmf */
    const char *name = model ? model : "dense";
    nmf_pattern p;
    if (strcmp(name, "dense") != 0 && nmf_pattern_parse(name, &p) == NMF_OK) {
        st = nmf_model_pack_nm(&cfg, &set, p);
        if (st) {
            nmf_tensors_free(&set);
            return cli_fail("convert", in, st);
        }
    }
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = cfg;
    st = nmf_family_add(&fam, name, &set);
    if (!st) st = nmf_family_write(out, &fam, &opt);
    nmf_family_free(&fam);
    nmf_tensors_free(&set);
    return st ? cli_fail("convert", out, st) : 0;
}
